"""The storage conformance suite: one set of behaviours every backend (posix, memory, S3,
and a MirrorStorage of several) must show, because everything above storage relies on
them."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pgsafe.errors import LockHeld, NotFound, ObjectExists, RepositoryError
from pgsafe.repo.storage.base import Storage, read_all
from tests.storage.s3_settings import PART_SIZE

Pair = tuple[Storage, Callable[[], Storage]]


def chunks_of(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Boom(Exception):
    pass


def failing_stream(good: int) -> Iterator[bytes]:
    """``good`` bytes, then the producer fails (as pg_dump dying mid-stream would)."""
    block = os.urandom(1 << 20)
    sent = 0
    while sent < good:
        n = min(len(block), good - sent)
        yield block[:n]
        sent += n
    raise Boom("the producer died")


# -- put / open --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 65536, 3 * PART_SIZE // 2, 2 * PART_SIZE + 12345])
def test_roundtrip(storage: Storage, size: int) -> None:
    data = os.urandom(size)
    assert storage.put("server/backups/b1/data.zst", chunks_of(data)) == size
    with storage.open("server/backups/b1/data.zst") as f:
        got = hashlib.sha256()
        while piece := f.read(100_000):
            got.update(piece)
    assert got.hexdigest() == hashlib.sha256(data).hexdigest()
    st = storage.stat("server/backups/b1/data.zst")
    assert st is not None and st.size == size and st.key == "server/backups/b1/data.zst"


def test_put_accepts_any_chunking(storage: Storage) -> None:
    data = os.urandom(PART_SIZE + 1000)
    odd = [data[:1], b"", data[1:7], data[7 : PART_SIZE + 3], data[PART_SIZE + 3 :]]
    storage.put("k", iter(odd))
    assert read_all(storage, "k") == data


def test_open_reads_in_any_sizes(storage: Storage) -> None:
    data = os.urandom(300_000)
    storage.put("k", [data])
    with storage.open("k") as f:
        assert f.read(1) == data[:1]
        assert f.read(10) == data[1:11]
        assert f.read() == data[11:]
        assert f.read(5) == b""


def test_missing_object_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound) as err:
        storage.open("no/such/object")
    assert err.value.exit_code == 2
    assert storage.stat("no/such/object") is None


# -- never overwrite silently ------------------------------------------------------------
def test_existing_key_is_refused_and_kept(storage: Storage) -> None:
    storage.put("wal/000000010000000000000001", [b"first"])
    with pytest.raises(ObjectExists):
        storage.put("wal/000000010000000000000001", [b"second"])
    big = os.urandom(PART_SIZE + 10)  # the multipart path refuses too
    with pytest.raises(ObjectExists):
        storage.put("wal/000000010000000000000001", chunks_of(big))
    assert read_all(storage, "wal/000000010000000000000001") == b"first"
    storage.put("wal/000000010000000000000001", [b"third"], overwrite=True)
    assert read_all(storage, "wal/000000010000000000000001") == b"third"


def test_concurrent_creates_of_one_key_have_one_winner(storage_pair: Pair) -> None:
    storage, other = storage_pair
    handles = [storage] + [other() for _ in range(5)]
    winners: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(handles))

    def writer(i: int) -> None:
        start.wait()
        try:
            handles[i].put("race", [b"writer %d " % i] * 1000)
            winners.append(i)
        except ObjectExists:
            pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    assert read_all(storage, "race") == b"writer %d " % winners[0] * 1000


# -- atomicity ---------------------------------------------------------------------------
@pytest.mark.parametrize("good", [0, 1000, 2 * PART_SIZE + 5])
def test_failed_put_leaves_nothing_visible(storage: Storage, good: int) -> None:
    with pytest.raises(Boom):
        storage.put("server/backups/b2/base.tar.zst", failing_stream(good))
    assert storage.stat("server/backups/b2/base.tar.zst") is None
    assert list(storage.list("")) == []
    with pytest.raises(NotFound):
        storage.open("server/backups/b2/base.tar.zst")
    # and the key is free for the retry
    storage.put("server/backups/b2/base.tar.zst", [b"retry"])
    assert read_all(storage, "server/backups/b2/base.tar.zst") == b"retry"


def test_failed_overwrite_keeps_the_old_object(storage: Storage) -> None:
    storage.put("catalog.json", [b"old"])
    with pytest.raises(Boom):
        storage.put("catalog.json", failing_stream(PART_SIZE + 100), overwrite=True)
    assert read_all(storage, "catalog.json") == b"old"


def test_reader_sees_old_or_new_never_a_mix(storage: Storage) -> None:
    old, new = b"a" * (PART_SIZE + 10), b"b" * (PART_SIZE + 10)
    storage.put("obj", [old])
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = read_all(storage, "obj")
            seen.add(data[:1] + data[-1:] + bytes([len(set(data))]))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(3):
            storage.put("obj", chunks_of(new), overwrite=True)
            storage.put("obj", chunks_of(old), overwrite=True)
    finally:
        stop.set()
        t.join()
    assert seen <= {b"aa\x01", b"bb\x01"}


# -- list --------------------------------------------------------------------------------
def test_list_is_sorted_recursive_and_prefix_exact(storage: Storage) -> None:
    keys = [
        "main/wal/0000000100000000/000000010000000000000002",
        "main/backups/b/manifest.json",
        "main/backups/b/data",
        "main/backupsX/other",
        "main/wal/0000000100000000/000000010000000000000001",
        "pgsafe-repo.json",
        "zz/last",
        "main/backups/a/manifest.json",
    ]
    for k in keys:
        storage.put(k, [k.encode()])
    assert list(storage.list("")) == sorted(keys)
    assert list(storage.list()) == sorted(keys)
    assert list(storage.list("main/backups")) == [
        "main/backups/a/manifest.json",
        "main/backups/b/data",
        "main/backups/b/manifest.json",
    ]
    assert list(storage.list("main/backups/")) == list(storage.list("main/backups"))
    assert list(storage.list("main/wal/0000000100000000")) == sorted(
        k for k in keys if "/wal/" in k
    )
    assert list(storage.list("pgsafe-repo.json")) == ["pgsafe-repo.json"]
    assert list(storage.list("main/back")) == []  # a prefix is a path, not a string prefix
    assert list(storage.list("nothing/here")) == []


def test_list_does_not_show_locks(storage: Storage) -> None:
    storage.put("a", [b"1"])
    with storage.lock("main-catalog"):
        assert list(storage.list("")) == ["a"]
    assert list(storage.list("")) == ["a"]


# -- delete ------------------------------------------------------------------------------
def test_delete_removes_and_is_idempotent(storage: Storage) -> None:
    storage.put("main/backups/b/data", [b"x"])
    storage.put("main/backups/b/manifest.json", [b"{}"])
    storage.delete("main/backups/b/manifest.json")
    assert storage.stat("main/backups/b/manifest.json") is None
    assert list(storage.list("")) == ["main/backups/b/data"]
    storage.delete("main/backups/b/manifest.json")  # again: not an error
    storage.delete("never/existed")
    storage.delete("main/backups/b/data")
    assert list(storage.list("")) == []
    storage.put("main/backups/b/data", [b"new"])  # the key can be created again
    assert read_all(storage, "main/backups/b/data") == b"new"


# -- stat --------------------------------------------------------------------------------
def test_stat_size_and_mtime(storage: Storage) -> None:
    before = time.time()
    storage.put("k", [b"12345"])
    st = storage.stat("k")
    assert st is not None and st.size == 5
    assert before - 2 <= st.mtime <= time.time() + 2  # S3 keeps whole seconds


# -- locks -------------------------------------------------------------------------------
def test_lock_is_exclusive(storage_pair: Pair) -> None:
    storage, other = storage_pair
    second = other()
    with storage.lock("main-catalog"):
        with pytest.raises(LockHeld) as err, second.lock("main-catalog", wait=False):
            pytest.fail("two holders of one lock")
        assert "held" in str(err.value)
        assert isinstance(err.value, RepositoryError)  # exit 2, as before LockHeld existed
        with second.lock("main-other", wait=False):  # other names are independent
            pass
    with second.lock("main-catalog", wait=False):
        pass
    with storage.lock("main-catalog", wait=False):  # released again
        pass


def test_lock_waiter_gets_it_when_released(storage_pair: Pair) -> None:
    storage, other = storage_pair
    second = other()
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with storage.lock("job"):
            held.set()
            time.sleep(0.5)
            order.append("holder done")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    with second.lock("job", wait=True):
        order.append("waiter in")
    t.join()
    assert order == ["holder done", "waiter in"]


def test_lock_is_released_when_the_body_raises(storage: Storage) -> None:
    with pytest.raises(Boom), storage.lock("x"):
        raise Boom()
    with storage.lock("x", wait=False):
        pass


def test_url_and_free_bytes(storage: Storage) -> None:
    assert storage.url
    free = storage.free_bytes()
    assert free is None or free > 0
    assert isinstance(storage, Storage)
