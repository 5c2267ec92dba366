"""Transactions judged by their shape are judged as classifying them one by one would.

``pgsafe mistakes`` with no ``--min-rows`` (every transaction with rows may be listed)
reads the transactions that write and commit within one block of pg_waldump's output
without making them (:attr:`Collector.local`), and judges them, and every other
transaction that only deleted or changed rows, once per shape (:mod:`pgsafe.mistakes.shapes`).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pgsafe.mistakes.blocks import Window, read_block, read_lines
from pgsafe.mistakes.classify import classify
from pgsafe.mistakes.collect import Collector, Committed, Counts, LocalRows
from pgsafe.mistakes.filters import Filter
from pgsafe.mistakes.model import ChangeKind
from pgsafe.mistakes.naming import Maps, Namer
from pgsafe.mistakes.shapes import Shapes
from pgsafe.models.catalogmap import CatalogMap, DatabaseMap, MappedRelation

TEXT = (Path(__file__).parent / "data" / "waldump-pg15-mistakes.txt").read_text()
LINES = TEXT.splitlines(keepends=True)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SHOP, OTHER = 5, 6


def _namer() -> Namer:
    """Two maps: ``orders`` (16390), ``items`` (16392), an index (16391), ``pg_class``
    (1259), and a relfilenode (16500) that was ``public.a`` and later ``public.b``."""

    def cmap(last: str) -> CatalogMap:
        rels = (
            MappedRelation(16384, 16390, "public", "orders", "r"),
            MappedRelation(16385, 16391, "public", "orders_pkey", "i"),
            MappedRelation(16386, 16392, "public", "items", "r"),
            MappedRelation(1259, 1259, "pg_catalog", "pg_class", "r"),
            MappedRelation(16400, 16500, "public", last, "r"),
        )
        return CatalogMap((DatabaseMap(SHOP, "shop", rels), DatabaseMap(OTHER, "other", ())))

    return Namer(None, Maps([(T0 - timedelta(days=2), cmap("a")), (T0, cmap("b"))]))


def _txn(xid: int, rows: dict[tuple[int, int], tuple[int, int]], minutes: int = 0) -> Committed:
    return Committed(
        xid=xid, lsn=1000 + xid, time=T0 + timedelta(minutes=minutes), timeline=1,
        rows={k: Counts(d, u) for k, (d, u) in rows.items()},
        tablespaces={k: 1663 for k in rows}, dropped=(), created=frozenset(),
        written=frozenset(), truncate_record=False, dropped_databases=(),
    )  # fmt: skip


SHAPES = [
    {(SHOP, 16390): (4, 0)},
    {(SHOP, 16390): (0, 1), (SHOP, 16392): (2, 3)},
    {(SHOP, 16391): (0, 7)},  # an index: never listed
    {(SHOP, 1259): (1, 1)},  # a system catalog: never listed
    {(SHOP, 1259): (0, 1), (SHOP, 16392): (1, 0)},
    {(SHOP, 17000): (5, 0)},  # unnamed (made after the backup): listed by relfilenode
    {(0, 1262): (0, 1)},  # a shared catalog
    {(OTHER, 16390): (1, 0)},  # another database, not named there
]
FILTERS = [
    Filter(),
    Filter(min_rows=3),
    Filter(table="items"),
    Filter(table="public.orders", min_rows=2),
    Filter(table="17000"),
    Filter(kinds=frozenset({ChangeKind.DELETE})),
    Filter(kinds=frozenset({ChangeKind.UPDATE}), min_rows=2),
    Filter(kinds=frozenset({ChangeKind.TRUNCATE})),
    Filter(database_oids=frozenset({OTHER})),
    Filter(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)),
    Filter(xid=3),
]


def _classified(t: Committed, namer: Namer, keep: Filter) -> bool:
    m = classify(t, namer)
    return m is not None and keep(m)


def test_a_shape_s_verdict_is_what_classifying_each_transaction_gives() -> None:
    namer = _namer()
    judged = 0
    for keep in FILTERS:
        shapes = Shapes(namer, keep)
        for (i, rows), minutes in itertools.product(enumerate(SHAPES), (0, 1, 3)):
            for xid in (3, 4):
                t = _txn(xid + 10 * i, rows, minutes) if xid == 4 else _txn(3, rows, minutes)
                got = shapes.judge(t)
                assert got == _classified(t, namer, keep), (keep, rows, minutes, t.xid)
                judged += 1
    assert judged == len(FILTERS) * len(SHAPES) * 3 * 2


def test_a_relation_named_differently_over_time_is_classified_one_by_one() -> None:
    namer = _namer()
    shapes = Shapes(namer, Filter(table="b"))
    before, after = _txn(1, {(SHOP, 16500): (1, 0)}, -60 * 24), _txn(2, {(SHOP, 16500): (1, 0)})
    assert shapes.judge(before) is None and shapes.judge(after) is None
    assert not _classified(before, namer, Filter(table="b"))  # it was public.a then
    assert _classified(after, namer, Filter(table="b"))


def test_a_dropping_transaction_is_classified_one_by_one() -> None:
    t = _txn(1, {(SHOP, 16390): (1, 0)})
    dropping = Committed(**{**{f: getattr(t, f) for f in t.__slots__}, "dropped": ((SHOP, 16392),)})
    assert Shapes(_namer(), Filter()).judge(dropping) is None


def _local_rows(t: Committed) -> LocalRows:
    return tuple(
        (d, f"1663/{db}/{rfn}", n)
        for (db, rfn), c in t.rows.items()
        for d, n in (("D", c.deletes), ("", c.updates))
        if n
    )


def test_a_transaction_read_as_local_is_judged_and_made_as_the_whole_one() -> None:
    namer = _namer()
    collector = Collector()
    for keep in FILTERS:
        if keep.min_rows > 1:
            continue  # local reading is for requests of one row or less
        shapes = Shapes(namer, keep)
        for rows, minutes in itertools.product(SHAPES, (0, 1, 3)):
            t = _txn(3, rows, minutes)
            hi, lo = f"{t.lsn >> 32:X}", f"{t.lsn & 0xFFFFFFFF:X}"
            when = t.time.strftime("%Y-%m-%d %H:%M:%S.%f")
            local = _local_rows(t)

            def made(local: LocalRows = local, hi: str = hi, lo: str = lo,
                     when: str = when) -> Committed:  # fmt: skip
                return collector.made("3", hi, lo, when, local)

            assert made() == t
            assert shapes.judge_local(local, made) == _classified(t, namer, keep), (keep, rows)


def _read(n: int, collector: Collector) -> tuple[list[Committed], int]:
    """The capture in blocks of ``n`` lines: what commits, taken or read as local (then
    made), and how many were read as local."""
    got: list[Committed] = []
    local: list[str] = []

    def read_local(x: str, hi: str, lo: str, when: str, rows: LocalRows) -> None:
        local.append(x)
        got.append(collector.made(x, hi, lo, when, rows))

    collector.local = read_local
    for i in range(0, len(LINES), n):
        read_block("".join(LINES[i : i + n]), collector, Window(-1, 0, None), got.append)
    return got, len(local)


def test_blocks_read_with_local_transactions_give_what_lines_give() -> None:
    """Every transaction the line reader makes comes out, in the same order, whether a
    block took it whole or read it as local; the last LSN and time are the same too."""
    want: list[Committed] = []
    lines = Collector()
    read_lines(LINES, lines, Window(-1, 0, None), want.append)
    plain = {int(x) for x in re.findall(r"tx: +(\d+), [^\n]*desc: COMMIT [-\d:. ]+ UTC\n", TEXT)}
    assert len([t for t in want if t.xid in plain]) >= 2
    locals_read = 0
    for n in (1, 2, 7, 50, len(LINES)):
        c = Collector()
        got, n_local = _read(n, c)
        assert c.settles
        assert got == want, n
        assert (c.last_lsn, c.last_time) == (lines.last_lsn, lines.last_time), n
        locals_read += n_local
    assert locals_read > 0
