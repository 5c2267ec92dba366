"""Prove restored files against PostgreSQL's own ``backup_manifest`` (``pg_verifybackup``).

Used by ``recover --force`` before the restored folder replaces the old data directory,
and by ``drill``.  The manifest is read from the repository (checksum-verified) into a
private temporary folder; ``pg_verifybackup`` of the backup's major version checks
every file's size and checksum (WAL is not parsed: the recovery replays it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pgsafe.logical import materialize as mat
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository

IGNORED = ("postgresql.auto.conf", "recovery.signal")  # what recover itself writes


def verify_files(repo: Repository, m: Manifest, pgdata: Path) -> tuple[bool | None, str]:
    """(None, why) when the backup has no backup_manifest; else (ok, detail)."""
    obj = m.object("pg_manifest")
    if obj is None:
        return None, "skipped: the backup has no backup_manifest"
    with tempfile.TemporaryDirectory(prefix="pgsafe-manifest-") as tmp:
        manifest_file = Path(tmp) / "backup_manifest"
        mat.write_file(repo, m, obj, manifest_file)
        argv = [
            find_program("pg_verifybackup", m.pg_major),
            "--no-parse-wal",
            "--quiet",
            "-m",
            str(manifest_file),
        ]
        for name in IGNORED:
            argv += ["-i", name]
        _, err = run_fed(
            [*argv, str(pgdata)], tool_env(None)[1], None, "pg_verifybackup", allow_failure=True
        )
    problems = [ln.split("error: ", 1)[-1] for ln in err.splitlines() if "error" in ln]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return False, "; ".join(problems[:3]) + more
    return True, "every file matches PostgreSQL's backup_manifest"
