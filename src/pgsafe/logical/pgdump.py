"""pg_dump's command line for a selection of tables, and its output into the repository:
streamed (:func:`run_streaming`: killed and its object removed when it fails), written
as a directory and stored file by file (:func:`dump_directory`), the DROP statements of a
plain dump kept beside it (:func:`store_clean_script`), and pg_dumpall's globals."""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from pgsafe.errors import BadInput
from pgsafe.logical import dumplocks as locks
from pgsafe.logical.dumprequest import DumpRequest
from pgsafe.logical.objectnames import stem
from pgsafe.logical.stream import store_stream
from pgsafe.logical.tables import Table
from pgsafe.pg.conninfo import dbname_of
from pgsafe.pg.process import capture, spawn
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.progress import Progress
from pgsafe.repo.catalog import StoredObject
from pgsafe.repo.repository import Repository

log = logging.getLogger("pgsafe.logical.dump")


STATISTICS_MAJOR = 18
"""The first major whose pg_dump carries planner statistics (``--statistics``) and
whose server restores them (``pg_restore_relation_stats``)."""


def carries_statistics(req: DumpRequest, major: int) -> bool:
    """Whether this dump of a server of ``major`` holds its planner statistics.

    On by default from PostgreSQL 18 (pg_dump 18 leaves them out unless asked): a
    restored database then plans its first queries as the original did, with no
    ``ANALYZE`` first (``benchmarks/results/2026-12-02-pg18-statistics.md``).  Decided by
    the *server's* major, not pg_dump's: statistics dumped by a newer pg_dump from an
    older server would not restore into a server of that older major.  A schema-only
    or data-only dump has none (pg_dump refuses the combination)."""
    if req.schema_only or req.data_only or req.statistics is False:
        return False
    return major >= STATISTICS_MAJOR


def check_statistics(req: DumpRequest, major: int) -> None:
    """Refuse ``--statistics`` where it cannot be honoured (before anything is written)."""
    if req.statistics and major < STATISTICS_MAJOR:
        raise BadInput(
            f"--statistics needs PostgreSQL {STATISTICS_MAJOR} or newer; this server is {major}",
            hint="drop --statistics (a restore then needs ANALYZE before it plans well)",
        )


def selection_args(req: DumpRequest, selected: list[Table]) -> list[str]:
    """pg_dump flags for the chosen tables, each as an exact quoted pattern.

    pg_dump 17's ``--filter FILE`` would read the same patterns from a file and 16's
    ``--table-and-children`` would expand a partitioned table itself; neither is used:
    pgsafe needs the expanded tree anyway (the fingerprints, the ancestors' definitions,
    ``restore -t``: :mod:`pgsafe.logical.tree`), one code path serves every major, and
    the command line holds tens of thousands of exact patterns before ``ARG_MAX``."""
    argv: list[str] = []
    context = set(req.context)
    if req.tables:
        for t in [*selected, *req.context, *req.sequences]:
            argv += ["-t", t.pattern()]
        argv.append("--strict-names")
    elif req.exclude:
        chosen = set(selected)
        argv += [a for t in req.excluded if t not in chosen | context for a in ("-T", t.pattern())]
    for t in sorted(context):  # an ancestor's definition, without its rows
        argv += ["--exclude-table-data", t.pattern()]
    if req.schema_only:
        argv.append("--schema-only")
    if req.data_only:
        argv.append("--data-only")
    # A plain dump is made without --clean: pg_dump's DROP ... IF EXISTS statements do
    # not all tolerate missing objects (ALTER DOMAIN ... DROP CONSTRAINT IF EXISTS fails
    # when the domain is missing), so such a dump could not be replayed into an empty
    # database.  The DROP statements are kept beside it (:func:`store_clean_script`)
    # for `restore --clean`, which replays them tolerantly.
    return argv


