"""Every command's ``--json`` has the shape the README documents ("Exit codes and JSON"):
the keys are there, with JSON types.  Keys may be added; removing or renaming one breaks
scripts, and this test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import has_tool, make_cluster, psql_exec, reachable_tmpdir, run_pgsafe

S, INT, B = str, int, bool
N = type(None)
D, L = dict, list

BACKUP: dict[str, Any] = {
    "id": S, "kind": S, "server": S, "database": (S, N), "format": (S, N), "label": (S, N),
    "started_at": S, "finished_at": S, "size_bytes": INT, "raw_bytes": INT, "status": S,
    "verified": (D, N), "keep": B, "pg_version": (S, N), "system_identifier": (S, N),
}  # fmt: skip
PHYSICAL = {
    **BACKUP, "timeline": INT, "start_lsn": S, "stop_lsn": S, "start_wal": S, "stop_wal": S,
}  # fmt: skip
CHECK = {"name": S, "ok": B, "detail": S}
VERIFY = {"id": S, "ok": B, "duration_s": (float, int), "checks": L}
SHOW = {**BACKUP, "options": D, "objects": L, "fingerprint": D, "verifications": L, "physical": D}
STATUS = {
    "server": S, "repo": S, "now": S, "status": S, "kinds": L, "archiving": (D, N),
    "repo_bytes": INT, "free_bytes": (INT, N), "items": L, "jobs": L,
}  # fmt: skip
EXPIRE = {
    "dry_run": B, "remove": L, "remove_wal": L, "skipped": L, "incomplete": L, "damaged": L,
    "leftovers": L, "wal_kept_for_damaged": B, "oldest_needed_wal": (S, N), "decisions": L,
}  # fmt: skip
INFO = {
    "server": S, "repo": S, "system_identifier": (S, N), "timelines": L, "marks": L,
    "pg_major": (INT, N), "tools": L, "partials": L, "last_recovery": (D, N),
}  # fmt: skip
LAST_RECOVERY = {"pgdata": S, "finished_at": S, "state": S}  # and WAL_FETCH's keys
TOOL = {"name": S, "major": INT, "path": (S, N), "version": (INT, N), "used_for": S,
        "fix": (S, N)}  # fmt: skip
TIMELINE = {
    "timeline": INT, "backups": L, "wal": D, "recoverable_from": (S, N),
    "recoverable_to": (S, N), "windows": L, "gaps": L, "parent": (D, N),
}  # fmt: skip
MARK = {"name": S, "lsn": S, "lsn_int": INT, "time": S, "timeline": INT, "segment": S}
RECOVER = {
    "pgdata": S, "port": (INT, N), "target": D, "plan": D, "reached": (D, N), "checks": L,
    "ok": B, "started": B, "running": B, "state": S, "notes": L, "wal_fetch": (D, N),
}  # fmt: skip
WAL_FETCH = {
    "segments_fetched": INT, "segments_from_spool": INT, "spool_damaged": INT,
    "wait_s": (float, int),
}  # fmt: skip
TARGET = {"kind": S, "inclusive": B, "description": S}
MISTAKES = {"window": D, "mistakes": L, "omitted": INT, "largest_omitted": L, "notes": L}
WINDOW = {
    "start_time": (S, N), "end_time": (S, N), "start_lsn": S, "end_lsn": (S, N),
    "backup": (S, N), "segments": INT, "live_segments": INT,
}  # fmt: skip
MISTAKE = {
    "xid": INT, "commit_time": S, "lsn": S, "timeline": INT, "database": (S, N),
    "database_oid": INT, "kinds": L, "tables": L, "rows": INT, "changes": L, "undo": S,
}  # fmt: skip
CHANGE = {"kind": S, "table": (S, N), "relfilenode": INT, "rows": INT}
UNDO = {
    "operation": S, "target": S, "database": S, "xid": (INT, N), "dry_run": B, "applied": B,
    "refused": B,
    "ok": B, "rows_back": INT, "conflicts": INT, "seconds": (float, int), "tables": L, "notes": L,
}  # fmt: skip
UNDO_TABLE = {
    "table": S, "action": S, "kind": S, "key": L, "new_name": (S, N), "rows": INT, "counts": D,
    "conflicts": L,
}  # fmt: skip
PLAN = {"backup": S, "backup_finished_at": S, "timeline": INT, "wal_needed": D, "window": D}


def shaped(doc: object, shape: dict[str, Any], what: str) -> dict[str, Any]:
    assert isinstance(doc, dict), f"{what}: not an object"
    for key, types in shape.items():
        assert key in doc, f"{what}: no {key!r} in {sorted(doc)}"
        assert isinstance(doc[key], types), f"{what}.{key} is {doc[key]!r}"
        assert not (types is INT and isinstance(doc[key], bool)), f"{what}.{key} is a boolean"
    return doc


def js(*args: str) -> tuple[int, dict[str, Any]]:
    r = run_pgsafe(*args, "--json")
    assert r.stdout.strip() and r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return r.returncode, doc


def test_logical_commands(pg: LocalCluster, repo: Path) -> None:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS shapes")
    psql_exec(pg.conninfo(), "CREATE DATABASE shapes")
    psql_exec(pg.conninfo("shapes"), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1,9) g")
    r = str(repo)
    rc, dump = js("--repo", r, "dump", "-d", pg.conninfo("shapes"))
    assert rc == 0
    shaped(dump, BACKUP, "dump")
    assert (dump["kind"], dump["status"], dump["format"]) == ("logical", "ok", "custom")
    rc, listing = js("--repo", r, "list")
    assert rc == 0 and len(listing["backups"]) == 1
    row = shaped(listing["backups"][0], {**BACKUP, "repos": L}, "list.backups[0]")
    assert {k: row[k] for k in BACKUP} == dump  # one shape of a backup
    rc, verify = js("--repo", r, "verify", dump["id"])
    assert rc == 0 and verify["ok"] is True
    shaped(verify, VERIFY, "verify")
    for i, c in enumerate(verify["checks"]):
        shaped(c, CHECK, f"verify.checks[{i}]")
    rc, show = js("--repo", r, "show", dump["id"])
    assert rc == 0
    shaped(show, SHOW, "show")
    shaped(show["verified"], {"at": S, "ok": B, "kind": S}, "show.verified")
    for i, o in enumerate(show["objects"]):
        shaped(o, {"name": S, "size": INT, "sha256": S, "raw_size": INT}, f"show.objects[{i}]")
    _, status = js("--repo", r, "status")
    shaped(status, STATUS, "status")
    assert status["status"] in ("OK", "WARN", "FAIL")
    for i, item in enumerate(status["items"]):
        shaped(item, {"name": S, "level": S, "detail": S}, f"status.items[{i}]")
    rc, expire = js("--repo", r, "expire", "--keep-last", "1", "--dry-run")
    assert rc == 0
    shaped(expire, EXPIRE, "expire")
    for i, d in enumerate(expire["decisions"]):
        shaped(d, {"id": S, "keep": B, "reasons": L}, f"expire.decisions[{i}]")


@pytest.fixture(scope="module")
def archived(state_home: Path) -> Iterator[tuple[LocalCluster, Path]]:
    base = reachable_tmpdir("pgsafe-shapes-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    c = make_cluster(base, "src", archive_settings(repo, state_home))
    yield c, repo_path
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_physical_commands(archived: tuple[LocalCluster, Path]) -> None:
    c, repo_path = archived
    r, ci = str(repo_path), c.conninfo()
    psql_exec(ci, "CREATE TABLE IF NOT EXISTS t (id int)")
    rc, backup = js("--repo", r, "backup", "-d", ci)
    assert rc == 0
    shaped(backup, PHYSICAL, "backup")
    assert (backup["kind"], backup["status"], backup["format"]) == ("physical", "ok", "tar")
    psql_exec(ci, "INSERT INTO t VALUES (1)")
    psql_exec(ci, "DELETE FROM t")
    rc, mark = js("--repo", r, "mark", "shapes", "-d", ci)
    assert rc == 0
    shaped(mark, MARK, "mark")
    switch_and_wait(ci, Repository.open(r, "main"), timeout=60)
    rc, listing = js("--repo", r, "list")
    row = shaped(listing["backups"][0], {**PHYSICAL, "repos": L}, "list.backups[0]")
    assert {k: row[k] for k in backup} == backup  # one shape of a backup
    rc, show = js("--repo", r, "show", backup["id"])
    shaped(show, {**SHOW, **PHYSICAL}, "show")
    rc, info = js("--repo", r, "info")
    assert rc == 0
    shaped(info, INFO, "info")
    assert info["tools"], "info lists the tools found for the server's major"
    for i, t in enumerate(info["tools"]):
        shaped(t, TOOL, f"info.tools[{i}]")
        assert (t["path"] is None) == (t["fix"] is not None), t
    tl = shaped(info["timelines"][0], TIMELINE, "info.timelines[0]")
    shaped(tl["wal"], {"first": (S, N), "last": (S, N), "count": INT}, "info.timelines[0].wal")
    for i, b in enumerate(tl["backups"]):
        shaped(b, {"id": S, "finished_at": S, "start_lsn": S, "stop_lsn": S}, f"backups[{i}]")
    for i, g in enumerate(tl["gaps"]):
        shaped(g, {"first": S, "last": S, "count": INT}, f"gaps[{i}]")
    if not has_tool("pg_waldump"):
        pytest.skip(
            f"pg_waldump {c.major} is not installed (postgresql-{c.major}); "
            "mistakes and undo need it (the matrix's embedded servers have none)"
        )
    rc, found = js("--repo", r, "mistakes", "-d", ci)
    assert rc == 0
    shaped(found, MISTAKES, "mistakes")
    shaped(found["window"], WINDOW, "mistakes.window")
    m = shaped(found["mistakes"][-1], MISTAKE, "mistakes.mistakes[-1]")
    shaped(m["changes"][0], CHANGE, "mistakes.mistakes[-1].changes[0]")
    rc, undo = js("--repo", r, "undo", str(m["xid"]), "-d", ci, "--dry-run")
    assert rc == 0, undo
    shaped(undo, UNDO, "undo")
    assert undo["dry_run"] is True and undo["applied"] is False
    shaped(undo["tables"][0], UNDO_TABLE, "undo.tables[0]")
    assert undo["tables"][0]["counts"] == {"insert": 1}
    pgdata = str(repo_path.parent / "recovered")  # a folder the postgres user can reach
    rc, rec = js("--repo", r, "recover", "--pgdata", pgdata, "--immediate", "--dry-run")
    assert rc == 0, rec
    shaped(rec, RECOVER, "recover")
    assert rec["state"] == "planned" and rec["reached"] is None
    shaped(rec["target"], TARGET, "recover.target")
    plan = shaped(rec["plan"], PLAN, "recover.plan")
    wal = {"count": INT, "first": (S, N), "last": (S, N), "exact": B}
    shaped(plan["wal_needed"], wal, "recover.plan.wal_needed")
    shaped(plan["window"], {"from": S, "to": (S, N)}, "recover.plan.window")
