"""Hooks run by real jobs of ``pgsafe daemon --once``: the run's JSON on stdin, a
failing or hanging hook logged and never failing its job, no secrets passed on."""

from __future__ import annotations

import json
from pathlib import Path

from pgsafe.repo.repository import Repository
from pgsafe.repo.runs import read_history
from tests.conftest import run_pgsafe


def test_hooks_get_the_result_and_never_fail_the_job(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "hooks"
    out.mkdir()
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(
        f"""
repo = "{repo}"
on_success = 'cat > "{out}/$PGSAFE_JOB.$PGSAFE_EVENT.json"'
on_failure = 'cat > "{out}/$PGSAFE_JOB.$PGSAFE_EVENT.json"'
hook_timeout = "2s"

[[jobs]]
name = "ok"
schedule = "@daily"
command = "list"
on_success = 'cat > "{out}/ok.json"; env > "{out}/env.txt"; echo alert failed >&2; exit 7'

[[jobs]]
name = "hang"
schedule = "@daily"
command = "list"
on_success = "sleep 600"

[[jobs]]
name = "bad"
schedule = "@daily"
command = "show no-such-backup"
"""
    )
    env = {"PGPASSWORD": "hunter2-secret", "PGSAFE_AGE_PASSPHRASE": "age-secret"}
    r = run_pgsafe("--config", str(cfg), "daemon", "--once", "--json", env=env, timeout=120)
    assert r.returncode == 1, r.stderr  # --once: a job failed
    doc = json.loads(r.stdout)
    outcomes = {x["job"]: x["outcome"] for x in doc["runs"]}
    assert outcomes == {"ok": "success", "hang": "success", "bad": "failed"}

    # the failing hook (exit 7) and the hanging one (killed) changed no outcome
    assert "hook" in r.stderr and "exited with 7" in r.stderr and "alert failed" in r.stderr
    assert "timed out after 2 s and was killed" in r.stderr
    history = {x.job: x for x in read_history(Repository.open(str(repo), "main"))}
    assert history["ok"].ok and history["hang"].ok and not history["bad"].ok

    # the hook's stdin is the run record, with the command's own JSON result
    got = json.loads((out / "ok.json").read_text())
    assert got["job"] == "ok" and got["outcome"] == "success" and got["exit_code"] == 0
    assert got["result"] == {"backups": []}
    assert got == history["ok"].to_json()
    failed = json.loads((out / "bad.failure.json").read_text())
    assert failed["outcome"] == "failed" and failed["exit_code"] == 2
    assert "no-such-backup" in failed["error"]
    assert not (out / "bad.success.json").exists()

    # no secrets reach the hook
    env_seen = (out / "env.txt").read_text()
    assert "hunter2" not in env_seen and "age-secret" not in env_seen
    assert "PGSAFE_EVENT=success" in env_seen and "PGSAFE_JOB=ok" in env_seen
