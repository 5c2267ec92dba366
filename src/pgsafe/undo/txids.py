"""The ids a transaction's rows carry, and the SQL that finds them on the throwaway
cluster (stopped just before the transaction's commit) and the live database.

A row the transaction deleted or updated has as ``xmax`` its xid, the id of one of
its subtransactions (a DELETE after ``SAVEPOINT``, in a plpgsql ``EXCEPTION`` block),
or a multixact its update made (the row was locked by another transaction, or by the
transaction itself before a savepoint: ``FOR SHARE``, a foreign-key check).  A row it
wrote has as ``xmin`` its xid or a subtransaction's.  Both sets come from the WAL scan
(:class:`pgsafe.mistakes.model.Mistake`).

A multixact id and a transaction id are different counters that ``xmax`` does not tell
apart in SQL: a row still visible whose plain ``xmax`` (a lock, an aborted delete)
happens to equal one of the multixacts is taken too.  With a primary key it is then
``unchanged`` (the live row is the same); without one it is at worst listed as a
conflict, never inserted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pgsafe.mistakes.model import Mistake


@dataclass(frozen=True)
class TxIds:
    xid: int
    subxacts: tuple[int, ...] = ()
    multixacts: tuple[int, ...] = ()

    @classmethod
    def of(cls, xid: int, mistake: Mistake | None) -> TxIds:
        if mistake is None:
            return cls(xid)
        return cls(mistake.xid, mistake.subxacts, mistake.multixacts)

    @property
    def writers(self) -> tuple[int, ...]:
        """What ``xmin`` of a row it wrote is."""
        return (self.xid, *self.subxacts)

    @property
    def removers(self) -> tuple[int, ...]:
        """What ``xmax`` of a row it deleted or updated is."""
        return (*self.writers, *self.multixacts)


def _any(alias: str, column: str, ids: tuple[int, ...]) -> sql.Composed:
    if len(ids) == 1:
        return sql.SQL("{} = {}::xid").format(
            sql.Identifier(alias, column), sql.Literal(str(ids[0]))
        )
    array = "{" + ",".join(str(i) for i in sorted(set(ids))) + "}"
    return sql.SQL("{} = ANY({}::xid[])").format(sql.Identifier(alias, column), sql.Literal(array))


def removed_by(alias: str, ids: TxIds) -> sql.Composed:
    """``alias.xmax`` names the transaction: a row it deleted or updated."""
    return _any(alias, "xmax", ids.removers)


def written_by(alias: str, ids: TxIds) -> sql.Composed:
    """``alias.xmin`` names the transaction: a row it wrote."""
    return _any(alias, "xmin", ids.writers)
