"""Hostile base backups: ``recover`` and ``drill`` run by root, the way the README shows,
against a repository that an attacker could write (the ``postgres`` OS user, anyone with
the bucket's keys).

Each crafted backup is made as such an attacker would: the stored tar object is decoded
with the codec its name says, changed, encoded again and put in place, and the catalog is
made to agree (the object's sha256 and size in the manifest, and the manifest's own
sha256).  The assertions are about what root did outside the paths the user named:
canary files and folders keep their content, owner and mode.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.logical import materialize as mat
from pgsafe.recovery.prove import TAR_MAJOR
from pgsafe.repo import catalog
from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster
from tests.conftest import psql_exec, reachable_tmpdir, run_pgsafe

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks are on root")


@dataclass
class Src:
    cluster: LocalCluster
    repo: Path
    base: Path
    backup: str


@pytest.fixture(scope="module")
def src(state_home: Path) -> Iterator[Src]:
    with archiving_cluster("pgsafe-sec-extract-", state_home) as a:
        psql_exec(a.conninfo, "CREATE TABLE t (id int PRIMARY KEY)")
        psql_exec(a.conninfo, "INSERT INTO t SELECT generate_series(1, 100)")
        yield Src(a.cluster, a.repo_path, a.base, a.backup())


@dataclass
class Canary:
    """A folder outside every path the user named, with a file in it."""

    folder: Path
    file: Path

    @classmethod
    def make(cls, where: Path) -> Canary:
        folder = where / "canary"
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)
        f = folder / "precious"
        f.write_text("do not touch\n")
        os.chmod(f, 0o600)
        return cls(folder, f)

    def state(self) -> list[tuple[str, int, int, int, str]]:
        out = []
        for p in sorted([self.folder, *self.folder.rglob("*")]):
            st = p.lstat()
            body = p.read_text() if stat.S_ISREG(st.st_mode) else ""
            out.append((str(p), st.st_mode, st.st_uid, st.st_gid, body))
        return out


@pytest.fixture
def attack(src: Src) -> Iterator[tuple[Path, Canary]]:
    """A copy of the repository to tamper with, and a canary outside everything."""
    where = reachable_tmpdir("pgsafe-sec-case-")
    # the source keeps archiving: a wal-push's temporary file may vanish while we copy
    shutil.copytree(
        src.repo, where / "repo", symlinks=True, ignore=shutil.ignore_patterns(".tmp-*")
    )
    for p in [where / "repo", *(where / "repo").rglob("*")]:  # it belongs to postgres
        st = (src.repo / p.relative_to(where / "repo")).lstat()
        os.lchown(p, st.st_uid, st.st_gid)
    canary = Canary.make(where)
    yield where, canary
    shutil.rmtree(where, ignore_errors=True)


def tamper(repo_path: Path, backup_id: str, change: Callable[[bytes], bytes]) -> None:
    """Replace the stored base backup with ``change(tar)``, checksums made consistent."""
    repo = Repository.open(str(repo_path), "main")
    m = repo.load(backup_id)
    obj = m.object("data")
    assert obj is not None
    tar = b"".join(mat.chunks(repo, m, obj))
    stored = b"".join(repo.decoder(obj.name).encode([change(tar)]))  # the object's own codec
    obj_path = repo_path.joinpath(*repo.object_key(backup_id, obj.name).split("/"))
    obj_path.write_bytes(stored)
    obj.size, obj.sha256 = len(stored), hashlib.sha256(stored).hexdigest()
    man_path = repo_path.joinpath(*repo.object_key(backup_id, "manifest.json").split("/"))
    man_path.write_bytes(catalog.encode(m))


def ustar(*members: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]) -> bytes:
    """Members as plain ustar, without the end-of-archive blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for m in members:
            if isinstance(m, tuple):
                info, data = m
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(m)
    return _strip_end(buf.getvalue())


