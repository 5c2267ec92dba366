"""The streaming tar extractor used by ``recover``: same files as ``tarfile`` whatever
the piece sizes, and every kind of damage named."""

from __future__ import annotations

import gc
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pgsafe.errors import VerificationFailed
from pgsafe.recovery.untar import BLOCK, Untar


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o700 if kind == tarfile.DIRTYPE else 0o600
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("backup_label", b"START WAL LOCATION: 0/2000028\n")
        add("base", kind=tarfile.DIRTYPE)
        add("base/1", kind=tarfile.DIRTYPE)
        add("base/1/1259", bytes(range(256)) * 300)  # not a multiple of 512
        add("base/1/empty", b"")
        add("global/pg_control", b"\x01" * 8192)  # its folder has no member of its own
        add("pg_wal", kind=tarfile.DIRTYPE)  # pg_basebackup sends a linked pg_wal as a folder
    return buf.getvalue()


def _feed(root: Path, data: bytes, size: int) -> Untar:
    u = Untar(root)
    for i in range(0, len(data), size):
        u.feed(data[i : i + size])
    u.finish()
    return u


@pytest.mark.parametrize("size", [1, 7, 511, 512, 513, 4096, 1 << 20])
def test_same_files_as_tarfile_whatever_the_pieces(tmp_path: Path, size: int) -> None:
    data = _archive()
    got = tmp_path / "got"
    got.mkdir()
    u = _feed(got, data, size)
    assert u.files == 4
    assert u.written == 30 + 256 * 300 + 0 + 8192
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            p = got / m.name
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                assert p.read_bytes() == f.read(), m.name
                assert p.stat().st_mode & 0o777 == 0o600
            else:
                assert m.isdir() and p.is_dir() and not p.is_symlink()


def test_truncated_stream_is_named(tmp_path: Path) -> None:
    data = _archive()
    cut = data.index(b"\x01" * 100)  # inside global/pg_control
    u = Untar(tmp_path)
    u.feed(data[:cut])
    with pytest.raises(VerificationFailed, match="middle of 'global/pg_control'"):
        u.finish()


def test_missing_end_marker(tmp_path: Path) -> None:
    data = _archive()
    end = len(data.rstrip(b"\0"))
    end += -end % BLOCK
    u = Untar(tmp_path)
    u.feed(data[:end])
    with pytest.raises(VerificationFailed, match="end-of-archive"):
        u.finish()


def test_bytes_after_the_end(tmp_path: Path) -> None:
    data = _archive() + b"garbage".ljust(BLOCK, b"\0")
    with pytest.raises(VerificationFailed, match="after its end-of-archive"):
        _feed(tmp_path, data, 1 << 20)


def test_damaged_header(tmp_path: Path) -> None:
    data = bytearray(_archive())
    data[1] ^= 0xFF  # the first member's name
    with pytest.raises(VerificationFailed, match="checksum"):
        _feed(tmp_path, bytes(data), 4096)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "base/../../x"])
def test_names_outside_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(VerificationFailed, match="outside"):
        _feed(root, buf.getvalue(), 4096)
    assert not list(tmp_path.rglob("escape")) and not list(tmp_path.rglob("x"))


def test_other_member_types_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("hard")
        info.type = tarfile.LNKTYPE
        info.linkname = "other"
        tar.addfile(info)
    with pytest.raises(VerificationFailed, match="unexpected tar member type"):
        _feed(tmp_path, buf.getvalue(), 4096)


def _fds_into(root: Path) -> list[str]:
    """What this process holds open under ``root`` (not a count of every descriptor:
    the collector or another thread may open or close one of their own meanwhile; a
    count failed that way once under xdist)."""
    gc.collect()
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == str(root) or target.startswith(f"{root}/"):
            out.append(target)
    return out


def test_every_file_and_folder_is_fsynced_and_closed(tmp_path: Path) -> None:
    synced: list[str] = []

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        os.fsync(fd)

    got = tmp_path / "got"
    got.mkdir()
    u = Untar(got, fsync=fsync)
    data = _archive()
    for i in range(0, len(data), 4096):
        u.feed(data[i : i + 4096])
    u.finish()
    u.abort()  # what extract() does in its finally: harmless after finish
    assert _fds_into(got) == []
    files = {str(got / n) for n in ("backup_label", "base/1/1259", "base/1/empty")}
    folders = {str(got), str(got / "base"), str(got / "base/1"), str(got / "global")}
    assert files | {str(got / "global/pg_control")} <= set(synced)
    assert folders <= set(synced)


