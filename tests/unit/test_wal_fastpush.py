"""wal-push's fast path (pgsafe.wal.fastpush): it stores exactly what the full path
would, declines every case it does not handle with nothing changed, and the launcher
that archive_command uses imports no pure-Python module beyond pgsafe's own."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pgsafe.endpoint import runtime
from pgsafe.errors import BadInput
from pgsafe.repo import catalog, repository
from pgsafe.repo.repository import Repository, validate_server
from pgsafe.wal import entry, fastpush, names, server_record
from pgsafe.wal.get import get

SYSID = 7312345678901234567
SEG = 16 * 1024 * 1024


def segment(path: Path, *, sysid: int = SYSID, tli: int = 1, seed: int = 0) -> Path:
    """A file that passes for a 16 MiB WAL segment: a long page header, then
    compressible bytes that differ with ``seed``."""
    header = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, tli, 0, 0, sysid, SEG, 8192)
    block = bytes((i * 7 + seed) % 251 for i in range(8192)) + bytes(8192)
    body = (header + block)[:16384] * (SEG // 16384)
    path.write_bytes(body)
    return path


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No PGSAFE_* variable, no config file (HOME and cwd in tmp_path)."""
    for k in list(os.environ):
        if k.startswith("PGSAFE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    if os.path.isfile("/etc/pgsafe/pgsafe.toml"):
        pytest.skip("a system-wide pgsafe config exists here")
    return tmp_path


def make_repo(tmp_path: Path, codec: dict[str, object] | None = None) -> Repository:
    repo = Repository.open(str(tmp_path / "repo"), "main", create=True, codec=codec)
    if os.geteuid() == 0:  # as root a new repository goes to postgres: keep it ours
        os.chown(tmp_path / "repo", 0, 0)
        repo = Repository.open(str(tmp_path / "repo"), "main")
    server_record.ensure(repo, server_record.ServerRecord(str(SYSID), SEG))
    return repo


def stray(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


def test_constants_match_the_full_path() -> None:
    assert fastpush.FORMAT_VERSION == catalog.FORMAT_VERSION
    assert fastpush.MARKER == repository.MARKER
    assert fastpush.DEFAULT_SEGMENT_SIZE == names.DEFAULT_SEGMENT_SIZE


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1}\n',
        '  {"a": [1, 2.5, -3e2, null, true, false, "x\\u00e9\\n"], "b": {"c": {}}}  ',
        json.dumps({"codec": {"compression": "zstd", "level": 3, "encryption": None}}, indent=2),
        '{"n": NaN, "i": -Infinity}',
    ],
)
def test_json_object_is_json_loads(text: str) -> None:
    got = fastpush.json_object(text.encode())
    assert json.dumps(got, sort_keys=True) == json.dumps(json.loads(text), sort_keys=True)


@pytest.mark.parametrize("text", ["[1]", "3", '{"a": 1} x', '{"a": 1', "", "{'a': 1}", "\xff"])
def test_json_object_declines_anything_else(text: str) -> None:
    assert fastpush.json_object(text.encode("latin-1")) is None


@pytest.mark.parametrize(
    "name", ["main", "db1", "a.b-c_d", "x" * 63, "x" * 64, "", "-a", "_a", ".a", "a/b", "é", "a b"]
)
def test_server_names_as_validate_server(name: str) -> None:
    try:
        validate_server(name)
        valid = True
    except BadInput:
        valid = False
    assert fastpush._server_ok(name) == valid


def test_settings_as_load_settings(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fastpush.settings({}) is None  # no repository at all
    assert fastpush.settings({"repo": "/r"}) == ("/r", "main")
    assert fastpush.settings({"repo": "r", "server": "db1"}) == (str(clean_env / "r"), "db1")
    assert fastpush.settings({"repo": "~/r"}) == (str(clean_env / "r"), "main")
    monkeypatch.setenv("PGSAFE_REPO", "/env")
    monkeypatch.setenv("PGSAFE_SERVER", "s2")
    assert fastpush.settings({}) == ("/env", "s2")
    assert fastpush.settings({"repo": "/flag"}) == ("/flag", "s2")
    assert fastpush.settings({"repo": "s3://bucket/x"}) is None
    assert fastpush.settings({"repo": "/r", "server": "bad name"}) is None
    assert fastpush.settings({"repo": "/r", "config": "/c.toml"}) is None
    (clean_env / ".config" / "pgsafe").mkdir(parents=True)
    (clean_env / ".config" / "pgsafe" / "pgsafe.toml").write_text('repo = "/x"\n')
    assert fastpush.settings({"repo": "/r"}) is None  # a config file: the full path
    (clean_env / ".config" / "pgsafe" / "pgsafe.toml").unlink()
    (clean_env / "pgsafe.toml").write_text('repo = "/x"\n')
    assert fastpush.settings({"repo": "/r"}) is None
    (clean_env / "pgsafe.toml").unlink()
    monkeypatch.setenv("PGSAFE_CONFIG", str(clean_env / "nothing.toml"))
    assert fastpush.settings({"repo": "/r"}) is None


def test_stores_what_the_full_path_reads(clean_env: Path) -> None:
    repo = make_repo(clean_env)
    root = clean_env / "repo"
    first = segment(clean_env / "000000010000000A00000001")
    assert entry.main(["--repo", str(root), "wal-push", str(first)]) == 0  # makes the folder
    seg = segment(clean_env / "000000010000000A00000002", seed=5)
    stored = fastpush.push({"repo": str(root)}, str(seg))
    assert stored is not None
    obj = root / "main" / "wal" / "000000010000000A" / "000000010000000A00000002.zst"
    assert obj.stat().st_size == stored and obj.stat().st_mode & 0o777 == 0o600
    assert stray(root) == []
    out = clean_env / "out"
    assert get(repo, seg.name, str(out))  # the strict decoder: checksum, whole frame
    assert out.read_bytes() == seg.read_bytes()
    # a retry of the same segment: declined here, accepted by the full path
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(seg)]) == 0
    # other content under that name: declined here, refused by the full path
    (clean_env / "x").mkdir()
    other = segment(clean_env / "x" / seg.name, seed=9)
    before = obj.read_bytes()
    assert fastpush.push({"repo": str(root)}, str(other)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(other)]) == 1
    assert obj.read_bytes() == before and stray(root) == []


