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
``wal-get --spool`` (what ``recover`` writes) takes the file from the prefetch spool or
asks the live prefetcher for it (:mod:`pgsafe.wal.spool`): built-in modules only, for
every codec and storage; without a spool, or with no prefetcher ready,
:mod:`pgsafe.wal.getfast` (one local zstd repository) or the full :mod:`pgsafe.wal.get`.

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
    "       pgsafe [--repo R] [--server S] wal-get [--spool DIR [--prefetch N]"
    " [--prefetch-jobs J]] NAME DEST"
)
GET_OPTIONS = {"--spool": "spool", "--prefetch": "depth", "--prefetch-jobs": "jobs"}


class LeanArgs:
    """A ``wal-push`` / ``wal-get`` command line, read by :mod:`pgsafe.config.flags`:
    ``flags`` records the global flags as given, :meth:`settings_flags` is what
    :func:`pgsafe.config.load_settings` reads."""

    def __init__(self, parsed: GlobalFlags, own: dict[str, str] | None = None) -> None:
        own = own or {}
        self.spool = own.get("spool")
        self.depth = _count(own, "depth")
        self.jobs = _count(own, "jobs")
        self.command = parsed.command or ""
        self.positional = parsed.positional
        self.flags = parsed.given
        self.probe = "--probe" in parsed.extras
        self.verbose = parsed.verbose
        self._parsed = parsed

    def settings_flags(self) -> dict[str, object]:
        return self._parsed.settings_flags()


def _count(own: dict[str, str], key: str) -> int | None:
    value = own.get(key)
    if value is None:
        return None
    if not value.isdigit() or not 0 <= int(value) <= 256:
        raise BadInput(f"{key} must be a number from 0 to 256, not {value!r}")
    return int(value)


def _own_options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``wal-get``'s own options (:data:`GET_OPTIONS`) taken out of ``args``."""
    rest: list[str] = []
    own: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        if arg == "--":
            rest.append(arg)
            rest.extend(it)
            break
        key, eq, value = arg.partition("=")
        if key in GET_OPTIONS:
            if not eq:
                nxt = next(it, None)
                if nxt is None:
                    raise BadInput(f"{key} needs a value")
                value = nxt
            own[GET_OPTIONS[key]] = value
        else:
            rest.append(arg)
    return rest, own


def parse_args(args: list[str]) -> LeanArgs:
    try:
        rest, own = _own_options(args)
        return LeanArgs(parse(rest, extras=("--probe",)), own)
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
    if a.probe:
        import zstandard  # noqa: F401  (the probe proves it imports)

        if "repo" in a.flags or "config" in a.flags:  # given on the command line
            repo = _open_repo(a)
            repo.encoder().check_decode()  # a key at hand (and its file readable)
        print("ok")
        return 0
    if len(a.positional) != 2:
        raise BadInput("wal-get takes two arguments: NAME DEST", hint=USAGE)
    name, dest = a.positional
    if a.spool and a.depth != 0:
        return _get_spooled(a, name, dest)
    return 0 if _fetch(a, name, dest) else 1


def _fetch(a: LeanArgs, name: str, dest: str) -> bool:
    from pgsafe.wal import getfast

    found = getfast.fetch(a.settings_flags(), name, dest)
    if found is not None:
        return found
    from pgsafe.wal.get import get

    repo = _open_repo(a)
    found = get(repo, name, dest)
    for note in repo.notes:  # lands in the server log; recover reports it
        print(f"pgsafe wal-get: note: {note}", file=sys.stderr)
    return found


def _get_spooled(a: LeanArgs, name: str, dest: str) -> int:
    """Through the spool (:mod:`pgsafe.wal.spool`): a file the prefetcher holds is a
    rename; else the live prefetcher is asked for it (it has the repository open), and
    only when none runs (it is then started) or it cannot say is it fetched here."""
    import time

    from pgsafe.wal import spool

    t0 = time.monotonic()
    assert a.spool is not None
    dfd = spool.open_spool(a.spool, make=True)
    if dfd is None or not spool.is_spooled(name):  # .partial, .backup: read here
        if dfd is not None:
            os.close(dfd)
        return 0 if _fetch(a, name, dest) else 1
    try:
        got = spool.take(dfd, name, dest)
        deadline = t0 + 120
        while got == "miss" and spool.in_flight(dfd, name) and time.monotonic() < deadline:
            time.sleep(0.005)  # the prefetcher is writing it: wait rather than fetch twice
            got = spool.take(dfd, name, dest)
        if got == "damaged":
            spool.note(dfd, f"got {name} damaged 0")
            print(f"pgsafe wal-get: note: {name}: damaged in the spool {a.spool}; "
                  "fetched again from the repository", file=sys.stderr)  # fmt: skip
        if got != "spool":
            spool.clear_answer(dfd, name)  # only an answer to this request counts
            spool.note(dfd, f"want {name}")
            if spool.holder(dfd) is None:
                from pgsafe.wal import prefetcher

                prefetcher.spawn(a.spool, lambda: _open_repo(a), a.depth, a.jobs)
            elif spool.ready(dfd):  # else it is still starting: fetched here
                got = _asked(dfd, name, dest, deadline)
        if got in ("spool", "missing"):
            spool.note(dfd, f"got {name} {got} {time.monotonic() - t0:.4f}")
            for note in spool.notes(dfd, name):  # as _fetch prints them
                print(f"pgsafe wal-get: note: {note}", file=sys.stderr)
            return 0 if got == "spool" else 1
        found = _fetch(a, name, dest)
        what = "fetched" if found else "missing"
        spool.note(dfd, f"got {name} {what} {time.monotonic() - t0:.4f}")
        return 0 if found else 1
    finally:
        os.close(dfd)


def _asked(dfd: int, name: str, dest: str, deadline: float) -> str:
    """The live prefetcher's answer to ``want NAME``: ``"spool"`` (taken to ``dest``),
    ``"missing"``, or ``"self"`` — fetch it here (it failed, found damage, or the
    prefetcher is gone)."""
    import time

    from pgsafe.wal import spool

    ack = time.monotonic() + spool.ACK_S
    rounds = 0
    while time.monotonic() < deadline:
        got = spool.take(dfd, name, dest)
        if got == "spool":
            return got
        said = spool.answer(dfd, name)
        if said is not None or got == "damaged":
            return "missing" if said == "missing" else "self"
        if spool.in_flight(dfd, name):  # being fetched: wait for it
            ack = time.monotonic() + spool.ACK_S
        elif time.monotonic() > ack:  # not started, or done but not to be had
            return "self"
        rounds += 1
        if rounds % 20 == 0 and spool.holder(dfd) is None:
            return "self"
        time.sleep(0.002)
    return "self"


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
