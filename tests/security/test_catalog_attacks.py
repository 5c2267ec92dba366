"""A hostile repository: the catalog as an attacker who can write the repository edits it.

Each test makes real backups with ``pgsafe dump`` against the ``pg`` fixture, then edits
the manifest JSON the way an attacker would — the checksum beside it has no key, so the
attacker recomputes it exactly as ``catalog.encode`` does (sha256 of the body's
canonical JSON) — and runs pgsafe as root the way the README shows.  Each asserts the
exit code and that nothing outside the paths the user named changed: a canary file's
content, owner and mode, and a canary folder's mode.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgsafe.cluster.local import LocalCluster
from tests.conftest import psql_exec, query, reachable_tmpdir, run_pgsafe

DB = "shop_sec"


# -- the attacker's tools --------------------------------------------------------------
def manifest_path(repo: Path, backup_id: str) -> Path:
    return repo / "main" / "backups" / backup_id / "manifest.json"


def write_manifest(path: Path, body: Any) -> None:
    """Write ``body`` with a checksum that matches, as catalog.encode computes it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc = {"manifest": body, "sha256": hashlib.sha256(canonical.encode()).hexdigest()}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def tamper(repo: Path, backup_id: str, edit: Callable[[dict[str, Any]], Any]) -> None:
    path = manifest_path(repo, backup_id)
    body = json.loads(path.read_text())["manifest"]
    result = edit(body)
    write_manifest(path, body if result is None else result)


# -- the canary ----------------------------------------------------------------------
@dataclass
class Canary:
    folder: Path
    victim: Path

    def snapshot(self) -> tuple[Any, ...]:
        st = self.victim.lstat()
        return (
            self.victim.read_bytes(),
            st.st_uid,
            st.st_gid,
            stat.S_IMODE(st.st_mode),
            stat.S_IMODE(self.folder.lstat().st_mode),
            sorted(p.name for p in self.folder.iterdir()),
        )


@pytest.fixture
def canary() -> Iterator[Canary]:
    folder = reachable_tmpdir("pgsafe-canary-")
    os.chmod(folder, 0o751)
    victim = folder / "victim"
    victim.write_bytes(b"precious content\n")
    os.chmod(victim, 0o640)
    yield Canary(folder, victim)
    shutil.rmtree(folder, ignore_errors=True)


# -- real backups, copied per test ---------------------------------------------------
@dataclass
class Pristine:
    repo: Path
    custom: str
    directory: str


@pytest.fixture(scope="module")
def pristine(pg: LocalCluster) -> Iterator[Pristine]:
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {DB}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {DB}")
    psql_exec(
        pg.conninfo(DB),
        "CREATE TABLE orders(id int primary key, note text);"
        "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 50) g;",
    )
    base = reachable_tmpdir("pgsafe-sec-")
    repo = base / "repo"
    ids = []
    for fmt in ("custom", "directory"):
        r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(DB), "-F", fmt, "-q")
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    yield Pristine(repo, ids[0], ids[1])
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def hostile(pristine: Pristine) -> Iterator[Pristine]:
    """A copy of the pristine repository (owner and modes kept) to tamper with."""
    base = reachable_tmpdir("pgsafe-hostile-")
    repo = base / "repo"
    shutil.copytree(pristine.repo, repo, symlinks=True)
    st = pristine.repo.stat()
    for p in [repo, *repo.rglob("*")]:
        os.lchown(p, st.st_uid, st.st_gid)
    yield Pristine(repo, pristine.custom, pristine.directory)
    shutil.rmtree(base, ignore_errors=True)


def pgsafe(repo: Path, *args: str) -> Any:
    r = run_pgsafe("--repo", str(repo), *args)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def plant(repo: Path, backup_id: str, name: str, copy_of: str) -> dict[str, Any]:
    """Store the bytes of object ``copy_of`` under the object name ``name`` (where the
    storage reads that key) and return its catalog entry."""
    folder = repo / "main" / "backups" / backup_id
    key_path = folder.joinpath(*[p for p in name.split("/") if p and p != ".."])
    key_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / copy_of, key_path)
    body = json.loads(manifest_path(repo, backup_id).read_text())["manifest"]
    obj = next(o for o in body["objects"] if o["name"] == copy_of)
    return {**obj, "name": name}


# -- 1. paths from catalog content -----------------------------------------------------
def test_export_of_an_absolute_object_name_writes_nothing_outside(
    hostile: Pristine, canary: Canary
) -> None:
    before = canary.snapshot()
    bid = hostile.custom
    evil = plant(hostile.repo, bid, f"{canary.victim}.zst", f"{DB}.dump.zst")
    tamper(hostile.repo, bid, lambda b: b["objects"].append(evil))
    out = reachable_tmpdir("pgsafe-export-") / "out"
    r = pgsafe(hostile.repo, "export", bid, str(out))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "absolute" in r.stderr
    assert canary.snapshot() == before
    assert not out.exists()


