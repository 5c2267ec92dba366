"""Rows of one table back into the live database: copy, classify, apply.

The rows to bring back are copied from the throwaway cluster into a temporary table of
the live transaction (``ON COMMIT DROP``): for a transaction, the rows whose ``xmax``
names it (what it deleted, and the old versions of what it updated: its xid, a
subtransaction's or a multixact's, :mod:`pgsafe.undo.txids`); for a TRUNCATE or
a time target, every row.  Each row is then classified against the live table:

with a primary key, by the key —
  * no live row: ``insert`` (deleted by the mistake; with a target, deleted since);
  * a live row with the same contents: ``unchanged``;
  * a live row the mistake wrote (its ``xmin``) and nobody changed since: ``update``;
    with a time target, every changed row is ``update`` (everything since is undone);
  * any other live row: ``conflict`` — a later transaction inserted or changed it;

without one, by the row's whole contents (its text) and how many copies there are: the
copies the mistake removed come back when the live table holds as many other copies of
that row as before the mistake, else the row is a ``conflict``.

Rows the mistake wrote under a key it did not have before (an INSERT in the same
transaction, the new version of a key it changed) are ``remove``: undoing the
transaction on the table takes them away.
"""

from __future__ import annotations

from psycopg import sql

from pgsafe.pg.connect import Connection
from pgsafe.undo.model import Conflict, OnConflict, RowAction, TablePlan
from pgsafe.undo.shape import Shape
from pgsafe.undo.txids import TxIds, removed_by, written_by

ACT, NOW, MINE, H, NEED, RN = (
    sql.Identifier(f"pgsafe${n}") for n in ("act", "now", "mine", "h", "need", "rn")
)
MAX_LISTED = 100


def copy_rows(
    before: Connection,
    live: Connection,
    s: Shape,
    temp: str,
    ids: TxIds | None,
) -> int:
    """The rows to bring back, into temporary table ``temp``; how many."""
    tmp = sql.Identifier(temp)
    live.execute(
        sql.SQL(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM ONLY {} WITH NO DATA"
        ).format(tmp, s.cols(), s.ident)
    )
    live.execute(
        sql.SQL(
            "ALTER TABLE {} ADD COLUMN {} text, ADD COLUMN {} text, "
            "ADD COLUMN {} bool, ADD COLUMN {} text, ADD COLUMN {} bigint, "
            "ADD COLUMN {} bigint"
        ).format(tmp, ACT, NOW, MINE, H, NEED, RN)
    )
    where = sql.SQL("WHERE {}").format(removed_by("t", ids)) if ids else sql.SQL("")
    out = sql.SQL("COPY (SELECT {} FROM ONLY {} t {}) TO STDOUT").format(
        s.cols("t"), s.ident, where
    )
    into = sql.SQL("COPY {} ({}) FROM STDIN").format(tmp, s.cols())
    with before.cursor().copy(out) as src, live.cursor().copy(into) as dst:
        for block in src:
            dst.write(block)
    row = live.execute(sql.SQL("SELECT count(*) FROM {}").format(tmp)).fetchone()
    return int(row[0]) if row else 0


def classify_keyed(live: Connection, s: Shape, temp: str, ids: TxIds | None, deleted: bool) -> None:
    """Key-matched classification (see the module doc)."""
    tmp = sql.Identifier(temp)
    mine = written_by("l", ids) if ids else sql.SQL("true")
    live.execute(
        sql.SQL(
            "UPDATE {tmp} b SET {now} = (SELECT {lrow} FROM ONLY {t} l WHERE {match}),"
            " {mine} = (SELECT {is_mine} FROM ONLY {t} l WHERE {match})"
        ).format(
            tmp=tmp,
            now=NOW,
            mine=MINE,
            lrow=s.row_text("l"),
            t=s.ident,
            match=s.key_match("l", "b"),
            is_mine=mine,
        )
    )
    gone = RowAction.INSERT if deleted or not ids else RowAction.CONFLICT
    live.execute(
        sql.SQL(
            "UPDATE {tmp} b SET {act} = CASE WHEN {now} IS NULL THEN {gone}"
            " WHEN {now} = {brow} THEN 'unchanged' WHEN {mine} THEN 'update' ELSE 'conflict' END"
        ).format(
            tmp=tmp, act=ACT, now=NOW, gone=sql.Literal(gone.value), brow=s.row_text("b"), mine=MINE
        )
    )


