"""[[repos]]: every backup goes to each repository; a missing or damaged object in the
first is served from the second, and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

from pgsafe.cluster.local import LocalCluster
from tests.conftest import PAGILA, pagila_fingerprint, psql_exec, run_pgsafe

EXPECTED = (PAGILA / "fingerprint.expected.txt").read_text()


def test_two_repositories_with_fallback(
    repo: Path, pg: LocalCluster, pagila_template: str, tmp_path: Path
) -> None:
    one, two = repo.parent / "one", repo.parent / "two"
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(
        f'[[repos]]\nname = "local"\nurl = "{one}"\n\n[[repos]]\nname = "offsite"\nurl = "{two}"\n'
    )
    base = ["--config", str(cfg)]
    r = run_pgsafe(*base, "dump", "-d", pg.conninfo(pagila_template), "--json")
    assert r.returncode == 0, r.stderr
    backup_id = json.loads(r.stdout)["id"]
    for root in (one, two):
        assert (root / "main" / "backups" / backup_id / "manifest.json").is_file()
        assert (root / "pgsafe-repo.json").is_file()
    listed = json.loads(run_pgsafe(*base, "list", "--json").stdout)["backups"]
    assert listed[0]["repos"] == ["local", "offsite"]

    (obj,) = list((one / "main" / "backups" / backup_id).glob("*.dump.zst"))
    data = bytearray(obj.read_bytes())
    data[100] ^= 0xFF
    obj.write_bytes(bytes(data))
    target = "pagila_fallback"
    psql_exec(pg.conninfo(), f"DROP DATABASE IF EXISTS {target}")
    r = run_pgsafe(*base, "restore", backup_id, "--create", "-d", pg.conninfo(target), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert any("offsite" in w and "damaged in local" in w for w in doc["warnings"]), doc
    assert pagila_fingerprint(pg.conninfo(target)) == EXPECTED

    # verify names the damaged copy (exit 3) and still proves the backup from the other
    v = run_pgsafe(*base, "verify", backup_id, "--json")
    assert v.returncode == 3
    checks = {c["name"]: c for c in json.loads(v.stdout)["checks"]}
    assert checks[f"object {obj.name} in local"]["ok"] is False
    assert checks[f"object {obj.name} in offsite"]["ok"] is True
    assert checks["restore into a throwaway cluster"]["ok"] is True

    # a missing object in the first repository: read from the second
    obj.unlink()
    psql_exec(pg.conninfo(), f"DROP DATABASE {target}")
    r = run_pgsafe(*base, "restore", backup_id, "--create", "-d", pg.conninfo(target), "--json")
    assert r.returncode == 0, r.stderr
    assert any("missing in local" in w for w in json.loads(r.stdout)["warnings"])
