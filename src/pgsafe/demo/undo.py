"""The end of the demo's part two: undo the mistake in the live database.

``pgsafe mistakes`` reads the archived WAL and finds the DELETE of every transaction
(its commit time, its xid, its 4 rows); ``pgsafe undo XID`` recovers a throwaway
cluster to just before it and brings rows 1-4 back into the live database in one
transaction — transaction 5, committed after the mistake, stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgsafe.errors import PgsafeError
from pgsafe.mistakes.model import ChangeKind, Mistake, MistakeRequest
from pgsafe.mistakes.scan import find_mistakes
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.recovery.targets import TargetRequest
from pgsafe.repo.repository import Repository
from pgsafe.undo.model import UndoRequest, UndoResult
from pgsafe.undo.run import undo


@dataclass
class UndoProof:
    """What the demo's undo showed: the mistake found, the undo, the rows afterwards."""

    mistake: Mistake | None = None
    result: UndoResult | None = None
    ids_after: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def found(self) -> bool:
        return self.mistake is not None and self.mistake.rows == 4

    @property
    def ok(self) -> bool:
        applied = self.result is not None and self.result.applied
        return self.found and applied and self.ids_after == [1, 2, 3, 4, 5]


def _the_delete(mistakes: tuple[Mistake, ...]) -> Mistake | None:
    for m in reversed(mistakes):
        if any(c.kind == ChangeKind.DELETE and c.table == "public.transactions"
               for c in m.changes):  # fmt: skip
            return m
    return None


def undo_the_mistake(repo: Repository, db: str, dbname: str) -> UndoProof:
    proof = UndoProof()
    try:
        report = find_mistakes(repo, MistakeRequest(database=dbname, conninfo=db))
        proof.mistake = _the_delete(report.mistakes)
        if proof.mistake is None:
            proof.error = "pgsafe mistakes did not find the DELETE"
            return proof
        req = UndoRequest(TargetRequest("xid", str(proof.mistake.xid)), ConnOptions(dbname=db))
        proof.result = undo(repo, req)
        with connect(db) as conn:
            proof.ids_after = [int(r[0]) for r in conn.execute(
                "SELECT id FROM transactions ORDER BY id")]  # fmt: skip
    except PgsafeError as exc:
        proof.error = exc.message
    return proof