def classify_whole_rows(
    before: Connection,
    live: Connection,
    s: Shape,
    temp: str,
    ids: TxIds | None,
) -> None:
    """Content-matched classification, for a table without a primary key."""
    tmp = sql.Identifier(temp)
    live.execute(sql.SQL("UPDATE {} b SET {} = md5({})").format(tmp, H, s.row_text("b")))
    live.execute(
        sql.SQL(
            "UPDATE {tmp} b SET {rn} = n.rn FROM (SELECT ctid, row_number() OVER (PARTITION BY {h})"
            " rn FROM {tmp}) n WHERE n.ctid = b.ctid"
        ).format(tmp=tmp, rn=RN, h=H)
    )
    kept = f"{temp}_kept"
    live.execute(
        sql.SQL("CREATE TEMP TABLE {} (h text, n bigint) ON COMMIT DROP").format(
            sql.Identifier(kept)
        )
    )
    if ids:
        h = sql.SQL("md5({})").format(s.row_text("t"))
        out = sql.SQL(
            "COPY (SELECT {h}, count(*) FROM ONLY {t} t WHERE NOT ({gone}) AND {h} IN"
            " (SELECT md5({row2}) FROM ONLY {t} t2 WHERE {gone2}) GROUP BY 1) TO STDOUT"
        ).format(
            h=h,
            t=s.ident,
            gone=removed_by("t", ids),
            row2=s.row_text("t2"),
            gone2=removed_by("t2", ids),
        )
        with (
            before.cursor().copy(out) as src,
            live.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(kept))) as dst,
        ):
            for block in src:
                dst.write(block)
    other = sql.SQL("NOT ({})").format(written_by("l", ids)) if ids else sql.SQL("true")
    live.execute(
        sql.SQL(
            "WITH lc AS (SELECT md5({lrow}) h, count(*) n FROM ONLY {t} l WHERE {other}"
            " AND md5({lrow}) IN (SELECT {h} FROM {tmp}) GROUP BY 1),"
            " bc AS (SELECT {h} h, count(*) n FROM {tmp} GROUP BY 1)"
            " UPDATE {tmp} b SET {need} = CASE WHEN {xid_mode}"
            "   THEN coalesce(k.n, 0) + bc.n - coalesce(lc.n, 0) ELSE bc.n - coalesce(lc.n, 0) END,"
            " {act} = CASE WHEN {xid_mode} THEN CASE WHEN coalesce(lc.n, 0) = coalesce(k.n, 0)"
            "   THEN 'insert' ELSE 'conflict' END"
            "   WHEN b.{rn} <= bc.n - coalesce(lc.n, 0) THEN 'insert' ELSE 'unchanged' END,"
            " {now} = coalesce(lc.n, 0)::text || ' copies now, ' ||"
            "   (coalesce(k.n, 0) + bc.n)::text || ' before the mistake'"
            " FROM bc LEFT JOIN lc ON lc.h = bc.h LEFT JOIN {kept} k ON k.h = bc.h"
            " WHERE bc.h = b.{h}"
        ).format(
            lrow=s.row_text("l"),
            t=s.ident,
            other=other,
            h=H,
            tmp=tmp,
            need=NEED,
            act=ACT,
            rn=RN,
            now=NOW,
            kept=sql.Identifier(kept),
            xid_mode=sql.Literal(bool(ids)),
        )
    )


def count_removed(live: Connection, s: Shape, temp: str, ids: TxIds | None) -> int:
    if not ids:
        return 0
    row = live.execute(_remove(s, temp, ids, sql.SQL("SELECT count(*)"))).fetchone()
    return int(row[0]) if row else 0


def _remove(s: Shape, temp: str, ids: TxIds, verb: sql.Composable) -> sql.Composed:
    q = sql.SQL("{} FROM ONLY {} l WHERE {}").format(verb, s.ident, written_by("l", ids))
    if s.key:
        q = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} b WHERE {})").format(
            q, sql.Identifier(temp), s.key_match("l", "b")
        )
    return q


