"""Issue 10, items 8 and 9: nothing the user or the repository gives can add a line to
PostgreSQL's configuration, and no password or credential reaches any output.

- ``recover --name`` with a newline and a backslash-quote (the attack of the issue) is
  refused before the data directory exists; the quoting of every recovery setting is
  PostgreSQL's own (backslashes and quotes doubled), control characters are refused;
- a backup id read from the repository is written into the comment line escaped;
- a malformed connection URI is reported by where it is malformed, never with its
  password (error line, ``--json`` error, the daemon's history);
- ``-vv`` against S3 with a session token logs no token, secret key or signature.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cli.redaction import ScrubbingFormatter, scrub
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.errors import BadInput
from pgsafe.recovery import settings
from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster
from tests.conftest import reachable_tmpdir, run_pgsafe
from tests.fixtures_s3 import ACCESS_KEY, SECRET_KEY, S3Server

ATTACK = "x\\'\nshared_preload_libraries = evil\n#"
PASSWORD = "s3cretPW"
BAD_URI = f"postgresql://postgres:{PASSWORD}@[::1/shop"


@dataclass
class Source:
    cluster: LocalCluster
    repo: Path
    base: Path


@pytest.fixture(scope="module")
def src(state_home: Path) -> Iterator[Source]:
    """An archiving cluster with one base backup and nothing committed after it."""
    with archiving_cluster("pgsafe-inj-", state_home) as a:
        a.backup()
        yield Source(a.cluster, a.repo_path, a.base)


def test_recover_name_cannot_inject_a_setting(src: Source) -> None:
    # before the fix: exit 0, and postgresql.auto.conf held "shared_preload_libraries = evil"
    pgdata = src.base / "injected"
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--name", ATTACK)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "bad restore point name" in r.stderr
    assert "Traceback" not in r.stderr
    assert not pgdata.exists()


def test_mark_and_recover_share_one_name_rule(src: Source) -> None:
    r = run_pgsafe("--repo", str(src.repo), "mark", "-d", src.cluster.conninfo(), ATTACK)
    assert r.returncode == 2
    first = r.stderr.splitlines()[0]
    pgdata = src.base / "injected2"
    r2 = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--name", ATTACK)
    assert r2.stderr.splitlines()[0] == first


def test_quoting_is_postgresqls_and_control_characters_are_refused() -> None:
    # before the fix: the backslash stayed single, so \' ended PostgreSQL's string early
    assert settings.quote("a\\'b") == "'a\\\\''b'"
    for bad in ("a\nb", "a\rb", "a\x00b", "a\x7fb", "a\tb"):
        with pytest.raises(BadInput):
            settings.quote(bad)


def test_a_hostile_backup_id_stays_in_its_comment_line() -> None:
    line = settings.comment("backup 2024\nshared_preload_libraries = 'evil'\r\u2028x")
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert "\\n" in line


def test_recover_latest_with_nothing_after_the_backup_says_so_and_a_failed_check_stops_it(
    src: Source,
) -> None:
    # before the fix: "last replayed transaction: None", the window ".. None", and the
    # server left running after the failed check
    pgdata = src.base / "latest"
    r = run_pgsafe("--repo", str(src.repo), "recover", "--pgdata", str(pgdata), "--latest",
                   "--start", "--check", "SELECT false")  # fmt: skip
    try:
        assert r.returncode == 3, r.stdout + r.stderr
        assert "None" not in r.stdout, r.stdout
        assert "no commit replayed after the base backup" in r.stdout
        assert "no commit archived after it" in r.stdout
        assert "stopped" in r.stdout
        assert not LocalCluster(pgdata).is_running()
        assert (pgdata / "PG_VERSION").exists()  # kept for inspection
    finally:
        LocalCluster(pgdata).stop()
        shutil.rmtree(pgdata, ignore_errors=True)


def test_a_malformed_uri_never_shows_its_password(tmp_path: Path) -> None:
    # before the fix: the whole URI, password included, in the error line and in --json
    repo = tmp_path / "repo"
    r = run_pgsafe("--repo", str(repo), "dump", "-d", BAD_URI)
    assert r.returncode == 2
    assert PASSWORD not in r.stdout + r.stderr
    assert "malformed connection string" in r.stderr and '"]"' in r.stderr
    rj = run_pgsafe("--repo", str(repo), "--json", "dump", "-d", BAD_URI)
    assert rj.returncode == 2
    assert PASSWORD not in rj.stdout + rj.stderr
    assert json.loads(rj.stdout)["ok"] is False
    rk = run_pgsafe("--repo", str(repo), "dump", "-d", f"host=x password={PASSWORD} extra")
    assert rk.returncode == 2
    assert PASSWORD not in rk.stdout + rk.stderr
    assert "character" in rk.stderr  # where, not what


def test_the_daemon_history_never_holds_the_password(tmp_path: Path) -> None:
    # before the fix: the failed job's error in the history carried the URI with its password
    repo = tmp_path / "repo"
    Repository.open(str(repo), "main", create=True, owner=repository_owner())
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(
        f'repo = "{repo}"\n[[jobs]]\nname = "d"\nschedule = "* * * * *"\n'
        f"command = \"dump -d '{BAD_URI}'\"\n"
    )
    r = run_pgsafe("--config", str(cfg), "daemon", "--once", timeout=120)
    h = run_pgsafe("--config", str(cfg), "schedule", "list", "--json")
    everything = r.stdout + r.stderr + h.stdout + h.stderr
    for p in repo.rglob("*"):
        if p.is_file():
            everything += p.read_bytes().decode(errors="replace")
    assert "malformed connection string" in everything
    assert PASSWORD not in everything


def test_s3_debug_logging_holds_no_credential(s3_server: S3Server, s3_bucket: str) -> None:
    # before the fix: -vv printed x-amz-security-token:<token> and the Authorization header
    token = "FwoGZXIvYXdzEXAMPLE-session-token-do-not-log"
    url = f"s3://{s3_bucket}/p"
    Repository.open(url, "main", create=True, owner=repository_owner())
    r = run_pgsafe("--repo", url, "-vv", "list", env={"AWS_SESSION_TOKEN": token})
    assert r.returncode == 0, r.stderr
    assert "Found credentials" in r.stderr  # botocore does log at this level
    for secret in (token, SECRET_KEY, ACCESS_KEY):
        assert secret not in r.stderr
    assert "Signature=" not in r.stderr.replace("Signature=***", "")


def test_the_log_formatter_scrubs_what_botocore_would_log() -> None:
    lines = [
        "x-amz-security-token:TOKEN1",
        "headers={'X-Amz-Security-Token': b'TOKEN2', 'Authorization': b'AWS4-HMAC-SHA256 "
        "Credential=AKID/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=abcdef0123456789'}",
        "GET /b/k?X-Amz-Credential=AKID%2F2024&X-Amz-Signature=deadbeef&X-Amz-Security-Token=T3",
        "aws_secret_access_key=SECRET4",
        "connecting to postgresql://u:PW5@h/db and host=h password='PW 6'",
    ]
    out = scrub("\n".join(lines))
    for s in ("TOKEN1", "TOKEN2", "AKID", "abcdef0123456789", "deadbeef", "T3", "SECRET4",
              "PW5", "PW 6"):  # fmt: skip
        assert s not in out, s
    rec = logging.LogRecord(
        "botocore", logging.DEBUG, "x", 1, "token %s", ("x-amz-security-token: T7",), None
    )
    assert "T7" not in ScrubbingFormatter("%(message)s").format(rec)


def test_demo_keeps_away_from_the_users_repository_and_archiving(tmp_path: Path) -> None:
    # before: with PGSAFE_REPO set the demo wrote its backups into the user's repository
    # (server "demo"), and the sandbox's archive_command stayed switched to server "demo"
    home = reachable_tmpdir("pgsafe-demo-sec-")
    env = {"PGSAFE_HOME": str(home)}
    user_repo = home / "user-repo"
    try:
        r = run_pgsafe("sandbox", "start", "--json", env=env)
        assert r.returncode == 0, r.stderr
        conninfo = json.loads(r.stdout)["conninfo"]
        r = run_pgsafe("--repo", str(user_repo), "archive", "enable", "-d", conninfo,
                       "--restart", env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        show = ["-X", "-At", "-d", conninfo, "-c", "SHOW archive_command"]
        before = subprocess.run(["psql", *show], capture_output=True, text=True).stdout
        assert str(user_repo) in before
        r = run_pgsafe("demo", "--json", env={**env, "PGSAFE_REPO": str(user_repo)}, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert json.loads(r.stdout)["repo"] != str(user_repo)
        assert not (user_repo / "demo").exists()
        after = subprocess.run(["psql", *show], capture_output=True, text=True).stdout
        assert after == before
        check = run_pgsafe("--repo", str(user_repo), "check", "-d", conninfo, env=env)
        assert "✓ archive_command" in check.stdout, check.stdout + check.stderr
        assert "✓ WAL switch archived" in check.stdout, check.stdout
    finally:
        run_pgsafe("sandbox", "stop", "--remove", env=env)
        shutil.rmtree(home, ignore_errors=True)
