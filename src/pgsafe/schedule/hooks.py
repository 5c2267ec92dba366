"""``on_success`` / ``on_failure`` hooks: a command run after a job, for alerting.

The hook gets the run's JSON record on stdin (see :mod:`pgsafe.repo.runs`) and
``PGSAFE_EVENT`` (``success`` or ``failure``), ``PGSAFE_JOB``, ``PGSAFE_SERVER`` and
``PGSAFE_OUTCOME`` in its environment.  Variables that carry secrets (``PGPASSWORD``,
the ``PGSAFE_AGE_*`` keys and passphrases, cloud credentials) are removed from the
environment it inherits.  It runs in its own process group; when it outlives the
timeout the whole group is killed.  A hook that fails, hangs or cannot start is
reported in the :class:`HookResult` and logged: it never changes the job's outcome.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

SECRET_VARS = frozenset(
    {
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSAFE_AGE_PASSPHRASE",
        "PGSAFE_AGE_PASSPHRASE_FILE",
        "PGSAFE_AGE_IDENTITY",
        "PGSAFE_AGE_IDENTITY_FILE",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    }
)
OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class HookResult:
    argv: tuple[str, ...]
    ok: bool
    exit_code: int | None  # None when it could not start or was killed
    timed_out: bool
    output: str  # its stdout and stderr, cut to OUTPUT_LIMIT characters
    error: str | None = None


def hook_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a hook: ``base`` without secrets, plus ``extra``."""
    env = {k: v for k, v in base.items() if k not in SECRET_VARS and "SECRET" not in k}
    env.update(extra)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_hook(
    argv: Sequence[str],
    payload: Mapping[str, object],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> HookResult:
    """Run one hook with ``payload`` as JSON on stdin; wait at most ``timeout`` seconds."""
    args = tuple(argv)
    data = json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n"
    full_env = hook_env(os.environ if env is None else env, {})
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out:
        stdin.write(data)
        stdin.seek(0)
        try:
            proc = subprocess.Popen(
                args,
                stdin=stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,  # its own group: a timeout kills its children too
                close_fds=True,
            )
        except OSError as exc:
            log.warning("hook %s could not start: %s", args[-1], exc.strerror or exc)
            return HookResult(args, False, None, False, "", f"could not start: {exc}")
        timed_out = False
        deadline = time.monotonic() + timeout
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        out.seek(0)
        text = out.read(OUTPUT_LIMIT).decode("utf-8", "replace").strip()
    code = None if timed_out else proc.returncode
    ok = not timed_out and code == 0
    error = None
    if timed_out:
        error = f"timed out after {timeout:g} s and was killed"
    elif code != 0:
        error = f"exited with {code}"
    if ok:
        log.info("hook %s ran", args[-1])
    else:
        log.warning("hook %s failed: %s%s", args[-1], error, f"; output: {text}" if text else "")
    return HookResult(args, ok, code, timed_out, text, error)
