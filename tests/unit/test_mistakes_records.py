"""pg_waldump lines -> records -> committed transactions, and the pure pieces around."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pgsafe.mistakes.collect import Collector
from pgsafe.mistakes.filters import Filter, table_matches
from pgsafe.mistakes.model import ChangeKind, Mistake, TableChange
from pgsafe.mistakes.records import Op, Rel, heap_row, parse_line
from pgsafe.mistakes.segments import Source, batches, runs
from pgsafe.models.catalogmap import CatalogMap, DatabaseMap, MappedRelation, parse

PG15_DELETE = (
    "rmgr: Heap        len (rec/tot):     59/   443, tx:        728, lsn: 0/0152D3E8, prev"
    " 0/0152D370, desc: DELETE off 1 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/5/16384 blk 0"
    " FPW"
)
PG16_DELETE = (
    "rmgr: Heap        len (rec/tot):     54/    54, tx:        745, lsn: 0/01A2B3C8, prev"
    " 0/01A2B390, desc: DELETE xmax: 745, off: 3, infobits: [KEYS_UPDATED], flags: 0x00,"
    " blkref #0: rel 1663/5/16384 blk 0"
)
HOT = (
    "rmgr: Heap        len (rec/tot):     70/    70, tx:        729, lsn: 0/0152D780, prev"
    " 0/0152D758, desc: HOT_UPDATE off 5 xmax 729 flags 0x20 ; new off 11 xmax 0, blkref #0:"
    " rel 1663/5/16384 blk 0"
)
COMMIT_DROP = (
    "rmgr: Transaction len (rec/tot):   1245/  1245, tx:        733, lsn: 0/0153F188, prev"
    " 0/0153F150, desc: COMMIT 2026-12-02 21:57:06.388640 UTC; rels: base/5/16384"
    " pg_tblspc/16390/PG_15_202209061/5/16387; dropped stats: 2/5/16384; subxacts: 734 735;"
    " inval msgs: catcache 32"
)
ABORT = (
    "rmgr: Transaction len (rec/tot):     34/    34, tx:        731, lsn: 0/0152D9D8, prev"
    " 0/0152D9A0, desc: ABORT 2026-12-02 21:57:06.371122 UTC"
)
COMMIT_PREPARED = (
    "rmgr: Transaction len (rec/tot):     50/    50, tx:          0, lsn: 0/0152DA00, prev"
    " 0/0152D9D8, desc: COMMIT_PREPARED 740: 2026-12-02 21:57:07.000001 UTC"
)
CREATE = (
    "rmgr: Storage     len (rec/tot):     42/    42, tx:        732, lsn: 0/0152DA30, prev"
    " 0/0152DA00, desc: CREATE base/5/16396"
)
DROPDB = (
    "rmgr: Database    len (rec/tot):     38/    38, tx:        739, lsn: 0/0196ED80, prev"
    " 0/0196ED08, desc: DROP dir 1663/16403"
)
FPI_HINT = (
    "rmgr: XLOG        len (rec/tot):     49/  8029, tx:          0, lsn: 0/0154FDC0, prev"
    " 0/0154FD90, desc: FPI_FOR_HINT , blkref #0: rel 1663/5/2619 blk 0 FPW"
)


def test_heap_records_of_every_format() -> None:
    for line in (PG15_DELETE, PG16_DELETE):
        r = parse_line(line)
        assert r is not None and r.op is Op.DELETE and r.rel == Rel(1663, 5, 16384)
    r = parse_line(HOT)
    assert r is not None and (r.op, r.xid, r.lsn) == (Op.UPDATE, 729, 0x0152D780)


def test_commit_lists_dropped_relations_and_subtransactions() -> None:
    r = parse_line(COMMIT_DROP)
    assert r is not None and r.op is Op.COMMIT
    assert r.time == datetime(2026, 12, 2, 21, 57, 6, 388640, tzinfo=UTC)
    assert r.dropped == (Rel(0, 5, 16384), Rel(0, 5, 16387))
    assert r.subxacts == (734, 735)


def test_other_records() -> None:
    assert parse_line(ABORT) is not None and parse_line(ABORT).op is Op.ABORT  # type: ignore[union-attr]
    prepared = parse_line(COMMIT_PREPARED)
    assert prepared is not None and (prepared.op, prepared.xid) == (Op.COMMIT, 740)
    create = parse_line(CREATE)
    assert create is not None and create.rel == Rel(0, 5, 16396)
    dropdb = parse_line(DROPDB)
    assert dropdb is not None and (dropdb.op, dropdb.database) == (Op.DROP_DATABASE, 16403)
    assert parse_line(FPI_HINT) is None  # no transaction: not a rewrite's page
    assert parse_line("pg_waldump: error: error in WAL record at 0/196EE10") is None
    assert parse_line("") is None


def _line(op: str, xid: int, lsn: str, rest: str = "rel 1663/5/16384 blk 0") -> str:
    return (f"rmgr: Heap        len (rec/tot):     54/    54, tx: {xid:>10}, lsn: {lsn},"
            f" prev 0/00000000, desc: {op} off 1 flags 0x00, blkref #0: {rest}")  # fmt: skip


def _xact(kind: str, xid: int, lsn: str, extra: str = "") -> str:
    return (f"rmgr: Transaction len (rec/tot):     34/    34, tx: {xid:>10}, lsn: {lsn},"
            f" prev 0/00000000, desc: {kind} 2026-12-02 10:00:00.5 UTC{extra}")  # fmt: skip


def _collect(*lines: str) -> dict[int, dict[tuple[int, int], tuple[int, int]]]:
    recs = [r for r in (parse_line(x) for x in lines) if r is not None]
    out = {}
    for c in Collector().feed(recs):
        out[c.xid] = {k: (v.deletes, v.updates) for k, v in c.rows.items()}
    return out


def test_aborted_and_subtransactions() -> None:
    got = _collect(
        _line("DELETE", 10, "0/10"), _xact("ABORT", 10, "0/11"),  # rolled back: gone
        _line("DELETE", 12, "0/12"),  # a savepoint rolled back to, inside 11
        _xact("ABORT", 12, "0/13"),
        _line("DELETE", 14, "0/14"), _line("UPDATE", 11, "0/15"),
        _xact("COMMIT", 11, "0/16", "; subxacts: 14"),
        _line("INSERT", 20, "0/17"), _xact("COMMIT", 20, "0/18"),  # inserts only: not listed
    )  # fmt: skip
    assert got == {11: {(5, 16384): (1, 1)}}


MULTI = (
    "rmgr: MultiXact   len (rec/tot):     54/    54, tx:        728, lsn: 0/015211C0, prev"
    " 0/01521188, desc: CREATE_ID 2 offset 3 nmembers 2: 727 (sh) 728 (upd) "
)
LOCK_MULTI = (
    "rmgr: MultiXact   len (rec/tot):     54/    54, tx:        731, lsn: 0/015211D0, prev"
    " 0/01521188, desc: CREATE_ID 3 offset 5 nmembers 2: 727 (keysh) 731 (forupd) "
)


def test_multixacts_and_subtransactions_come_out_with_their_transaction() -> None:
    m = parse_line(MULTI)
    assert m is not None and (m.op, m.xid, m.multixact) == (Op.MULTI, 728, 2)
    assert parse_line(LOCK_MULTI) is None  # only locks: no row deleted or changed under it
    nokey = parse_line(MULTI.replace("(upd)", "(nokeyupd)").replace("727 (sh)", "727 (keysh)"))
    assert nokey is not None and nokey.multixact == 2
    recs = [r for r in (parse_line(x) for x in (
        MULTI, _line("DELETE", 728, "0/01521200"),
        _xact("COMMIT", 727, "0/01521230", "; subxacts: 728"),
    )) if r is not None]  # fmt: skip
    (c,) = list(Collector().feed(recs))
    assert (c.xid, c.subxacts, c.multixacts) == (727, (728,), (2,))


def test_batches_overlap_by_one_segment() -> None:
    run = [Source(1, n) for n in range(10)]
    got = [[s.segno for s in b] for b in batches(run, 4)]
    assert got == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert [[s.segno for s in b] for b in batches(run[:3], 4)] == [[0, 1, 2]]
    split = runs([Source(1, 1), Source(1, 2), Source(1, 4), Source(2, 5)])
    assert [[s.segno for s in r] for r in split] == [[1, 2], [4], [5]]


def _mistake(*changes: TableChange) -> Mistake:
    return Mistake(7, datetime(2026, 1, 1, tzinfo=UTC), "0/1", 1, "shop", 5, changes)


def test_filters() -> None:
    delete = TableChange(ChangeKind.DELETE, 16384, "public.orders", 4)
    drop = TableChange(ChangeKind.DROP_TABLE, 16390, None, 0)
    assert table_matches("orders", delete) and table_matches("public.orders", delete)
    assert not table_matches("x.orders", delete) and table_matches("16390", drop)
    assert Filter(min_rows=4)(_mistake(delete)) and not Filter(min_rows=5)(_mistake(delete))
    assert Filter(min_rows=5)(_mistake(delete, drop))  # a DROP has no row count: shown
    assert not Filter(kinds=frozenset({ChangeKind.UPDATE}))(_mistake(delete))
    assert not Filter(database_oids=frozenset({6}))(_mistake(delete))
    assert not Filter(since=datetime(2026, 2, 1, tzinfo=UTC))(_mistake(delete))


def test_catalog_map_round_trip_and_untrusted_input() -> None:
    cmap = CatalogMap(
        (DatabaseMap(5, "shop", (MappedRelation(16384, 16390, "public", "o", "r"),)),)
    )
    back = parse(cmap.to_json())
    d = back.database(5)
    assert d is not None and d.by_filenode(16390) == MappedRelation(
        16384, 16390, "public", "o", "r"
    )
    for bad in (
        b"not json", b"[]", b'{"format": 2, "databases": []}',
        b'{"format": 1, "databases": [{"oid": -1, "name": "x", "relations": []}]}',
        b'{"format": 1, "databases": [{"oid": 5, "name": "x",'
        b' "relations": [[1, 2, "s", "n", "Z"]]}]}',
        b'{"format": 1, "databases": [{"oid": 5, "name": "", "relations": []}]}',
    ):  # fmt: skip
        with pytest.raises(ValueError):
            parse(bad)


def test_the_fast_path_reads_heap_rows_as_the_full_parser_does() -> None:
    for line in (PG15_DELETE, PG16_DELETE, HOT, _line("INSERT+INIT", 9, "0/20")):
        r = parse_line(line)
        row = heap_row(line)
        assert r is not None and r.rel is not None and row is not None
        assert row == (r.op, r.xid, r.lsn, r.rel.tablespace, r.rel.database, r.rel.relfilenode)
    assert heap_row(COMMIT_DROP) is None and heap_row(CREATE) is None
