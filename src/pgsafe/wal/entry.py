"""Lean entry point for ``wal-push`` / ``wal-get`` (no click, rich or psycopg).

PostgreSQL runs these once per WAL segment, so start-up matters: this module and what
it imports use only the standard library, the codec libraries (zstandard, lz4; age's
``cryptography`` only for an encrypted repository; botocore only for S3) and pgsafe's
lean modules (errors, config, repo, wal).  ``tests/unit/test_wal_lean.py`` holds that line.
The command line is read by :mod:`pgsafe.config.flags` (as ``pgsafe.__main__`` and the
click application read it) and the repository opened by
:func:`pgsafe.config.open_repository` (as every other command opens it).
A new segment into one local plain zstd repository takes :mod:`pgsafe.wal.fastpush`,
leaner still (built-in modules only); every other case the full :mod:`pgsafe.wal.push`.

With ``--config FILE`` naming ``[[repos]]`` (and no ``--repo``), every repository is
opened as one: ``wal-push`` succeeds only once each of them holds the segment, and
``wal-get`` reads the first valid copy.

Exit codes: 0 done; 1 failed (and, for ``wal-get``, "not in the archive", quietly);
2 bad usage.  Never 126 or more: PostgreSQL aborts recovery on those.

``--probe`` (with either command) checks that this runtime works for the calling OS user;
with ``wal-push`` it also writes and removes a probe object in the repository and
encodes a few bytes with the repository's codec (an unreadable passphrase file shows up
here); ``wal-get --probe`` with ``--repo``/``--config`` checks that a key to decrypt
with is at hand and readable.
"""

from __future__ import annotations

import os
import sys

from pgsafe.config.flags import GlobalFlags, parse
from pgsafe.errors import BadInput, PgsafeError

TYPE_CHECKING = False  # no typing, no dataclasses: see pgsafe.wal.fastpush
if TYPE_CHECKING:
    from pgsafe.repo.repository import Repository

USAGE = (
    "usage: pgsafe [--repo R] [--server S] wal-push PATH\n"
    "       pgsafe [--repo R] [--server S] wal-get NAME DEST"
)


class LeanArgs:
    """A ``wal-push`` / ``wal-get`` command line, read by :mod:`pgsafe.config.flags`:
    ``flags`` records the global flags as given, :meth:`settings_flags` is what
    :func:`pgsafe.config.load_settings` reads."""

    def __init__(self, parsed: GlobalFlags) -> None:
        self.command = parsed.command or ""
        self.positional = parsed.positional
        self.flags = parsed.given
        self.probe = "--probe" in parsed.extras
        self.verbose = parsed.verbose
        self._parsed = parsed

    def settings_flags(self) -> dict[str, object]:
        return self._parsed.settings_flags()


def parse_args(args: list[str]) -> LeanArgs:
    try:
        return LeanArgs(parse(args, extras=("--probe",)))
    except BadInput as exc:
        raise BadInput(exc.message, hint=USAGE) from None


def _open_repo(a: LeanArgs, *, writes: bool = False) -> Repository:
    """The repository; ``writes`` (wal-push) also holds its marker to the configured
    encryption, so that WAL is never archived weaker than the config asks."""
    from pgsafe.config.repository import open_repository
    from pgsafe.config.settings import load_settings

    return open_repository(load_settings(a.settings_flags()), writes=writes)


def _push(a: LeanArgs) -> int:
    if not a.probe and len(a.positional) == 1:
        from pgsafe.wal import fastpush

        if fastpush.push(a.settings_flags(), a.positional[0]) is not None:
            if a.verbose:
                print(f"pgsafe: {os.path.basename(a.positional[0])}: stored", file=sys.stderr)
            return 0
    from pgsafe.wal.push import push, wal_encoder

    repo = _open_repo(a, writes=True)
    if a.probe:
        for _ in wal_encoder(repo).encode([b"probe\n"]):
            pass
        key = f"{repo.server}/probe/{os.urandom(8).hex()}"
        repo.storage.put(key, [b"probe\n"])
        repo.storage.delete(key)
        print("ok")
        return 0
    if len(a.positional) != 1:
        raise BadInput("wal-push takes one argument, the path of the WAL file", hint=USAGE)
    result = push(repo, a.positional[0])
    if a.verbose:
        print(f"pgsafe: {result.name}: {result.status}", file=sys.stderr)
    return 0


def _get(a: LeanArgs) -> int:
    from pgsafe.wal.get import get

    if a.probe:
        import zstandard  # noqa: F401  (the probe proves it imports)

        if "repo" in a.flags or "config" in a.flags:  # given on the command line
            repo = _open_repo(a)
            repo.encoder().check_decode()  # a key at hand (and its file readable)
        print("ok")
        return 0
    if len(a.positional) != 2:
        raise BadInput("wal-get takes two arguments: NAME DEST", hint=USAGE)
    repo = _open_repo(a)
    found = get(repo, a.positional[0], a.positional[1])
    for note in repo.notes:  # lands in the server log; recover reports it
        print(f"pgsafe wal-get: note: {note}", file=sys.stderr)
    return 0 if found else 1


def main(args: list[str]) -> int:
    try:
        a = parse_args(args)
        if a.command == "wal-push":
            return _push(a)
        if a.command == "wal-get":
            return _get(a)
        raise BadInput(f"not a lean command: {a.command!r}", hint=USAGE)
    except PgsafeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"HINT: {exc.hint}", file=sys.stderr)
        return min(exc.exit_code, 2) or 1
    except Exception as exc:  # never a traceback exit code PostgreSQL might misread
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
