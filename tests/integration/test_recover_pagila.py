"""Pagila, written to after its base backup, recovered to --latest: identical fingerprints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.physical.archiving import archive_settings
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import (
    PAGILA,
    load_pagila,
    make_cluster,
    pagila_fingerprint,
    psql_exec,
    reachable_tmpdir,
    run_pgsafe,
)

WRITES = """
UPDATE film SET rental_rate = rental_rate + 1 WHERE film_id <= 100;
INSERT INTO actor (first_name, last_name) VALUES ('PGSAFE', 'RECOVERED');
DELETE FROM payment WHERE payment_id IN (SELECT payment_id FROM payment ORDER BY 1 LIMIT 50);
"""


def test_pagila_latest_recovery_has_identical_fingerprint(state_home: Path) -> None:
    base = reachable_tmpdir("pgsafe-pagila-pitr-")
    repo_path = base / "repo"
    repo = Repository.open(str(repo_path), "main", create=True, owner=repository_owner())
    src = make_cluster(base, "src", archive_settings(repo, state_home))
    rec = LocalCluster(base / "rec")
    try:
        load_pagila(src, "pagila")
        r = run_pgsafe("--repo", str(repo_path), "backup", "-d", src.conninfo())
        assert r.returncode == 0, r.stderr
        psql_exec(src.conninfo("pagila"), WRITES)
        switch_and_wait(src.conninfo(), repo)
        expected = pagila_fingerprint(src.conninfo("pagila"))
        assert expected != (PAGILA / "fingerprint.expected.txt").read_text()  # writes count
        r = run_pgsafe("--repo", str(repo_path), "recover", "--pgdata", str(rec.datadir),
                       "--latest", "--start", "--json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        rec.port = int(json.loads(r.stdout)["port"])
        assert pagila_fingerprint(rec.conninfo("pagila")) == expected
    finally:
        rec.destroy()
        src.destroy()
        shutil.rmtree(base, ignore_errors=True)
