"""``pgsafe daemon`` as a real process on a real cluster: two jobs on a seconds schedule,
a second daemon refused, metrics served, SIGTERM mid-job (the job finishes; or, past
the grace period, is stopped) with no half backup, and missed runs caught up once.

A job is held "mid-run" deterministically: the test locks a table of the dumped
database, so pg_dump waits on it, visible in pg_stat_activity.  No timing is asserted;
every wait is a bounded poll of an observable state.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pgsafe.cluster.local import LocalCluster
from pgsafe.repo.repository import Repository
from pgsafe.repo.runs import Run, read_history
from tests.conftest import psql_exec, query, run_pgsafe

BOUND = 120.0  # seconds any single wait may take before the test fails


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"daemon exited ({proc.returncode}) while waiting for {what}:\n"
                        + (log.read_text() if log else ""))  # fmt: skip
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n" + (log.read_text() if log else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def history_of(repo: Path) -> list[Run]:
    if not (repo / "pgsafe-repo.json").exists():
        return []
    return read_history(Repository.open(str(repo), "main"))


def ok_runs(repo: Path, job: str) -> list[Run]:
    return [r for r in history_of(repo) if r.job == job and r.ok]


@pytest.fixture
def db(pg: LocalCluster) -> Iterator[str]:
    name = f"sched_{uuid.uuid4().hex[:8]}"
    psql_exec(pg.conninfo(), f"CREATE DATABASE {name}")
    psql_exec(
        pg.conninfo(name),
        "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g;"
        "CREATE TABLE lockme (id int PRIMARY KEY); INSERT INTO lockme VALUES (1);",
    )
    yield name
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(path: Path, repo: Path, pg: LocalCluster, db: str, grace: str, jobs: str) -> Path:
    path.write_text(
        f'repo = "{repo}"\n'
        f"[postgres]\nhost = \"{pg.run_dir}\"\nport = {pg.port}\nuser = \"postgres\"\n"
        f'dbname = "{db}"\n'
        f'[daemon]\nstop_grace = "{grace}"\n' + jobs
    )  # fmt: skip
    return path


def start_daemon(cfg: Path, log: Path, *args: str, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:  # fmt: skip
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "pgsafe", "--config", str(cfg), "daemon", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, **(env or {})},
        )


def blocked_backends(pg: LocalCluster, db: str) -> list[int]:
    rows = query(
        pg.conninfo(),
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock'",
    )
    return [int(str(r[0])) for r in rows]


def lock_table(pg: LocalCluster, db: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(pg.conninfo(db))
    conn.execute("LOCK TABLE lockme IN ACCESS EXCLUSIVE MODE")  # held until commit
    return conn


def listed(repo: Path) -> list[dict[str, object]]:
    r = run_pgsafe("--repo", str(repo), "list", "--json")
    assert r.returncode == 0, r.stderr
    backups: list[dict[str, object]] = json.loads(r.stdout)["backups"]
    return backups


def no_orphan_manifests(repo: Path) -> None:
    """Every backup folder that has objects is listed only if its manifest is there."""
    for d in (repo / "main" / "backups").glob("*"):
        if (d / "manifest.json").exists():
            assert any(p.name != "manifest.json" for p in d.iterdir())


def pg_dump_processes(db: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "pg_dump" in cmd and db in cmd and state != "Z":
            out.append(int(p.name))
    return out


JOBS = """
[[jobs]]
name = "dump"
schedule = "*/2 * * * * *"
command = "dump"