def test_a_large_file_is_fsynced_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pgsafe.syncer as syncer_mod

    monkeypatch.setattr(syncer_mod, "SYNC_EVERY", 4096)
    synced: list[str] = []

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    got = tmp_path / "got"
    got.mkdir()
    _feed_with(got, _archive(), 1024, fsync)
    # base/1/1259 is 76800 bytes: fsynced along the way, then once more when complete
    assert synced.count(str(got / "base/1/1259")) >= 76800 // 4096


def _feed_with(root: Path, data: bytes, size: int, fsync: Callable[[int], None]) -> Untar:
    u = Untar(root, fsync=fsync)
    for i in range(0, len(data), size):
        u.feed(data[i : i + size])
    u.finish()
    return u


def test_an_fsync_error_fails_the_extraction_by_name(tmp_path: Path) -> None:
    from pgsafe.errors import OperationFailed

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("1259"):
            raise OSError(5, "Input/output error")

    got = tmp_path / "got"
    got.mkdir()
    with pytest.raises(OperationFailed, match=r"base/1/1259 durable: Input/output error"):
        _feed_with(got, _archive(), 4096, fsync)
    assert _fds_into(got) == []


def test_damage_closes_everything(tmp_path: Path) -> None:
    got = tmp_path / "got"
    got.mkdir()
    u = Untar(got)
    data = _archive()
    u.feed(data[:2000])  # in the middle of a member
    with pytest.raises(VerificationFailed):
        u.finish()
    u.abort()
    assert _fds_into(got) == []


# -- untrusted archives: links are never created nor followed --------------------------


