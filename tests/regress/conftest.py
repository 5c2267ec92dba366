"""PostgreSQL's regression database as a fixture: every kind of object, from a source
nobody here wrote.

``scripts/regress-source.sh`` fetches the ``src/test/regress`` tree of Debian's
postgresql-<major> source package, for the installed server's major (with a private apt
sources list) and builds regress.so;
the SQL files are then replayed in ``parallel_schedule`` order into a database set up
as pg_regress sets up its own.  Errors in the replay are expected (the suite checks
them against its expected output, which is not compared here).  Runs only with
PGSAFE_REGRESS=1 (``make test-regress``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.pg.programs import installed_major
from pgsafe.physical.archiving import archive_settings
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, reachable_tmpdir

ROOT = Path(__file__).resolve().parents[2]
DB = "regression"
SKIP = {"tablespace"}  # an in-place tablespace: a physical backup of the cluster needs none


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("PGSAFE_REGRESS") != "1":
        skip = pytest.mark.skip(reason="the regression database runs with make test-regress")
        for item in items:
            if "tests/regress/" in str(item.fspath):
                item.add_marker(skip)


def regress_tree() -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "regress-source.sh"), str(installed_major())],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


def schedule(tree: Path) -> list[str]:
    tests: list[str] = []
    for line in (tree / "parallel_schedule").read_text().splitlines():
        if line.startswith("test:"):
            tests += [t for t in line.split(":", 1)[1].split() if t not in SKIP]
    return tests


@dataclass
class Regress:
    cluster: LocalCluster
    replay_s: float
    physical_repo: Path  # the repository the cluster archives its WAL into


@pytest.fixture(scope="session")
def regress(state_home: Path) -> Iterator[Regress]:
    """A cluster whose database ``regression`` holds what the regression suite leaves,
    archiving its WAL from the start."""
    tree = regress_tree()
    base = reachable_tmpdir("regress-cluster-")
    repo = Repository.open(str(base / "repo"), "main", create=True, owner=runas.repository_owner())
    c = make_cluster(
        base, "regress", {"max_prepared_transactions": "10", **archive_settings(repo, state_home)}
    )
    build = reachable_tmpdir("regress-build-")
    (build / "results").mkdir()
    os.chmod(build / "results", 0o777)
    psql_exec(c.conninfo(), f"CREATE DATABASE {DB} TEMPLATE template0 ENCODING UTF8 LOCALE 'C'")
    psql_exec(
        c.conninfo(),
        f"ALTER DATABASE {DB} SET lc_messages TO 'C'; ALTER DATABASE {DB} SET lc_monetary TO 'C';"
        f" ALTER DATABASE {DB} SET lc_numeric TO 'C'; ALTER DATABASE {DB} SET lc_time TO 'C';"
        f" ALTER DATABASE {DB} SET bytea_output TO 'hex';"
        f" ALTER DATABASE {DB} SET timezone_abbreviations TO 'Default'",
    )
    env = {
        **os.environ,
        "PG_ABS_SRCDIR": str(tree),
        "PG_ABS_BUILDDIR": str(build),
        "PG_LIBDIR": str(tree),
        "PG_DLSUFFIX": ".so",
        "PGTZ": "PST8PDT",
        "PGDATESTYLE": "Postgres, MDY",
        "PGAPPNAME": "pg_regress",
    }
    t0 = time.monotonic()
    for test in schedule(tree):
        with (build / "results" / f"{test}.out").open("w") as out:
            subprocess.run(
                [c.program("psql"), "-X", "-a", "-q", "-d", c.conninfo(DB),
                 "-f", str(tree / "sql" / f"{test}.sql")],
                cwd=build, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=600, check=False,
            )  # fmt: skip
    took = time.monotonic() - t0
    # what the suite leaves in progress: prepared transactions hold locks for ever
    psql_exec(c.conninfo(DB), "SELECT 1")
    for (gid,) in _rows(c, "SELECT gid FROM pg_prepared_xacts"):
        psql_exec(c.conninfo(DB), f"ROLLBACK PREPARED '{gid}'")
    yield Regress(c, took, base / "repo")
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(build, ignore_errors=True)


def _rows(c: LocalCluster, q: str) -> list[tuple[object, ...]]:
    from tests.conftest import query

    return query(c.conninfo(DB), q)