def store_clean_script(
    repo: Repository,
    backup_id: str,
    conninfo: str,
    dbname: str,
    major: int,
    req: DumpRequest,
    selected: list[Table],
) -> StoredObject:
    """The DROP statements pg_dump --clean would put before a plain dump (object
    ``clean``): the statements before its first object, after its settings."""
    schema_req = replace(req, schema_only=True, data_only=False)
    argv = [find_program("pg_dump", major), "--no-password", "-Fp", "--clean", "--if-exists"]
    argv += [f"--lock-wait-timeout={locks.timeout_ms(req.lock_wait_timeout)}"]
    argv += selection_args(schema_req, selected)
    clean, env = tool_env(conninfo)
    argv += ["-d", clean or ""]
    done = capture(argv, env)
    if not done.exited.ok:
        raise locks.tool_failure(dbname, done.exited.returncode, done.exited.first_error())
    kept: list[bytes] = []
    unrestrict = b""
    for line in done.stdout.splitlines(keepends=True):
        if line.startswith((b"-- Name: ", b"-- TOC entry ")):
            break
        kept.append(line)
        if line.startswith(b"\\restrict "):
            # pg_dump 15.14+ turns psql's meta-commands off until the matching
            # \unrestrict, which ends the whole dump: end this part the same way
            unrestrict = b"\\unrestrict " + line.split(b" ", 1)[1].strip() + b"\n"
    kept.append(unrestrict)
    return store_stream(
        repo, backup_id, f"{stem(dbname)}.clean.sql", io.BytesIO(b"".join(kept)), role="clean"
    )


def run_streaming(
    repo: Repository,
    backup_id: str,
    argv: list[str],
    env: dict[str, str],
    name: str,
    role: str,
    req: DumpRequest,
    prog: Progress,
    label: str,
) -> StoredObject:
    log.debug("running %s", argv[0])
    with spawn(argv, env) as run:
        obj = store_stream(
            repo, backup_id, name, run.stdout, role=role, report=lambda n: prog.update(n)
        )
    if not run.exited.ok:
        repo.storage.delete(repo.object_key(backup_id, obj.name))
        raise locks.tool_failure(label, run.exited.returncode, run.exited.first_error())
    return obj


def dump_directory(
    repo: Repository,
    backup_id: str,
    argv: list[str],
    env: dict[str, str],
    dbname: str,
    req: DumpRequest,
    prog: Progress,
) -> list[StoredObject]:
    """pg_dump -Fd writes files (in parallel with -j); each is then compressed into the
    repository and removed at once.  PostgreSQL 15's pg_dump cannot write zstd itself."""
    from pgsafe.config import state_home

    staging = state_home() / "tmp" / backup_id
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    target = staging / "dump"
    try:
        cmd = [*argv, "-f", str(target)]
        if req.jobs > 1:
            cmd += ["-j", str(req.jobs)]
        with spawn(cmd, env, stdout=False) as run:
            pass  # pg_dump -Fd writes into ``target``
        if not run.exited.ok:
            raise locks.tool_failure(dbname, run.exited.returncode, run.exited.first_error())
        files = sorted(p for p in target.iterdir() if p.is_file())
        done = [0]
        lock = threading.Lock()

        def one(path: Path) -> StoredObject:
            name = f"{stem(dbname)}.dir/{path.name}"
            with path.open("rb") as f:
                obj = store_stream(repo, backup_id, name, f, role="dirfile")
            path.unlink()
            with lock:
                done[0] += obj.raw_size
                prog.update(done[0])
            return obj

        with ThreadPoolExecutor(max_workers=max(1, min(req.jobs, os.cpu_count() or 1))) as ex:
            return list(ex.map(one, files))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def dump_globals(
    repo: Repository, backup_id: str, conninfo: str, major: int, req: DumpRequest, prog: Progress
) -> StoredObject:
    clean, env = tool_env(conninfo)
    argv = [find_program("pg_dumpall", major), "--globals-only", "--no-password", "-d", clean or ""]
    return run_streaming(
        repo,
        backup_id,
        argv,
        env,
        "globals.sql",
        "globals",
        req,
        prog,
        dbname_of(conninfo) or "globals",
    )
