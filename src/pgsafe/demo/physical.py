"""Part two of the demo: WAL archiving, a base backup and point-in-time recovery.

On the sandbox (archiving turned on into the demo's repository, restarted): the
exercise's ``transactions`` and ``recovery_log``, four transactions a few seconds
apart, then every row deleted; recovered into a new data directory on another port to
just after transaction 2, and again to just after transaction 1, each proven by the
exercise's checks; then the mistake found in the WAL and undone in the live database,
transaction 5 (committed after it) still there.

The sandbox may already archive for the user (``archive enable`` for server ``main``):
its archiving settings are read from ``postgresql.auto.conf`` first and put back at the
end, whatever happened, with a reload (or a restart when ``wal_level`` or
``archive_mode`` changed), so that the user's archiving goes on as before.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from pgsafe import sandbox
from pgsafe.cluster import runas
from pgsafe.demo.pitr import run_pitr_scenario
from pgsafe.demo.report import DemoReport
from pgsafe.demo.undo import UndoProof
from pgsafe.models.backup import JsonObject
from pgsafe.pg.connect import connect
from pgsafe.physical.archiving import (
    ARCHIVE_SETTINGS,
    AlterSystem,
    AutoConf,
    put_back,
    restart_server,
    snapshot,
)
from pgsafe.physical.server import facts
from pgsafe.repo.repository import Repository


def _put_back_archiving(conninfo: str, before: AutoConf, home: Path) -> None:
    """The sandbox's archiving settings as they were before the demo."""
    with connect(conninfo) as conn:
        f = facts(conn)
        target = AlterSystem(conn)
        now = snapshot(conn)
        changed = [n for n in ARCHIVE_SETTINGS if now.values.get(n) != before.values.get(n)]
        for name in changed:
            put_back(target, name, before)
        conn.execute("SELECT pg_reload_conf()")
    if {"wal_level", "archive_mode"} & set(changed):
        restart_server(f.data_directory, f.major, runas.server_user())
        sandbox.start(home)  # the sandbox's own bookkeeping (port) stays right


def run(report: DemoReport, repo: Repository, home: Path) -> JsonObject:
    report.section("Part 2 — point-in-time recovery")
    st = sandbox.status(home)
    assert st.conninfo is not None
    base = home / "demo"
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pitr-", dir=base))
    if os.geteuid() == 0:
        os.chmod(workdir, 0o755)
    report.step("archiving on (wal_level, archive_mode, archive_command → pgsafe wal-push)")
    with connect(st.conninfo) as conn:
        before = snapshot(conn)
    try:
        result = run_pitr_scenario(st.conninfo, repo, workdir, home)
    finally:
        _put_back_archiving(st.conninfo, before, home)
    report.step("the sandbox's own archiving settings put back")
    report.step(f"base backup {result.backup_id}")
    for t in result.transactions[:4]:
        report.step(f"transaction {t.id}: {t.amount} committed at {t.committed_at}")
    report.step("disaster: DELETE FROM transactions")
    for t in result.transactions[4:]:
        report.step(
            f"transaction {t.id}: {t.amount} committed at {t.committed_at} "
            "(legitimate, after the mistake)"
        )
    for r in result.recoveries:
        where = f"{r.pgdata} on port {r.port}" if r.port else r.pgdata
        report.step(f"recover to {r.target_time} ({r.label}) into {where}")
        if r.reached:
            x = r.reached
            report.step(
                f"  reached: last transaction {x.last_transaction_time}, "
                f"LSN {x.lsn}, timeline {x.timeline}"
            )
        if r.error:
            report.check(f"recovery {r.label}", False, r.error)
        ids = [t.id for t in result.transactions][: 2 if "2" in r.label else 1]
        names = [
            f"count = {len(ids)}",
            f"ids = {ids}",
            "latest transaction time ≤ target",
            "no trace of the DELETE",
        ]
        for i, c in enumerate(r.checks):
            name = names[i] if i < len(names) and len(r.checks) == len(names) else c.name
            report.check(f"{r.label}: {name}", c.ok, c.detail)
    _report_undo(report, result.undo)
    return {
        "undo": _undo_json(result.undo),
        "backup": result.backup_id,
        "transactions": [asdict(t) for t in result.transactions],
        "recoveries": [
            {
                "label": r.label,
                "target": r.target_time,
                "ok": r.ok,
                "reached": asdict(r.reached) if r.reached is not None else None,
            }
            for r in result.recoveries
        ],
    }


def _report_undo(report: DemoReport, proof: UndoProof | None) -> None:
    report.section("Part 2 — undo the mistake in the live database")
    if proof is None:
        report.check("undo the mistake", False, "not run")
        return
    m = proof.mistake
    if m is not None:
        report.step(
            f"pgsafe mistakes: transaction {m.xid} committed at "
            f"{m.commit_time.isoformat(sep=' ')} deleted {m.rows} rows of transactions"
        )
        report.step(f"undo: {m.undo} -d <the demo database>")
    report.check(
        "pgsafe mistakes finds the DELETE (4 rows)",
        proof.found,
        f"transaction {m.xid} at {m.commit_time.isoformat(sep=' ')}" if m else "",
    )
    if proof.error:
        report.check("pgsafe undo", False, proof.error)
    if proof.result is not None:
        for line in proof.result.text().splitlines():
            report.step(line)
    ids = proof.ids_after
    report.check(
        "undo: rows 1-4 back in the live database", ids[:4] == [1, 2, 3, 4], f"ids = {ids}"
    )
    report.check("undo: transaction 5 is still there", 5 in ids, f"ids = {ids}")


def _undo_json(proof: UndoProof | None) -> JsonObject | None:
    if proof is None:
        return None
    m = proof.mistake
    return {
        "ok": proof.ok,
        "mistake": None
        if m is None
        else {"xid": m.xid, "commit_time": m.commit_time.isoformat(), "rows": m.rows},
        "ids_after": proof.ids_after,
        "error": proof.error,
    }
