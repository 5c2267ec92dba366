"""A local repository written by an attacker: links planted inside it never make pgsafe,
run as root the way the README shows, write, chown, chmod or read outside it.

The attacker is the ``postgres`` OS user: a repository created by root is handed to it
(it runs ``wal-push``), so it may put anything inside the repository.  Each test plants
what that user could (its links belong to postgres), runs the real CLI as root, and
checks a root-only canary — content, owner and mode, every file of a canary folder —
is as it was.  pgsafe either refuses cleanly (exit 2, the key named, no traceback) or
does its work without touching the canary.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.errors import RepositoryError
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.posix import PosixStorage
from pgsafe.wal import fastpush, server_record
from tests.conftest import psql_exec, reachable_tmpdir, run_pgsafe

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks are on root's runs")

SECRET = b"root-only secret\n"
DAY1 = {"PGSAFE_FAKE_NOW": "2024-03-01T10:00:00+00:00"}
DAY2 = {"PGSAFE_FAKE_NOW": "2024-03-02T10:00:00+00:00"}
DAY3 = {"PGSAFE_FAKE_NOW": "2024-03-03T10:00:00+00:00"}
SYSID = 7312345678901234567
SEG = 16 * 1024 * 1024


def _postgres() -> tuple[int, int]:
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def plant_link(target: Path, link: Path) -> None:
    """``ln -sf target link`` as the postgres user would leave it."""
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    os.symlink(target, link)
    os.lchown(link, *_postgres())


Snapshot = dict[str, tuple[int, int, int, bytes | None]]


def snapshot(path: Path) -> Snapshot:
    """Owner, mode and content of ``path`` and (a folder) of everything under it."""
    out: Snapshot = {}
    for p in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
        st = p.lstat()
        body = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[str(p.relative_to(path.parent))] = (
            st.st_uid,
            st.st_gid,
            stat.S_IMODE(st.st_mode),
            body,
        )
    return out


@pytest.fixture
def canary() -> Iterator[Path]:
    """A root-only folder (0700) holding a root-only file (0600), outside the repository."""
    base = reachable_tmpdir("pgsafe-canary-")
    d = base / "secret"
    d.mkdir(mode=0o700)
    (d / "file").write_bytes(SECRET)
    os.chmod(d / "file", 0o600)
    yield d
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shopdb(pg: LocalCluster) -> str:
    psql_exec(pg.conninfo(), "DROP DATABASE IF EXISTS h1shop")
    psql_exec(pg.conninfo(), "CREATE DATABASE h1shop")
    psql_exec(
        pg.conninfo("h1shop"), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g"
    )
    return pg.conninfo("h1shop")


def dump(repo: Path, conninfo: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = run_pgsafe("--repo", str(repo), "dump", "-d", conninfo, "--json", env=env)
    backup_id = json.loads(r.stdout)["id"] if r.returncode == 0 else ""
    return r.returncode, backup_id, r.stderr


def assert_clean_refusal_or_success(rc: int, stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert rc in (0, 2), stderr
    if rc == 2:
        assert "symbolic link" in stderr, stderr


# -- the CLI, as root, against a real cluster ---------------------------------------


def test_a_lock_file_linked_to_a_root_file_does_not_give_it_away(
    repo: Path, shopdb: str, canary: Path
) -> None:
    # unfixed: exit 0, and the canary file then belonged to postgres
    rc, _, err = dump(repo, shopdb)
    assert rc == 0, err
    assert repo.stat().st_uid == _postgres()[0]  # as the README sets it up
    target = canary / "file"
    before = snapshot(canary)
    plant_link(target, repo / ".lock-main-ids")
    rc, _, err = dump(repo, shopdb)
    assert snapshot(canary) == before
    assert_clean_refusal_or_success(rc, err)
    assert rc == 2 and ".lock-main-ids" in err


def test_a_hard_linked_lock_file_keeps_its_owner(repo: Path, canary: Path) -> None:
    """A lock file that already exists is used as it is: owner and mode are set only on
    a lock file pgsafe created itself (a hard link to a root file, where the kernel
    allows one, stays root's).  Unfixed: the canary went to postgres."""
    Repository.open(str(repo), create=True, owner=repository_owner())  # as root: handed to postgres
    os.link(canary / "file", repo / ".lock-main-catalog")
    before = snapshot(canary)
    storage = PosixStorage(repo)
    with storage.lock("main-catalog"):
        pass
    assert snapshot(canary) == before


def test_a_linked_server_folder_is_refused(repo: Path, shopdb: str, canary: Path) -> None:
    # unfixed: exit 0, the backup written into the canary folder and given to postgres
    rc, _, err = dump(repo, shopdb)
    assert rc == 0, err
    os.rename(repo / "main", repo / "main.old")
    plant_link(canary, repo / "main")
    before = snapshot(canary)
    rc, _, err = dump(repo, shopdb)
    assert snapshot(canary) == before
    assert_clean_refusal_or_success(rc, err)
    assert rc == 2 and "main" in err


def test_a_linked_backup_folder_is_not_written_through(
    repo: Path, shopdb: str, canary: Path
) -> None:
    """The attacker knows the next backup's id (its time) and plants a link under it.
    Unfixed: exit 0, the backup's files written into the canary folder."""
    rc, backup_id, err = dump(repo, shopdb, DAY1)
    assert rc == 0, err
    plant_link(canary, repo / "main" / "backups" / backup_id)
    before = snapshot(canary)
    rc, _, err = dump(repo, shopdb, DAY1)
    assert snapshot(canary) == before
    assert_clean_refusal_or_success(rc, err)


def test_expire_does_not_delete_through_a_linked_backups_folder(
    repo: Path, shopdb: str, canary: Path
) -> None:
    """The backups folder moved out of the repository (into root's canary folder) and
    linked back: expire must not remove the files behind the link.  Unfixed: exit 0,
    the older backup's files deleted from the canary folder."""
    rc, _, err = dump(repo, shopdb, DAY1)
    assert rc == 0, err
    rc, _, err = dump(repo, shopdb, DAY2)
    assert rc == 0, err
    backups = repo / "main" / "backups"
    shutil.copytree(backups, canary / "backups")
    for p in (canary / "backups").rglob("*"):
        os.chown(p, 0, 0)
    plant_link(canary / "backups", backups)
    before = snapshot(canary)
    r = run_pgsafe("--repo", str(repo), "expire", "--keep-last", "1", env=DAY3)
    assert snapshot(canary) == before
    assert_clean_refusal_or_success(r.returncode, r.stderr)


def test_a_linked_object_is_refused_not_read(
    repo: Path, shopdb: str, canary: Path, tmp_path: Path
) -> None:
    """A backup's object replaced by a link to a root-only file: reading commands refuse
    it by name instead of reading the file behind it.  Unfixed: export exit 3 after
    reading the root-only file (checksum mismatch)."""
    rc, backup_id, err = dump(repo, shopdb)
    assert rc == 0, err
    folder = repo / "main" / "backups" / backup_id
    (obj,) = [p for p in folder.iterdir() if ".dump" in p.name]  # the archive itself
    plant_link(canary / "file", obj)
    before = snapshot(canary)
    out = tmp_path / "export"
    r = run_pgsafe("--repo", str(repo), "export", backup_id, str(out))
    assert snapshot(canary) == before
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr and obj.name in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not any(SECRET in p.read_bytes() for p in out.rglob("*") if p.is_file())


def _segment(path: Path) -> Path:
    header = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, 1, 0, 0, SYSID, SEG, 8192)
    path.write_bytes(header + bytes(SEG - len(header)))
    return path


