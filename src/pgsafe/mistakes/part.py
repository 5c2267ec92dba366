"""One batch of segments read by pg_waldump in a worker process (pure but for it).

Reading pg_waldump's text is most of a scan's time (about 5 µs a line in Python, 1.6
million lines for 16 segments of pgbench WAL, against 1.6 s for pg_waldump and 0.5 s to
decode the segments from the repository: ``benchmarks/results/2026-12-03-mistakes-
speed.md``), so batches are read in parallel, each by a worker process of its own.  A
worker cannot finish a transaction whose records began in an earlier batch: it returns
its batch's part of every transaction and the COMMIT / ABORT records, in WAL order
(:class:`Part`), which the scan puts together batch after batch
(:meth:`pgsafe.mistakes.collect.Collector.absorb`).

Batches overlap by one segment (:func:`pgsafe.mistakes.segments.batches`); each record
belongs to one batch by its LSN (``lo`` <= LSN < ``hi``): the records that begin in the
shared segment are the later batch's, which reads whole those that cross out of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pgsafe.errors import PgsafeError
from pgsafe.mistakes.collect import Collector, Pending
from pgsafe.mistakes.records import Record, heap_row, parse_line
from pgsafe.pg.waldump import dump

RMGRS = ("Heap", "Transaction", "Storage", "Database", "XLOG", "MultiXact")


@dataclass(frozen=True)
class Job:
    """Segments ``first`` .. ``last`` in ``folder``; the records with ``lo`` <= LSN <
    ``hi`` (None: no end) are this batch's."""

    folder: str
    first: str
    last: str
    major: int | None
    lo: int
    hi: int | None


@dataclass
class Part:
    pending: dict[int, Pending] = field(default_factory=dict)
    ends: list[Record] = field(default_factory=list)
    last_lsn: int | None = None
    last_time: datetime | None = None  # of the batch's last COMMIT / ABORT
    error: str | None = None  # pg_waldump failed (the scan raises it)


def feed(lines: Iterable[str], collector: Collector, lo: int, hi: int | None) -> None:
    """The batch's records into ``collector``; heap row lines (most of them) take the
    fast path (:func:`heap_row`, :meth:`Collector.row`)."""
    end = (1 << 64) if hi is None else hi
    for line in lines:
        if line.startswith("rmgr: Heap "):
            row = heap_row(line)
            if row is not None:
                if lo <= row[2] < end and row[1]:
                    collector.row(*row)
                continue
        r = parse_line(line)
        if r is not None and lo <= r.lsn < end:
            collector.add(r)


def read(job: Job) -> Part:
    """Run pg_waldump over the job's segments; the batch's part (runs in a worker)."""
    c = Collector(deferred=True)
    try:
        with dump(job.folder, job.first, job.last, major=job.major, rmgrs=RMGRS) as d:
            feed(d.lines, c, job.lo, job.hi)
        d.check()
    except PgsafeError as exc:
        return Part(error=str(exc))
    return Part(c.pending, c.ends, c.last_lsn, c.last_time)
