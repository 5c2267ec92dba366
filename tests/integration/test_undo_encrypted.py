"""pgsafe undo from age-encrypted repositories (a folder, an S3-compatible bucket): the
scan and the throwaway recovery decode through the repository's codecs; without the key
it is refused (exit 2) and nothing changes."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.fixtures_s3 import S3Server
from tests.integration.test_physical_codecs import archive_backup_and_changes, make_identity


@contextmanager
def patched_env(extra: dict[str, str]) -> Iterator[None]:
    """The S3 endpoint and keys in this process too (Repository.open of the bucket)."""
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_undo_from_an_encrypted_repository(state_home: Path) -> None:
    base = reachable_tmpdir("pgsafe-undo-enc-")
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    identity = make_identity(keys)
    repo_path = base / "repo"
    codec = {"compression": "zstd", "level": 3, "encryption": {"format": "age", "mode": "x25519"}}
    repo = Repository.open(
        str(repo_path),
        "main",
        create=True,
        codec=codec,
        recipients=(identity.public,),
        owner=repository_owner(),
    )
    c = make_cluster(base, "src", archive_settings(repo, state_home))
    try:
        ci = c.conninfo()
        psql_exec(
            ci,
            "CREATE TABLE t (id int PRIMARY KEY, v text);"
            " INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g",
        )
        assert run_pgsafe("--repo", str(repo_path), "backup", "-d", ci).returncode == 0
        with psycopg.connect(ci) as conn:
            conn.execute("DELETE FROM t WHERE id > 40")
            row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
            assert row is not None
            xid = str(row[0])
            conn.commit()
        psql_exec(ci, "INSERT INTO t VALUES (100, 'later')")
        switch_and_wait(ci, repo, timeout=60)
        args = ("--repo", str(repo_path), "undo", xid, "-d", ci)
        no_key = run_pgsafe(*args, timeout=600)
        assert no_key.returncode == 2, no_key.stderr
        assert query(ci, "SELECT count(*) FROM t") == [(41,)]
        env = {"PGSAFE_AGE_IDENTITY_FILE": str(identity.path)}
        r = run_pgsafe(*args, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        assert query(ci, "SELECT count(*), max(id) FROM t") == [(51, 100)]
        assert query(ci, "SELECT v FROM t WHERE id = 45") == [("v45",)]
    finally:
        c.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_undo_from_an_encrypted_s3_repository(
    state_home: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """An age-encrypted repository in an S3-compatible bucket: the DELETE of 1,000 rows
    of a table without a primary key is found in the WAL and undone."""
    base = reachable_tmpdir("pgsafe-undo-s3-")
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    identity = make_identity(keys)
    url = f"s3://{s3_bucket}/pgsafe"
    cfg = base / "s3.toml"
    cfg.write_text(f'encryption = "age"\nage_recipients = ["{identity.public}"]\n')
    where = ["--config", str(cfg), "--repo", url]
    env = {**s3_server.env(), "PGSAFE_AGE_IDENTITY_FILE": str(identity.path)}
    with patched_env(s3_server.env()):
        run = archive_backup_and_changes(base, "s3-src", where, env, lambda: Repository.open(url))
    try:
        ci = run.cluster.conninfo()
        found = run_pgsafe(*where, "mistakes", "-d", ci, "--json", env=env)
        assert found.returncode == 0, found.stderr
        xid = next(m["xid"] for m in json.loads(found.stdout)["mistakes"] if "delete" in m["kinds"])
        r = run_pgsafe(*where, "undo", str(xid), "-d", ci, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        assert query(ci, "SELECT count(*) FROM t WHERE phase = 'base'") == [(1000,)]
        assert query(ci, "SELECT count(*) FROM t WHERE phase = 'before'") == [(10,)]
    finally:
        run.cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
