"""Recovery through wal-get's prefetch spool, on real clusters: across a timeline
switch, stopping at a target among prefetched segments, a segment damaged in the spool,
a segment missing in the middle of the archive, and a server killed mid-recovery then
started again; ``info`` reports how the last recovery's WAL arrived."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.recovery import walfetch
from pgsafe.repo.repository import Repository
from pgsafe.wal import spool
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.integration.test_json_shapes import LAST_RECOVERY, WAL_FETCH, shaped


@pytest.fixture
def base() -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-prefetch-")
    yield d
    for pid_file in d.glob("*/postmaster.pid"):
        LocalCluster(pid_file.parent).destroy()
    shutil.rmtree(d, ignore_errors=True)


def _archived_cluster(base: Path, state_home: Path, segments: int) -> tuple[Path, LocalCluster]:
    """A cluster archiving into a new repository, a base backup, then ``segments``
    segments each holding one more row of t."""
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    a = make_cluster(base, "a", archive_settings(repo, state_home))
    psql_exec(a.conninfo(), "CREATE TABLE t (id int)")
    assert run_pgsafe("--repo", str(repo_path), "backup", "-d", a.conninfo()).returncode == 0
    for i in range(1, segments + 1):
        psql_exec(a.conninfo(), f"INSERT INTO t VALUES ({i})")
        switch_and_wait(a.conninfo(), repo)
    return repo_path, a


def _recover(repo: Path, pgdata: Path, *args: str) -> dict[str, object]:
    r = run_pgsafe("--repo", str(repo), "recover", "--pgdata", str(pgdata), "--json", *args)
    assert r.returncode == 0, r.stderr + r.stdout
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def _spools(pgdata: Path) -> list[Path]:
    return sorted(pgdata.parent.glob(f"{pgdata.name}.spool-*"))


def _ids(c: LocalCluster) -> list[int]:
    return [int(r[0]) for r in query(c.conninfo(), "SELECT id FROM t ORDER BY id")]


def _restore_command(pgdata: Path) -> str:
    text = (pgdata / "postgresql.auto.conf").read_text()
    return [ln for ln in text.splitlines() if ln.startswith("restore_command")][-1]


def test_recovery_across_a_timeline_switch_through_the_spool(base: Path, state_home: Path) -> None:
    repo_path, a = _archived_cluster(base, state_home, 4)
    a.stop()
    doc = _recover(repo_path, base / "b", "--latest", "--archive", "--start")
    b = LocalCluster(base / "b", port=int(str(doc["port"])))
    assert _ids(b) == [1, 2, 3, 4]
    repo = Repository.open(str(repo_path), "main")
    for i in range(5, 10):  # timeline 2 continues from the switch segment
        psql_exec(b.conninfo(), f"INSERT INTO t VALUES ({i})")
        switch_and_wait(b.conninfo(), repo)
    b.stop()
    doc = _recover(repo_path, base / "c", "--latest", "--start")
    c = LocalCluster(base / "c", port=int(str(doc["port"])))
    assert _ids(c) == list(range(1, 10))
    reached = doc["reached"]
    assert isinstance(reached, dict) and reached["timeline"] == 3
    fetch = shaped(doc["wal_fetch"], WAL_FETCH, "recover.wal_fetch")
    assert fetch["segments_from_spool"] >= 4, fetch  # most segments came prefetched
    assert fetch["spool_damaged"] == 0
    assert "--spool" in _restore_command(base / "c")
    info = run_pgsafe("--repo", str(repo_path), "info", "--json")  # the same figures
    assert info.returncode == 0, info.stderr
    last = shaped(json.loads(info.stdout)["last_recovery"], {**LAST_RECOVERY, **WAL_FETCH},
                  "info.last_recovery")  # fmt: skip
    assert {k: last[k] for k in WAL_FETCH} == fetch
    assert (last["pgdata"], last["state"]) == (str(base / "c"), doc["state"])
    assert _spools(base / "c") == []  # removed once the recovery was over


def test_a_target_among_prefetched_segments_is_never_passed(base: Path, state_home: Path) -> None:
    repo_path, a = _archived_cluster(base, state_home, 3)
    lsn = str(query(a.conninfo(), "SELECT pg_current_wal_lsn()")[0][0])
    repo = Repository.open(str(repo_path), "main")
    for i in range(4, 12):  # segments the prefetcher reads past the target
        psql_exec(a.conninfo(), f"INSERT INTO t VALUES ({i})")
        switch_and_wait(a.conninfo(), repo)
    a.stop()
    pgdata = base / "r"
    doc = _recover(repo_path, pgdata, "--lsn", lsn, "--pause", "--start")
    assert doc["state"] == "paused"
    r = LocalCluster(pgdata, port=int(str(doc["port"])))
    assert _ids(r) == [1, 2, 3]
    assert _spools(pgdata) == []  # what was prefetched past the target is gone
    r.stop()
    # a later, different recovery into the same folder: its own spool, all the rows
    doc = _recover(repo_path, pgdata, "--latest", "--start", "--force")
    r = LocalCluster(pgdata, port=int(str(doc["port"])))
    assert _ids(r) == list(range(1, 12))
    assert _spools(pgdata) == []


def test_a_segment_missing_in_the_middle_stops_recovery_there(base: Path, state_home: Path) -> None:
    repo_path, a = _archived_cluster(base, state_home, 8)
    gone = sorted((repo_path / "main" / "wal").glob("*/*.zst"))[-4]  # three after it
    a.stop()
    pgdata = base / "r"
    _recover(repo_path, pgdata, "--latest")  # planned with every segment there
    (spool_dir,) = _spools(pgdata)
    gone.unlink()
    r = LocalCluster(pgdata)
    r.start()
    deadline = time.monotonic() + 120
    while (pgdata / "recovery.signal").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    missing = gone.name.removesuffix(".zst")
    rows = _ids(r)
    assert rows == list(range(1, len(rows) + 1)) and len(rows) < 8
    log = r.log_file.read_text()
    assert f'restored log file "{missing}"' not in log
    after = [f"{int(missing[16:], 16) + k:08X}" for k in (1, 2, 3)]
    assert not any(f'restored log file "{missing[:16]}{x}"' in log for x in after)
    deadline = time.monotonic() + 30
    while spool_dir.exists() and time.monotonic() < deadline:  # the prefetcher left
        time.sleep(0.2)
    assert not spool_dir.exists() or not any(spool.is_segment(n) for n in os.listdir(spool_dir))


def _spooled(spool_dir: Path) -> list[str]:
    """The segments the prefetcher finished (written, their sum recorded)."""
    names = os.listdir(spool_dir)
    return sorted(n for n in names if spool.is_segment(n) and n + spool.SUM in names)


def test_a_damaged_segment_in_the_spool_is_fetched_again(base: Path, state_home: Path) -> None:
    """Replay held at the first commit (recovery_min_apply_delay) while the prefetcher
    fills the spool; a segment it holds is damaged in place before the server asks for
    it; then replay goes on: the damage is named, the segment read from the repository,
    and recovery ends where it would have."""
    repo_path, a = _archived_cluster(base, state_home, 8)
    a.stop()
    pgdata = base / "r"
    _recover(repo_path, pgdata, "--latest")
    (spool_dir,) = _spools(pgdata)
    walfetch.hold(spool_dir)  # keep the journal: it is read below
    conf = pgdata / "postgresql.auto.conf"
    plain_conf = conf.read_text()
    r = LocalCluster(pgdata)
    # 13's startup process does not re-read the delay while it waits (the reload below
    # would not lift it): there it is short, counted from the commits of a moment ago
    held_back = f"recovery_min_apply_delay = '{'1h' if r.version() >= 14 else '30s'}'\n"
    if r.version() >= 15:  # no read-ahead past the held commit (15's WAL prefetching)
        held_back += "recovery_prefetch = off\nwal_decode_buffer_size = '64kB'\n"
    conf.write_text(plain_conf + held_back)
    r.start(wait=False)
    deadline = time.monotonic() + 60
    while len(_spooled(spool_dir)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    held = _spooled(spool_dir)
    assert len(held) >= 3, (held, (spool_dir / spool.JOURNAL).read_text())
    victim = held[-1]  # the furthest ahead: not asked for yet
    fd = os.open(spool_dir / victim, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\xff" * 64, 4096)
    finally:
        os.close(fd)
    conf.write_text(plain_conf)
    os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGHUP)
    deadline = time.monotonic() + 120
    while (pgdata / "recovery.signal").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = r.log_file.read_text()
    assert _ids(r) == list(range(1, 9)), log[-3000:]  # the same end as an undamaged spool
    assert f"{victim}: damaged in the spool" in log
    assert f'restored log file "{victim}" from archive' in log
    journal = (spool_dir / spool.JOURNAL).read_text().splitlines()
    by_shell = [ln.split()[1] for ln in journal if ln.endswith(" spool 0")]  # Python: 0.0123
    assert by_shell and victim not in by_shell, journal  # the shell path took the others
    fetch = walfetch.collect(spool_dir)
    assert fetch is not None and fetch.spool_damaged == 1, fetch
    assert fetch.segments_from_spool >= 2, fetch
    assert not spool_dir.exists()


def test_a_server_killed_mid_recovery_recovers_after_a_restart(
    base: Path, state_home: Path
) -> None:
    repo_path, a = _archived_cluster(base, state_home, 10)
    a.stop()
    pgdata = base / "r"
    _recover(repo_path, pgdata, "--latest")
    (spool_dir,) = _spools(pgdata)
    r = LocalCluster(pgdata)
    r.start(wait=False)
    deadline = time.monotonic() + 60
    journal = spool_dir / spool.JOURNAL
    while time.monotonic() < deadline:  # until a few segments were asked for
        if journal.exists() and journal.read_text().count("\ngot 0") >= 2:
            break
        time.sleep(0.01)
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while spool_dir.exists() and time.monotonic() < deadline:
        dfd = spool.open_spool(str(spool_dir))
        held = dfd is not None and spool.holder(dfd) is not None
        if dfd is not None:
            os.close(dfd)
        if not held:
            break
        time.sleep(0.1)
    dfd = spool.open_spool(str(spool_dir))
    assert dfd is None or spool.holder(dfd) is None  # the prefetcher saw the server go
    if dfd is not None:
        os.close(dfd)
    time.sleep(1)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    r.start()
    deadline = time.monotonic() + 120
    while (pgdata / "recovery.signal").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ids(r) == list(range(1, 11))


@pytest.mark.parametrize("storage", ["local-lz4-age", "s3-zstd-age"])
def test_encrypted_and_s3_repositories_prefetch(
    base: Path, request: pytest.FixtureRequest, storage: str
) -> None:
    """The prefetcher runs with the restore_command's own settings: the identity file
    it names, the S3 endpoint it carries."""
    from tests.integration.test_physical_codecs import make_identity

    keys = base / "keys"
    keys.mkdir(mode=0o755)
    identity = make_identity(keys)
    cfg = base / "repo.toml"
    env = {"PGSAFE_AGE_IDENTITY_FILE": str(identity.path)}
    if storage.startswith("s3"):
        server = request.getfixturevalue("s3_server")
        url = f"s3://{request.getfixturevalue('s3_bucket')}/pgsafe"
        env.update(server.env())
        cfg.write_text(f'encryption = "age"\nage_recipients = ["{identity.public}"]\n')
    else:
        url = str(base / "repo")
        cfg.write_text(
            f'compression = "lz4"\nencryption = "age"\nage_recipients = ["{identity.public}"]\n'
        )
    where = ["--config", str(cfg), "--repo", url]
    saved = {k: os.environ.get(k) for k in env}  # the session's S3 keys among them
    os.environ.update(env)  # for Repository.open in this process (switch_and_wait)
    try:
        c = make_cluster(base, "src", {"max_wal_senders": "4"})
        r = run_pgsafe(*where, "archive", "enable", "-d", c.conninfo(), "--restart", env=env)
        assert r.returncode == 0, r.stderr
        psql_exec(c.conninfo(), "CREATE TABLE t (id int)")
        assert run_pgsafe(*where, "backup", "-d", c.conninfo(), env=env).returncode == 0
        repo = Repository.open(url, "main")
        for i in range(1, 7):
            psql_exec(c.conninfo(), f"INSERT INTO t VALUES ({i})")
            switch_and_wait(c.conninfo(), repo)
        c.stop()
        pgdata = base / "r"
        r = run_pgsafe(*where, "recover", "--pgdata", str(pgdata), "--latest", "--start",
                       "--json", env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr + r.stdout
        doc = json.loads(r.stdout)
        assert _ids(LocalCluster(pgdata, port=int(doc["port"]))) == list(range(1, 7))
        assert "--spool" in _restore_command(pgdata)
        fetch = shaped(doc["wal_fetch"], WAL_FETCH, "recover.wal_fetch")
        assert fetch["segments_from_spool"] >= 3, fetch
        assert _spools(pgdata) == []
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
