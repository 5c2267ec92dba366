"""``pgsafe mistakes --name-dropped``: a table created after the newest base backup and
dropped before the next is in no catalog map; a throwaway recovery to just before the
DROP names it (its index and TOAST table are not listed), and the note that said how
to name it is gone.  Without the flag it is listed by relfilenode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgsafe.repo.repository import Repository
from tests.archiving import archiving_cluster
from tests.conftest import psql_exec
from tests.integration.test_undo import Live


@pytest.fixture(scope="module")
def live(state_home: Path) -> Iterator[Live]:
    with archiving_cluster("pgsafe-mistakes-named-", state_home) as a:
        psql_exec(a.cluster.conninfo(), "CREATE DATABASE shop")
        psql_exec(a.cluster.conninfo("shop"), "CREATE TABLE kept (id int PRIMARY KEY)")
        a.backup()
        yield Live(a.cluster, a.repo_path, a.base, state_home)


def _drop(live: Live) -> tuple[int, dict[str, Any], dict[str, Any]]:
    r = live.pgsafe("mistakes", "--kind", "drop-table", "--json")
    assert r.returncode == 0, r.stderr
    named = live.pgsafe("mistakes", "--kind", "drop-table", "--name-dropped", "--json")
    assert named.returncode == 0, named.stderr
    (plain,) = json.loads(r.stdout)["mistakes"]
    return plain["xid"], json.loads(r.stdout), json.loads(named.stdout)


def test_a_table_no_map_knows_is_named_by_a_throwaway_recovery(live: Live) -> None:
    psql_exec(
        live.db,
        "CREATE TABLE later (id int PRIMARY KEY, note text);"
        "INSERT INTO later SELECT g, repeat('x', 10) FROM generate_series(1, 50) g",
    )
    xid = live.mistake("DROP TABLE later")
    live.archive()
    got, plain, named = _drop(live)
    assert got == xid
    (m,) = plain["mistakes"]
    assert {c["table"] for c in m["changes"]} == {None}  # heap, index, TOAST, its index
    assert any(f"transaction {xid} touched relfilenode" in n for n in plain["notes"])
    (n,) = named["mistakes"]
    assert [(c["kind"], c["table"]) for c in n["changes"]] == [("drop-table", "public.later")]
    assert not any(f"transaction {xid} touched" in note for note in named["notes"])
    assert live.leftovers() == []
    _the_rebuilt_map_is_kept(live, xid)


def _the_rebuilt_map_is_kept(live: Live, xid: int) -> None:
    """The map the recovery rebuilt is stored beside the base backup: the next run names
    the table without recovering (no flag, no note); damaged, it is a note, not a name."""
    repo = Repository.open(str(live.repo), "main")
    [m] = repo.list_backups()
    [obj] = [o for o in m.objects if o.role == "catalog_map_rebuilt"]
    assert obj.name.startswith(f"catalog_map-before-{xid}.json")
    r = live.pgsafe("mistakes", "--kind", "drop-table", "--json")
    assert r.returncode == 0, r.stderr
    [n] = json.loads(r.stdout)["mistakes"]
    assert [(c["kind"], c["table"]) for c in n["changes"]] == [("drop-table", "public.later")]
    assert not any("touched relfilenode" in note for note in json.loads(r.stdout)["notes"])
    again = live.pgsafe("mistakes", "--kind", "drop-table", "--name-dropped", "--json")
    assert again.returncode == 0 and again.stdout == r.stdout  # nothing to recover for
    path = live.repo / repo.object_key(m.id, obj.name)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    r = live.pgsafe("mistakes", "--kind", "drop-table", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {c["table"] for c in doc["mistakes"][0]["changes"]} == {None}
    assert any(obj.name in note and "unusable" in note for note in doc["notes"])
