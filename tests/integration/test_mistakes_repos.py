"""``pgsafe mistakes`` through the CLI: an age-encrypted repository, an S3 bucket, WAL
that only the live server's pg_wal holds yet, a backup older than the catalog map, and
bad input (exit 2, with a hint)."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.archiving import committed_xid
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.fixtures_s3 import S3Server
from tests.integration.test_physical_codecs import AgeKey, make_identity
from tests.integration.test_undo_encrypted import patched_env


@dataclass
class Encrypted:
    cluster: LocalCluster
    repo: Path
    identity: AgeKey

    def run(self, *args: str, key: bool = True) -> tuple[int, dict[str, Any], str]:
        env = {"PGSAFE_AGE_IDENTITY_FILE": str(self.identity.path)} if key else {}
        r = run_pgsafe("--repo", str(self.repo), "mistakes", "-d", self.cluster.conninfo(),
                       "--json", *args, env=env)  # fmt: skip
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        return r.returncode, doc, r.stderr


@pytest.fixture(scope="module")
def enc(state_home: Path) -> Iterator[Encrypted]:
    base = reachable_tmpdir("pgsafe-mis-enc-")
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    identity = make_identity(keys)
    repo_path = base / "repo"
    codec = {"compression": "zstd", "level": 3, "encryption": {"format": "age", "mode": "x25519"}}
    repo = Repository.open(str(repo_path), "main", create=True, codec=codec,
                           recipients=(identity.public,), owner=repository_owner())  # fmt: skip
    c = make_cluster(base, "src", archive_settings(repo, state_home))
    psql_exec(c.conninfo(), "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t"
              " SELECT generate_series(1, 50); CREATE TABLE keep (x int)")  # fmt: skip
    r = run_pgsafe("--repo", str(repo_path), "backup", "-d", c.conninfo())
    assert r.returncode == 0, r.stderr
    assert list(repo_path.rglob("catalog_map.json.zst.age"))
    yield Encrypted(c, repo_path, identity)
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_encrypted_archive_and_live_wal(enc: Encrypted) -> None:
    ci = enc.cluster.conninfo()
    archived = committed_xid(ci, "DELETE FROM t WHERE id <= 5")
    switch_and_wait(ci, Repository.open(str(enc.repo)), timeout=60)
    live = committed_xid(ci, "DELETE FROM t WHERE id > 45")  # in pg_wal only, not archived yet
    rc, doc, err = enc.run()
    assert rc == 0, err
    got = {m["xid"]: (m["tables"], m["rows"]) for m in doc["mistakes"]}
    assert got[archived] == (["public.t"], 5)
    assert got[live] == (["public.t"], 5)
    assert doc["window"]["segments"] >= 1 and doc["window"]["live_segments"] >= 1
    rc, _, err = enc.run(key=False)  # the repository is encrypted: no key, no listing
    assert rc == 2 and "HINT" in err


def test_backup_without_catalog_map(enc: Encrypted) -> None:
    """A backup older than the catalog map: a dropped table is shown by its relfilenode."""
    repo = Repository.open(str(enc.repo))
    for m in repo.list_backups():
        repo.save(replace(m, objects=[o for o in m.objects if o.role != "catalog_map"]))
    ci = enc.cluster.conninfo()
    node = int(str(query(ci, "SELECT pg_relation_filenode('keep')")[0][0]))
    xid = committed_xid(ci, "DROP TABLE keep")
    rc, doc, err = enc.run("--kind", "drop-table")
    assert rc == 0, err
    [m] = [m for m in doc["mistakes"] if m["xid"] == xid]
    assert {"kind": "drop-table", "table": None, "relfilenode": node, "rows": 0} in m["changes"]
    # with no live server either, a TRUNCATE (a new relfilenode for the old) is told
    # from a DROP, unnamed
    truncated = committed_xid(ci, "TRUNCATE t")
    switch_and_wait(ci, repo, timeout=60)
    r = run_pgsafe("--repo", str(enc.repo), "mistakes", "-h", "/nonexistent", "-p", "1",
                   "--json", env={"PGSAFE_AGE_IDENTITY_FILE": str(enc.identity.path)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    [m] = [m for m in doc["mistakes"] if m["xid"] == truncated]
    assert {c["kind"] for c in m["changes"]} == {"truncate"} and m["tables"][0] is None
    assert any("not reachable" in n for n in doc["notes"])


def test_table_made_after_the_backup_then_dropped(enc: Encrypted) -> None:
    """No catalog map names it: shown by relfilenode, and the note's command (the undo,
    as a dry run) names it from a throwaway recovery, changing nothing."""
    ci = enc.cluster.conninfo()
    psql_exec(ci, "CREATE TABLE late (id int PRIMARY KEY); INSERT INTO late"
              " SELECT generate_series(1, 12)")  # fmt: skip
    node = int(str(query(ci, "SELECT pg_relation_filenode('late')")[0][0]))
    xid = committed_xid(ci, "DROP TABLE late")
    switch_and_wait(ci, Repository.open(str(enc.repo)), timeout=60)
    rc, doc, err = enc.run("--kind", "drop-table")
    assert rc == 0, err
    [m] = [m for m in doc["mistakes"] if m["xid"] == xid]
    assert {"kind": "drop-table", "table": None, "relfilenode": node, "rows": 0} in m["changes"]
    [note] = [n for n in doc["notes"] if f"transaction {xid} " in n]
    assert f"relfilenode(s) {node}," in note
    command = shlex.split(note.split("`")[1])
    assert command[:1] == ["pgsafe"] and command[-1] == "--dry-run" and str(xid) in command
    env = {"PGSAFE_AGE_IDENTITY_FILE": str(enc.identity.path)}
    r = run_pgsafe(*command[1:], "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert [(t["table"], t["kind"]) for t in plan["tables"]] == [("public.late", "drop-table")]
    assert plan["applied"] is False
    rc, doc, err = enc.run("--kind", "drop-table", "--name-dropped")  # through the codec too
    assert rc == 0, err
    [m] = [m for m in doc["mistakes"] if m["xid"] == xid]
    assert [(c["table"], c["relfilenode"]) for c in m["changes"]] == [("public.late", node)]
    assert query(ci, "SELECT to_regclass('late') IS NULL") == [(True,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "malformed time"),
        (["--since", "2026-01-02", "--until", "2026-01-01"], "--until is before --since"),
        (["--kind", "explode"], "Invalid value"),
    ],
)
def test_bad_input(enc: Encrypted, args: list[str], message: str) -> None:
    rc, _, err = enc.run(*args)
    assert rc == 2 and message in err


def test_unknown_database(enc: Encrypted) -> None:
    r = run_pgsafe("--repo", str(enc.repo), "mistakes", "-d", "no_such_db",
                   "-h", str(enc.cluster.run_dir), "-p", str(enc.cluster.port), "-U", "postgres",
                   env={"PGSAFE_AGE_IDENTITY_FILE": str(enc.identity.path)})  # fmt: skip
    assert r.returncode == 2 and "no database 'no_such_db'" in r.stderr, r.stderr
    assert "postgres" in r.stderr  # the databases that are known


def test_s3_repository(state_home: Path, s3_server: S3Server, s3_bucket: str) -> None:
    """A plain S3-compatible repository: the archived DELETE, a DROP TABLE named through
    the catalog map stored in the bucket, and a DELETE only the live pg_wal holds yet."""
    base = reachable_tmpdir("pgsafe-mis-s3-")
    url = f"s3://{s3_bucket}/pgsafe"
    env = s3_server.env()
    c = make_cluster(base, "src", {"max_wal_senders": "4", "wal_keep_size": "0"})
    try:
        ci = c.conninfo()
        r = run_pgsafe("--repo", url, "archive", "enable", "-d", ci, "--restart", env=env)
        assert r.returncode == 0, r.stderr
        psql_exec(ci, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t"
                  " SELECT generate_series(1, 100); CREATE TABLE gone (x int)")  # fmt: skip
        r = run_pgsafe("--repo", url, "backup", "-d", ci, env=env)
        assert r.returncode == 0, r.stderr
        deleted = committed_xid(ci, "DELETE FROM t WHERE id <= 7")
        dropped = committed_xid(ci, "DROP TABLE gone")
        with patched_env(env):
            switch_and_wait(ci, Repository.open(url), timeout=60)
        live = committed_xid(ci, "DELETE FROM t WHERE id > 97")  # in pg_wal only
        r = run_pgsafe("--repo", url, "mistakes", "-d", ci, "--json", env=env)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        got = {m["xid"]: (m["tables"], m["rows"]) for m in doc["mistakes"]}
        assert got[deleted] == (["public.t"], 7)
        assert got[dropped] == (["public.gone"], 0)
        assert got[live] == (["public.t"], 3)
        assert doc["window"]["segments"] >= 1 and doc["window"]["live_segments"] >= 1
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)
