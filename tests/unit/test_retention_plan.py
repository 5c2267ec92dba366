"""The expiry plan is a pure function of (catalog, policy, now): many cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pgsafe.errors import BadInput
from pgsafe.models.backup import PhysicalDetails
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog import Manifest
from pgsafe.retention.plan import plan_expiry
from pgsafe.retention.policy import Policy, Rule, from_config

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def backup(
    day: int,
    *,
    kind: str = "logical",
    db: str | None = "shop",
    status: str = "ok",
    keep: bool = False,
    start_wal: str | None = None,
) -> Manifest:
    at = (NOW - timedelta(days=day)).isoformat()
    return Manifest(
        id=f"b{day:03d}-{kind}-{db}",
        kind=BackupKind(kind),
        server="main",
        status=status,
        started_at=at,
        finished_at=at,
        database=db,
        physical=PhysicalDetails(start_wal=start_wal),
        keep=keep,
    )


def policy(last: int | None = None, days: float | None = None) -> Policy:
    return Policy(Rule(last, days), Rule(last, days))


def test_keep_last_keeps_the_newest_n() -> None:
    bs = [backup(d) for d in (1, 2, 3, 4, 5)]
    p = plan_expiry(bs, policy(last=2), NOW)
    assert p.kept == ["b002-logical-shop", "b001-logical-shop"]
    assert p.remove == ["b005-logical-shop", "b004-logical-shop", "b003-logical-shop"]


def test_keep_days_keeps_the_young() -> None:
    bs = [backup(d) for d in (1, 3, 8, 30)]
    p = plan_expiry(bs, policy(days=7), NOW)
    assert set(p.kept) == {"b001-logical-shop", "b003-logical-shop"}


def test_either_rule_keeps() -> None:
    bs = [backup(d) for d in (1, 3, 8, 30, 40)]
    p = plan_expiry(bs, policy(last=4, days=2), NOW)
    assert p.remove == ["b040-logical-shop"]


def test_newest_valid_is_never_removed_even_if_old() -> None:
    bs = [backup(100), backup(50, status="failed")]
    p = plan_expiry(bs, policy(days=7), NOW)
    assert p.kept == ["b100-logical-shop"]
    assert p.remove == ["b050-logical-shop"]
    d = next(x for x in p.decisions if x.id == "b100-logical-shop")
    assert "newest valid backup of logical:shop" in d.reasons


def test_failed_backups_do_not_count_towards_keep_last() -> None:
    bs = [backup(3), backup(2, status="failed"), backup(1, status="failed")]
    p = plan_expiry(bs, policy(last=1), NOW)
    assert p.kept == ["b003-logical-shop"]


def test_series_are_per_database_and_kind() -> None:
    bs = [backup(d, db=db) for d in (1, 2, 3) for db in ("shop", "crm")]
    bs += [backup(d, kind="physical", db=None) for d in (1, 2, 3)]
    p = plan_expiry(bs, policy(last=1), NOW)
    assert sorted(p.kept) == ["b001-logical-crm", "b001-logical-shop", "b001-physical-None"]


def test_pinned_and_in_use_stay() -> None:
    bs = [backup(9, keep=True), backup(8), backup(1)]
    p = plan_expiry(bs, policy(last=1), NOW, in_use=frozenset({"b008-logical-shop"}))
    assert p.remove == []
    reasons = {d.id: d.reasons for d in p.decisions}
    assert reasons["b009-logical-shop"] == ["pinned with pgsafe keep"]
    assert reasons["b008-logical-shop"] == ["in use by a running restore or verification"]


def test_a_kind_without_rule_keeps_everything() -> None:
    bs = [backup(d, kind="physical", db=None) for d in (1, 2, 3)] + [backup(5), backup(6)]
    p = plan_expiry(bs, Policy(Rule(1, None), Rule()), NOW)
    assert p.remove == ["b006-logical-shop"]


WAL = [
    "000000010000000000000001",
    "000000010000000000000002",
    "000000010000000000000003",
    "000000010000000000000003.00000028.backup",
    "000000010000000000000004",
    "00000002.history",
    "000000020000000000000004",
    "000000010000000000000004.partial",
    "000000020000000000000005",
]


def test_wal_before_the_oldest_kept_base_backup_goes() -> None:
    bs = [
        backup(3, kind="physical", db=None, start_wal="000000010000000000000002"),
        backup(1, kind="physical", db=None, start_wal="000000010000000000000004"),
    ]
    p = plan_expiry(bs, policy(last=1), NOW, wal_names=WAL)
    assert p.remove == ["b003-physical-None"]
    assert p.oldest_needed_wal == "000000010000000000000004"
    assert p.remove_wal == [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000003.00000028.backup",
    ]


def test_wal_needed_by_kept_backups_and_history_survive() -> None:
    bs = [
        backup(3, kind="physical", db=None, start_wal="000000010000000000000002"),
        backup(1, kind="physical", db=None, start_wal="000000010000000000000004"),
    ]
    p = plan_expiry(bs, policy(last=2), NOW, wal_names=WAL)
    assert p.remove_wal == ["000000010000000000000001"]
    assert "00000002.history" not in p.remove_wal


@pytest.mark.parametrize(
    "start", ["garbage", "FFFFFFFFFFFFFFFFFFFFFFFF", "00000002.history", "../../etc/passwd"]
)
def test_a_kept_backup_without_a_credible_start_keeps_all_wal(start: str) -> None:
    """A catalog entry is untrusted: a start segment that is not a segment name, or that
    is not the segment of the backup's start LSN, must not move the WAL floor."""
    bs = [
        backup(3, kind="physical", db=None, start_wal="000000010000000000000002"),
        backup(1, kind="physical", db=None, start_wal=start),
    ]
    bs[1].physical = replace(bs[1].physical, start_lsn="0/4000028")
    p = plan_expiry(bs, policy(last=2), NOW, wal_names=WAL)
    assert p.remove_wal == [] and p.oldest_needed_wal is None


def test_a_start_segment_that_disagrees_with_the_start_lsn_keeps_all_wal() -> None:
    bs = [backup(1, kind="physical", db=None, start_wal="000000010000000000000004")]
    bs[0].physical = replace(bs[0].physical, start_lsn="0/2000028")
    assert plan_expiry(bs, policy(last=1), NOW, wal_names=WAL).remove_wal == []
    bs[0].physical = replace(bs[0].physical, start_lsn="0/4000028")
    assert plan_expiry(bs, policy(last=1), NOW, wal_names=WAL).remove_wal != []


def test_no_physical_backup_means_no_wal_removed() -> None:
    p = plan_expiry([backup(1)], policy(last=1), NOW, wal_names=WAL)
    assert p.remove_wal == [] and p.oldest_needed_wal is None


def test_policy_from_config_and_flags() -> None:
    raw = {"retention": {"keep_last": 7, "keep_days": 30, "physical": {"keep_last": 2}}}
    p = from_config(raw)
    assert p.logical == Rule(7, 30.0) and p.physical == Rule(2, 30.0)
    assert from_config(raw, keep_last=3).physical == Rule(3, None)
    assert from_config({}).logical.empty


@pytest.mark.parametrize(
    "raw",
    [
        {"retention": {"keep_last": 0}},
        {"retention": {"keep_last": "x"}},
        {"retention": {"keep_dayz": 3}},
        {"retention": {"keep_days": -1}},
        {"retention": 3},
    ],
)
def test_bad_policies_are_bad_input(raw: dict[str, object]) -> None:
    with pytest.raises(BadInput):
        from_config(raw)
