"""The largest of what a listing leaves out: a TRUNCATE or DROP first, then by rows."""

from __future__ import annotations

from datetime import UTC, datetime

from pgsafe.mistakes.collect import Committed, Counts, LocalCommit
from pgsafe.mistakes.largest import Largest, weight
from pgsafe.mistakes.model import ChangeKind, Mistake, TableChange


def _m(xid: int, kind: ChangeKind, rows: int) -> Mistake:
    return Mistake(xid, datetime(2026, 1, 1, tzinfo=UTC), "0/1", 1, "shop", 5,
                   (TableChange(kind, 16384, "public.t", rows),))  # fmt: skip


def _local(xid: int, *rows: int) -> LocalCommit:
    counted = tuple(("D", f"1663/5/{16384 + i}", n) for i, n in enumerate(rows))
    return LocalCommit(str(xid), "0", "1", "2026-01-01 00:00:00", counted)


def test_weights_of_every_kind_of_kept_transaction() -> None:
    assert weight(_local(1, 3, 4)) == 7
    assert weight(_m(1, ChangeKind.UPDATE, 9)) == 9
    assert weight(_m(1, ChangeKind.TRUNCATE, 0)) > weight(_m(2, ChangeKind.DELETE, 10**9))
    c = Committed(xid=1, lsn=1, time=datetime(2026, 1, 1, tzinfo=UTC), timeline=1,
                  rows={(5, 16384): Counts(2, 3)}, tablespaces={}, dropped=(),
                  created=frozenset(), written=frozenset(), truncate_record=False,
                  dropped_databases=())  # fmt: skip
    assert weight(c) == 5


def test_the_heaviest_first_the_older_first_among_equals() -> None:
    big = Largest(3)
    added: list[Mistake | LocalCommit] = [
        _local(1, 1), _local(2, 5), _m(3, ChangeKind.DROP_TABLE, 0), _local(4, 1),
        _local(5, 5), _local(6, 5), _local(7, 2), _m(8, ChangeKind.DELETE, 5),
    ]  # fmt: skip
    for f in added:
        big.add(f)
    got = big.ordered()
    assert [int(f.x) if isinstance(f, LocalCommit) else f.xid for f in got] == [3, 2, 5]