def summarise(live: Connection, s: Shape, temp: str, plan: TablePlan) -> None:
    tmp = sql.Identifier(temp)
    for act, n in live.execute(
        sql.SQL("SELECT {}, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(ACT, tmp)
    ):
        plan.counts[RowAction(str(act))] = int(n)
    key = s.key_text("b") if s.key else sql.SQL("left({}, 200)").format(s.row_text("b"))
    distinct = sql.SQL("") if s.key else sql.SQL("DISTINCT ON ({}) ").format(H)
    rows = live.execute(
        sql.SQL("SELECT {}{}, {} FROM {} b WHERE {} = 'conflict' LIMIT {}").format(
            distinct, key, NOW, tmp, ACT, sql.Literal(MAX_LISTED)
        )
    )
    plan.conflicts = [Conflict(str(k), None if v is None else str(v)) for k, v in rows]
    if plan.counts.get(RowAction.CONFLICT) and not s.key:
        plan.counts[RowAction.CONFLICT] = len(plan.conflicts)


def apply(live: Connection, s: Shape, temp: str, ids: TxIds | None, policy: OnConflict) -> None:
    """Remove, update, insert — in the caller's transaction."""
    tmp = sql.Identifier(temp)
    over = sql.Literal(policy is OnConflict.OVERWRITE)
    if ids:
        live.execute(_remove(s, temp, ids, sql.SQL("DELETE")))
    if s.key:
        live.execute(
            sql.SQL(
                "UPDATE ONLY {t} l SET ({cols}) = ROW({bcols}) FROM {tmp} b WHERE {match}"
                " AND (b.{act} = 'update' OR ({over} AND b.{act} = 'conflict'))"
            ).format(
                t=s.ident,
                cols=s.cols(),
                bcols=s.cols("b"),
                tmp=tmp,
                match=s.key_match("l", "b"),
                act=ACT,
                over=over,
            )
        )
        which = sql.SQL(
            "b.{act} = 'insert' OR ({over} AND b.{act} = 'conflict' AND b.{now} IS NULL)"
        )
    else:
        which = sql.SQL(
            "(b.{act} = 'insert' OR ({over} AND b.{act} = 'conflict')) AND b.{rn} <= b.{need}"
        )
    live.execute(
        sql.SQL(
            "INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE"
            " SELECT {bcols} FROM {tmp} b WHERE {which}"
        ).format(
            t=s.ident,
            cols=s.cols(),
            bcols=s.cols("b"),
            tmp=tmp,
            which=which.format(act=ACT, over=over, now=NOW, rn=RN, need=NEED),
        )
    )


def differing(live: Connection, s: Shape, temp: str, policy: OnConflict) -> int:
    """After :func:`apply`: how many of the rows written back are not, in the live table,
    what they were before the transaction (a trigger or rule rewrote them): each
    inserted or updated row is looked for by its key and whole contents, or, without a
    key, by its contents."""
    over = sql.Literal(policy is OnConflict.OVERWRITE)
    if s.key:
        found = sql.SQL("{match} AND {lrow} = {brow}").format(
            match=s.key_match("l", "b"), lrow=s.row_text("l"), brow=s.row_text("b")
        )
        written = sql.SQL("(b.{act} IN ('insert', 'update') OR ({over} AND b.{act} = 'conflict'))")
    else:
        found = sql.SQL("md5({lrow}) = b.{h}").format(lrow=s.row_text("l"), h=H)
        written = sql.SQL(
            "(b.{act} = 'insert' OR ({over} AND b.{act} = 'conflict')) AND b.{rn} <= b.{need}"
        )
    row = live.execute(
        sql.SQL(
            "SELECT count(*) FROM {tmp} b WHERE {written}"
            " AND NOT EXISTS (SELECT 1 FROM ONLY {t} l WHERE {found})"
        ).format(
            tmp=sql.Identifier(temp),
            written=written.format(act=ACT, over=over, rn=RN, need=NEED),
            t=s.ident,
            found=found,
        )
    ).fetchone()
    return int(row[0]) if row else 0
