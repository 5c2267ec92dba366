"""Find PostgreSQL's programs (pg_dump, initdb, ...) for a given major version.

Search order: the folders of ``$PGSAFE_PG_BINDIR`` (a list, like ``PATH``),
``/usr/lib/postgresql/<major>/bin`` (Debian), ``pg_config --bindir`` from PATH, then PATH
itself.  A server's programs may live in one folder and the client tools in another
major's: ``PGSAFE_PG_BINDIR=/opt/pg13/bin:/usr/lib/postgresql/15/bin`` runs a 13 server
with 15's pg_dump and pg_basebackup.  Without a requested major, the first folder of
``$PGSAFE_PG_BINDIR`` holding the program wins, else the newest installed version.

Client tools of a newer major read older servers; the programs in ``EXACT_MAJOR`` read
the server's files (data directory, WAL) and must be of the server's own major.
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

# programs that read or write a data directory or WAL of their own major only
EXACT_MAJOR = frozenset(
    {
        "initdb", "postgres", "pg_ctl", "pg_controldata", "pg_resetwal", "pg_waldump",
        "pg_rewind", "pg_checksums", "pg_combinebackup", "pg_upgrade",
    }
)  # fmt: skip
# client tools Debian ships in postgresql-client-N (the rest are in postgresql-N)
_CLIENT_PACKAGE = frozenset(
    {"psql", "pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "pg_receivewal",
     "pg_isready", "pg_recvlogical"}
)  # fmt: skip


def package_for(name: str, major: int) -> str:
    """The Debian package holding program ``name`` of PostgreSQL ``major``."""
    return f"postgresql-client-{major}" if name in _CLIENT_PACKAGE else f"postgresql-{major}"


def missing_hint(name: str, major: int | None) -> str:
    """How to get program ``name`` (of ``major`` when given): a package, or the env setting."""
    if major is None:
        return (
            "install the PostgreSQL server programs (Debian: apt-get install postgresql) "
            "or list their folder in PGSAFE_PG_BINDIR"
        )
    package = package_for(name, major)
    return (
        f"apt-get install {package} (Debian's own release or apt.postgresql.org, which has "
        f"every major), or list the folder holding {name} {major} in PGSAFE_PG_BINDIR"
    )


def env_bindirs() -> list[Path]:
    """The folders of ``$PGSAFE_PG_BINDIR``, in order."""
    env = os.environ.get("PGSAFE_PG_BINDIR", "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def _candidates(major: int | None) -> list[Path]:
    dirs = env_bindirs()
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


def _executables(name: str, major: int | None) -> list[str]:
    found = [str(d / name) for d in _candidates(major)]
    found = [p for p in found if os.path.isfile(p) and os.access(p, os.X_OK)]
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    return found


@functools.lru_cache(maxsize=64)
def find_program(name: str, major: int | None = None) -> str:
    """Absolute path of PostgreSQL program ``name``, matching ``major`` when given.

    A client tool of a newer major than the server is accepted (pg_dump of version N
    reads servers <= N); the programs in ``EXACT_MAJOR`` must match exactly.
    """
    fallback: str | None = None
    for path in _executables(name, major):
        if major is None:
            return path
        v = program_version(path)
        if v == major:
            return path
        if v > major and name not in EXACT_MAJOR and fallback is None:
            fallback = path
    if fallback:
        return fallback
    wanted = f"{name} (PostgreSQL {major})" if major else name
    raise OperationFailed(
        f"cannot find the PostgreSQL program {wanted}", hint=missing_hint(name, major)
    )


def installed_major() -> int:
    """Major version of the default server programs (see the module's docstring)."""
    return program_version(find_program("initdb"))