[[jobs]]
name = "verify"
schedule = "1/2 * * * * *"
command = "verify --latest"
"""


def test_daemon_runs_two_jobs_and_sigterm_lets_the_running_dump_finish(
    pg: LocalCluster, db: str, repo: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "pgsafe.toml", repo, pg, db, "1h", JOBS)
    log = tmp_path / "daemon.log"
    port = free_port()
    daemon = start_daemon(cfg, log, "--metrics-port", str(port))
    try:
        wait_for("a successful dump and verify",
                 lambda: bool(ok_runs(repo, "dump")) and bool(ok_runs(repo, "verify")),
                 daemon, log)  # fmt: skip

        # one daemon per repository and server
        second = run_pgsafe("--config", str(cfg), "daemon", timeout=60)
        assert second.returncode == 2
        assert "another pgsafe daemon is already running for server 'main'" in second.stderr

        # metrics on 127.0.0.1, parseable, with the daemon's counters
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
        samples = {
            (s.name, s.labels.get("job")): s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
        }
        assert samples[("pgsafe_daemon_job_runs_total", "dump")] >= 1
        assert ("pgsafe_up", None) in samples

        # hold the next dump mid-run: pg_dump waits for our lock
        conn = lock_table(pg, db)
        try:
            wait_for("a dump blocked on the lock", lambda: bool(blocked_backends(pg, db)),
                     daemon, log)  # fmt: skip
            sigterm_at = datetime.now().astimezone()
            daemon.send_signal(signal.SIGTERM)
            wait_for("the daemon to log the stop", lambda: "SIGTERM received" in log.read_text(),
                     daemon, log)  # fmt: skip
        finally:
            conn.commit()  # release: the running dump may now finish
            conn.close()
        out, _ = daemon.communicate(timeout=BOUND)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, log.read_text()
    assert "daemon stopped after" in out.decode()

    runs = history_of(repo)
    dumps = [r for r in runs if r.job == "dump"]
    # the job running at SIGTERM was let finish, successfully; nothing started after it
    last = dumps[-1]
    assert last.ok, last
    assert last.started() < sigterm_at < datetime.fromisoformat(last.finished_at)
    assert all(r.started() < sigterm_at for r in runs)
    assert {r.reason for r in runs} == {"schedule"}
    assert all(r.duration_s >= 0 and r.exit_code is not None for r in runs)

    # no half backup: exactly the backups of the successful dump runs, all complete
    backups = listed(repo)
    assert all(b["status"] == "ok" for b in backups)
    assert sorted(str(b["id"]) for b in backups) == sorted(
        str(r.result["id"]) for r in dumps if r.ok and r.result
    )
    no_orphan_manifests(repo)
    verified = [r for r in runs if r.job == "verify" and r.ok]
    assert verified and all(r.result and r.result["ok"] is True for r in verified)


def test_sigterm_past_the_grace_period_stops_the_job_and_leaves_no_backup(
    pg: LocalCluster, db: str, repo: Path, tmp_path: Path
) -> None:
    jobs = '[[jobs]]\nname = "dump"\nschedule = "*/2 * * * * *"\ncommand = "dump"\n'
    cfg = write_config(tmp_path / "pgsafe.toml", repo, pg, db, "0s", jobs)
    log = tmp_path / "daemon.log"
    conn = lock_table(pg, db)
    try:
        daemon = start_daemon(cfg, log)
        try:
            wait_for("a dump blocked on the lock", lambda: bool(blocked_backends(pg, db)),
                     daemon, log)  # fmt: skip
            # the fingerprint's query may block before pg_dump has started: wait for both
            wait_for("pg_dump to run", lambda: bool(pg_dump_processes(db)), daemon, log)
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=BOUND)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        assert daemon.returncode == 0, log.read_text()
        # the job's whole process group was stopped, pg_dump included
        wait_for("pg_dump to be gone", lambda: not pg_dump_processes(db))
    finally:
        conn.rollback()
        conn.close()
    [run] = history_of(repo)
    assert (run.job, run.outcome) == ("dump", "interrupted")
    assert run.error == "stopped by the daemon's shutdown"
    assert "job dump INTERRUPTED" in log.read_text()
    assert listed(repo) == []
    no_orphan_manifests(repo)


def test_missed_runs_are_logged_and_run_once(repo: Path, tmp_path: Path) -> None:
    """The clock is PGSAFE_FAKE_NOW: a run on May 1st, the daemon back on May 5th."""
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(f'repo = "{repo}"\n[[jobs]]\nname = "nightly"\nschedule = "0 1 * * *"\n'
                   'command = "list"\n')  # fmt: skip
    may1 = {"PGSAFE_FAKE_NOW": "2024-05-01T01:00:00+00:00"}
    r = run_pgsafe("--config", str(cfg), "schedule", "run", "nightly", env=may1)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "daemon.log"
    may5 = {"PGSAFE_FAKE_NOW": "2024-05-05T12:00:00+00:00"}
    daemon = start_daemon(cfg, log, env=may5)
    try:
        wait_for("the catch-up run", lambda: len(history_of(repo)) == 2, daemon, log)
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=BOUND)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0
    text = log.read_text()
    assert (
        "job nightly missed 4 run(s) from 2024-05-02 01:00:00 UTC to 2024-05-05 01:00:00 UTC"
        in text
    )
    first, catch_up = history_of(repo)
    assert (first.reason, catch_up.reason) == ("manual", "missed")
    assert catch_up.ok and catch_up.scheduled_for == "2024-05-05T01:00:00.000+00:00"
    assert catch_up.started_at.startswith("2024-05-05T12:00")
    # the catch-up covered the missed slot: nothing is due until the next one
    again = run_pgsafe("--config", str(cfg), "daemon", "--once", "--json", env=may5)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["runs"] == []
    nextday = {"PGSAFE_FAKE_NOW": "2024-05-06T01:00:05+00:00"}
    once = run_pgsafe("--config", str(cfg), "daemon", "--once", "--json", env=nextday)
    assert [(x["job"], x["reason"]) for x in json.loads(once.stdout)["runs"]] == [
        ("nightly", "missed")
    ]
