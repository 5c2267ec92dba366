"""Timeline history files and the path of timelines a recovery follows: the rules live
in :mod:`pgsafe.wal.history` (``wal-get``'s prefetcher follows the same path)."""

from __future__ import annotations

from pgsafe.wal.history import (
    Span,
    last_segment_on_path,
    parse_history,
    path_to,
    timeline_for_segment,
)

__all__ = ["Span", "last_segment_on_path", "parse_history", "path_to", "timeline_for_segment"]
