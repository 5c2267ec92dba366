"""A pgsafe the PostgreSQL server's OS user can run: the runtime of the WAL endpoints.

``archive_command`` and ``restore_command`` run as the server's OS user (``postgres``
when pgsafe runs as root), not as the user who installed pgsafe.  The project may live
where that user cannot read (a clone under ``/root``, an editable install pointing
there), so :func:`wal_runtime` answers with the argv prefix that user *can* run:

1. the current interpreter in isolated mode without ``site`` (``-I -S``), the folders
   holding pgsafe and its codec libraries put on ``sys.path`` by a ``-c`` one-liner
   (``site`` and ``runpy`` cost a ``wal-push`` 10-15 ms of its ~60), when that works
   for the user (tried by actually running it as the user); pgsafe's bytecode is
   compiled first where we can write it, since the server's user usually cannot;
2. else the current interpreter with ``-I -m pgsafe``;
3. else a self-contained copy under ``<state>/runtime/<content hash>/``: ``pgsafe`` and
   the codec libraries the WAL endpoints import (``zstandard``, ``lz4``; for age
   ``cryptography`` with its ``cffi``/``_cffi_backend``; for S3 ``botocore`` and its
   dependencies) in ``lib/``, and a launcher run by an interpreter the user can execute
   (``sys._base_executable``, else ``/usr/bin/python3``) in isolated mode.

Either way the result is verified by running ``wal-get --probe`` as the user; when
nothing works the error says why and what to do.  What follows the runtime's argv on
the command line is :mod:`pgsafe.endpoint.command`'s.
"""

from __future__ import annotations

import compileall
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.errors import OperationFailed

_PACKAGES = ("pgsafe", "zstandard", "lz4")  # the codec modules import lz4 at once
_AGE_PACKAGES = ("cryptography", "cffi", "_cffi_backend")  # imported only to encrypt
_S3_PACKAGES = ("botocore", "jmespath", "dateutil", "urllib3", "six")  # only for s3://
_LAUNCHER = """\
# pgsafe's WAL endpoints, installed for the PostgreSQL server's OS user.
import sys
sys.path.insert(0, {lib!r})
from pgsafe.__main__ import main
sys.exit(main())
"""


@dataclass(frozen=True)
class Runtime:
    """An argv prefix that runs ``pgsafe`` (lean commands included) for the server's user."""

    argv: tuple[str, ...]
    kind: str  # "direct" | "installed"
    location: str | None = None


def _run_as(
    argv: Sequence[str], user: runas.OsUser | None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            **runas.popen_kwargs(user),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(list(argv), 127, "", str(exc))


def probe(runtime: Runtime, user: runas.OsUser | None) -> str | None:
    """None when ``runtime`` works for ``user``, else what went wrong."""
    proc = _run_as([*runtime.argv, "wal-get", "--probe"], user)
    if proc.returncode == 0 and proc.stdout.strip() == "ok":
        return None
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


def direct_argv() -> tuple[str, ...]:
    return (sys.executable, "-I", "-m", "pgsafe")


def lean_paths(s3: bool = False) -> list[str]:
    """The folders holding pgsafe and the libraries its WAL endpoints import (the
    packages an installed runtime copies), in ``sys.path`` order."""
    found = {str(p.parent) for p in _package_dirs(s3)}
    out = [p for p in sys.path if p in found]
    return out + sorted(found - set(out))


def lean_argv(s3: bool = False) -> tuple[str, ...]:
    """``python -I -S -c BOOT``: no ``site`` processing, no ``runpy``; BOOT appends
    :func:`lean_paths` to ``sys.path`` (after the standard library, as ``site`` would)."""
    boot = (
        f"import sys;sys.path.extend({json.dumps(lean_paths(s3))});"
        "from pgsafe.__main__ import main;sys.exit(main())"
    )
    return (sys.executable, "-I", "-S", "-c", boot)


def compile_package() -> None:
    """Write pgsafe's bytecode where it lives, when we may (the server's user, which runs
    the WAL endpoints, usually cannot: it would recompile edited modules on every call)."""
    pkg = Path(__file__).parent.parent  # the pgsafe package
    if not os.access(pkg, os.W_OK):
        return
    with contextlib.suppress(OSError):
        compileall.compile_dir(str(pkg), quiet=2)


def _package_dirs(s3: bool = False) -> list[Path]:
    """Package folders (or single-file modules) to copy: the codecs, age when its
    libraries are installed, botocore's stack when ``s3``."""
    import importlib.util

    out: list[Path] = []
    names = [*_PACKAGES, *_AGE_PACKAGES, *(_S3_PACKAGES if s3 else ())]
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            if name in _PACKAGES or (s3 and name == "botocore"):
                raise OperationFailed(f"the Python package {name} is not installed")
            continue
        origin = Path(spec.origin)
        out.append(origin.parent if origin.name == "__init__.py" else origin)
    return out


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith(".pyc"))
    return out


