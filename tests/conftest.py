"""Shared fixtures: real PostgreSQL clusters (initdb on a free port), repositories in
folders the server's OS user can reach, and a runner for the pgsafe CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgsafe.cluster.local import LocalCluster

pytest_plugins = ["tests.fixtures_s3"]  # the S3-protocol server fixtures

PAGILA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pagila"
if not PAGILA.is_dir():  # a clone elsewhere: shared/ sits beside the repository
    PAGILA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pagila"


def reachable_tmpdir(prefix: str) -> Path:
    """A temp folder the postgres OS user can traverse (pytest's own are 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o755)
    return d


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_pgsafe(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, input: str | None = None
) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "pgsafe", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def state_home() -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-home-")
    old = os.environ.get("PGSAFE_HOME")
    os.environ["PGSAFE_HOME"] = str(d)
    yield d
    if old is None:
        os.environ.pop("PGSAFE_HOME", None)
    else:
        os.environ["PGSAFE_HOME"] = old
    shutil.rmtree(d, ignore_errors=True)


def make_cluster(base: Path, name: str, settings: dict[str, str] | None = None) -> LocalCluster:
    c = LocalCluster(base / name, settings={"fsync": "off", **(settings or {})})
    c.initdb()
    c.start()
    return c


@pytest.fixture(scope="session")
def pg(state_home: Path) -> Iterator[LocalCluster]:
    """One real PostgreSQL cluster per test worker."""
    c = make_cluster(state_home, "pg")
    yield c
    c.destroy()


def psql_exec(conninfo: str, sql: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql)


def query(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; values as psycopg returns them (typed by the query, not here)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def load_pagila(cluster: LocalCluster, dbname: str) -> None:
    psql_exec(cluster.conninfo(), f'CREATE DATABASE "{dbname}" TEMPLATE template0 ENCODING UTF8')
    for f in ("prelude-create-postgres-role.sql", "pagila-schema.sql", "pagila-data.sql"):
        subprocess.run(
            [
                cluster.program("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                cluster.conninfo(dbname),
                "-f",
                str(PAGILA / f),
            ],
            check=True,
            capture_output=True,
        )


def pagila_fingerprint(conninfo: str) -> str:
    proc = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-At",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-f",
            str(PAGILA / "fingerprint.sql"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout


@pytest.fixture(scope="session")
def pagila_template(pg: LocalCluster) -> str:
    """A database holding pagila, to be copied with CREATE DATABASE ... TEMPLATE."""
    load_pagila(pg, "pagila_tpl")
    return "pagila_tpl"


@pytest.fixture
def repo(state_home: Path) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="repo-", dir=state_home))
    os.chmod(d, 0o755)
    path = d / "repo"
    yield path
    shutil.rmtree(d, ignore_errors=True)


def has_tool(name: str) -> bool:
    """Whether PostgreSQL program ``name`` is found for the server's own major (an
    embedded server of the test matrix ships initdb, pg_ctl and postgres only)."""
    from pgsafe.errors import PgsafeError
    from pgsafe.pg.programs import find_program, installed_major

    try:
        find_program(name, installed_major())
    except PgsafeError:
        return False
    return True


def server_tool(name: str) -> str:
    """The path of PostgreSQL program ``name`` for the server under test's major (the stock
    tool a user would run next to that server; PATH may hold another major's)."""
    from pgsafe.pg.programs import find_program, installed_major

    return find_program(name, installed_major())


def skip_without_tool(name: str, needed_for: str) -> None:
    """Skip when the server's own major has no ``name``, saying which tool and package."""
    from pgsafe.pg.programs import installed_major, package_for

    major = installed_major()
    if not has_tool(name):
        pytest.skip(
            f"{name} {major} is not installed ({package_for(name, major)}); "
            f"it is needed for {needed_for}"
        )


def dumps_rejected_reason(*, creates_database: bool = False) -> str | None:
    """Why the server under test cannot load a dump its own client tools write, or None.

    The test matrix runs an embedded server with a newer major's client tools (16 with
    17's); where that server is known to reject their output (``pg.olderserver``), pgsafe
    refuses the restore and a test of restoring into it cannot apply."""
    from pgsafe.errors import PgsafeError
    from pgsafe.pg.olderserver import rejected
    from pgsafe.pg.programs import find_program, installed_major, program_version

    try:
        server = installed_major()
        client = program_version(find_program("pg_restore", server))
    except PgsafeError:
        return None  # no PostgreSQL here: the tests say so when they run
    r = rejected(client, server, creates_database=creates_database)
    if r is None:
        return None
    return (
        f"the PostgreSQL {server} server under test rejects the {r.what} its client tools "
        f"({client}) write: a dump loads into its own major or newer, and pgsafe refuses "
        f"the restore (tested in tests/unit/test_olderserver.py)"
    )


def skip_if_dumps_rejected(*, creates_database: bool = False) -> pytest.MarkDecorator:
    """A skipif mark (for a test, or a module's ``pytestmark``): see dumps_rejected_reason."""
    reason = dumps_rejected_reason(creates_database=creates_database)
    return pytest.mark.skipif(reason is not None, reason=reason or "")
