"""archive enable, wal-push and wal-get against a real archiving PostgreSQL cluster.

The repository path contains a space (archive_command quoting), the server runs as the
``postgres`` OS user, and every assertion reads the repository or the server."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.endpoint import runtime
from pgsafe.endpoint.command import command_line
from pgsafe.pg.toolset import tools_for
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import read_all
from pgsafe.wal import layout, names
from pgsafe.wal.header import read_long_header
from tests.conftest import make_cluster, query, reachable_tmpdir, run_pgsafe


@pytest.fixture(scope="module")
def base(state_home: Path) -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-wal-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def archived(base: Path) -> Iterator[tuple[LocalCluster, Path]]:
    """A cluster with archiving enabled by ``pgsafe archive enable --restart``."""
    c = make_cluster(base, "src")
    repo = base / "my repo"
    r = run_pgsafe("--repo", str(repo), "archive", "enable", "-d", c.conninfo(), "--restart")
    assert r.returncode == 0, r.stderr
    assert "archive_command" in r.stdout
    yield c, repo
    c.destroy()


def _repo(path: Path) -> Repository:
    return Repository.open(str(path), "main")


def _stored(repo: Path, name: str) -> bytes:
    wal = names.parse(name)
    assert wal is not None
    return read_all(_repo(repo).storage, layout.wal_key("main", wal))


def test_archive_enable_quotes_repo_and_archives(archived: tuple[LocalCluster, Path]) -> None:
    c, repo = archived
    sql = (
        "SELECT name, setting FROM pg_settings"
        " WHERE name IN ('archive_mode', 'archive_command', 'wal_level')"
    )
    settings = {str(name): str(value) for name, value in query(c.conninfo(), sql)}
    assert settings["archive_mode"] == "on" and settings["wal_level"] == "replica"
    words = shlex.split(str(settings["archive_command"]).replace("%%", "%"))
    assert words[words.index("--repo") + 1] == str(repo)
    assert words[-2:] == ["wal-push", "%p"]
    name = switch_and_wait(c.conninfo(), _repo(repo), timeout=30)
    header = read_long_header(
        __import__("zstandard").ZstdDecompressor().decompressobj().decompress(_stored(repo, name))
    )
    sysid = query(c.conninfo(), "SELECT system_identifier FROM pg_control_system()")[0][0]
    assert header.system_identifier == sysid
    failed = query(c.conninfo(), "SELECT failed_count FROM pg_stat_archiver")[0][0]
    assert failed == 0


def test_wal_get_roundtrip_and_identical_repush(
    archived: tuple[LocalCluster, Path], tmp_path: Path
) -> None:
    c, repo = archived
    name = switch_and_wait(c.conninfo(), _repo(repo), timeout=30)
    dest = tmp_path / "RECOVERYXLOG"
    r = run_pgsafe("--repo", str(repo), "wal-get", name, str(dest))
    assert r.returncode == 0, r.stderr
    data = dest.read_bytes()
    assert len(data) == 16 * 1024 * 1024
    assert read_long_header(data).timeline == 1
    again = tmp_path / name
    again.write_bytes(data)
    before = _stored(repo, name)
    r = run_pgsafe("--repo", str(repo), "wal-push", str(again))
    assert r.returncode == 0, r.stderr
    assert _stored(repo, name) == before


def test_wal_push_conflict_is_refused_and_stored_copy_intact(
    archived: tuple[LocalCluster, Path], tmp_path: Path
) -> None:
    c, repo = archived
    name = switch_and_wait(c.conninfo(), _repo(repo), timeout=30)
    before = _stored(repo, name)
    dest = tmp_path / name
    assert run_pgsafe("--repo", str(repo), "wal-get", name, str(dest)).returncode == 0
    data = bytearray(dest.read_bytes())
    data[100_000] ^= 0xFF  # same header, other content
    dest.write_bytes(bytes(data))
    r = run_pgsafe("--repo", str(repo), "wal-push", str(dest))
    assert r.returncode == 1
    assert "DIFFERENT content" in r.stderr and "HINT:" in r.stderr
    assert _stored(repo, name) == before


def test_wal_push_refuses_another_clusters_segment(
    archived: tuple[LocalCluster, Path], pg: LocalCluster, tmp_path: Path
) -> None:
    _, repo = archived
    seg = query(pg.conninfo(), "SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
    src = tmp_path / str(seg)
    shutil.copyfile(pg.datadir / "pg_wal" / str(seg), src)
    r = run_pgsafe("--repo", str(repo), "wal-push", str(src))
    assert r.returncode == 1
    assert "system identifier" in r.stderr


def test_wal_get_missing_segment_exits_1_quietly(
    archived: tuple[LocalCluster, Path], tmp_path: Path
) -> None:
    _, repo = archived
    dest = tmp_path / "RECOVERYXLOG"
    for name in ("0000000100000000000000FE", "00000009.history"):
        r = run_pgsafe("--repo", str(repo), "wal-get", name, str(dest))
        assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_history_backup_and_partial_files(
    archived: tuple[LocalCluster, Path], tmp_path: Path
) -> None:
    c, repo = archived
    history = tmp_path / "00000007.history"
    history.write_text("1\t0/3000000\tno recovery target specified\n")
    backup = tmp_path / "000000010000000000000002.00000028.backup"
    backup.write_text("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n")
    name = switch_and_wait(c.conninfo(), _repo(repo), timeout=30)
    seg = tmp_path / "seg"
    assert run_pgsafe("--repo", str(repo), "wal-get", name, str(seg)).returncode == 0
    partial = tmp_path / f"{name}.partial"
    partial.write_bytes(seg.read_bytes())
    for f in (history, backup, partial):
        r = run_pgsafe("--repo", str(repo), "wal-push", str(f))
        assert r.returncode == 0, r.stderr
        out = tmp_path / f"got-{f.name}"
        assert run_pgsafe("--repo", str(repo), "wal-get", f.name, str(out)).returncode == 0
        assert out.read_bytes() == f.read_bytes()
    history.write_text("1\t0/4000000\tother\n")
    r = run_pgsafe("--repo", str(repo), "wal-push", str(history))
    assert r.returncode == 1 and "DIFFERENT" in r.stderr
    bogus = tmp_path / "not-a-wal-file"
    bogus.write_text("x")
    r = run_pgsafe("--repo", str(repo), "wal-push", str(bogus))
    assert r.returncode == 2 and "not a WAL file name" in r.stderr


def test_installed_runtime_when_interpreter_unreachable(
    archived: tuple[LocalCluster, Path], state_home: Path, tmp_path: Path
) -> None:
    """A pgsafe the server's user cannot run (e.g. under /root) is replaced by a copy."""
    _, repo = archived
    user = runas.server_user()
    rt = runtime.wal_runtime(
        state_home, user, direct=["/root/nowhere/bin/python", "-I", "-m", "pgsafe"]
    )
    assert rt.kind == "installed"
    assert rt.location is not None and rt.location.startswith(str(state_home / "runtime"))
    lib = Path(rt.location) / "lib"
    assert (lib / "pgsafe" / "wal" / "entry.py").is_file() and (lib / "zstandard").is_dir()
    assert rt.argv[1] == "-I"
    # the installed copy archives for real, as the server's user
    hist = reachable_tmpdir("pgsafe-hist-") / "00000063.history"
    hist.write_text("1\t0/5000000\tinstalled runtime\n")
    cmd = command_line(rt, str(repo), "main", "wal-push %p").replace("%%", "%")
    argv = shlex.split(cmd.replace("%p", shlex.quote(str(hist))))
    proc = subprocess.run(argv, capture_output=True, text=True, **runas.popen_kwargs(user))
    assert proc.returncode == 0, proc.stderr
    assert _stored(repo, "00000063.history")
    # a second call reuses the same folder
    again = runtime.install(state_home, user)
    assert again.location == rt.location
    shutil.rmtree(hist.parent)


