"""wal-push / wal-get start lean: no click, rich or psycopg on their import path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgsafe.wal.entry import parse_args

HEAVY = ("click", "rich", "psycopg", "psycopg_binary")


def _imported(stderr: str, *, full: bool = False) -> set[str]:
    """Top-level names of the modules imported (with ``full``, dotted names)."""
    mods = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            mods.add(name if full else name.split(".")[0])
    return mods


@pytest.mark.parametrize("command", ["wal-get", "wal-push"])
def test_lean_commands_do_not_import_heavy_modules(tmp_path: Path, command: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pgsafe-repo.json").write_text('{"format": 1}\n')
    hist = tmp_path / "00000002.history"
    hist.write_text("1\t0/3000000\tx\n")
    args = (
        [command, "00000002.history", str(tmp_path / "out")]
        if command == "wal-get"
        else [command, str(hist)]
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    mods = _imported(proc.stderr)
    assert "pgsafe" in mods
    if command == "wal-push":  # wal-get of a missing name decodes nothing: no zstandard
        assert "zstandard" in mods
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_wal_push_into_a_plain_zstd_repository_imports_only_zstd(tmp_path: Path) -> None:
    """No lz4, gzip, age keys, cryptography or tomllib when the repository is plain zstd
    and there is no config file."""
    import os

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pgsafe-repo.json").write_text('{"format": 1}\n')
    hist = tmp_path / "00000002.history"
    hist.write_text("1\t0/3000000\tx\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGSAFE_")}
    env["HOME"] = str(tmp_path)  # no ~/.config/pgsafe/config.toml
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(repo),
         "wal-push", str(hist)],
        capture_output=True, text=True, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(repo.rglob("00000002.history.zst"))
    top = _imported(proc.stderr)
    full = _imported(proc.stderr, full=True)
    assert "zstandard" in top
    unwanted = {"lz4", "gzip", "cryptography", "tomllib", "secrets"} & top
    assert not unwanted, sorted(unwanted)
    ours = {"pgsafe.repo.codec.lz4", "pgsafe.repo.codec.gzip", "pgsafe.repo.codec.age",
            "pgsafe.repo.keys"} & full  # fmt: skip
    assert not ours, sorted(ours)


def test_parse_args_accepts_global_options_anywhere() -> None:
    a = parse_args(["--repo", "/r", "wal-get", "--server=db1", "X", "Y", "-v"])
    assert a.command == "wal-get" and a.positional == ["X", "Y"]
    assert a.flags == {"repo": "/r", "server": "db1", "v": True}


def test_wal_get_never_exits_126_or_more(tmp_path: Path) -> None:
    for args in (
        ["wal-get"],
        ["wal-get", "--bogus"],
        ["--repo", str(tmp_path / "no"), "wal-get", "000000010000000000000001", "x"],
    ):
        proc = subprocess.run([sys.executable, "-m", "pgsafe", *args], capture_output=True)
        assert 0 < proc.returncode < 126


def test_wal_push_into_an_encrypted_repository_stays_lean(tmp_path: Path) -> None:
    """With age, cryptography is imported (to encrypt), still no click/rich/psycopg."""
    import json

    key = tmp_path / "id.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    repo = tmp_path / "repo"
    repo.mkdir()
    codec = {"compression": "zstd", "level": 3, "encryption": {"format": "age", "mode": "x25519"}}
    marker = {"format": 1, "codec": codec, "age_recipients": [public]}
    (repo / "pgsafe-repo.json").write_text(json.dumps(marker))
    hist = tmp_path / "00000002.history"
    hist.write_text("1\t0/3000000\tx\n")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pgsafe", "--repo", str(repo),
         "wal-push", str(hist)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    mods = _imported(proc.stderr)
    assert "cryptography" in mods
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))
    (stored,) = list(repo.rglob("00000002.history.zst.age"))
    plain = subprocess.run(
        ["age", "-d", "-i", str(key), str(stored)], check=True, capture_output=True
    ).stdout
    out = subprocess.run(["zstd", "-d", "-c"], input=plain, check=True, capture_output=True)
    assert out.stdout == hist.read_bytes()


# A stand-in for a ready prefetcher: it holds the spool's lock and answers each
# ``want NAME`` of the journal with "not archived" (as the prefetcher does at the end
# of the archive).
_ANSWERING = """
import fcntl, os, sys, time
d = sys.argv[1]
fd = os.open(os.path.join(d, "lock"), os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(os.path.join(d, "ready"), "wb").close()
print("ok", flush=True)
seen = 0
while True:
    try:
        lines = open(os.path.join(d, "journal")).read().splitlines()
    except OSError:
        lines = []
    for line in lines[seen:]:
        if line.startswith("want "):
            open(os.path.join(d, line.split()[1] + ".missing"), "wb").close()
    seen = max(seen, len(lines))
    time.sleep(0.005)
"""


def _repository_args(kind: str, tmp_path: Path) -> list[str]:
    """wal-get's repository settings as ``recover`` writes them, for each kind."""
    import json

    if kind == "s3":
        return ["--repo", "s3://bucket/prefix"]
    repo = tmp_path / "repo"
    repo.mkdir()
    codec: dict[str, object] = {"compression": "zstd", "level": 3}
    if kind == "age":
        codec["encryption"] = {"format": "age", "mode": "x25519"}
    (repo / "pgsafe-repo.json").write_text(json.dumps({"format": 1, "codec": codec}))
    if kind == "local-zstd":
        return ["--repo", str(repo)]
    cfg = tmp_path / "pgsafe.toml"
    if kind == "age":
        cfg.write_text('encryption = "age"\n')
        return ["--config", str(cfg), "--repo", str(repo)]
    cfg.write_text(f'[[repos]]\nurl = "{repo}"\n\n[[repos]]\nurl = "s3://bucket/prefix"\n')
    return ["--config", str(cfg)]  # several repositories (mirrors)


@pytest.mark.parametrize("kind", ["local-zstd", "age", "s3", "mirrors"])
@pytest.mark.parametrize("call", ["spool-hit", "asked"])
def test_wal_get_through_the_spool_imports_no_repository_code(
    tmp_path: Path, kind: str, call: str
) -> None:
    """The import budget of wal-get's lean path, for every codec and storage: a segment
    in the spool is a rename, and what is not there is asked of the live prefetcher
    (which has the repository open already: botocore, age's keys, the catalog) — either
    way no repository, catalog, codec, botocore, cryptography or typing module is
    imported.  ("asked": the end-of-archive probe, answered "not archived".)"""
    import hashlib
    import os

    from pgsafe.wal import spool

    where = _repository_args(kind, tmp_path)
    d = tmp_path / "spool"
    d.mkdir(mode=0o700)
    (d / spool.LOCK).touch()
    name = "000000010000000000000002"
    if call == "spool-hit":
        (d / name).write_bytes(b"segment")
        st = os.stat(d / name)
        digest = hashlib.sha256(b"segment").hexdigest()
        (d / (name + spool.SUM)).write_bytes(spool.sum_line(digest, st))
    holder = subprocess.Popen([sys.executable, "-c", _ANSWERING, str(d)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "pgsafe", *where,
             "wal-get", "--spool", str(d), name, str(tmp_path / "out")],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PGSAFE_AGE_IDENTITY_FILE": str(tmp_path / "no-such-key")},
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close() if holder.stdout else None
    if call == "spool-hit":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (tmp_path / "out").read_bytes() == b"segment"
    else:
        assert proc.returncode == 1, proc.stderr[-2000:]  # not archived, quietly
        assert not (tmp_path / "out").exists()
        assert "error:" not in proc.stderr
    full = _imported(proc.stderr, full=True)
    top = _imported(proc.stderr)
    unwanted = {"typing", "dataclasses", "logging", "zstandard", "botocore", "cryptography",
                "tomllib", "pathlib", "re", "json", "hashlib", *HEAVY} & top  # fmt: skip
    assert not unwanted, sorted(unwanted)
    ours = {m for m in full if m.startswith("pgsafe.repo")}
    assert not ours, sorted(ours)
