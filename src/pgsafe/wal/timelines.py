"""Timeline history files read from the archive (:func:`read_history`); the pure rules
of the path of timelines a recovery, a WAL scan or ``wal-get``'s prefetcher follows live
in :mod:`pgsafe.wal.history` and are re-exported here.

``0000000N.history`` lists, for every ancestor of timeline N, the LSN where it was left:
``<parent tli>\\t<switch LSN>\\t<reason>``.
"""

from __future__ import annotations

from pgsafe.errors import NotFound, VerificationFailed
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import RECORD_LIMIT
from pgsafe.wal import names
from pgsafe.wal.get import find
from pgsafe.wal.history import (
    Span,
    last_segment_on_path,
    parse_history,
    path_to,
    timeline_for_segment,
)

__all__ = [
    "Span",
    "last_segment_on_path",
    "parse_history",
    "path_to",
    "read_history",
    "timeline_for_segment",
]


def read_history(repo: Repository, timeline: int) -> list[tuple[int, int]] | None:
    """The history of ``timeline`` from the archive; damage is named (exit 3)."""
    wal = names.parse(names.history_name(timeline))
    assert wal is not None
    try:
        key, f = find(repo.storage, repo.server, wal, repo.codec_spec().suffix)
    except NotFound:
        return None
    pieces, size = [], 0
    with f:
        for piece in repo.decoder(key.rsplit("/", 1)[-1]).decode(f, what=wal.name):
            size += len(piece)
            if size > RECORD_LIMIT:  # a history file is a few lines per timeline
                raise VerificationFailed(
                    f"the archived timeline history {wal.name} is damaged: larger than"
                    f" {RECORD_LIMIT} bytes",
                    hint="restore it from another repository or from the server's pg_wal",
                )
            pieces.append(piece)
    text = b"".join(pieces)
    try:
        history = parse_history(text.decode())
    except ValueError as exc:
        raise VerificationFailed(
            f"the archived timeline history {wal.name} is damaged: {exc}",
            hint="restore it from another repository or from the server's pg_wal",
        ) from None
    if any(parent >= timeline for parent, _ in history):
        raise VerificationFailed(
            f"the archived timeline history {wal.name} names a parent not older than"
            f" timeline {timeline}",
            hint="restore it from another repository or from the server's pg_wal",
        )
    return history