def test_export_of_a_dotdot_object_name_truncates_nothing(
    hostile: Pristine, canary: Canary
) -> None:
    before = canary.snapshot()
    bid = hostile.custom
    name = "../" * 12 + str(canary.victim).lstrip("/") + ".zst"
    evil = plant(hostile.repo, bid, name, f"{DB}.dump.zst")
    tamper(hostile.repo, bid, lambda b: b["objects"].insert(0, evil))
    out = reachable_tmpdir("pgsafe-export-") / "out"
    r = pgsafe(hostile.repo, "export", bid, str(out))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert canary.snapshot() == before
    assert not out.exists()


def test_directory_restore_of_an_absolute_member_writes_nothing_outside(
    hostile: Pristine, canary: Canary, pg: LocalCluster
) -> None:
    before = canary.snapshot()
    bid = hostile.directory
    evil = plant(hostile.repo, bid, f"{DB}.dir/{canary.victim}.zst", f"{DB}.dir/toc.dat.zst")
    tamper(hostile.repo, bid, lambda b: b["objects"].append(evil))
    target = "shop_sec_evil_restore"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = pgsafe(hostile.repo, "restore", bid, "-d", pg.conninfo(target), "--create")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert canary.snapshot() == before
    assert not query(pg.conninfo(), f"SELECT 1 FROM pg_database WHERE datname = '{target}'")


# -- 2. a bad catalog entry is DAMAGED, the rest keeps working -------------------------
def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda b: b.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def edit(b: dict[str, Any]) -> None:
        del b[key]

    return edit


def _obj(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda b: b["objects"][0].__setitem__(key, value)


BAD_MANIFESTS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "missing id": (_drop("id"), "'id'"),
    "missing kind": (_drop("kind"), "'kind'"),
    "objects is a string": (_set("objects", "shop.dump.zst"), "objects"),
    "objects is null": (_set("objects", None), "objects"),
    "id with ../": (_set("id", "../../etc"), "id"),
    "id with a newline": (_set("id", "20240101T000000Z-a\nb"), "id"),
    "id of another folder": (_set("id", "20000101T000000Z-shop_sec-custom"), "folder"),
    "kind is a list": (_set("kind", ["logical"]), "kind"),
    "negative size": (_obj("size", -1), "size"),
    "absurd size": (_obj("size", 909494701772928256 * 1024**4), "size"),
    "size is a float": (_obj("size", 10.5), "size"),
    "size is a bool": (_obj("size", True), "size"),
    "object name with NUL": (_obj("name", "shop\x00.dump.zst"), "name"),
    "body is a list": (lambda b: [b], "manifest"),
    "started_at is a number": (_set("started_at", 12), "started_at"),
}


