"""The pure recovery plan: backup choice, WAL needed, windows, gaps, timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pgsafe.errors import BadInput, NotFound, OperationFailed
from pgsafe.recovery.plan import ArchiveState, BackupRef, Plan, make_plan, view
from pgsafe.recovery.targets import Target, parse_time
from pgsafe.wal import names

SEG = 16 * 1024 * 1024
T0 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def lsn(segno: int, offset: int = 0x100) -> int:
    return segno * SEG + offset


A = BackupRef("A", 1, lsn(2), lsn(2, 0x200), at(25), next_xid=100)
B = BackupRef("B", 1, lsn(6), lsn(6, 0x200), at(65), next_xid=500)


def commits(s: dict[int, set[int]]) -> dict[tuple[int, int], datetime]:
    """Segment s on any timeline holds a last commit at T0 + 10*s minutes."""
    return {(t, n): at(10 * n) for t, segs in s.items() for n in segs}


def archive(
    segs: dict[int, set[int]], histories: dict[int, list[tuple[int, int]]] | None = None
) -> tuple[ArchiveState, dict[tuple[int, int], datetime]]:
    st = ArchiveState(SEG, {t: frozenset(v) for t, v in segs.items()}, histories or {})
    return st, commits(segs)


def plan(
    target: Target,
    segs: dict[int, set[int]],
    backups: list[BackupRef] | None = None,
    histories: dict[int, list[tuple[int, int]]] | None = None,
    *,
    timeline: int | None = None,
    backup_id: str | None = None,
) -> Plan:
    st, c = archive(segs, histories)
    return make_plan(
        target,
        backups or [A, B],
        st,
        lambda t, s: c.get((t, s)),
        timeline=timeline,
        backup_id=backup_id,
    )


FULL = {1: set(range(1, 11))}


def seg(t: int, s: int) -> str:
    return names.segment_name(t, s)


def test_time_between_backups_uses_the_earlier_backup() -> None:
    p = plan(Target("time", time=at(50)), FULL)
    assert p.backup.id == "A"
    assert p.wal_needed == [seg(1, s) for s in range(3, 11)]
    assert not p.wal_exact


def test_time_after_newest_backup_uses_it() -> None:
    p = plan(Target("time", time=at(70)), FULL)
    assert p.backup.id == "B" and p.wal_needed[0] == seg(1, 7)


def test_time_before_first_backup_is_refused_with_window() -> None:
    with pytest.raises(BadInput) as e:
        plan(Target("time", time=at(-60)), FULL)
    assert "before the earliest recoverable time" in e.value.message
    assert e.value.hint and "2024-01-15 10:25:00+00:00 .. 2024-01-15 11:40:00+00:00" in e.value.hint
    assert e.value.exit_code == 2


def test_time_at_or_after_last_commit_is_refused() -> None:
    with pytest.raises(BadInput, match="after the last archived commit"):
        plan(Target("time", time=at(100)), FULL)
    assert plan(Target("time", time=at(99)), FULL).backup.id == "B"


def test_latest_and_immediate() -> None:
    p = plan(Target("latest"), FULL)
    assert p.backup.id == "B" and p.wal_needed == [seg(1, s) for s in range(7, 11)]
    assert p.wal_exact
    p = plan(Target("immediate"), FULL)
    assert p.backup.id == "B" and p.wal_needed == []


def test_gap_after_newest_backup() -> None:
    segs = {1: set(range(1, 11)) - {8}}
    with pytest.raises(OperationFailed) as e:
        plan(Target("latest"), segs)
    assert seg(1, 8) in e.value.message and e.value.exit_code == 1
    with pytest.raises(OperationFailed, match=seg(1, 8)):
        plan(Target("time", time=at(75)), segs)
    p = plan(Target("time", time=at(69)), segs)
    assert p.wal_needed == [seg(1, 7)]
    st, c = archive(segs)
    v = view([A, B], st, lambda t, s: c.get((t, s)))
    assert [g.first for g in v.gaps] == [seg(1, 8)]
    assert [w.gap_after for w in v.windows] == [True, True]


def test_gap_between_backups_blocks_only_the_older_one() -> None:
    segs = {1: set(range(1, 11)) - {4}}
    with pytest.raises(OperationFailed, match=seg(1, 4)):
        plan(Target("time", time=at(50)), segs)
    assert plan(Target("time", time=at(70)), segs).backup.id == "B"
    assert plan(Target("latest"), segs).backup.id == "B"
    with pytest.raises(OperationFailed, match=seg(1, 4)):
        plan(Target("latest"), segs, backup_id="A")


def test_several_missing_are_grouped() -> None:
    segs = {1: {1, 2, 3, 7, 10}}
    st, c = archive(segs)
    v = view([A], st, lambda t, s: c.get((t, s)))
    assert [(g.first, g.count) for g in v.gaps] == [(seg(1, 4), 3), (seg(1, 8), 2)]
    assert v.gaps[0].describe() == f"{seg(1, 4)} .. {seg(1, 6)} (3)"


def test_lsn_targets() -> None:
    p = plan(Target("lsn", lsn=lsn(8)), FULL)
    assert p.backup.id == "B" and p.wal_needed == [seg(1, 7), seg(1, 8)] and p.wal_exact
    assert plan(Target("lsn", lsn=lsn(4)), FULL).backup.id == "A"
    with pytest.raises(BadInput, match="before the end of the earliest usable backup"):
        plan(Target("lsn", lsn=lsn(1)), FULL)
    with pytest.raises(BadInput, match="after the end of the archived WAL"):
        plan(Target("lsn", lsn=lsn(12)), FULL)
    with pytest.raises(OperationFailed, match=seg(1, 8)):
        plan(Target("lsn", lsn=lsn(9)), {1: set(range(1, 11)) - {8}})


def test_named_point_with_known_lsn_plans_like_an_lsn() -> None:
    p = plan(Target("name", name="before_upgrade", lsn=lsn(5)), FULL)
    assert p.backup.id == "A" and p.wal_needed[-1] == seg(1, 5)
    p = plan(Target("name", name="unknown"), FULL)
    assert p.backup.id == "A" and p.notes


def test_xid_picks_newest_backup_that_ended_before_it_started() -> None:
    assert plan(Target("xid", xid=300), FULL).backup.id == "A"
    assert plan(Target("xid", xid=600), FULL).backup.id == "B"
    p = plan(Target("xid", xid=50), FULL)
    assert p.backup.id == "A" and p.notes


def test_forced_backup() -> None:
    assert plan(Target("latest"), FULL, backup_id="A").wal_needed[0] == seg(1, 3)
    with pytest.raises(NotFound):
        plan(Target("latest"), FULL, backup_id="Z")
    with pytest.raises(BadInput, match="before the end of backup B"):
        plan(Target("time", time=at(50)), FULL, backup_id="B")


SW = lsn(8, 0x5000)
TL = {1: set(range(1, 11)), 2: {8, 9, 10, 11, 12}}
HIST = {2: [(1, SW)]}


def test_recovery_follows_the_new_timeline() -> None:
    p = plan(Target("latest"), TL, histories=HIST)
    assert p.timeline == 2
    assert p.wal_needed == [seg(1, 7)] + [seg(2, s) for s in range(8, 13)]
    p = plan(Target("time", time=at(115)), TL, histories=HIST)
    assert p.wal_needed[-1] == seg(2, 12)


def test_switch_segment_must_come_from_the_new_timeline() -> None:
    with pytest.raises(OperationFailed, match=seg(2, 8)):
        plan(Target("latest"), {1: set(range(1, 11)), 2: {9, 10}}, histories=HIST)


def test_backup_after_the_branch_point_is_not_on_the_new_timeline() -> None:
    c = BackupRef("C", 1, lsn(9), lsn(9, 0x200), at(95))
    p = plan(Target("latest"), TL, [A, B, c], histories=HIST)
    assert p.backup.id == "B"
    with pytest.raises(BadInput, match="cannot start a recovery on timeline 2"):
        plan(Target("latest"), TL, [A, B, c], histories=HIST, backup_id="C")
    p = plan(Target("latest"), TL, [A, B, c], histories=HIST, timeline=1)
    assert p.backup.id == "C" and p.wal_needed == [seg(1, 10)]


def test_latest_timeline_needs_consecutive_history_files() -> None:
    assert ArchiveState(SEG, {}, {2: [], 3: []}).latest_timeline() == 3
    assert ArchiveState(SEG, {}, {3: []}).latest_timeline() == 1
    with pytest.raises(BadInput, match="no history file"):
        plan(Target("latest"), FULL, timeline=5)


def test_no_backups() -> None:
    with pytest.raises(BadInput, match="no physical base backup"):
        make_plan(Target("latest"), [], ArchiveState(SEG, {}), lambda t, s: None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 10:30:00", "2024-01-15T09:30:00+00:00"),
        ("2024-01-15T10:30:00+01:00", "2024-01-15T09:30:00+00:00"),
        ("2024-01-15 10:30:00Z", "2024-01-15T10:30:00+00:00"),
        ("2024-01-15 10:30:00.5-05", "2024-01-15T15:30:00.500000+00:00"),
        ("2024-01-15 10:30", "2024-01-15T09:30:00+00:00"),
    ],
)
def test_parse_time(text: str, expected: str) -> None:
    assert parse_time(text, ZoneInfo("Europe/Paris")).astimezone(UTC).isoformat() == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01 10:00", "2024-01-15 25:00:00",
                                  "15/01/2024 10:00", "2024-01-15 10:00 +99:00", ""])  # fmt: skip
def test_malformed_time(text: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_time(text, UTC)
    assert e.value.exit_code == 2 and e.value.hint


def test_forced_backup_exact_id_wins_over_a_longer_id_it_prefixes() -> None:
    """Two backups in one second get ``...Z-physical`` and ``...Z-physical-2``: the exact
    first id must pick the first backup, not be refused as if it matched none."""
    first = BackupRef("20240115T100000Z-physical", 1, lsn(2), lsn(2, 0x200), at(25))
    second = BackupRef("20240115T100000Z-physical-2", 1, lsn(6), lsn(6, 0x200), at(65))
    p = plan(Target("latest"), FULL, [first, second], backup_id=first.id)
    assert p.backup.id == first.id
    with pytest.raises(BadInput, match="ambiguous"):
        plan(Target("latest"), FULL, [first, second], backup_id="20240115T100000Z")
    with pytest.raises(BadInput):
        plan(Target("latest"), FULL, [first, second], backup_id="")
