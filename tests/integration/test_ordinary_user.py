"""Every logical command as an ordinary (non-root) OS user.

The suite runs as root; here pgsafe runs as the unprivileged ``postgres`` account,
so its sandbox server runs as itself, with no user switching.  The project may live
where that account cannot read (CI clones anywhere), so the test gives it a copy of
pgsafe and its dependencies in a folder it can reach, run by the venv's own
base interpreter."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

import pgsafe
from pgsafe.cluster import runas
from tests.conftest import reachable_tmpdir

# pgsafe run as the postgres OS user: its arguments in, the finished process out
RunAsUser = Callable[..., subprocess.CompletedProcess[str]]

SKIP = (
    "mypy",
    "ruff",
    "_pytest",
    "pytest",
    "xdist",
    "moto",
    "pip",
    "setuptools",
    "boto",
    "botocore",
    "__pycache__",
    "__editable__",
    "pgsafe",
)  # dev tools; pgsafe is copied apart


@pytest.fixture(scope="module")
def as_user() -> Iterator[RunAsUser]:
    if os.geteuid() != 0:
        pytest.fail("this test switches to the postgres OS user and must run as root, as CI does")
    pw = pwd.getpwnam("postgres")
    base = reachable_tmpdir("pgsafe-user-")
    lib = base / "lib"
    lib.mkdir()
    shutil.copytree(
        Path(pgsafe.__file__).parent, lib / "pgsafe", ignore=shutil.ignore_patterns("__pycache__")
    )
    site = Path(sysconfig.get_paths()["purelib"])
    for src in sorted(site.iterdir()):
        name = src.name
        if name.startswith(SKIP) or name.endswith((".dist-info", ".pth")):
            continue
        if src.is_dir():
            shutil.copytree(src, lib / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, lib / name)
    home = base / "home"
    home.mkdir()
    for root, dirs, files in os.walk(base):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    user = runas.server_user()
    assert runas.can_read(Path(python), user), f"{python} is not usable by postgres"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = (
            f"import sys; sys.path[:0] = [{str(lib)!r}]; from pgsafe.__main__ import main;"
            " sys.exit(main(sys.argv[1:]))"
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "PGSAFE_HOME": str(home / "state"),
            "LANG": "C.UTF-8",
            # where the test matrix's PostgreSQL is, as a user would set it in that account
            **{k: v for k, v in os.environ.items() if k == "PGSAFE_PG_BINDIR"},
        }
        return subprocess.run(
            [python, "-I", "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            user=pw.pw_uid,
            group=pw.pw_gid,
            extra_groups=[],
            cwd=str(home),
            timeout=300,
        )

    yield run
    run("sandbox", "stop", "--remove")
    shutil.rmtree(base, ignore_errors=True)


def test_logical_commands_as_an_ordinary_user(
    as_user: RunAsUser,
) -> None:
    run = as_user
    started = run("sandbox", "start", "--json")
    assert started.returncode == 0, started.stderr
    conninfo = json.loads(started.stdout)["conninfo"]
    psql = shutil.which("psql") or "/usr/bin/psql"
    shop = make_conninfo(conninfo, dbname="shop")
    subprocess.run([psql, "-X", "-q", "-d", conninfo, "-c", "CREATE DATABASE shop"], check=True)
    subprocess.run(
        [
            psql,
            "-X",
            "-q",
            "-d",
            shop,
            "-c",
            "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g",
        ],
        check=True,
    )
    repo = "repo"  # relative to the user's working folder
    d = run("--repo", repo, "dump", "-d", shop, "--json")
    assert d.returncode == 0, d.stderr
    backup_id = json.loads(d.stdout)["id"]
    listed = run("--repo", repo, "list", "--json")
    assert [b["id"] for b in json.loads(listed.stdout)["backups"]] == [backup_id]
    v = run("--repo", repo, "verify", backup_id)
    assert v.returncode == 0, v.stdout + v.stderr
    target = make_conninfo(conninfo, dbname="shop_copy")
    r = run("--repo", repo, "restore", backup_id, "--create", "-d", target)
    assert r.returncode == 0, r.stderr
    out = subprocess.run(
        [psql, "-X", "-At", "-d", target, "-c", "SELECT sum(id) FROM t"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "1275"
    e = run("--repo", repo, "export", backup_id, "exported")
    assert e.returncode == 0, e.stderr
    s = run("--repo", repo, "show", backup_id, "--contents")
    assert s.returncode == 0 and "TABLE DATA public t" in s.stdout