def _tar(*members: tuple[str, bytes, bytes | None, str]) -> bytes:
    """(name, type, data, linkname) members as ustar, with the end-of-archive blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            info.mode = 0o777 if kind == tarfile.DIRTYPE else 0o600
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def test_a_link_then_a_file_through_it_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    data = _tar(
        ("evil", tarfile.SYMTYPE, None, str(outside)),
        ("evil/planted", tarfile.REGTYPE, b"x", ""),
    )
    with pytest.raises(VerificationFailed, match="'evil' is a symbolic link"):
        _feed(root, data, 4096)
    assert not list(outside.iterdir()) and not (root / "evil").exists()


def test_a_folder_member_over_a_link_chmods_nothing(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "evil")  # as if an earlier member had made it
    with pytest.raises(VerificationFailed, match="not a folder"):
        _feed(root, _tar(("evil", tarfile.DIRTYPE, None, "")), 4096)
    assert outside.stat().st_mode & 0o777 == 0o700


def test_a_file_under_an_existing_link_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / "base").mkdir(parents=True)
    os.symlink(outside, root / "base" / "1")
    with pytest.raises(VerificationFailed, match="through 'base/1'"):
        _feed(root, _tar(("base/1/1259", tarfile.REGTYPE, b"abc", "")), 4096)
    with pytest.raises(VerificationFailed, match="appears twice or over"):
        _feed(root, _tar(("base/1", tarfile.REGTYPE, b"abc", "")), 4096)
    assert not list(outside.iterdir())


def test_a_tablespace_link_is_refused_by_oid_and_target(tmp_path: Path) -> None:
    data = _tar(("pg_tblspc/16385", tarfile.SYMTYPE, None, "/srv/ts1"))
    with pytest.raises(VerificationFailed, match=r"tablespace 16385 .*'/srv/ts1'"):
        _feed(tmp_path, data, 4096)
    assert not (tmp_path / "pg_tblspc" / "16385").exists()


def test_a_member_given_twice_is_refused(tmp_path: Path) -> None:
    data = _tar(("a", tarfile.REGTYPE, b"1", ""), ("a", tarfile.REGTYPE, b"2", ""))
    with pytest.raises(VerificationFailed, match=r"'a' appears twice"):
        _feed(tmp_path, data, 4096)
    assert (tmp_path / "a").read_bytes() == b"1"


@pytest.mark.parametrize("name", ["a/./b", "./", "a//b"])
def test_odd_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(VerificationFailed, match="outside"):
        _feed(tmp_path, _tar((name, tarfile.REGTYPE, b"x", "")), 4096)


def _rechecksum(data: bytearray, at: int) -> None:
    h = data[at : at + BLOCK]
    data[at + 148 : at + 156] = b"%06o\0 " % (sum(h[:148]) + 8 * 32 + sum(h[156:]))


@pytest.mark.parametrize(("lo", "hi"), [(124, 136), (100, 108)])
def test_a_header_field_that_is_not_a_number_is_named_damage(
    tmp_path: Path, lo: int, hi: int
) -> None:
    data = bytearray(_archive())
    second = BLOCK + 512  # backup_label's header, its 30 bytes of body padded, then 'base'
    data[second + lo : second + hi] = b"8" * (hi - lo - 1) + b"\0"
    _rechecksum(data, second)
    with pytest.raises(VerificationFailed, match=r"offset 1024 \(member 'base/', after 'backup_l"):
        _feed(tmp_path, bytes(data), 4096)


def test_a_checksum_field_that_is_not_a_number_is_damage(tmp_path: Path) -> None:
    data = bytearray(_archive())
    data[148:156] = b"zzzzzz\0 "
    with pytest.raises(VerificationFailed, match=r"offset 0 .* fails its checksum"):
        _feed(tmp_path, bytes(data), 4096)


def test_a_stream_cut_in_a_header_is_named(tmp_path: Path) -> None:
    data = _archive()
    u = Untar(tmp_path)
    u.feed(data[: 1024 + 100])  # in the middle of the header of 'base'
    with pytest.raises(VerificationFailed, match="ends in the middle of 'backup_label'"):
        u.finish()


def _pg14_stream(manifest: bytes, trailer: bytes = bytes(2 * BLOCK)) -> bytes:
    """What pg_basebackup 13 and 14 write with ``-Ft -D -``: the backup_manifest they
    inject last is not padded to a block, and the two zero blocks follow its last byte."""
    head = tarfile.TarInfo("backup_manifest")
    head.size = len(manifest)
    head.mode = 0o600
    body = _archive().rstrip(b"\0")
    body += bytes(-len(body) % BLOCK)
    return body + head.tobuf(format=tarfile.USTAR_FORMAT) + manifest + trailer


@pytest.mark.parametrize("size", [1, 13, 512, 4096])
def test_the_unpadded_manifest_of_pg_13_and_14_is_read(tmp_path: Path, size: int) -> None:
    manifest = b'{"PostgreSQL-Backup-Manifest-Version": 1}\n' * 7  # not a multiple of 512
    assert len(manifest) % BLOCK
    _feed(tmp_path, _pg14_stream(manifest), size)
    assert (tmp_path / "backup_manifest").read_bytes() == manifest
    assert (tmp_path / "global/pg_control").read_bytes() == b"\x01" * 8192


def test_only_zero_bytes_may_follow_an_unpadded_manifest(tmp_path: Path) -> None:
    manifest = b"x" * 700
    trailer = bytearray(2 * BLOCK)
    trailer[100] = 1
    with pytest.raises(VerificationFailed, match="middle of 'backup_manifest'"):
        _feed(tmp_path, _pg14_stream(manifest, bytes(trailer)), 4096)


def test_no_other_member_may_end_unpadded(tmp_path: Path) -> None:
    data = bytearray(_pg14_stream(b"x" * 700).replace(b"backup_manifest", b"backup_manifesx"))
    at = data.index(b"backup_manifesx")
    head = tarfile.TarInfo("backup_manifesx")  # a header with a correct checksum
    head.size, head.mode = 700, 0o600
    data[at : at + BLOCK] = head.tobuf(format=tarfile.USTAR_FORMAT)
    with pytest.raises(VerificationFailed, match="middle of 'backup_manifesx'"):
        _feed(tmp_path, bytes(data), 4096)
