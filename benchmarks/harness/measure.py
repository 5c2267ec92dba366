"""Measuring one command: wall clock, CPU of its process tree and peak RSS with GNU time,
and the server-side CPU a run caused."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgsafe.cluster import runas

TIME = "/usr/bin/time"
MARK = "@@bench"
# a contender: run number in, measured figures out (wall_s, cpu_s, max_rss_mb, ...)
Fn = Callable[[int], dict[str, Any]]


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def measure(
    argv: list[str],
    *,
    user: runas.OsUser | None = None,
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> dict[str, Any]:
    """Run ``argv`` under GNU time; wall, user+sys CPU and peak RSS of its process tree."""
    kwargs = runas.popen_kwargs(user)
    if user is None and cwd is not None:
        kwargs["cwd"] = str(cwd)
    full = [TIME, "-f", f"{MARK} %e %U %S %M", *argv]
    t0 = time.perf_counter()
    proc = subprocess.run(
        full, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs
    )
    wall = time.perf_counter() - t0
    marks = [ln for ln in proc.stderr.splitlines() if ln.startswith(MARK)]
    if proc.returncode not in ok or not marks:
        tail = "\n".join(ln for ln in proc.stderr.splitlines()[-8:] if not ln.startswith(MARK))
        raise BenchError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n{tail}")
    _, _e, u, s, m = marks[-1].split()
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(float(u) + float(s), 2),
        "user_s": float(u),
        "sys_s": float(s),
        "max_rss_mb": round(int(m) / 1024, 1),
        "stdout": proc.stdout,
    }


def server_cpu_s(datadir: Path) -> float:
    """CPU seconds of a cluster's finished processes (walsenders, backends): the
    postmaster's cutime + cstime, which grow as it reaps them."""
    pid = (datadir / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def with_server_cpu(datadir: Path, fn: Fn) -> Fn:
    """``fn`` that also records the server-side CPU its run caused (``server_cpu_s``)."""

    def run(i: int) -> dict[str, Any]:
        before = server_cpu_s(datadir)
        r = fn(i)
        r["server_cpu_s"] = round(server_cpu_s(datadir) - before, 2)
        return r

    return run


def shell(script: str) -> list[str]:
    return ["bash", "-c", f"set -eo pipefail; {script}"]
