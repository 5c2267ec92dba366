"""Group WAL records per transaction, and keep the committed destructive ones (pure).

Records of a transaction are kept until its COMMIT or ABORT; a subtransaction's
records join its top transaction when the commit lists it (``subxacts: ...``), and are
forgotten when it aborts on its own (``ROLLBACK TO SAVEPOINT``, an exception block).
A transaction's subtransaction ids (from its commit) and the multixacts its updates
made (a row another transaction had locked gets one as its ``xmax``) come out with it:
the undo finds the rows it deleted or changed by those ``xmax`` too.
Only transactions that deleted or changed rows, dropped relfilenodes or dropped a
database come out (:class:`Committed`); the rest is forgotten at once, so memory
holds the transactions in flight, not the window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import NamedTuple

from pgsafe.mistakes.records import Op, Record

RelKey = tuple[int, int]  # (database oid, relfilenode)
# heap rows as pg_waldump writes them: xid, "D" for a DELETE ("" for an update),
# TABLESPACE/DATABASE/RELFILENODE (mistakes.blocks matches them so, in C)
RowText = tuple[str, str, str]
InsertText = tuple[str, str, str]  # xid, database, relfilenode of an INSERT
# a COMMIT / ABORT line as mistakes.blocks matches it: xid, LSN's two halves, "COMMIT" or
# "ABORT", time, and "" -- or only the whole line (last) when it holds more than the time
XactText = tuple[str, str, str, str, str, str]
# whether a plain commit (xid, lsn, rows deleted or updated) may be of use: when not, no
# Committed is made of it (the caller's cheap test, made for each of a busy WAL's commits)
Wanted = Callable[[int, int, int], bool]

Take = Callable[["Committed"], None]  # what a caller does with a transaction that committed
# a transaction that wrote and committed within one block: its xid, its COMMIT's LSN
# halves and time (as pg_waldump wrote them), and its rows as counted there: per
# relation and kind, ("D" or "", TABLESPACE/DATABASE/RELFILENODE, rows)
LocalRows = tuple[tuple[str, str, int], ...]
Local = Callable[[str, str, str, str, LocalRows], None]


class LocalCommit(NamedTuple):
    """A transaction :attr:`Collector.local` was given, kept as read (:meth:`Collector.made`
    makes it a :class:`Committed`)."""

    x: str
    hi: str
    lo: str
    when: str
    rows: LocalRows


_NONE: frozenset[RelKey] = frozenset()


@dataclass
class Counts:
    deletes: int = 0
    updates: int = 0


@dataclass(slots=True)
class _Pending:
    rows: dict[RelKey, Counts] = field(default_factory=dict)
    tablespaces: dict[RelKey, int] = field(default_factory=dict)
    created: set[RelKey] = field(default_factory=set)
    written: set[RelKey] = field(default_factory=set)  # created ones that got data
    truncate_record: bool = False
    dropped_databases: list[int] = field(default_factory=list)
    multixacts: list[int] = field(default_factory=list)

    def merge(self, other: _Pending) -> None:
        for key, c in other.rows.items():
            mine = self.rows.setdefault(key, Counts())
            mine.deletes += c.deletes
            mine.updates += c.updates
        self.tablespaces.update(other.tablespaces)
        self.created |= other.created
        self.written |= other.written
        self.truncate_record |= other.truncate_record
        self.dropped_databases += other.dropped_databases
        self.multixacts += other.multixacts


@dataclass(slots=True)
class Committed:
    """A committed transaction that may have destroyed data (named later).  Not changed
    once made (not frozen: a busy WAL makes a million of them, and a frozen one costs
    four times as much to make)."""

    xid: int
    lsn: int
    time: datetime
    timeline: int
    rows: dict[RelKey, Counts]
    tablespaces: dict[RelKey, int]
    dropped: tuple[RelKey, ...]
    created: frozenset[RelKey]
    written: frozenset[RelKey]
    truncate_record: bool
    dropped_databases: tuple[int, ...]
    subxacts: tuple[int, ...] = ()  # its committed subtransactions
    multixacts: tuple[int, ...] = ()  # made by its (sub)transactions' updates


class Collector:
    """Feed it records in WAL order (:meth:`feed`); it yields what committed."""

    def __init__(self, timeline: int = 1, wanted: Wanted | None = None) -> None:
        self.timeline = timeline
        self.wanted = wanted
        # what ``wanted`` needs at least (:meth:`settle`): rows deleted or updated, and
        # the one xid it may want (None: any)
        self.fewest_rows = 1
        self.only_xid: int | None = None
        # what is done instead with a transaction that writes and commits in one block
        # (:meth:`settle`; None: it is made a Committed like any other)
        self.local: Local | None = None
        self._pending: dict[int, _Pending] = {}
        self._creators: set[int] = set()  # the xids in flight that made a relfilenode
        self._rels: dict[str, tuple[int, RelKey]] = {}  # TS/DB/RFN: (tablespace, key)
        self.last_lsn: int | None = None  # of the last record fed
        self.last_time: datetime | None = None  # of the last commit or abort

    def _get(self, xid: int) -> _Pending:
        p = self._pending.get(xid)
        if p is None:
            p = self._pending[xid] = _Pending()
        return p

    def feed(self, records: Iterable[Record]) -> Iterator[Committed]:
        for r in records:
            done = self.add(r)
            if done is not None:
                yield done

    def add(self, r: Record) -> Committed | None:
        """Take one record; what committed with it (a COMMIT's transaction), if any."""
        self.last_lsn = r.lsn
        if r.op in (Op.COMMIT, Op.ABORT):
            return self._end(r)
        if r.xid == 0:
            return None
        if r.op in (Op.DELETE, Op.UPDATE, Op.INSERT, Op.PAGE):
            assert r.rel is not None
            self.row(r.op, r.xid, r.lsn, r.rel.tablespace, r.rel.database, r.rel.relfilenode)
        elif r.op is Op.CREATE:
            assert r.rel is not None
            self._get(r.xid).created.add((r.rel.database, r.rel.relfilenode))
            self._creators.add(r.xid)
        elif r.op is Op.TRUNCATE:
            self._get(r.xid).truncate_record = True
        elif r.op is Op.DROP_DATABASE:
            self._get(r.xid).dropped_databases.append(r.database)
        elif r.op is Op.MULTI:
            self._get(r.xid).multixacts.append(r.multixact)
        return None

    def row(self, op: Op, xid: int, lsn: int, tablespace: int, db: int, rfn: int) -> None:
        """A row deleted or updated (counted), or written (INSERT, a page: noted only in a
        relfilenode the transaction made).  The fast path of :meth:`add`, without a
        :class:`Record`, for lines read one by one (a block's rows: :meth:`count_rows`)."""
        self.last_lsn = lsn
        if op is Op.INSERT or op is Op.PAGE:
            got = self._pending.get(xid)
            if got is not None and got.created and (db, rfn) in got.created:
                got.written.add((db, rfn))
            return
        p = self._pending.get(xid)
        if p is None:
            p = self._pending[xid] = _Pending()
        key = (db, rfn)
        c = p.rows.get(key)
        if c is None:
            c = p.rows[key] = Counts()
            p.tablespaces[key] = tablespace
        if op is Op.DELETE:
            c.deletes += 1
        else:
            c.updates += 1

    def count_rows(self, counted: Mapping[RowText, int]) -> None:
        """Rows deleted or updated, counted per transaction, relfilenode and kind: what
        :meth:`row` does for each (but :attr:`last_lsn`, not known here)."""
        pending, rels = self._pending, self._rels
        for (x, d, rel), n in counted.items():
            xid = int(x)
            if not xid:
                continue
            p = pending.get(xid)
            if p is None:
                p = pending[xid] = _Pending()
            got = rels.get(rel)
            if got is None:
                ts, db, rfn = (int(v) for v in rel.split("/"))
                got = rels[rel] = (ts, (db, rfn))
            key = got[1]
            c = p.rows.get(key)
            if c is None:
                c = p.rows[key] = Counts()
                p.tablespaces[key] = got[0]
            if d:
                c.deletes += n
            else:
                c.updates += n

    @property
    def settles(self) -> bool:
        """Whether :meth:`settle` pays: ``wanted`` refuses some transactions with rows."""
        return self.fewest_rows > 1 or self.only_xid is not None or self.local is not None

    def settle(self, rows: Sequence[RowText], xacts: Sequence[XactText],
               event: Callable[[str], bool], take: Take) -> None:  # fmt: skip
        """A piece of WAL's heap rows, then its COMMIT / ABORT lines: what
        :meth:`count_rows` and :meth:`end` do with them (``event`` reads a line with more
        than the time; True when it was a record), without visiting a transaction that
        both writes and ends here by a plain COMMIT / ABORT and has fewer rows than
        :attr:`fewest_rows` (or is not :attr:`only_xid`): ``wanted`` would refuse it,
        so nothing is made of it.

        The test is made on totals per xid counted in C (most of a busy server's
        transactions are small): only those in flight before, not ended here, or big
        enough get their rows per relfilenode counted (:meth:`count_rows`).

        With :attr:`local` set (every transaction with rows may be wanted), each one
        that writes and commits here by a plain COMMIT is given to it instead, with its
        rows as counted in C: nothing is made of it unless :attr:`local` asks
        (:meth:`made`).
        """
        totals = Counter(map(itemgetter(0), rows))
        ended = {x[0] for x in xacts if not x[5]}
        need = totals.keys() - ended
        need.update(str(x) for x in self._pending)
        mine: dict[str, list[tuple[str, str, int]]] = {}
        if self.local is not None:
            counted = Counter(rows)
            self.count_rows({k: n for k, n in counted.items() if k[0] in need})
            for (x, d, rel), n in counted.items():
                if x not in need:
                    got = mine.get(x)
                    if got is None:
                        mine[x] = [(d, rel, n)]
                    else:
                        got.append((d, rel, n))
        else:
            if max(totals.values(), default=0) >= self.fewest_rows:
                big = {x for x, n in totals.items() if n >= self.fewest_rows}
                need |= big if self.only_xid is None else big & {str(self.only_xid)}
            if need:
                self.count_rows(Counter([r for r in rows if r[0] in need]))
        end, local = self.end, self.local
        skipped = None  # the last plain COMMIT / ABORT, when nothing was read after it
        for xact in xacts:
            x, hi, lo, kind, when, line = xact
            if line:
                if event(line):
                    skipped = None
            elif x in need:
                skipped = None
                done = end(kind == "COMMIT", int(x), (int(hi, 16) << 32) | int(lo, 16),
                           datetime.fromisoformat(when).replace(tzinfo=UTC))  # fmt: skip
                if done is not None:
                    take(done)
            else:
                skipped = xact
                if local is not None and kind == "COMMIT":
                    got = mine.get(x)
                    if got is not None:
                        local(x, hi, lo, when, tuple(got))
        if skipped is not None:  # what end() would have noted
            self.last_lsn = (int(skipped[1], 16) << 32) | int(skipped[2], 16)
            self.last_time = datetime.fromisoformat(skipped[4]).replace(tzinfo=UTC)

    def made(self, x: str, hi: str, lo: str, when: str, rows: LocalRows) -> Committed:
        """The :class:`Committed` a transaction :attr:`local` was given stands for: what
        :meth:`count_rows` and :meth:`end` make of its rows and COMMIT (the collector's
        state unchanged)."""
        p = _Pending()
        for d, rel, n in rows:
            ts, db, rfn = (int(v) for v in rel.split("/"))
            c = p.rows.get((db, rfn))
            if c is None:
                c = p.rows[(db, rfn)] = Counts()
                p.tablespaces[(db, rfn)] = ts
            if d:
                c.deletes += n
            else:
                c.updates += n
        return Committed(
            xid=int(x), lsn=(int(hi, 16) << 32) | int(lo, 16),
            time=datetime.fromisoformat(when).replace(tzinfo=UTC), timeline=self.timeline,
            rows=p.rows, tablespaces=p.tablespaces, dropped=(), created=_NONE, written=_NONE,
            truncate_record=False, dropped_databases=(),
        )  # fmt: skip

    @property
    def creating(self) -> bool:
        """Whether a transaction in flight made a relfilenode (INSERTs may matter)."""
        return bool(self._creators)

    def written(self, inserts: Iterable[InsertText]) -> None:
        """INSERTs: what :meth:`row` does with them (noted in a relfilenode made by
        their transaction), but :attr:`last_lsn`."""
        for x, db, rfn in inserts:
            xid = int(x)
            if xid in self._creators:
                got = self._pending[xid]
                if (int(db), int(rfn)) in got.created:
                    got.written.add((int(db), int(rfn)))

    def end(self, commit: bool, xid: int, lsn: int, time: datetime) -> Committed | None:
        """A COMMIT (else an ABORT) that drops no relfilenode and lists no subtransaction:
        what :meth:`add` does with its record."""
        self.last_lsn = lsn
        self.last_time = time
        p = self._pending.pop(xid, None)
        if p is None or not commit:
            if p is not None and self._creators:
                self._creators.discard(xid)
            return None
        if self._creators:
            self._creators.discard(xid)
        if not p.rows and not p.dropped_databases:
            return None
        if self.wanted is not None and not p.dropped_databases:
            rows = sum([c.deletes + c.updates for c in p.rows.values()])
            if not self.wanted(xid, lsn, rows):
                return None
        return Committed(
            xid=xid, lsn=lsn, time=time, timeline=self.timeline, rows=p.rows,
            tablespaces=p.tablespaces, dropped=(),
            created=frozenset(p.created) if p.created else _NONE,
            written=frozenset(p.written) if p.written else _NONE,
            truncate_record=p.truncate_record, dropped_databases=tuple(p.dropped_databases),
            subxacts=(), multixacts=tuple(p.multixacts),
        )  # fmt: skip

    def _end(self, r: Record) -> Committed | None:
        self.last_time = r.time
        p = self._pending.pop(r.xid, None)
        subs = [self._pending.pop(s, None) for s in r.subxacts]
        if self._creators:
            self._creators.difference_update((r.xid, *r.subxacts))
        if r.op is Op.ABORT or r.time is None:
            return None
        for s in subs:
            if s is not None:
                p = p or _Pending()
                p.merge(s)
        if p is None and not r.dropped:
            return None
        p = p or _Pending()
        if not p.rows and not r.dropped and not p.dropped_databases:
            return None
        return Committed(
            xid=r.xid, lsn=r.lsn, time=r.time, timeline=self.timeline, rows=p.rows,
            tablespaces=p.tablespaces,
            dropped=tuple((d.database, d.relfilenode) for d in r.dropped),
            created=frozenset(p.created), written=frozenset(p.written),
            truncate_record=p.truncate_record, dropped_databases=tuple(p.dropped_databases),
            subxacts=r.subxacts, multixacts=tuple(p.multixacts),
        )  # fmt: skip
