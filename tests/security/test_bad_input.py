"""Issue 10, item 11: bad input is one line, a hint and exit 2 — never a traceback,
never a change.  Each case failed before its fix (see the comment on each test)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.runas import repository_owner
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.physical import archiving
from pgsafe.recovery.targets import parse_xid
from pgsafe.repo.repository import Repository
from tests.conftest import Result, psql_exec, query, reachable_tmpdir, run_pgsafe


def one_line_error(r: Result) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [
        ln for ln in r.stderr.splitlines() if ln.lower().startswith(("error", "pgsafe: error"))
    ]
    assert len(errors) == 1, r.stderr


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_server_name_that_is_a_repository_file(pg: LocalCluster, repo: Path) -> None:
    # before: dump exited 1 with a traceback (the marker is a file, not a folder)
    Repository.open(str(repo), "main", create=True, owner=repository_owner())
    before = snapshot(repo)
    for cmd in (["dump", "-d", pg.conninfo()], ["list"]):
        r = run_pgsafe("--repo", str(repo), "--server", "pgsafe-repo.json", *cmd)
        one_line_error(r)
        assert "HINT" in r.stderr
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    "text, what",
    [
        ('[postgres]\nport = "abc"\n', "port"),
        ("[postgres]\nport = 70000\n", "port"),
        ('[postgres]\npassword = "x"\n', "password"),
        ("reop = '/tmp/x'\n", "reop"),
        (b"repo = '/tmp/x'\n# caf\xe9\n", "UTF-8"),
    ],
)
def test_config_mistakes_are_refused(tmp_path: Path, text: str | bytes, what: str) -> None:
    # before: port "abc" and a latin-1 file gave tracebacks (exit 1); port 70000, an
    # unknown [postgres] key and a misspelt top-level key were accepted silently
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = run_pgsafe("--config", str(cfg), "--repo", str(tmp_path / "r"), "dump")
    one_line_error(r)
    assert what in r.stderr and "HINT" in r.stderr


def test_an_unknown_top_level_key_names_the_known_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text("reop = '/tmp/x'\n")
    r = run_pgsafe("--config", str(cfg), "list")
    one_line_error(r)
    assert "did you mean 'repo'" in r.stderr and "retention" in r.stderr


@pytest.mark.parametrize("days", ["nan", "inf", "-1", "1e300"])
def test_keep_days_must_be_a_number_of_days(pg: LocalCluster, repo: Path, days: str) -> None:
    # before: nan and inf gave tracebacks (ValueError / OverflowError from timedelta)
    r = run_pgsafe("--repo", str(repo), "dump", "-d", pg.conninfo(), "--format", "plain")
    assert r.returncode == 0, r.stderr
    before = snapshot(repo)
    r = run_pgsafe("--repo", str(repo), "expire", "--keep-days", days)
    one_line_error(r)
    assert snapshot(repo) == before


@pytest.mark.parametrize("port", ["-1", "0", "65536"])
def test_recover_port_out_of_range(tmp_path: Path, port: str) -> None:
    # before: --port -1 was accepted (the command went on to plan the recovery)
    pgdata = tmp_path / "pgdata"
    Repository.open(str(tmp_path / "r"), "main", create=True, owner=repository_owner())
    r = run_pgsafe("--repo", str(tmp_path / "r"), "recover", "--pgdata", str(pgdata),
                   "--latest", "--start", "--port", port)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--port" in r.stderr
    assert not pgdata.exists()


def test_xid_out_of_range_is_refused_before_anything(tmp_path: Path) -> None:
    # before: accepted and written into recovery_target_xid
    base = reachable_tmpdir("pgsafe-xid-")  # the data directory's folder passes its checks
    pgdata = base / "pgdata"
    Repository.open(str(tmp_path / "r"), "main", create=True, owner=repository_owner())
    r = run_pgsafe("--repo", str(tmp_path / "r"), "recover", "--pgdata", str(pgdata),
                   "--xid", "99999999999999999999999")  # fmt: skip
    one_line_error(r)
    assert "out of range" in r.stderr
    assert not pgdata.exists()
    base.rmdir()


def test_xid_rules() -> None:
    assert parse_xid("748") == 748
    assert parse_xid(str((1 << 32) - 1)) == (1 << 32) - 1
    assert parse_xid(str((5 << 32) | 748)) == 748  # an xid8 with epoch 5, as PostgreSQL reads it
    for bad in ("99999999999999999999999", str(1 << 64), "2", str(1 << 32), "-5", "7e3",
                "٣٤٥", ""):  # fmt: skip
        with pytest.raises(BadInput):
            parse_xid(bad)


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    r = run_pgsafe("--repo", str(tmp_path / "r"), "dump", "-j", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_json_error_for_bad_input_is_one_document(tmp_path: Path) -> None:
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text('[postgres]\nport = "abc"\n')
    r = run_pgsafe("--config", str(cfg), "--json", "list")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["hint"]
    assert os.linesep not in doc["error"]


class FakeServer:
    """:class:`SystemSettings` over a dict standing for postgresql.auto.conf; ALTER SYSTEM
    SET of ``fail_on`` fails (as it would on a full disk or a value the server refuses)."""

    def __init__(self, auto_conf: dict[str, str], fail_on: str | None = None) -> None:
        self.auto_conf = dict(auto_conf)
        self.fail_on = fail_on
        self.calls: list[str] = []

    def alter(self, name: str, value: str) -> None:
        self.calls.append(f"SET {name}")
        if name == self.fail_on:
            raise RuntimeError(f"could not write {name}")
        self.auto_conf[name] = value

    def reset(self, name: str) -> None:
        self.calls.append(f"RESET {name}")
        self.auto_conf.pop(name, None)


WANT = {"wal_level": "replica", "archive_mode": "on", "archive_command": "pgsafe wal-push %p"}


def test_archive_enable_applies_archive_mode_last() -> None:
    # before: wal_level, archive_mode, then archive_command — a failure of the last left
    # archive_mode=on with the old command
    server = FakeServer({})
    done = archiving.apply_settings(server, WANT, archiving.AutoConf({}))
    assert done == ["archive_command", "wal_level", "archive_mode"]
    assert server.auto_conf == WANT


def test_archive_enable_puts_back_what_it_changed_when_one_fails() -> None:
    old = {"archive_command": "old-command %p"}  # set by ALTER SYSTEM before; wal_level was not
    server = FakeServer(old, fail_on="archive_mode")
    with pytest.raises(OperationFailed) as exc:
        archiving.apply_settings(server, WANT, archiving.AutoConf(old))
    assert server.auto_conf == old  # exactly as before
    assert server.calls == ["SET archive_command", "SET wal_level", "SET archive_mode",
                            "RESET wal_level", "SET archive_command"]  # fmt: skip
    assert "archive_mode" in exc.value.message and "put back" in exc.value.message


def test_archive_enable_validates_every_value_before_changing_any() -> None:
    server = FakeServer({})
    with pytest.raises(BadInput):
        archiving.apply_settings(
            server, {**WANT, "archive_command": "x\narchive_mode = off"}, archiving.AutoConf({})
        )
    assert server.calls == []


def test_a_table_whose_name_holds_a_newline_can_be_restored(pg: LocalCluster, repo: Path) -> None:
    # before: exit 3, the table missing — pg_dump prints the name with the newline as a
    # space in its headers and TOC, and single_table matched the real name against them
    db = "nl_table"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {db}")
    psql_exec(pg.conninfo(), f"CREATE DATABASE {db}")
    ci = pg.conninfo(db)
    psql_exec(ci, 'CREATE TABLE "odd\nname" (id int PRIMARY KEY, v text);'
                  "INSERT INTO \"odd\nname\" SELECT g, 'v' || g FROM generate_series(1, 5) g;"
                  "CREATE TABLE other (id int); INSERT INTO other VALUES (1);")  # fmt: skip
    r = run_pgsafe("--repo", str(repo), "dump", "-d", ci, "--json")
    assert r.returncode == 0, r.stderr
    backup = json.loads(r.stdout)["id"]
    psql_exec(ci, 'DROP TABLE "odd\nname"')
    r = run_pgsafe("--repo", str(repo), "restore", backup, "-d", ci, "-t", "odd\nname")
    assert r.returncode == 0, r.stdout + r.stderr
    assert query(ci, 'SELECT count(*) FROM "odd\nname"') == [(5,)]
    assert query(ci, "SELECT count(*) FROM other") == [(1,)]


@pytest.mark.parametrize(
    "args",
    [
        ["recover", "--pgdata", "/nonexistent-pgsafe", "--latest", "--port", "-1"],
        ["lisst"],
        ["list", "--bogus"],
        ["restore"],
    ],
)
def test_usage_errors_are_one_line_and_a_hint(args: list[str]) -> None:
    # before: click's own three lines (Usage, Try, Error) and no HINT
    r = run_pgsafe(*args)
    one_line_error(r)
    assert r.stderr.startswith("error: ") and "Usage:" not in r.stderr
    assert "HINT: `pgsafe" in r.stderr and "--help` lists the arguments" in r.stderr