def _check_damaged_entry(p: Pristine, bid: str, needle: str) -> None:
    r = pgsafe(p.repo, "list", "--json")
    assert r.returncode == 0, r.stderr
    status = {b["id"]: b["status"] for b in json.loads(r.stdout)["backups"]}
    assert status == {bid: "DAMAGED", p.directory: "ok"}
    text = pgsafe(p.repo, "list")
    assert text.returncode == 0 and "DAMAGED" in text.stdout
    for cmd in (["show", bid], ["verify", bid], ["export", bid, "/nonexistent-pgsafe-x"]):
        r = pgsafe(p.repo, *cmd)
        assert r.returncode == 3, (cmd, r.returncode, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and needle in r.stderr, (cmd, r.stderr)
    r = pgsafe(p.repo, "expire", "--keep-last", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert [d["id"] for d in json.loads(r.stdout)["damaged"]] == [bid]
    assert manifest_path(p.repo, bid).exists()  # never removed
    assert pgsafe(p.repo, "show", p.directory).returncode == 0
    r = pgsafe(p.repo, "status", "--json")
    items = {i["name"]: i["level"] for i in json.loads(r.stdout)["items"]}
    assert items.get(f"catalog entry {bid}") == "FAIL", items


@pytest.mark.parametrize("variant", sorted(BAD_MANIFESTS))
def test_a_bad_manifest_damages_that_backup_only(
    hostile: Pristine, canary: Canary, variant: str
) -> None:
    before = canary.snapshot()
    edit, needle = BAD_MANIFESTS[variant]
    tamper(hostile.repo, hostile.custom, edit)
    _check_damaged_entry(hostile, hostile.custom, needle)
    assert canary.snapshot() == before


def test_a_manifest_that_is_not_json_is_damaged_not_no_backups(hostile: Pristine) -> None:
    manifest_path(hostile.repo, hostile.custom).write_bytes(b"\xff{not json")
    _check_damaged_entry(hostile, hostile.custom, "not JSON")


def test_a_folder_that_is_no_backup_id_is_damaged_and_left(hostile: Pristine) -> None:
    stray = hostile.repo / "main" / "backups" / "evil..name"
    stray.mkdir()
    shutil.copyfile(manifest_path(hostile.repo, hostile.custom), stray / "manifest.json")
    r = pgsafe(hostile.repo, "list", "--json")
    status = {b["id"]: b["status"] for b in json.loads(r.stdout)["backups"]}
    assert status["evil..name"] == "DAMAGED" and status[hostile.custom] == "ok"
    assert pgsafe(hostile.repo, "show", "evil..name").returncode == 3
    assert pgsafe(hostile.repo, "expire", "--keep-last", "5").returncode == 0
    assert (stray / "manifest.json").exists()


def test_verify_of_a_good_backup_passes_beside_a_damaged_one(hostile: Pristine) -> None:
    tamper(hostile.repo, hostile.custom, _set("objects", None))
    r = pgsafe(hostile.repo, "verify", hostile.directory, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is True


def test_unknown_keys_are_kept_and_ignored(hostile: Pristine) -> None:
    def future(b: dict[str, Any]) -> None:
        b["added_by_a_future_pgsafe"] = {"x": [1, 2]}
        b["objects"][0]["future_object_field"] = "y"

    tamper(hostile.repo, hostile.custom, future)
    r = pgsafe(hostile.repo, "list", "--json")
    assert {b["status"] for b in json.loads(r.stdout)["backups"]} == {"ok"}
    assert pgsafe(hostile.repo, "keep", hostile.custom).returncode == 0  # re-saves it
    doc = json.loads(manifest_path(hostile.repo, hostile.custom).read_text())
    assert doc["manifest"]["added_by_a_future_pgsafe"] == {"x": [1, 2]}
    assert doc["manifest"]["objects"][0]["future_object_field"] == "y"
    assert doc["manifest"]["keep"] is True
    out = reachable_tmpdir("pgsafe-export-") / "out"
    assert pgsafe(hostile.repo, "export", hostile.custom, str(out)).returncode == 0


# -- 3. export: private modes, no symlinked destination --------------------------------
def test_export_is_private(hostile: Pristine) -> None:
    out = reachable_tmpdir("pgsafe-export-") / "out"
    r = pgsafe(hostile.repo, "export", hostile.directory, str(out))
    assert r.returncode == 0, r.stderr
    modes = {
        str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]
    }
    assert modes["."] == 0o700 and modes[f"{DB}.dir"] == 0o700
    files = {k: v for k, v in modes.items() if (out / k).is_file()}
    assert f"{DB}.dir/toc.dat" in files and "manifest.json" in files
    assert set(files.values()) == {0o600}, modes


@pytest.mark.parametrize("dangling", [False, True])
def test_export_to_a_symlink_is_refused(hostile: Pristine, canary: Canary, dangling: bool) -> None:
    before = canary.snapshot()
    base = reachable_tmpdir("pgsafe-export-")
    link = base / "out"
    target = canary.folder / "made-by-export" if dangling else canary.folder
    link.symlink_to(target)
    r = pgsafe(hostile.repo, "export", hostile.custom, str(link))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "symbolic link" in r.stderr
    assert canary.snapshot() == before
    assert link.is_symlink() and os.readlink(link) == str(target)
    shutil.rmtree(base)


# -- 4. labels ------------------------------------------------------------------------
def test_a_non_utf8_label_is_bad_input(pristine: Pristine, pg: LocalCluster) -> None:
    base = reachable_tmpdir("pgsafe-label-")
    repo = base / "repo"
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(DB), "--label", "\udcff")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "UTF-8" in lines[0] and "Traceback" not in r.stderr
    assert not (repo / "main" / "backups").exists()
    shutil.rmtree(base)


def test_labels_do_not_reach_the_terminal_raw(hostile: Pristine) -> None:
    label = "nice\x1b]0;owned\x07\x1b[2J\r\u202egnp.exe\x9b31m"
    tamper(hostile.repo, hostile.custom, _set("label", label))
    tamper(hostile.repo, hostile.directory, _set("database", "shop\x1b[31m"))
    for bid in (hostile.custom, hostile.directory):
        r = pgsafe(hostile.repo, "show", bid)
        assert r.returncode == 0, r.stderr
        for raw in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
            assert raw not in r.stdout, (raw, r.stdout)
    shown = pgsafe(hostile.repo, "show", hostile.custom).stdout
    assert "nice\\x1b]0;owned\\x07" in shown
    listing = pgsafe(hostile.repo, "list").stdout
    assert "\x1b" not in listing and "shop\\x1b[31m" in listing
    doc = json.loads(pgsafe(hostile.repo, "show", hostile.custom, "--json").stdout)
    assert doc["label"] == label
