"""The JSON of recover's typed parts keeps the shape scripts read (README)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone

from pgsafe.recovery.outcome import CheckResult, PlanWindow, ReachedState, TargetSummary
from pgsafe.recovery.targets import Target


def test_target_json_leaves_out_the_facts_it_has_not() -> None:
    t = Target("time", time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))))
    doc = TargetSummary.of(t).to_json()
    assert list(doc) == ["kind", "inclusive", "description", "time"]
    assert doc["time"] == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC).isoformat()
    named = TargetSummary.of(Target("name", name="before", lsn=0x1_0000_0028, inclusive=False))
    assert named.to_json() == {
        "kind": "name",
        "inclusive": False,
        "description": named.description,
        "lsn": "1/28",
        "name": "before",
    }
    assert list(TargetSummary.of(Target("latest")).to_json()) == [
        "kind",
        "inclusive",
        "description",
    ]


def test_window_ends_are_from_and_to() -> None:
    assert PlanWindow("a", None).to_json() == {"from": "a", "to": None}


def test_reached_and_checks_are_their_own_json() -> None:
    r = ReachedState("t", "0/3000000", 1, False, None)
    assert asdict(r) == {
        "last_transaction_time": "t",
        "lsn": "0/3000000",
        "timeline": 1,
        "in_recovery": False,
        "stop_reason": None,
    }
    assert asdict(CheckResult("SELECT true", True, "true")) == {
        "name": "SELECT true",
        "ok": True,
        "detail": "true",
    }


def test_info_timeline_json_keeps_its_keys() -> None:
    from pgsafe.recovery.plan import Gap
    from pgsafe.recovery.window import (
        BackupEntry,
        ParentTimeline,
        TimelineInfo,
        WalCount,
        WalRange,
        WindowEntry,
    )

    t = TimelineInfo(
        2,
        [BackupEntry("b", "t0", "0/2000028", "0/2000100")],
        WalRange("a", "z", 3),
        "t0",
        "t1",
        [WindowEntry("b", "t0", None, "0/3000000", False)],
        [Gap("g", "g", 1)],
        ParentTimeline(1, "0/3000000"),
    )
    assert t.to_json() == {
        "timeline": 2,
        "backups": [
            {"id": "b", "finished_at": "t0", "start_lsn": "0/2000028", "stop_lsn": "0/2000100"}
        ],
        "wal": {"first": "a", "last": "z", "count": 3},
        "recoverable_from": "t0",
        "recoverable_to": "t1",
        "windows": [
            {"backup": "b", "from": "t0", "to": None, "to_lsn": "0/3000000", "stops_at_gap": False}
        ],
        "gaps": [{"first": "g", "last": "g", "count": 1}],
        "parent": {"timeline": 1, "switch_lsn": "0/3000000"},
    }
    lone = TimelineInfo(3, [], WalCount(4), None, None, [], [])
    assert lone.to_json()["wal"] == {"count": 4} and lone.to_json()["parent"] is None
