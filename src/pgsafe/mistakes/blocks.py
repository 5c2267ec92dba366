"""pg_waldump's output read a block of lines at a time, the work per record done in C (pure).

A busy server's WAL is mostly heap rows (pgbench: three UPDATEs and an INSERT per
transaction, then its COMMIT): read a line at a time in Python, that was three quarters
of the time of ``pgsafe mistakes`` (``benchmarks/results/2026-12-03-mistakes-speed.md``).
Here a block of whole lines (a few MiB) is read so:

* the DELETE / UPDATE / HOT_UPDATE lines are matched over the whole block by one regular
  expression and counted per (transaction, relfilenode, kind) by :class:`~collections.Counter`
  (both in C), then added to the transactions in flight once per key, not per line;
* the INSERT lines only matter to a transaction that made a relfilenode
  (:meth:`Collector.written`): they are matched only while one is in flight;
* the few other lines that can matter (COMMIT / ABORT, Database, MultiXact, XLOG FPI,
  heap TRUNCATE) are found by another expression and read in order, one by one, as before
  (:func:`~pgsafe.mistakes.records.parse_line`);
* a ``Storage`` line (a new relfilenode: an INSERT after it may count) cuts the block in
  two pieces read one after the other, so that nothing is counted before it.

Counting a piece's rows before reading its COMMIT / ABORT lines gives what reading the
lines in order gives, because a transaction writes nothing after its commit or abort.
A block that is not wholly inside the LSNs to read (the first segment of a batch, read
already with the batch before; a timeline's limits) is read a line at a time
(:func:`read_lines`); one wholly outside is skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pgsafe.mistakes.collect import Collector, Committed
from pgsafe.mistakes.records import heap_row, parse_line

# Each expression starts with the newline before its line (a literal the engine looks
# for fast; the block is read with a newline put before it).
# The groups: xid, "D" for a DELETE ("" for an update), TABLESPACE/DATABASE/RELFILENODE
# (the expression of records.heap_row, over a block: a field cannot run into the next line).
_ROWS = re.compile(
    r"\nrmgr: Heap +len \(rec/tot\):[^,\n]*, tx: +(\d+), lsn: [0-9A-F]+/[0-9A-F]+,"
    r" prev [^,\n]*, desc: (?:(D)ELETE|UPDATE|HOT_UPDATE)[ +][^\n]*rel (\d+/\d+/\d+)"
)
_INSERTS = re.compile(
    r"\nrmgr: Heap +len \(rec/tot\):[^,\n]*, tx: +(\d+), lsn: [0-9A-F]+/[0-9A-F]+,"
    r" prev [^,\n]*, desc: INSERT[ +][^\n]*?rel \d+/(\d+)/(\d+)"
)
# the other lines parse_line may read as a record (a superset): COMMIT / ABORT, a plain
# one's fields in the groups 1-5 (the expression of records.parse_line with nothing
# after the time: no relfilenode dropped, no subtransaction), any other whole in group 6
_XACTS = re.compile(
    r"\nrmgr: Transaction[^\S\n]+len \(rec/tot\):[^\S\n]*\d+/[^\S\n]*\d+, tx:[^\S\n]*(\d+),"
    r" lsn: ([0-9A-F]+)/([0-9A-F]+), prev [0-9A-F]+/[0-9A-F]+, desc: (COMMIT|ABORT)"
    r" (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC(?=\n|$)"
    r"|\n(rmgr: Transaction [^\n]*desc: (?:COMMIT|ABORT)[^\n]*)"
)
# ... and the rare ones (the first, Storage lines, cut the block), looked for first by
# one search (_ANY_RARE: its literal start is found fast) and "desc: TRUNCATE" in the block
_RARE = (
    re.compile(r"\n(rmgr: Storage [^\n]*)"),
    re.compile(r"\n(rmgr: Database [^\n]*)"),
    re.compile(r"\n(rmgr: MultiXact [^\n]*)"),
    re.compile(r"\n(rmgr: XLOG [^\n]*desc: FPI [^\n]*)"),
)
_ANY_RARE = re.compile(r"\nrmgr: (?:Storage |Database |MultiXact |XLOG [^\n]*desc: FPI )")
_TRUNCATE = re.compile(r"\n(rmgr: Heap [^\n]*desc: TRUNCATE[^\n]*)")
_LSN = re.compile(r"rmgr: [^\n]*?, lsn: ([0-9A-F]+)/([0-9A-F]+),")

Take = Callable[[Committed], None]


@dataclass(frozen=True)
class Window:
    """The LSNs to read: after ``after`` (read already), from ``begin``, before ``end``."""

    after: int
    begin: int
    end: int | None

    def has(self, lsn: int) -> bool:
        return lsn > self.after and lsn >= self.begin and (self.end is None or lsn < self.end)


def read_block(block: str, collector: Collector, window: Window, take: Take) -> int | None:
    """Feed ``block`` (whole lines, in LSN order) to ``collector``; each transaction that
    commits is passed to ``take``.  The LSN of the last record fed, if any."""
    span = _span(block)
    if span is None:
        return None  # no record at all
    lo, hi = span
    if window.has(lo) and window.has(hi):
        _read_whole("\n" + block, collector, take)
        return _last_fed(block)
    if hi <= window.after or hi < window.begin or (window.end is not None and lo >= window.end):
        return None
    return read_lines(block.splitlines(keepends=True), collector, window, take)


def read_lines(lines: Iterable[str], collector: Collector, window: Window,
               take: Take) -> int | None:  # fmt: skip
    """Feed ``lines`` one by one (the records in ``window`` only); the LSN of the last
    record fed, if any.  Heap row lines take the fast path (:func:`heap_row`,
    :meth:`Collector.row`)."""
    last = None
    for line in lines:
        if line.startswith("rmgr: Heap "):
            row = heap_row(line)
            if row is not None:
                if window.has(row[2]) and row[1]:
                    collector.row(*row)
                    last = row[2]
                continue
        r = parse_line(line)
        if r is None or not window.has(r.lsn):
            continue
        last = r.lsn
        done = collector.add(r)
        if done is not None:
            take(done)
    return last


def _read_whole(text: str, collector: Collector, take: Take) -> None:
    """A block whose records are all to be read (``text`` starts with a newline)."""
    rare = [m for r in _RARE for m in r.finditer(text)] if _ANY_RARE.search(text) else []
    if "desc: TRUNCATE" in text:
        rare += _TRUNCATE.finditer(text)
    if not rare:
        if collector.settles:
            if collector.creating:
                collector.written(set(_INSERTS.findall(text)))
            collector.settle(_ROWS.findall(text), _XACTS.findall(text),
                             lambda line: _read_event(line, collector, take), take)  # fmt: skip
            return
        _read_piece(text, 0, len(text), collector)
        _read_xacts(_XACTS.findall(text), collector, take)
        return
    events = sorted([*_XACTS.finditer(text), *rare], key=lambda m: m.start())
    pos = 0
    i = 0
    for cut in [m.start() for m in events if m.re is _RARE[0]] + [len(text)]:
        _read_piece(text, pos, cut, collector)
        while i < len(events) and events[i].start() <= cut:
            m = events[i]
            if m.re is _XACTS:
                _read_xacts([m.groups()], collector, take)  # type: ignore[list-item]
            else:
                _read_event(m.group(1), collector, take)
            i += 1
        pos = cut


def _read_piece(text: str, pos: int, end: int, collector: Collector) -> None:
    """The heap rows of ``text[pos:end]``, which holds no Storage line."""
    collector.count_rows(Counter(_ROWS.findall(text, pos, end)))
    if collector.creating:
        collector.written(set(_INSERTS.findall(text, pos, end)))


def _read_xacts(found: Iterable[tuple[str, str, str, str, str, str]], collector: Collector,
                take: Take) -> None:  # fmt: skip
    """COMMIT / ABORT lines as :data:`_XACTS` finds them."""
    end = collector.end
    for x, hi, lo, kind, when, line in found:
        if line:
            _read_event(line, collector, take)
            continue
        lsn = (int(hi, 16) << 32) | int(lo, 16)
        time = datetime.fromisoformat(when).replace(tzinfo=UTC)
        done = end(kind == "COMMIT", int(x), lsn, time)
        if done is not None:
            take(done)


def _read_event(line: str, collector: Collector, take: Take) -> bool:
    """One line read in order; whether it was a record that matters."""
    r = parse_line(line)
    if r is None:
        return False
    done = collector.add(r)
    if done is not None:
        take(done)
    return True


def _lsn(m: re.Match[str]) -> int:
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def _lines_back(block: str) -> Iterable[str]:
    """The lines of ``block``, last first."""
    end = len(block)
    while end > 0:
        start = block.rfind("\n", 0, end - 1) + 1
        yield block[start:end]
        end = start


def _span(block: str) -> tuple[int, int] | None:
    """The LSNs of the first and the last line that have one."""
    first = _LSN.search(block)
    if first is None:
        return None
    for line in _lines_back(block):
        m = _LSN.match(line)
        if m is not None:
            return _lsn(first), _lsn(m)
    raise AssertionError("unreachable: the first line with an LSN is a line")  # pragma: no cover


def _last_fed(block: str) -> int | None:
    """The LSN of the block's last record that is fed (what :func:`read_lines` returns)."""
    for line in _lines_back(block):
        if line.startswith("rmgr: Heap "):
            row = heap_row(line)
            if row is not None:
                if row[1]:
                    return row[2]
                continue
        r = parse_line(line)
        if r is not None:
            return r.lsn
    return None
