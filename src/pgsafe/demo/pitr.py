"""The PITR part of ``pgsafe demo``, as a library function.

On a cluster pgsafe controls: archiving into the repository, tables ``transactions``
and ``recovery_log``, a base backup, four transactions a few seconds apart, then the
disaster (every transaction deleted), then a legitimate transaction 5.  Recover into a
new data directory on another port to a time just after transaction 2 and prove it
(count = 2, ids = [1, 2], latest transaction time <= target, no trace of the disaster);
then again to just after transaction 1.  Then undo the mistake in the live database:
``pgsafe mistakes`` finds the DELETE in the WAL (its time, its 4 rows), ``pgsafe undo``
brings rows 1-4 back, and transaction 5 is still there (:mod:`pgsafe.demo.undo`).
Returns a structured report; the caller prints it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from psycopg import sql

from pgsafe.cluster.local import LocalCluster
from pgsafe.demo.undo import UndoProof, undo_the_mistake
from pgsafe.errors import PgsafeError
from pgsafe.pg.connect import connect
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.physical.archiving import enable
from pgsafe.physical.basebackup import backup
from pgsafe.physical.switch import switch_and_wait
from pgsafe.recovery.execute import RecoverRequest, recover
from pgsafe.recovery.outcome import CheckResult, ReachedState
from pgsafe.repo.repository import Repository


@dataclass
class RecoveryProof:
    label: str
    target_time: str
    pgdata: str
    port: int | None
    reached: ReachedState | None
    checks: list[CheckResult]
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Transaction:
    """One of the scenario's transactions, and when it committed."""

    id: int
    amount: float
    committed_at: str


@dataclass
class ScenarioReport:
    database: str
    backup_id: str
    transactions: list[Transaction] = field(default_factory=list)
    recoveries: list[RecoveryProof] = field(default_factory=list)
    undo: UndoProof | None = None

    @property
    def ok(self) -> bool:
        undone = self.undo is not None and self.undo.ok
        return bool(self.recoveries) and all(r.ok for r in self.recoveries) and undone

    def text(self) -> str:
        lines = [f"PITR scenario on database {self.database} (base backup {self.backup_id})"]
        for t in self.transactions:
            lines.append(f"  transaction {t.id}: {t.amount} at {t.committed_at}")
        for r in self.recoveries:
            lines.append(f"recovery {r.label}: target {r.target_time} -> {r.pgdata} :{r.port}")
            if r.reached:
                x = r.reached
                lines.append(f"  reached: last transaction {x.last_transaction_time},"
                             f" LSN {x.lsn}, timeline {x.timeline}")  # fmt: skip
            if r.error:
                lines.append(f"  ✗ {r.error}")
            for c in r.checks:
                lines.append(f"  {'✓' if c.ok else '✗'} {c.name}")
        lines.append("PITR verified ✓" if self.ok else "PITR verification FAILED ✗")
        return "\n".join(lines)


_SETUP = """
CREATE TABLE transactions (
    id int PRIMARY KEY, amount numeric(12, 2) NOT NULL, description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE recovery_log (
    id serial PRIMARY KEY, event text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO recovery_log (event) VALUES ('tables created');
"""


def _checks(ids: list[int], target: str) -> list[str]:
    arr = ",".join(str(i) for i in ids)
    return [
        f"SELECT count(*) = {len(ids)} FROM transactions",
        f"SELECT array_agg(id ORDER BY id) = ARRAY[{arr}] FROM transactions",
        f"SELECT max(created_at) <= '{target}'::timestamptz FROM transactions",
        "SELECT NOT EXISTS (SELECT 1 FROM recovery_log WHERE event = 'disaster')",
    ]


def run_pitr_scenario(
    conninfo: str,
    repo: Repository,
    workdir: Path,
    home: Path,
    *,
    dbname: str = "pitr_demo",
    gap_seconds: float = 2.0,
    keep: bool = False,
) -> ScenarioReport:
    """Run the exercise against the (local) server at ``conninfo``; see the module doc."""
    enable(conninfo, repo, home, restart=True)
    with connect(conninfo) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    db = ConnOptions(dbname=conninfo).conninfo(dbname)
    with connect(db) as conn:
        conn.execute(_SETUP)
    m = backup(db, repo, label="pitr-demo")
    report = ScenarioReport(dbname, m.id)
    targets: list[str] = []
    with connect(db) as conn:
        for i, amount in enumerate((100.00, 250.50, 75.25, 1200.00), start=1):
            row = conn.execute(
                "INSERT INTO transactions (id, amount, description) VALUES (%s, %s, %s)"
                " RETURNING created_at",
                (i, amount, f"transaction {i}"),
            ).fetchone()
            conn.execute("INSERT INTO recovery_log (event) VALUES (%s)", (f"transaction {i}",))
            assert row is not None
            report.transactions.append(Transaction(i, amount, row[0].isoformat()))
            time.sleep(gap_seconds / 2)
            now = conn.execute("SELECT clock_timestamp()").fetchone()
            assert now is not None
            stamp: datetime = now[0]
            targets.append(stamp.isoformat())
            time.sleep(gap_seconds / 2)
        conn.execute("DELETE FROM transactions")
        conn.execute("INSERT INTO recovery_log (event) VALUES ('disaster')")
        time.sleep(gap_seconds / 2)
        row = conn.execute(
            "INSERT INTO transactions (id, amount, description) VALUES (5, 310.00,"
            " 'transaction 5 (after the mistake)') RETURNING created_at"
        ).fetchone()
        assert row is not None
        report.transactions.append(Transaction(5, 310.00, row[0].isoformat()))
    switch_and_wait(conninfo, repo, timeout=60)
    for label, ids, target in (("after transaction 2", [1, 2], targets[1]),
                               ("after transaction 1", [1], targets[0])):  # fmt: skip
        pgdata = workdir / ("recovered-" + "-".join(str(i) for i in ids))
        req = RecoverRequest(pgdata=pgdata, kind="time", value=target, start=True,
                             promote=True, checks=_checks(ids, target), check_db=dbname,
                             force=True, timeout=600)  # fmt: skip
        try:
            res = recover(repo, req)
            report.recoveries.append(RecoveryProof(label, target, str(pgdata), res.port,
                                                   res.reached, res.checks, res.ok))  # fmt: skip
        except PgsafeError as exc:
            report.recoveries.append(
                RecoveryProof(label, target, str(pgdata), None, None, [], False, exc.message)
            )
        finally:
            if not keep:
                with contextlib.suppress(PgsafeError):
                    LocalCluster(pgdata).destroy()
    report.undo = undo_the_mistake(repo, db, dbname)
    return report
