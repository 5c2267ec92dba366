"""Replay a logical backup's scripts and archives into a database with PostgreSQL's own
clients: ``psql`` for plain scripts (``restore --clean`` of a plain backup: its DROP
statements tolerantly, then the dump, in one transaction) and ``pg_restore`` for
archives, their output checked by :mod:`pgsafe.logical.toolerrors`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pgsafe.errors import ToolFailed
from pgsafe.logical import materialize as mat
from pgsafe.logical import toolerrors
from pgsafe.logical.tables import Table
from pgsafe.pg.olderserver import check_loads
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.repository import Repository

_CLEAN_DONE = "pgsafe: clean done"


def psql_clean_then_replay(
    conninfo: str,
    major: int,
    repo: Repository,
    m: Manifest,
    drops: StoredObject,
    dump: StoredObject,
) -> None:
    """``restore --clean`` of a plain backup, in one transaction: the backup's DROP
    statements, each in its own savepoint so that a missing object is no error
    (ON_ERROR_ROLLBACK), then the dump itself, stopping at its first error."""

    def script() -> Iterator[bytes]:
        yield b"\\set ON_ERROR_STOP off\n\\set ON_ERROR_ROLLBACK on\n"
        yield from mat.chunks(repo, m, drops)
        yield b"\n\\set ON_ERROR_ROLLBACK off\n\\set ON_ERROR_STOP on\n"
        yield f"\\warn {_CLEAN_DONE}\n".encode()
        yield from mat.chunks(repo, m, dump)

    clean, env = tool_env(conninfo)
    check_loads("psql", find_program("psql", major), major)
    argv = [find_program("psql", major), "-X", "-q", "--echo-errors", "--single-transaction"]
    argv += ["-v", "ON_ERROR_STOP=1", "-d", clean or "", "-f", "-"]
    err = toolerrors.run_checked(argv, env, script(), "psql", allow_errors=True)
    if _CLEAN_DONE not in err:
        raise ToolFailed("psql stopped before replaying the backup", hint=toolerrors.HINT)
    found = toolerrors.errors(err.split(_CLEAN_DONE, 1)[1])
    if found:
        raise ToolFailed(f"psql failed: {found[0]}", hint=toolerrors.HINT)


def pg_restore_to_file(major: int, args: list[str], dest: Path) -> None:
    _, env = tool_env(None)
    run_fed([find_program("pg_restore", major), "-f", str(dest), *args], env, None, "pg_restore")


def pg_restore_args(tables: list[Table], *, clean: bool, jobs: int, no_owner: bool) -> list[str]:
    """pg_restore's options for a restore of the whole backup or of ``tables``."""
    args = ["--exit-on-error", "--no-password"]
    if clean:
        args += ["--clean", "--if-exists"]
    if jobs > 1:
        args += ["-j", str(jobs)]
    else:
        args.append("--single-transaction")
    if no_owner:
        args += ["--no-owner", "--no-acl"]
    for t in tables:
        args += ["-n", t.schema, "-t", t.name]
    return args


def psql(
    conninfo: str,
    major: int,
    data: Iterable[bytes],
    *,
    single_transaction: bool,
    stop_on_error: bool = True,
) -> str:
    clean, env = tool_env(conninfo)
    check_loads("psql", find_program("psql", major), major)
    argv = [find_program("psql", major), "-X", "-q", "--echo-errors", "-d", clean or "", "-f", "-"]
    if stop_on_error:
        argv[1:1] = ["-v", "ON_ERROR_STOP=1"]
    if single_transaction:
        argv.append("--single-transaction")
    return toolerrors.run_checked(argv, env, data, "psql", allow_errors=not stop_on_error)


def pg_restore(
    conninfo: str,
    major: int,
    args: list[str],
    stdin: Iterable[bytes] | None = None,
    *,
    allow_errors: bool = False,
) -> str:
    clean, env = tool_env(conninfo)
    check_loads(
        "pg_restore", find_program("pg_restore", major), major, creates_database="--create" in args
    )
    argv = [find_program("pg_restore", major), "-d", clean or "", *args]
    return toolerrors.run_checked(argv, env, stdin, "pg_restore", allow_errors=allow_errors)
