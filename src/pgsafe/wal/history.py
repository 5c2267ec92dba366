"""Timeline history files and the path of timelines a recovery follows (pure).

``0000000N.history`` lists, for every ancestor of timeline N, the LSN where it was left:
``<parent tli>\\t<switch LSN>\\t<reason>``.  The path to N is then a list of
``(timeline, begin, end)`` ranges, the last one open-ended.

The recovery plan (:mod:`pgsafe.recovery.plan`) and ``wal-get``'s prefetcher
(:mod:`pgsafe.wal.prefetcher`) follow the same path with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgsafe.wal import names


@dataclass(frozen=True)
class Span:
    timeline: int
    begin: int  # LSN where this timeline starts on the path
    end: int | None  # LSN where the path leaves it (None: the target timeline)

    def contains(self, start: int, stop: int) -> bool:
        return self.begin <= start and (self.end is None or stop <= self.end)


def parse_history(text: str) -> list[tuple[int, int]]:
    """(parent timeline, switch LSN) entries of a history file, oldest first.

    The file comes from the archive, so it is checked: every line well formed, parent
    timelines and switch LSNs increasing.  Raises :class:`ValueError` otherwise.
    """
    out: list[tuple[int, int]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 2 or not parts[0].isascii() or not parts[0].isdigit():
            raise ValueError(f"malformed history line {line[:80]!r}")
        parent, switch = int(parts[0]), names.parse_lsn(parts[1])
        if not 1 <= parent <= 0xFFFFFFFF:
            raise ValueError(f"timeline {parent} out of range")
        if out and (parent <= out[-1][0] or switch < out[-1][1]):
            raise ValueError(f"history line {line[:80]!r} goes backwards")
        out.append((parent, switch))
    return out


def path_to(timeline: int, history: list[tuple[int, int]]) -> list[Span]:
    """Spans from timeline 1 (or the oldest ancestor) to ``timeline``."""
    spans: list[Span] = []
    begin = 0
    for parent, switch in history:
        spans.append(Span(parent, begin, switch))
        begin = switch
    spans.append(Span(timeline, begin, None))
    return spans


def timeline_for_segment(path: list[Span], segno: int, segment_size: int) -> int:
    """The timeline whose file PostgreSQL reads for segment ``segno`` on this path."""
    best = path[0].timeline
    for span in path:
        if names.lsn_segment(span.begin, segment_size) <= segno:
            best = span.timeline
    return best


def last_segment_on_path(path: list[Span], segno: int, segment_size: int) -> bool:
    """Is ``segno`` inside the path's range at all (before the end of a left timeline)?"""
    return any(
        names.lsn_segment(s.begin, segment_size) <= segno
        and (s.end is None or segno <= names.lsn_segment(s.end, segment_size))
        for s in path
    )
