"""``Repository.latest`` (the newest usable backup of a kind) and ``Repository.pin``."""

from __future__ import annotations

import dataclasses

import pytest

from pgsafe.errors import LockHeld, NotFound
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.memory import MemoryStorage
from tests.unit.test_catalog import manifest


def _repo() -> Repository:
    r = Repository(MemoryStorage(), "main")
    r._check_marker(create=True)
    return r


def test_latest_is_the_newest_ok_backup_of_the_kind() -> None:
    r = _repo()
    assert r.latest() is None and r.latest("physical") is None
    r.save(manifest("20240101T000000Z-a"))
    r.save(
        dataclasses.replace(manifest("20240102T000000Z-b"), kind=BackupKind.PHYSICAL, format="tar")
    )
    r.save(manifest("20240103T000000Z-c"))
    r.save(dataclasses.replace(manifest("20240104T000000Z-d"), status="failed"))
    assert (m := r.latest()) is not None and m.id == "20240103T000000Z-c"
    assert (m := r.latest("logical")) is not None and m.id == "20240103T000000Z-c"
    assert (m := r.latest("physical")) is not None and m.id == "20240102T000000Z-b"


def test_pin_and_release() -> None:
    r = _repo()
    r.save(manifest("20240101T000000Z-a"))
    assert r.pin("20240101T000000Z").keep is True  # an id prefix, as resolve takes it
    assert r.load("20240101T000000Z-a").keep is True
    assert r.pin("20240101T000000Z-a", keep=False).keep is False
    assert r.load("20240101T000000Z-a").keep is False
    with pytest.raises(NotFound):
        r.pin("nope")


def test_a_busy_lock_asked_for_without_waiting_raises_lock_held() -> None:
    r = _repo()
    with r.lock("catalog"), pytest.raises(LockHeld), r.lock("catalog", wait=False):
        pytest.fail("two holders of one lock")
