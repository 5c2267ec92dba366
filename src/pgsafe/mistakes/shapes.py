"""Transactions that only deleted or changed rows, judged once per shape.

A busy server's WAL is mostly small transactions that change the same few tables the
same way (pgbench: an UPDATE of three tables, a million times a day).  With no
``--min-rows`` every one of them is a candidate, and naming and classifying each
(:func:`~pgsafe.mistakes.classify.classify`, then the :class:`Filter`) cost three times
the rest of the scan (``benchmarks/results/2026-12-03-mistakes-day.md``).

Whether such a transaction is listed depends only on its *shape* (the relations it
touched, in order, and whether it deleted and whether it updated rows in each), its
xid and commit time, and its row counts.  So the shape is judged once: which of its
relations are user tables the filters keep, and whose rows count towards
``--min-rows``; each transaction of that shape is then judged by its time and counts
alone.  The kept ones are classified whole at the end, only the newest ``--limit`` of
them (:mod:`pgsafe.mistakes.scan`).

A shape is judged so only when every relation in it is named the same whatever the
time (:meth:`Namer.steady`: a live table, or a relfilenode the catalog maps agree on);
else, and for a transaction that dropped something, :meth:`Shapes.judge` says None and
the transaction is classified whole, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pgsafe.mistakes.classify import database_of, row_owner
from pgsafe.mistakes.collect import Committed, LocalRows, RelKey
from pgsafe.mistakes.filters import Filter
from pgsafe.mistakes.model import ChangeKind, TableChange
from pgsafe.mistakes.naming import Namer

MAX_SHAPES = 4096  # shapes remembered (a day of pgbench has a handful); then forgotten
# a shape: per relation touched, in order, its tablespace, and whether rows were
# deleted, and updated, there
Shape = tuple[tuple[RelKey, int, bool, bool], ...]


@dataclass(frozen=True)
class _Verdict:
    """A shape's: ``counted`` the (relation, deletes?) whose rows count towards
    ``--min-rows`` -- empty when no transaction of the shape is listed -- or ``steady``
    False when the shape cannot be judged once (its transactions are classified)."""

    counted: tuple[tuple[RelKey, bool], ...] = ()
    steady: bool = True


_UNSTEADY = _Verdict(steady=False)
_NEVER = _Verdict()


class Shapes:
    """The verdict on each shape met, for one request's filter."""

    def __init__(self, namer: Namer, keep: Filter) -> None:
        self._namer = namer
        self._keep = keep
        self._seen: dict[Shape, _Verdict] = {}
        self._local: dict[LocalRows, _Verdict] = {}
        self._timed = keep.since is not None or keep.until is not None or keep.xid is not None

    def judge(self, t: Committed) -> bool | None:
        """Whether ``classify(t)`` is a mistake the filter keeps; None when ``t`` is not
        judged by its shape (it dropped something, or a relation's name depends on the
        time): classify it."""
        if t.dropped or t.dropped_databases:
            return None
        shape = _shape(t)
        v = self._seen.get(shape)
        if v is None:
            if len(self._seen) >= MAX_SHAPES:
                self._seen.clear()
            v = self._seen[shape] = self._verdict(t, shape)
        if not v.steady:
            return None
        if not v.counted or not self._keep.in_window(t.xid, t.time):
            return False
        if self._keep.min_rows <= 1:
            return True  # each relation counted has a row of its kind
        rows = t.rows
        total = sum([rows[k].deletes if d else rows[k].updates for k, d in v.counted])
        return total >= self._keep.min_rows

    def judge_local(self, rows: LocalRows, made: Callable[[], Committed]) -> bool | None:
        """:meth:`judge` for a transaction that wrote and committed within one block, by
        its rows as counted there (``made`` makes it; called only when the shape is new,
        or when its time is to be tested); only when ``--min-rows`` is 1 or less."""
        v = self._local.get(rows)
        t = None
        if v is None:
            if len(self._local) >= MAX_SHAPES:
                self._local.clear()
            t = made()
            if t.dropped or t.dropped_databases:  # pragma: no cover - a local has none
                return None
            v = self._local[rows] = self._verdict(t, _shape(t))
        if not v.steady:
            return None
        if not v.counted:
            return False
        if self._timed:
            t = t or made()
            return self._keep.in_window(t.xid, t.time)
        return True

    def _verdict(self, t: Committed, shape: Shape) -> _Verdict:
        """What :func:`classify` and the filter make of every transaction of ``shape``
        (``t`` is one), but for its time and counts."""
        namer, keep = self._namer, self._keep
        if not all(db == 0 or namer.steady(db, ts, rfn) for (db, rfn), ts, _, _ in shape):
            return _UNSTEADY
        changes: list[tuple[RelKey, bool, TableChange]] = []
        for key, ts, deleted, updated in shape:
            listed, table = row_owner(namer, key[0], ts, key[1], t.time)
            if listed and deleted:
                changes.append((key, True, TableChange(ChangeKind.DELETE, key[1], table, 1)))
            if listed and updated:
                changes.append((key, False, TableChange(ChangeKind.UPDATE, key[1], table, 1)))
        if not changes:
            return _NEVER  # classify makes nothing of it
        if keep.database_oids is not None and database_of(t) not in keep.database_oids:
            return _NEVER
        kept = keep.kept_changes(tuple(c for _, _, c in changes))
        return _Verdict(tuple((key, d) for key, d, c in changes if c in kept))


def _shape(t: Committed) -> Shape:
    ts = t.tablespaces
    return tuple([(k, ts.get(k, 0), c.deletes > 0, c.updates > 0) for k, c in t.rows.items()])