def test_a_linked_wal_folder_is_refused(repo: Path, canary: Path, tmp_path: Path) -> None:
    """Unfixed: exit 0, a timeline folder made in the canary folder and given to postgres."""
    r = Repository.open(str(repo), create=True, owner=repository_owner())
    server_record.ensure(r, server_record.ServerRecord(str(SYSID), SEG))
    (repo / "main" / "wal").mkdir(exist_ok=True)
    plant_link(canary, repo / "main" / "wal")
    before = snapshot(canary)
    seg = _segment(tmp_path / "000000010000000000000002")
    res = run_pgsafe("--repo", str(repo), "wal-push", str(seg))
    assert snapshot(canary) == before
    assert res.returncode in (1, 2), res.stderr
    assert "symbolic link" in res.stderr and "Traceback" not in res.stderr
    # expire's clean-up of leftovers does not go through the link either
    old = canary / f".tmp-{seg.name}.zst.abc"
    old.write_bytes(b"x")
    os.utime(old, (1, 1))
    before = snapshot(canary)
    res = run_pgsafe("--repo", str(repo), "expire", "--keep-last", "1")
    assert snapshot(canary) == before
    assert "Traceback" not in res.stderr


# -- the storage and the fast path, directly ---------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> PosixStorage:
    root = tmp_path / "repo"
    root.mkdir(mode=0o700)
    os.chown(root, *_postgres())
    return PosixStorage(root)


@pytest.mark.parametrize("where", ["folder", "object"])
def test_every_storage_call_refuses_a_link(storage: PosixStorage, canary: Path, where: str) -> None:
    """put, open, stat and delete refuse a link as a folder on the way or as the object
    itself, naming the key; list shows nothing behind a link; the canary is untouched."""
    storage.put("main/backups/b1/data", [b"mine"])
    if where == "folder":
        plant_link(canary, storage.root / "main" / "backups" / "b2")
        key = "main/backups/b2/file"
    else:
        plant_link(canary / "file", storage.root / "main" / "backups" / "b1" / "file")
        key = "main/backups/b1/file"
    before = snapshot(canary)
    for call in (
        lambda: storage.open(key),
        lambda: storage.stat(key),
        lambda: storage.put(key, [b"evil"], overwrite=True),
        lambda: storage.put(key, [b"evil"]),
        lambda: storage.delete(key),
    ):
        with pytest.raises(RepositoryError, match="symbolic link") as exc:
            call()
        assert "main/backups/b" in str(exc.value)
        assert snapshot(canary) == before
    assert list(storage.list("main")) == ["main/backups/b1/data"]
    assert list(storage.list("main/backups/b2")) == []
    storage.delete("main/backups")  # a whole folder: the link goes, not what it points to
    assert snapshot(canary) == before
    assert not (storage.root / "main" / "backups").exists()


def test_fast_path_declines_a_linked_wal_folder(
    tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in list(os.environ):
        if k.startswith("PGSAFE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "repo"
    repo = Repository.open(str(root), create=True, owner=repository_owner())
    os.chown(root, 0, 0)  # root's own repository: the fast path's case
    server_record.ensure(repo, server_record.ServerRecord(str(SYSID), SEG))
    plant_link(canary, root / "main" / "wal")
    before = snapshot(canary)
    seg = _segment(tmp_path / "000000010000000000000003")
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert snapshot(canary) == before
