"""Find PostgreSQL's programs (pg_dump, initdb, ...) for a given major version.

Search order: ``$PGSAFE_PG_BINDIR``, ``/usr/lib/postgresql/<major>/bin`` (Debian),
``pg_config --bindir`` from PATH, then PATH itself.  Without a requested major the
newest installed version wins.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from pgsafe.errors import OperationFailed

_DEBIAN_ROOT = Path("/usr/lib/postgresql")


def _candidates(major: int | None) -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("PGSAFE_PG_BINDIR")
    if env:
        dirs.append(Path(env))
    if _DEBIAN_ROOT.is_dir():
        versions = sorted(
            (int(p.name) for p in _DEBIAN_ROOT.iterdir() if p.name.isdigit()), reverse=True
        )
        if major is not None:
            versions = [v for v in versions if v == major] + [v for v in versions if v != major]
        dirs.extend(_DEBIAN_ROOT / str(v) / "bin" for v in versions)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            dirs.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    return dirs


@functools.lru_cache(maxsize=64)
def program_version(path: str) -> int:
    """Major version of a PostgreSQL program, from ``--version``."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"\b(\d+)(?:\.\d+)?", out)
    if not m:
        raise OperationFailed(f"cannot read the version of {path}: {out.strip()!r}")
    return int(m.group(1))


@functools.lru_cache(maxsize=64)
def find_program(name: str, major: int | None = None) -> str:
    """Absolute path of PostgreSQL program ``name``, matching ``major`` when given.

    A program of a newer major than the server is accepted for client tools (pg_dump
    of version N reads servers <= N); server programs must match exactly.
    """
    server_side = name in {"initdb", "postgres", "pg_ctl", "pg_controldata", "pg_resetwal"}
    fallback: str | None = None
    for d in _candidates(major):
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            if major is None:
                return str(p)
            v = program_version(str(p))
            if v == major:
                return str(p)
            if v > major and not server_side and fallback is None:
                fallback = str(p)
    on_path = shutil.which(name)
    if on_path:
        if major is None or program_version(on_path) == major:
            return on_path
        if program_version(on_path) > major and not server_side and fallback is None:
            fallback = on_path
    if fallback:
        return fallback
    wanted = f"{name} (PostgreSQL {major})" if major else name
    raise OperationFailed(
        f"cannot find the PostgreSQL program {wanted}",
        hint="install the PostgreSQL server programs (Debian: apt-get install postgresql) "
        "or set PGSAFE_PG_BINDIR to their folder",
    )


def installed_major() -> int:
    """Major version of the newest installed server programs."""
    return program_version(find_program("initdb"))
