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
