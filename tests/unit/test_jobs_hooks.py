"""Hooks: the run's JSON on stdin, no secrets in the environment, a timeout that kills
the hook and everything it started, failures reported and never raised."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pgsafe.schedule import hooks

PAYLOAD = {"job": "nightly", "outcome": "failed", "result": {"ok": False, "error": "boom"}}


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_hook_gets_the_json_on_stdin_and_no_secrets(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "OUT": str(tmp_path),
        "PGPASSWORD": "s3cret-pw",
        "PGSAFE_AGE_PASSPHRASE": "s3cret-age",
        "AWS_SECRET_ACCESS_KEY": "s3cret-aws",
        "MY_API_SECRET": "s3cret-other",
        "PGSAFE_JOB": "nightly",
    }
    script = 'cat > "$OUT/in.json"; env > "$OUT/env.txt"; echo done'
    res = hooks.run_hook(["/bin/sh", "-c", script], PAYLOAD, timeout=30, env=env)
    assert res.ok and res.exit_code == 0 and not res.timed_out and res.output == "done"
    assert json.loads((tmp_path / "in.json").read_text()) == PAYLOAD
    seen = (tmp_path / "env.txt").read_text()
    assert "s3cret" not in seen
    assert "PGSAFE_JOB=nightly" in seen


def test_a_hanging_hook_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f'sleep 300 & echo $! > "{pidfile}"; wait'
    res = hooks.run_hook(["/bin/sh", "-c", script], PAYLOAD, timeout=1, env={"PATH": "/bin"})
    assert res.timed_out and not res.ok and res.exit_code is None
    assert res.error is not None and "timed out after 1 s" in res.error
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 20
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the hook's child survived the timeout"


def test_a_failing_hook_is_reported_not_raised() -> None:
    res = hooks.run_hook(
        ["/bin/sh", "-c", "echo oops >&2; exit 3"], PAYLOAD, timeout=30, env={"PATH": "/bin"}
    )
    assert not res.ok and res.exit_code == 3 and res.error == "exited with 3"
    assert res.output == "oops"


def test_a_hook_that_cannot_start_is_reported() -> None:
    res = hooks.run_hook(["/nonexistent/alert"], PAYLOAD, timeout=30, env={})
    assert not res.ok and res.exit_code is None and res.error
    assert "could not start" in res.error


def test_a_hook_that_ignores_stdin_does_not_block() -> None:
    big = {"result": {"checks": [{"name": "x" * 100, "ok": True}] * 5000}}  # > a pipe buffer
    res = hooks.run_hook(["/bin/true"], big, timeout=30, env={})
    assert res.ok


def test_hook_env_strips_secrets_and_adds_extras() -> None:
    env = hooks.hook_env({"PGPASSWORD": "x", "HOME": "/h"}, {"PGSAFE_EVENT": "failure"})
    assert env == {"HOME": "/h", "PGSAFE_EVENT": "failure"}
