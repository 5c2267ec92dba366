"""pgsafe undo from an age-encrypted, compressed repository: the scan and the throwaway
recovery decode through the repository's codecs; without the key it is refused (exit 2)
and nothing changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.integration.test_physical_codecs import make_identity


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