def _strip_end(tar: bytes) -> bytes:
    """The archive up to its end-of-archive blocks (where tarfile stopped reading)."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        t.getmembers()
        return tar[: t.offset]


def _end(tar: bytes) -> bytes:
    return tar + bytes(1024)


def symlink(name: str, target: str) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.linkname = tarfile.SYMTYPE, target
    return i


def folder(name: str, mode: int = 0o777) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.mode = tarfile.DIRTYPE, mode
    return i


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    i = tarfile.TarInfo(name)
    i.mode = 0o600
    return i, data


def _recover(repo: Path, pgdata: Path, *extra: str) -> tuple[int, str]:
    r = run_pgsafe("--repo", str(repo), "recover", "--pgdata", str(pgdata), "--latest", *extra)
    return r.returncode, r.stdout + r.stderr


def _drill(repo: Path, backup: str) -> tuple[int, str]:
    r = run_pgsafe("--repo", str(repo), "drill", backup)
    return r.returncode, r.stdout + r.stderr


def _no_traceback(out: str) -> None:
    assert "Traceback" not in out, out


# -- links made by the archive are never followed -------------------------------------


def _link_then_file(canary: Canary) -> Callable[[bytes], bytes]:
    def change(tar: bytes) -> bytes:
        evil = ustar(symlink("evil", str(canary.folder)), regular("evil/planted", b"owned\n"))
        return _end(_strip_end(tar) + evil)

    return change


def _link_then_folder(canary: Canary) -> Callable[[bytes], bytes]:
    def change(tar: bytes) -> bytes:
        evil = ustar(symlink("evil", str(canary.folder)), folder("evil", 0o777))
        return _end(_strip_end(tar) + evil)

    return change


@pytest.mark.parametrize("how", ["recover", "drill"])
def test_a_link_then_a_file_through_it_writes_nothing_outside(
    src: Src, attack: tuple[Path, Canary], how: str
) -> None:
    where, canary = attack
    before = canary.state()
    tamper(where / "repo", src.backup, _link_then_file(canary))
    if how == "recover":
        code, out = _recover(where / "repo", where / "pgdata")
        assert not (where / "pgdata").exists()
    else:
        code, out = _drill(where / "repo", src.backup)
    assert code == 3, out
    if how == "drill" and src.cluster.major >= TAR_MAJOR:
        # PostgreSQL's pg_verifybackup -F t finds the planted file in the stored archive,
        # before pgsafe extracts anything
        assert "evil/planted" in out and "not in the manifest" in out, out
    else:
        assert "evil" in out and "link" in out, out
    _no_traceback(out)
    assert not (canary.folder / "planted").exists()
    assert canary.state() == before


@pytest.mark.parametrize("how", ["recover", "drill"])
def test_a_folder_member_over_a_link_chmods_nothing_outside(
    src: Src, attack: tuple[Path, Canary], how: str
) -> None:
    where, canary = attack
    before = canary.state()
    tamper(where / "repo", src.backup, _link_then_folder(canary))
    if how == "recover":
        code, out = _recover(where / "repo", where / "pgdata")
    else:
        code, out = _drill(where / "repo", src.backup)
    assert code == 3, out
    _no_traceback(out)
    assert stat.S_IMODE(canary.folder.stat().st_mode) == 0o700
    assert canary.state() == before


def test_a_tablespace_link_is_refused_by_name(src: Src, attack: tuple[Path, Canary]) -> None:
    where, canary = attack
    before = canary.state()

    def change(tar: bytes) -> bytes:
        return _end(_strip_end(tar) + ustar(symlink("pg_tblspc/16999", str(canary.folder))))

    tamper(where / "repo", src.backup, change)
    code, out = _recover(where / "repo", where / "pgdata")
    assert code == 3, out
    assert "tablespace 16999" in out and str(canary.folder) in out, out
    assert canary.state() == before


# -- damage in the tar is damage (exit 3, named), never a traceback ------------------


def test_a_damaged_tar_header_is_named_damage(src: Src, attack: tuple[Path, Canary]) -> None:
    where, _ = attack

    def change(tar: bytes) -> bytes:
        b = bytearray(tar)
        b[124:136] = b"9z9z9z9z9z9\0"  # the first member's size: not octal
        b[148:156] = b"%06o\0 " % (sum(b[:148]) + 8 * 32 + sum(b[156:512]))
        return bytes(b)

    tamper(where / "repo", src.backup, change)
    code, out = _recover(where / "repo", where / "pgdata")
    assert code == 3, out
    _no_traceback(out)
    assert "offset 0" in out and "backup_label" in out, out
    assert not (where / "pgdata").exists()


def test_a_truncated_tar_is_named_damage(src: Src, attack: tuple[Path, Canary]) -> None:
    where, _ = attack
    tamper(where / "repo", src.backup, lambda tar: tar[: len(tar) // 2 + 100])
    code, out = _recover(where / "repo", where / "pgdata")
    assert code == 3, out
    _no_traceback(out)
    assert "ends in the middle of" in out, out


# -- recover --force proves before it replaces -----------------------------------------


def _old_datadir(where: Path) -> tuple[Path, dict[str, bytes]]:
    d = where / "old"
    d.mkdir(mode=0o700)
    files = {"PG_VERSION": b"15\n", "base/1/1259": b"old relation", "postgresql.conf": b"x = 1\n"}
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    return d, files


def _contents(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file()}


def test_force_over_a_datadir_with_a_damaged_backup_keeps_the_old_contents(
    src: Src, attack: tuple[Path, Canary]
) -> None:
    where, _ = attack
    d, files = _old_datadir(where)
    mode = stat.S_IMODE(d.stat().st_mode)

    def change(tar: bytes) -> bytes:  # damage deep inside, after many members were written
        b = bytearray(tar)
        b[len(b) * 3 // 4] ^= 0xFF
        return bytes(b)

    repo = Repository.open(str(where / "repo"), "main")
    m = repo.load(src.backup)
    obj = m.object("data")
    assert obj is not None
    # the damage happens after the catalog was written: the checksum no longer matches
    tar = b"".join(mat.chunks(repo, m, obj))
    key_path = (where / "repo").joinpath(*repo.object_key(src.backup, obj.name).split("/"))
    key_path.write_bytes(b"".join(repo.decoder(obj.name).encode([change(tar)])))
    code, out = _recover(where / "repo", d, "--force")
    assert code == 3, out
    _no_traceback(out)
    assert _contents(d) == files
    assert stat.S_IMODE(d.stat().st_mode) == mode
    assert sorted(p.name for p in where.iterdir()) == sorted(["repo", "canary", "old"]), out


def test_force_replaces_a_stopped_datadir_after_proving_the_backup(
    src: Src, attack: tuple[Path, Canary]
) -> None:
    where, _ = attack
    d, _files = _old_datadir(where)
    code, out = _recover(where / "repo", d, "--force")
    assert code == 0, out
    assert (d / "backup_label").exists() and (d / "base/1/1259").read_bytes() != b"old relation"
    # beside it: only the (empty) prefetch spool its restore_command names
    spools = [p for p in where.iterdir() if re.fullmatch(r"old\.spool-[0-9a-f]+", p.name)]
    assert len(spools) == 1 and not any(spools[0].iterdir()), out
    assert f"--spool {spools[0]}" in (d / "postgresql.auto.conf").read_text()
    names = sorted(p.name for p in where.iterdir() if p not in spools)
    assert names == sorted(["repo", "canary", "old"]), out


@pytest.mark.parametrize("kind", ["random files", "home", "root", "repo"])
def test_force_refuses_what_is_not_a_stopped_datadir(
    src: Src, attack: tuple[Path, Canary], kind: str
) -> None:
    where, canary = attack
    extra: tuple[str, ...] = ()
    if kind == "random files":
        target = where / "stuff"
        target.mkdir()
        (target / "notes.txt").write_text("mine\n")
        (target / "sub").mkdir()
        (target / "sub" / "x").write_bytes(os.urandom(100))
        before = _contents(target)
    elif kind in ("home", "root"):
        # --dry-run: a missed refusal then changes nothing (a bug here must not empty /)
        target, extra = Path("/" if kind == "root" else os.path.expanduser("~root")), ("--dry-run",)
    else:
        target = where / "repo"
        extra = ("--dry-run",)
    repo_before = sorted(str(p) for p in (where / "repo").rglob("*"))
    code, out = _recover(where / "repo", target, "--force", *extra)
    assert code == 2, out
    _no_traceback(out)
    if kind == "random files":
        assert _contents(target) == before
        assert "PG_VERSION" in out, out
    assert sorted(p.name for p in where.iterdir()) == sorted(
        ["repo", "canary", *(["stuff"] if kind == "random files" else [])]
    )
    assert sorted(str(p) for p in (where / "repo").rglob("*")) == repo_before  # not even a lock
    assert canary.state()


def test_force_refuses_a_running_datadir(src: Src) -> None:
    code, out = _recover(src.repo, src.cluster.datadir, "--force")
    assert code == 2 and "running" in out, out