def content_hash(interpreter: str, s3: bool = False) -> str:
    h = hashlib.sha256(f"{interpreter}\0{sys.version}\0".encode())
    for pkg in _package_dirs(s3):
        if pkg.is_file():
            h.update(f"{pkg.name}\0".encode() + pkg.read_bytes())
            continue
        for f in _files(pkg):
            h.update(f"{pkg.name}/{f.relative_to(pkg)}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _interpreters() -> list[str]:
    seen: list[str] = []
    base = getattr(sys, "_base_executable", "") or ""
    for c in (base, os.path.realpath(sys.executable), "/usr/bin/python3"):
        if c and os.path.isfile(c) and c not in seen:
            seen.append(c)
    return seen


def _pick_interpreter(user: runas.OsUser | None) -> str:
    for interp in _interpreters():
        proc = _run_as([interp, "-I", "-c", "import sys; print(sys.version_info[:2])"], user)
        if proc.returncode == 0 and proc.stdout.strip() == str(sys.version_info[:2]):
            return interp
    who = user.name if user else "this user"
    raise OperationFailed(
        f"no Python {sys.version_info[0]}.{sys.version_info[1]} interpreter that the OS user "
        f"{who!r} can run was found (tried {', '.join(_interpreters())})",
        hint="install python3 system-wide (e.g. apt-get install python3), "
        "or install pgsafe into a virtualenv outside /root",
    )


def install(home: Path, user: runas.OsUser | None, *, s3: bool = False) -> Runtime:
    """Install (once per content) the self-contained runtime under ``home/runtime``."""
    runas.require_reachable(home, user, "pgsafe state folder (PGSAFE_HOME)")
    interp = _pick_interpreter(user)
    root = home / "runtime"
    target = root / content_hash(interp, s3)
    launcher = target / "pgsafe-wal"
    if not launcher.is_file():
        root.mkdir(parents=True, exist_ok=True, mode=0o755)
        if user is not None:  # the server's user must be able to pass through home
            os.chmod(home, os.stat(home).st_mode | 0o011)
        os.chmod(root, 0o755)
        tmp = root / f".tmp-{secrets.token_hex(6)}"
        try:
            lib = tmp / "lib"
            lib.mkdir(parents=True)
            for pkg in _package_dirs(s3):
                if pkg.is_file():
                    shutil.copy2(pkg, lib / pkg.name)
                    continue
                shutil.copytree(
                    pkg, lib / pkg.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            compileall.compile_dir(str(lib), quiet=1, ddir=str(target / "lib"))
            (tmp / "pgsafe-wal").write_text(_LAUNCHER.format(lib=str(target / "lib")))
            for dirpath, _dirs, filenames in os.walk(tmp):
                os.chmod(dirpath, 0o755)
                for f in filenames:
                    os.chmod(os.path.join(dirpath, f), 0o644)
            try:
                os.rename(tmp, target)
            except OSError:
                if not launcher.is_file():  # not another installer winning the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Runtime((interp, "-I", str(launcher)), "installed", str(target))


def wal_runtime(
    home: Path,
    user: runas.OsUser | None = None,
    *,
    direct: Sequence[str] | None = None,
    s3: bool = False,
) -> Runtime:
    """The runtime the server's OS user should use (verified by running it as that user);
    ``s3``: the repository is on S3, so a copied runtime carries botocore too."""
    user = user if user is not None else runas.server_user()
    if direct:
        first = Runtime(tuple(direct), "direct")
    else:
        compile_package()
        lean = Runtime(lean_argv(s3), "direct")
        if probe(lean, user) is None:
            return lean
        first = Runtime(direct_argv(), "direct")
    problem = probe(first, user)
    if problem is None:
        return first
    installed = install(home, user, s3=s3)
    problem2 = probe(installed, user)
    if problem2 is None:
        return installed
    who = user.name if user else "this user"
    raise OperationFailed(
        f"the OS user {who!r} cannot run pgsafe's WAL endpoints: {problem}; "
        f"the copy installed in {installed.location} fails too: {problem2}",
        hint=f"install pgsafe where {who!r} can read it (e.g. a virtualenv under /opt), "
        "or set PGSAFE_HOME to a folder it can enter",
    )
