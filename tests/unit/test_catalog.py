"""Catalog entries: roundtrip, damage detection, ids, listing only finished backups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pgsafe.errors import BadInput, NotFound, ObjectExists, VerificationFailed
from pgsafe.models.backup import TableFingerprint
from pgsafe.models.kinds import BackupKind
from pgsafe.repo import catalog
from pgsafe.repo.catalog import Manifest, StoredObject, Verification
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.memory import MemoryStorage


def manifest(backup_id: str = "20240115T103000Z-shop-custom") -> Manifest:
    return Manifest(
        id=backup_id,
        kind=BackupKind.LOGICAL,
        server="main",
        status="ok",
        started_at="2024-01-15T10:30:00+00:00",
        finished_at="2024-01-15T10:31:00+00:00",
        database="shop",
        format="custom",
        objects=[StoredObject("shop.dump.zst", 10, "ab" * 32, 40)],
        fingerprint={"": {"public.t": TableFingerprint(rows=3, hash="123")}},
        verifications=[Verification("2024-01-15T11:00:00+00:00", True)],
    )


def repo_with_marker() -> Repository:
    storage = MemoryStorage()
    r = Repository(storage, "main")
    r._check_marker(create=True)
    return r


def test_roundtrip_preserves_everything() -> None:
    m = manifest()
    again = catalog.decode(catalog.encode(m), "x")
    assert again == m
    assert again.size_bytes == 10 and again.raw_bytes == 40
    assert again.last_verification is not None and again.last_verification.ok


def test_a_changed_manifest_is_detected() -> None:
    data = catalog.encode(manifest()).replace(b'"rows": 3', b'"rows": 4')
    with pytest.raises(VerificationFailed, match="checksum"):
        catalog.decode(data, "main/backups/x/manifest.json")


def test_garbage_is_detected() -> None:
    with pytest.raises(VerificationFailed, match="damaged"):
        catalog.decode(b"{not json", "x")


def test_only_backups_with_a_manifest_are_listed() -> None:
    r = repo_with_marker()
    r.storage.put("main/backups/20240101T000000Z-half-custom/half.dump.zst", [b"partial"])
    r.save(manifest())
    assert r.backup_ids() == ["20240115T103000Z-shop-custom"]


def test_new_ids_are_sortable_readable_and_unique() -> None:
    r = repo_with_marker()
    when = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    first = r.new_id(when, "E-Commerce DB", "custom")
    assert first == "20240115T103000Z-e_commerce_db-custom"
    r.storage.put(f"main/backups/{first}/in-progress", [b"x"])
    assert r.new_id(when, "E-Commerce DB", "custom") == first + "-2"


def test_resolve_by_prefix_latest_and_errors() -> None:
    r = repo_with_marker()
    r.save(manifest("20240115T103000Z-shop-custom"))
    r.save(manifest("20240116T103000Z-shop-custom"))
    assert r.resolve("latest").id == "20240116T103000Z-shop-custom"
    assert r.resolve("20240115").id == "20240115T103000Z-shop-custom"
    with pytest.raises(BadInput, match="ambiguous"):
        r.resolve("2024011")
    with pytest.raises(NotFound):
        r.resolve("nope")


def test_memory_storage_refuses_overwrite() -> None:
    s = MemoryStorage()
    s.put("a/b", [b"1"])
    with pytest.raises(ObjectExists):
        s.put("a/b", [b"2"])
    assert s.open("a/b").read() == b"1"


def test_server_names_are_validated() -> None:
    with pytest.raises(BadInput):
        Repository(MemoryStorage(), "../etc")


def test_an_empty_id_selects_nothing_even_with_one_backup() -> None:
    r = repo_with_marker()
    r.save(manifest("20240115T103000Z-shop-custom"))
    for ref in ("", " "):
        with pytest.raises(BadInput, match="empty"):
            r.resolve(ref)