def test_command_line_quoting() -> None:
    rt = runtime.Runtime(("/opt/my env/bin/python", "-I", "-m", "pgsafe"), "direct")
    cmd = command_line(rt, "/srv/100% backups/it's here", "main", "wal-get %f %p")
    assert cmd.endswith(" wal-get %f %p")
    assert "%%" in cmd
    words = shlex.split(cmd.replace("%%", "%"))
    assert words[0] == "/opt/my env/bin/python"
    assert words[words.index("--repo") + 1] == "/srv/100% backups/it's here"
    assert os.path.isabs(words[0])


def test_check_all_green_then_names_fixes(archived: tuple[LocalCluster, Path]) -> None:
    c, repo = archived
    r = run_pgsafe("--repo", str(repo), "backup", "-d", c.conninfo(), "-q")
    assert r.returncode == 0, r.stderr
    # an embedded server's folder (the test matrix) lacks its major's pg_waldump: check
    # says so, with the package to install, and fails for that tool only
    missing = [t.name for t in tools_for(c.major) if not t.found]
    r = run_pgsafe("--repo", str(repo), "check", "-d", c.conninfo())
    assert r.returncode == (1 if missing else 0), r.stdout + r.stderr
    assert "✓ WAL switch archived" in r.stdout and f"(major {c.major})" in r.stdout
    assert f"✓ pg_basebackup for {c.major}: /" in r.stdout
    failed = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("✗")]
    assert failed == missing, r.stdout
    for name in missing:
        assert f"fix: apt-get install postgresql-{c.major}" in r.stdout.split(f"✗ {name}")[1]
    r = run_pgsafe("--repo", str(repo), "--server", "other", "check", "-d", c.conninfo(),
                   "--json", "--timeout", "2")  # fmt: skip
    assert r.returncode == 1
    doc = __import__("json").loads(r.stdout)
    bad = {x["name"]: x["fix"] for x in doc["checks"] if not x["ok"]}
    tools = {f"{name} for {c.major}" for name in missing}
    assert set(bad) == {"archive_command", "WAL switch archived", "base backup"} | tools
    assert all(fix and "--server other" in fix for name, fix in bad.items() if name not in tools)


def test_backup_of_an_idle_server_does_not_hang(archived: tuple[LocalCluster, Path]) -> None:
    c, repo = archived
    switch_and_wait(c.conninfo(), _repo(repo), timeout=30)  # nothing written since
    r = run_pgsafe("--repo", str(repo), "backup", "-d", c.conninfo(), "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    doc = __import__("json").loads(r.stdout)
    assert doc["kind"] == "physical" and doc["status"] == "ok" and doc["timeline"] == 1
    m = _repo(repo).load(doc["id"])
    assert m.physical.stop_lsn and m.system_identifier
    pg_manifest = m.object("pg_manifest")
    assert pg_manifest is not None and m.object("data") is not None
    stored = read_all(_repo(repo).storage, _repo(repo).object_key(m.id, pg_manifest.name))
    body = __import__("zstandard").ZstdDecompressor().decompressobj().decompress(stored)
    assert b'"WAL-Ranges"' in body