@pytest.mark.parametrize(
    "case",
    ["no record", "other system", "other timeline", "short", "lz4", "encrypted", "recipients",
     "age variable", "new format", "bad level", "history", "partial", "no folder"],
)  # fmt: skip
def test_declines_with_nothing_changed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    codec: dict[str, object] | None = {
        "lz4": {"compression": "lz4", "level": 1, "encryption": None},
    }.get(case)
    repo = make_repo(clean_env, codec)
    root = clean_env / "repo"
    (root / "main" / "wal" / "000000010000000A").mkdir(parents=True, exist_ok=True)
    marker = json.loads((root / "pgsafe-repo.json").read_text())
    if case == "no record":
        (root / "main" / "server.json").unlink()
    if case == "encrypted":
        marker["codec"]["encryption"] = {"format": "age", "mode": "x25519"}
    if case == "recipients":
        marker["age_recipients"] = ["age1xyz"]
    if case == "new format":
        marker["format"] = catalog.FORMAT_VERSION + 1
    if case == "bad level":
        marker["codec"]["level"] = 99
    if case == "age variable":
        monkeypatch.setenv("PGSAFE_AGE_PASSPHRASE_FILE", "/nowhere")
    if case == "no folder":  # no <server>/wal at all (the segment's folder alone it makes)
        (root / "main" / "wal" / "000000010000000A").rmdir()
        (root / "main" / "wal").rmdir()
    (root / "pgsafe-repo.json").write_text(json.dumps(marker))
    name = {"history": "0000000A.history", "partial": "000000010000000A00000002.partial"}
    seg = segment(
        clean_env / name.get(case, "000000010000000A00000002"),
        sysid=SYSID + 1 if case == "other system" else SYSID,
        tli=2 if case == "other timeline" else 1,
    )
    if case == "short":
        seg.write_bytes(seg.read_bytes()[:8192])
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    del repo


def test_the_launcher_imports_only_builtin_modules(clean_env: Path) -> None:
    """archive_command's launcher (python -I -S -c ...) on the fast path: no dataclasses,
    typing, re, json, pathlib, nor the zstandard package (its C backend only)."""
    make_repo(clean_env)
    root = clean_env / "repo"
    (root / "main" / "wal").mkdir(parents=True)  # the segment's folder: made on the way
    seg = segment(clean_env / "000000010000000A00000003")
    argv = list(runtime.lean_argv())
    assert argv[1:3] == ["-I", "-S"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGSAFE_")}
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:], "--repo", str(root), "wal-push", str(seg)],
        capture_output=True, text=True, check=False, env=env, cwd=clean_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (root / "main" / "wal" / "000000010000000A" / f"{seg.name}.zst").is_file()
    assert (root / "main" / "wal" / "000000010000000A").stat().st_mode & 0o777 == 0o700
    mods = {
        ln.rsplit("|", 1)[1].strip()
        for ln in proc.stderr.splitlines()
        if ln.startswith("import time:") and "|" in ln
    }
    assert "pgsafe.wal.fastpush" in mods  # (zstd's C backend is loaded by hand: not listed)
    assert "pgsafe.wal.push" not in mods  # the fast path did the work
    heavy = {"dataclasses", "typing", "re", "json", "pathlib", "zstandard", "site", "runpy"}
    assert not heavy & mods, sorted(heavy & mods)


def test_zstd_backend_is_reused_by_a_later_import() -> None:
    code = (
        "import sys; from pgsafe.wal.fastpush import zstd_backend; b = zstd_backend(); "
        "import zstandard; assert zstandard.ZstdCompressor is b.ZstdCompressor; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr
