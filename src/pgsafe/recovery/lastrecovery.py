"""How the WAL of the last recovery from a repository arrived, kept for ``info``.

``recover`` that waits for the end (``--start``) sums up the spool's journal
(:func:`pgsafe.recovery.walfetch.collect`) and records it here, in pgsafe's state folder
(``<state home>/recoveries/<id>.json``, one file per repository and server, mode 0600,
replaced atomically); ``info`` reads it back (its ``last_recovery``).  The id is the
sha256 of the repository's URL and the server name, so nothing of the repository
becomes a file name.  The record is read as untrusted: a file that is a link, too large,
not JSON or of another shape is ignored (``info`` then reports none).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgsafe.recovery.walfetch import WalFetch

FOLDER = "recoveries"
LIMIT = 16 << 10  # a larger record is not read


@dataclass(frozen=True)
class LastRecovery:
    """The last recovery from this repository and server that waited for its end:
    where it went, when it ended, the state it reached, how its WAL arrived."""

    pgdata: str
    finished_at: str  # ISO 8601, UTC
    state: str
    wal_fetch: WalFetch


def _path(home: Path, url: str, server: str) -> Path:
    key = hashlib.sha256(f"{url}\0{server}".encode()).hexdigest()[:24]
    return home / FOLDER / f"{key}.json"


def record(home: Path, url: str, server: str, pgdata: str, state: str, fetch: WalFetch) -> None:
    """Keep ``fetch`` as the last recovery of ``url``/``server`` (best effort: a state
    folder that cannot be written loses only this record)."""
    path = _path(home, url, server)
    doc = {
        "repo": url, "server": server, "pgdata": pgdata, "state": state,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "segments_fetched": fetch.segments_fetched,
        "segments_from_spool": fetch.segments_from_spool,
        "spool_damaged": fetch.spool_damaged, "wait_s": fetch.wait_s,
    }  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc) + "\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _count(doc: dict[str, object], key: str) -> int | None:
    v = doc.get(key)
    return v if type(v) is int and 0 <= v < 1 << 40 else None


def load(home: Path, url: str, server: str) -> LastRecovery | None:
    """The last recovery recorded for ``url``/``server``; None when there is none (or
    the record is not one :func:`record` writes)."""
    try:
        fd = os.open(_path(home, url, server), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            raw = f.read(LIMIT + 1)
        doc = json.loads(raw) if len(raw) <= LIMIT else None
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("repo") != url or doc.get("server") != server:
        return None
    texts = [doc.get(k) for k in ("pgdata", "finished_at", "state")]
    counts = [_count(doc, k) for k in ("segments_fetched", "segments_from_spool", "spool_damaged")]
    wait = doc.get("wait_s")
    if not all(isinstance(t, str) and len(t) < 4096 for t in texts) or None in counts:
        return None
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait < 1e9:
        return None
    c = [int(n) for n in counts if n is not None]
    fetch = WalFetch(c[0], c[1], c[2], float(wait))
    return LastRecovery(str(texts[0]), str(texts[1]), str(texts[2]), fetch)
