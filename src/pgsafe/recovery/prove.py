"""Prove a backup against PostgreSQL's own ``backup_manifest`` (``pg_verifybackup``).

:func:`verify_files` checks restored files: used by ``recover --force`` before the
restored folder replaces the old data directory, and by ``drill``.  The manifest is read
from the repository (checksum-verified) into a private temporary folder;
``pg_verifybackup`` of the backup's major version checks every file's size and checksum
(WAL is not parsed: the recovery replays it).

:func:`verify_archive` checks the stored archive itself, before anything is extracted
(``drill``, PostgreSQL 18+, whose ``pg_verifybackup`` reads tar-format backups): the
archive is decrypted into a scratch folder but left compressed (``base.tar.zst`` is
what ``pg_basebackup --compress`` writes, and what pg_verifybackup decompresses
itself), so the proof needs the compressed size in scratch space, and it does not
depend on pgsafe's own tar extraction: what a user restores with ``tar`` and no
pgsafe is what was proven.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pgsafe.logical import materialize as mat
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.codec.pipeline import split_suffix
from pgsafe.repo.repository import Repository

IGNORED = ("postgresql.auto.conf", "recovery.signal")  # what recover itself writes
TAR_MAJOR = 18
"""The first major whose ``pg_verifybackup`` verifies tar-format backups (``-F t``)."""
_PG_SUFFIX = {"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz", "none": ""}  # pg_basebackup's


def verify_archive(repo: Repository, m: Manifest, scratch: Path) -> tuple[bool | None, str]:
    """``pg_verifybackup -F t`` on the stored ``base.tar`` (decrypted into the new
    folder ``scratch``, which the caller removes): (None, why) where it cannot run."""
    major = m.pg_major or 0
    if major < TAR_MAJOR:
        return None, (
            f"skipped: pg_verifybackup reads tar-format backups from PostgreSQL {TAR_MAJOR}"
            f" (this backup is {major}); the restored files are checked instead"
        )
    data, manifest = m.object("data"), m.object("pg_manifest")
    if data is None or manifest is None:
        return None, "skipped: the backup has no backup_manifest"
    scratch.mkdir(mode=0o700)
    compression = split_suffix(data.name)[1].compression
    mat.write_stored(repo, m, data, scratch / f"base.tar{_PG_SUFFIX[compression]}")
    mat.write_file(repo, m, manifest, scratch / "backup_manifest")
    argv = [find_program("pg_verifybackup", major), "--format=tar", "--no-parse-wal", "--quiet"]
    _, err = run_fed(
        [*argv, str(scratch)], tool_env(None)[1], None, "pg_verifybackup", allow_failure=True
    )
    problems = _problems(err)
    if problems:
        return False, problems
    return True, "the stored archive matches PostgreSQL's backup_manifest, file by file"


def _problems(err: str) -> str:
    """pg_verifybackup's error messages, the first three of them ("" when none).

    A message is a line that starts with the program's name; any other line continues
    the one before it: pg_verifybackup 18.6 can print garbage bytes for an archive's
    name, line breaks among them, and the message's end must not be lost with them."""
    messages: list[str] = []
    for ln in err.splitlines():
        if ln.startswith("pg_verifybackup:") or not messages:
            messages.append(ln)
        else:
            messages[-1] += "?" + ln
    problems = [_printable(m.split("error: ", 1)[-1]) for m in messages if "error" in m]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more if problems else ""


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() and ch != "\ufffd" else "?" for ch in text)


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
    problems = _problems(err)
    if problems:
        return False, problems
    return True, "every file matches PostgreSQL's backup_manifest"
