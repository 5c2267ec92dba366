"""The largest of the transactions a listing leaves out (pure).

``pgsafe mistakes`` shows the newest ``--limit``; on a busy server those are the last
seconds' small updates, and a large DELETE of an hour ago is among the omitted.  So the
few largest of the omitted are kept too: a TRUNCATE or DROP first (the WAL holds no row
count for it), then by rows deleted or changed; among equals the older first.
"""

from __future__ import annotations

import heapq

from pgsafe.mistakes.collect import Committed, LocalCommit
from pgsafe.mistakes.filters import ROW_KINDS
from pgsafe.mistakes.model import Mistake

LARGEST = 5
_DROPS = 1 << 62  # a TRUNCATE or DROP weighs more than any count of rows

Kept = Mistake | Committed | LocalCommit


def weight(f: Kept) -> int:
    """Rows deleted or changed (in every relation the transaction wrote, for one not
    classified yet), plus :data:`_DROPS` when it truncated or dropped something."""
    if isinstance(f, LocalCommit):
        return sum([n for _, _, n in f.rows])
    if isinstance(f, Committed):
        rows = sum([c.deletes + c.updates for c in f.rows.values()])
        return rows + (_DROPS if f.dropped or f.dropped_databases else 0)
    drops = any(c.kind not in ROW_KINDS for c in f.changes)
    return f.rows + (_DROPS if drops else 0)


class Largest:
    """The :data:`LARGEST` heaviest of what is :meth:`add`-ed, oldest first added first."""

    def __init__(self, size: int = LARGEST) -> None:
        self._size = size
        self._heap: list[tuple[int, int, Kept]] = []  # (weight, -order, kept): the lightest first
        self._n = 0

    def add(self, f: Kept) -> None:
        w = weight(f)
        heap = self._heap
        if len(heap) == self._size and w <= heap[0][0]:
            return  # no heavier than the lightest kept, which came earlier
        self._n += 1
        if len(heap) < self._size:
            heapq.heappush(heap, (w, -self._n, f))
        else:
            heapq.heapreplace(heap, (w, -self._n, f))

    def ordered(self) -> list[Kept]:
        """The heaviest first; among equals the one added first."""
        return [f for _, _, f in sorted(self._heap, key=lambda e: (e[0], e[1]), reverse=True)]
