"""Run PostgreSQL programs, capturing stderr into clear errors.

Passwords never go on a command line (where ``ps`` shows them): a connection string
handed to :func:`tool_env` has its password moved into ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO

from pgsafe.errors import ToolFailed
from pgsafe.pg.conninfo import split_password


def tool_env(
    conninfo: str | None = None, extra: Mapping[str, str] | None = None
) -> tuple[str | None, dict[str, str]]:
    """(conninfo without password, environment carrying it) for a child process."""
    env = dict(os.environ)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    env["PGAPPNAME"] = env.get("PGSAFE_APPNAME", "pgsafe")
    clean = None
    if conninfo is not None:
        clean, password = split_password(conninfo)
        if password is not None:
            env["PGPASSWORD"] = password
    if extra:
        env.update(extra)
    return clean, env


def first_error_line(stderr: str) -> str:
    """The most telling line of a PostgreSQL program's stderr."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln.lower() or "fatal:" in ln.lower():
            return ln
    return lines[-1] if lines else "(no message)"


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
    stdin: IO[bytes] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion; raise :class:`ToolFailed` with its stderr on failure."""
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        name = what or os.path.basename(argv[0])
        raise ToolFailed(f"{name} failed (exit {proc.returncode}): {first_error_line(proc.stderr)}")
    return proc
