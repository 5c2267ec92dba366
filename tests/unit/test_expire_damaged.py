"""Expiry beside a damaged catalog entry: the entry is never removed, and no WAL is
removed while it is there, since it may be a base backup that needs that WAL."""

from __future__ import annotations

from datetime import UTC, datetime

from pgsafe.models.backup import PhysicalDetails
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog import Manifest
from pgsafe.retention import expire
from pgsafe.retention.policy import Policy, Rule
from pgsafe.wal import layout
from tests.unit.test_catalog import repo_with_marker

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SEGMENTS = [f"0000000100000000000000{n:02X}" for n in range(1, 7)]


def physical(bid: str, day: int, start_wal: str, start_lsn: str) -> Manifest:
    at = datetime(2024, 2, day, 12, 0, tzinfo=UTC).isoformat()
    return Manifest(
        id=bid,
        kind=BackupKind.PHYSICAL,
        server="main",
        status="ok",
        started_at=at,
        finished_at=at,
        format="tar",
        physical=PhysicalDetails(start_wal=start_wal, start_lsn=start_lsn, timeline=1),
    )


def run(damage: bool) -> expire.ExpiryResult:
    repo = repo_with_marker()
    repo.save(physical("20240201T120000Z-physical", 1, SEGMENTS[1], "0/2000028"))
    repo.save(physical("20240210T120000Z-physical", 10, SEGMENTS[4], "0/5000028"))
    for seg in SEGMENTS:
        repo.storage.put(layout.segment_key("main", seg), [b"wal"])
    if damage:
        repo.storage.put("main/backups/20240205T120000Z-physical/manifest.json", [b"{broken"])
    policy = Policy(Rule(1, None), Rule(1, None))
    return expire.expire(repo, policy, NOW, dry_run=False)


def test_wal_goes_when_nothing_is_damaged() -> None:
    r = run(damage=False)
    assert r.removed_backups == ["20240201T120000Z-physical"]
    assert r.removed_wal == SEGMENTS[:4] and not r.wal_kept_for_damaged


def test_a_damaged_entry_keeps_all_wal_and_itself() -> None:
    r = run(damage=True)
    assert r.removed_backups == ["20240201T120000Z-physical"]
    assert [d.id for d in r.damaged] == ["20240205T120000Z-physical"]
    assert r.removed_wal == [] and r.wal_kept_for_damaged
