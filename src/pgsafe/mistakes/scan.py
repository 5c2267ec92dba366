"""``pgsafe mistakes``: the destructive transactions of a window of WAL.

The window starts at the newest base backup (or, with ``since``, the newest one
started before it; the oldest archived segment when none is) and ends at the end of
the archived WAL, or of the live server's ``pg_wal`` when it is reachable.  The
segments are read in batches by one pg_waldump each (:mod:`pgsafe.mistakes.segments`),
its records grouped per transaction (:mod:`~pgsafe.mistakes.collect`), named
(:mod:`~pgsafe.mistakes.naming`) and classified (:mod:`~pgsafe.mistakes.classify`).
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pgsafe.errors import BadInput, ConnectionFailed
from pgsafe.mistakes import segments
from pgsafe.mistakes.blocks import Window, read_block
from pgsafe.mistakes.classify import classify
from pgsafe.mistakes.collect import Collector, Committed, LocalCommit, LocalRows
from pgsafe.mistakes.filters import Filter
from pgsafe.mistakes.largest import Largest
from pgsafe.mistakes.live import LiveServer
from pgsafe.mistakes.model import Mistake, MistakeReport, MistakeRequest
from pgsafe.mistakes.naming import Namer, load_maps, unnamed_notes
from pgsafe.mistakes.segments import Source, batches, fill, runs
from pgsafe.mistakes.shapes import Shapes
from pgsafe.mistakes.window import Start, plan_sources, start_of
from pgsafe.pg.waldump import dump
from pgsafe.repo.repository import Repository
from pgsafe.wal import names, server_record

__all__ = ["MistakeReport", "MistakeRequest", "find_mistakes"]

RMGRS = ("Heap", "Transaction", "Storage", "Database", "XLOG", "MultiXact")
UNTIL_SLACK = timedelta(seconds=60)  # commit times in WAL order are nearly sorted


def _open_live(request: MistakeRequest, notes: list[str]) -> LiveServer | None:
    """The live server; through its ``postgres`` database when the one named cannot be
    reached (it may be the database that was dropped)."""
    if request.conninfo is None:
        return None
    try:
        return LiveServer(request.conninfo)
    except ConnectionFailed as exc:
        first = exc
    try:
        return LiveServer(request.conninfo, dbname="postgres")
    except ConnectionFailed:
        pass
    if not request.live_optional:
        raise first
    notes.append(f"the live server is not reachable ({first}): tables are named from the"
                 " catalog maps only, and WAL not archived yet is not read")  # fmt: skip
    return None


def _check_system(live: LiveServer, repo: Repository) -> None:
    record = server_record.load(repo)
    if record is not None and live.system_identifier() != record.system_identifier:
        raise BadInput(
            f"the live server is not the server whose WAL is archived as {repo.server!r}"
            f" (system identifier {live.system_identifier()}, archived"
            f" {record.system_identifier})",
            hint="connect to that server (-d/-h/-p), or pass --server NAME",
        )


@dataclass
class _Scan:
    """The state of one scan over all batches."""

    start: Start
    keep: Filter
    namer: Namer
    found: deque[Mistake | Committed | LocalCommit]  # the newest kept (classified at the end)
    command: str = "pgsafe"  # how each undo command line starts
    omitted: int = 0
    segments: int = 0
    live_segments: int = 0
    collector: Collector = field(default_factory=Collector)
    run_last: int | None = None  # LSN of the last record read in the current run
    stop: bool = False

    def __post_init__(self) -> None:
        self.collector.wanted = self.wanted
        self.collector.fewest_rows = max(1, self.keep.fewest_rows())
        self.collector.only_xid = self.keep.xid
        self.shapes = Shapes(self.namer, self.keep)
        self._largest = Largest()
        if self.collector.fewest_rows <= 1 and self.keep.xid is None:
            self.collector.local = self.local

    def wanted(self, xid: int, lsn: int, rows: int) -> bool:
        """What :meth:`take` tests first, for a commit that drops nothing."""
        return lsn >= self.start.lsn and self.keep.may_keep(rows, False, xid)

    def take(self, c: Committed) -> None:
        if c.lsn < self.start.lsn:
            return  # committed before the window (read with the segment it starts in)
        kept = self.shapes.judge(c)
        if kept is not None:
            if kept:
                self._keep(c)  # classified at the end, if still among the newest
            return
        rows = sum(n.deletes + n.updates for n in c.rows.values())
        if not self.keep.may_keep(rows, bool(c.dropped or c.dropped_databases), c.xid):
            return
        m = classify(c, self.namer, self.command)
        if m is not None and self.keep(m):
            self._keep(m)

    def local(self, x: str, hi: str, lo: str, when: str, rows: LocalRows) -> None:
        """A transaction that wrote and committed within one block (the most of a busy
        WAL's), judged by its shape; made a :class:`Committed` only if need be."""
        lsn = (int(hi, 16) << 32) | int(lo, 16)
        if lsn < self.start.lsn:
            return

        def made() -> Committed:
            return self.collector.made(x, hi, lo, when, rows)

        kept = self.shapes.judge_local(rows, made)
        if kept is None:
            self.take(made())
        elif kept:
            self._keep(LocalCommit(x, hi, lo, when, rows))

    def _keep(self, m: Mistake | Committed | LocalCommit) -> None:
        if self.found.maxlen is not None and len(self.found) == self.found.maxlen:
            self.omitted += 1
            self._largest.add(self.found[0])  # the oldest, about to leave the newest
        self.found.append(m)

    def _made(self, f: Mistake | Committed | LocalCommit) -> Mistake:
        """A kept one, classified (what the shapes judged is classified now)."""
        if isinstance(f, LocalCommit):
            f = self.collector.made(*f)
        m = f if isinstance(f, Mistake) else classify(f, self.namer, self.command)
        if m is None:  # pragma: no cover - Shapes.judge said classify makes one
            raise AssertionError(f"transaction {f.xid} was judged a mistake by its shape")
        return m

    def mistakes(self) -> list[Mistake]:
        return [self._made(f) for f in self.found]

    def largest_omitted(self) -> tuple[Mistake, ...]:
        return tuple(self._made(f) for f in self._largest.ordered())


def _feed(blocks: Iterable[str], scan: _Scan, first: Source) -> None:
    """The batch's records that are this timeline's and not read before, into the
    collector; what commits is classified and kept.  Read a block of lines at a time
    (:mod:`pgsafe.mistakes.blocks`)."""
    window = Window(-1 if scan.run_last is None else scan.run_last, first.begin, first.end)
    collector = scan.collector

    for block in blocks:
        last = read_block(block, collector, window, scan.take)
        if last is not None:
            scan.run_last = collector.last_lsn = last


@dataclass(frozen=True)
class _Reading:
    """How every batch is read: the repository, segment size, pg_waldump's major and the
    end of the window."""

    repo: Repository
    size: int
    major: int | None
    until: datetime | None


def _read_batch(scan: _Scan, how: _Reading, folder: str, batch: list[Source],
                got: list[str]) -> None:  # fmt: skip
    """Read one batch whose segments ``got`` are in ``folder``."""
    if not got:
        return
    scan.collector.timeline = batch[0].timeline
    spool = folder + ".out"  # pg_waldump's output, read as it grows (pgsafe.pg.waldump)
    with dump(folder, got[0], got[-1], major=how.major, rmgrs=RMGRS, spool=spool) as d:
        _feed(d.blocks, scan, batch[0])
        t = scan.collector.last_time
        if how.until is not None and t is not None and t > how.until + UNTIL_SLACK:
            d.stop()
            scan.stop = True
    d.check()
    for s in batch[: len(got)]:
        if s.live_folder:
            scan.live_segments += 1
        else:
            scan.segments += 1


def _read_all(scan: _Scan, how: _Reading, sources: list[Source], tmp: str) -> None:
    """Every batch, in order; the next batch's segments are fetched (decoded from the
    repository) in a thread while pg_waldump reads this one, into the other of two
    folders."""
    todo = [
        (i == 0, b) for run in runs(sources) for i, b in enumerate(batches(run, segments.BATCH))
    ]
    folders = [os.path.join(tmp, "a"), os.path.join(tmp, "b")]
    for f in folders:
        os.mkdir(f, 0o700)
    with ThreadPoolExecutor(1, thread_name_prefix="mistakes-fetch") as ahead:
        nxt = ahead.submit(fill, how.repo, todo[0][1], folders[0], how.size)
        for i, (first_in_run, batch) in enumerate(todo):
            got = nxt.result()
            if i + 1 < len(todo):
                nxt = ahead.submit(fill, how.repo, todo[i + 1][1], folders[(i + 1) % 2], how.size)
            if first_in_run:
                scan.run_last = None
            _read_batch(scan, how, folders[i % 2], batch, got)
            if scan.stop:
                return


def find_mistakes(repo: Repository, request: MistakeRequest) -> MistakeReport:
    """The destructive transactions of the window ``request`` names (see the module)."""
    record = server_record.load(repo)
    size = record.wal_segment_size if record else names.DEFAULT_SEGMENT_SIZE
    major = record.pg_major if record else None
    notes: list[str] = []
    live = _open_live(request, notes)
    try:
        if live is not None:
            _check_system(live, repo)
        maps = load_maps(repo)
        notes += maps.notes
        namer = Namer(live, maps)
        keep = Filter.of(request, namer)
        start = start_of(repo, request.since, size)
        sources = plan_sources(repo, start, size, live, notes)
        scan = _Scan(start, keep, namer, deque(maxlen=request.limit), request.command)
        how = _Reading(repo, size, major, request.until)
        with tempfile.TemporaryDirectory(prefix="pgsafe-mistakes-") as tmp:
            _read_all(scan, how, sources, tmp)
        found = scan.mistakes()
        largest = scan.largest_omitted()
    finally:
        if live is not None:
            live.close()
    ordered = tuple(sorted(found, key=lambda m: (m.commit_time, names.parse_lsn(m.lsn))))
    notes += unnamed_notes(ordered)
    last = scan.collector.last_lsn
    return MistakeReport(
        start_time=request.since or start.time, end_time=scan.collector.last_time,
        start_lsn=names.format_lsn(start.lsn),
        end_lsn=names.format_lsn(last) if last is not None else None,
        backup_id=start.backup_id, segments=scan.segments, live_segments=scan.live_segments,
        mistakes=ordered, omitted=scan.omitted, notes=tuple(notes),
        largest_omitted=largest,
    )  # fmt: skip
