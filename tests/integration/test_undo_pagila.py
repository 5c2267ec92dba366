"""``pgsafe undo`` on data nobody here wrote: pagila (a partitioned ``payment``, tables
with ``last_updated`` and full-text triggers, enums, domains, arrays, bytea).

A DELETE of a partitioned table's rows and an UPDATE of a table whose triggers rewrite
the rows they touch are undone after later good work: every table is then exactly as it
was before the mistakes (pagila's own fingerprint), but for the good work, and the
triggers held off during the undo are back as they were (one enabled ALWAYS, one the
user had disabled, one on the partitioned table, cloned onto its partitions).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pgsafe.physical.switch import switch_and_wait
from tests.archiving import archiving_cluster, committed_xid
from tests.conftest import load_pagila, pagila_fingerprint, psql_exec, query, run_pgsafe

AUDIT = """
CREATE TABLE film_audit (film_id int, at timestamptz DEFAULT now());
CREATE FUNCTION film_audit() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO film_audit (film_id) VALUES (NEW.film_id); RETURN NEW; END$$;
CREATE TRIGGER film_audit AFTER UPDATE ON film FOR EACH ROW EXECUTE FUNCTION film_audit();
ALTER TABLE film DISABLE TRIGGER film_audit;
ALTER TABLE film ENABLE ALWAYS TRIGGER film_fulltext_trigger;
CREATE FUNCTION payment_now() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.payment_date := now(); RETURN NEW; END$$;
CREATE TRIGGER payment_now BEFORE INSERT ON payment FOR EACH ROW EXECUTE FUNCTION payment_now();
"""
TRIGGERS = (
    "SELECT tgrelid::regclass::text, tgname::text, tgenabled::text FROM pg_trigger"
    " WHERE NOT tgisinternal OR tgconstraint = 0 ORDER BY 1, 2"  # clones: internal before 15
)


def _tables(fingerprint: str) -> dict[str, str]:
    return {line.split("|", 1)[0]: line for line in fingerprint.splitlines() if line}


def test_undo_on_pagila_brings_the_rows_back_as_they_were(state_home: Path) -> None:
    with archiving_cluster("pgsafe-undo-pagila-", state_home) as a:
        load_pagila(a.cluster, "pagila")
        a.backup()
        db = a.cluster.conninfo("pagila")
        psql_exec(db, AUDIT)
        triggers = query(db, TRIGGERS)
        before = _tables(pagila_fingerprint(db))
        update = committed_xid(db, "UPDATE film SET rental_rate = 0 WHERE rating = 'PG'")
        delete = committed_xid(db, "DELETE FROM payment WHERE customer_id IN (5, 6, 7)")
        committed_xid(db, "INSERT INTO actor (first_name, last_name) VALUES ('GOOD', 'WORK')")
        switch_and_wait(a.conninfo, a.repo, timeout=60)
        changed = _tables(pagila_fingerprint(db))
        assert changed["film"] != before["film"] and changed["payment"] != before["payment"]
        for xid in (update, delete):
            r = run_pgsafe("--repo", str(a.repo_path), "undo", str(xid), "-d", db, timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
        after = _tables(pagila_fingerprint(db))
        assert {t: v for t, v in after.items() if t != "actor"} == {
            t: v for t, v in before.items() if t != "actor"
        }
        assert query(db, "SELECT count(*) FROM actor WHERE last_name = 'WORK'") == [(1,)]
        assert query(db, TRIGGERS) == triggers
        assert query(db, "SELECT count(*) FROM film_audit") == [(0,)]
        # asked to, the triggers run on the rows written back, and the undo says so
        again = committed_xid(db, "UPDATE film SET rental_rate = 9 WHERE film_id = 1")
        switch_and_wait(a.conninfo, a.repo, timeout=60)
        r = run_pgsafe("--repo", str(a.repo_path), "undo", str(again), "-d", db,
                       "--fire-triggers", timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "public.film: 1 row(s) written back differ" in r.stdout
        assert query(db, "SELECT rental_rate, last_update > now() - interval '1 hour'"
                         " FROM film WHERE film_id = 1") == [(Decimal("0.99"), True)]  # fmt: skip
