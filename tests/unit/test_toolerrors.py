"""Restore errors: the failing statement, and whether a table itself failed (pure)."""
# ruff: noqa: E501

from __future__ import annotations

from pgsafe.logical.toolerrors import errors
from pgsafe.verify.report import VerifyResult

PG_RESTORE = """pg_restore: error: could not execute query: ERROR:  relation "public.a_star" does not exist
Command was: CREATE TABLE public.c_star (
    c name
)
INHERITS (public.a_star);
pg_restore: error: could not execute query: ERROR:  function public.f() does not exist
Command was: CREATE TRIGGER t BEFORE UPDATE ON public.c_star FOR EACH ROW EXECUTE FUNCTION public.f();
pg_restore: warning: errors ignored on restore: 2
"""

PSQL = """psql:<stdin>:22: ERROR:  type "public.posint" does not exist
LINE 3:     id public.posint,
               ^
CREATE TABLE public.feelings (
"""


def test_pg_restore_errors_name_their_statements() -> None:
    got = errors(PG_RESTORE)
    assert [e.statement for e in got] == [
        "CREATE TABLE public.c_star (",
        "CREATE TRIGGER t BEFORE UPDATE ON public.c_star FOR EACH ROW EXECUTE FUNCTION public.f();",
    ]
    assert got[0].error == 'ERROR: relation "public.a_star" does not exist'
    assert [e.essential for e in got] == [True, False]


def test_psql_echoed_statement() -> None:
    (e,) = errors(PSQL)
    assert e.statement == "CREATE TABLE public.feelings (" and e.essential
    assert "statement: CREATE TABLE" in str(e)


def test_no_errors_in_notices() -> None:
    assert errors('NOTICE:  table "x" does not exist, skipping\n') == []


def test_report_marks_every_failing_line() -> None:
    r = VerifyResult("id")
    r.add("good", True, "fine")
    r.add("bad", False, "ERROR: it broke")
    lines = r.render("t").splitlines()
    assert lines[2].lstrip().startswith("✓") and lines[3].lstrip().startswith("✗")
    assert lines[-1].startswith("FAILED")
