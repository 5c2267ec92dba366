"""Resolving user-given table names to exact tables (pure)."""

from __future__ import annotations

import pytest

from pgsafe.errors import BadInput, NotFound
from pgsafe.logical.tables import Table, match, resolve

TABLES = [
    Table("public", "orders"),
    Table("public", "Orders"),
    Table("public", 'My "odd" table'),
    Table("Sales Dept", "café ü"),
    Table("archive", "orders_2023"),
    Table("public", "payment", partitioned=True),
    Table("public", "a.b"),
    Table("a", "b"),
]


def test_exact_name_wins_over_folding() -> None:
    assert match("Orders", TABLES) == [Table("public", "Orders")]
    assert match("orders", TABLES) == [Table("public", "orders")]


def test_folding_when_no_exact_match() -> None:
    assert match("ORDERS_2023", TABLES) == [Table("archive", "orders_2023")]


def test_quotes_spaces_and_non_ascii() -> None:
    assert match('My "odd" table', TABLES) == [Table("public", 'My "odd" table')]
    assert match("Sales Dept.café ü", TABLES) == [Table("Sales Dept", "café ü")]
    assert match("café ü", TABLES) == [Table("Sales Dept", "café ü")]


def test_dot_in_a_name_versus_schema_qualification_is_ambiguous() -> None:
    with pytest.raises(BadInput, match="ambiguous"):
        match("a.b", TABLES)


def test_wildcards() -> None:
    assert {t.qualified for t in match("orders*", TABLES)} == {
        "public.orders",
        "archive.orders_2023",
    }
    assert match("archive.*", TABLES) == [Table("archive", "orders_2023")]


def test_unknown_is_not_found() -> None:
    with pytest.raises(NotFound, match="nope"):
        resolve(("nope",), TABLES)


def test_empty_name_is_bad_input() -> None:
    with pytest.raises(BadInput):
        match("  ", TABLES)


def test_pattern_is_quoted_for_pg_dump() -> None:
    assert Table("public", 'My "odd" table').pattern() == '"public"."My ""odd"" table"'
    assert Table("Sales Dept", "café ü").pattern() == '"Sales Dept"."café ü"'


def test_resolve_keeps_order_and_dedups() -> None:
    got = resolve(("orders", "public.orders", "Orders"), TABLES)
    assert got == sorted([Table("public", "orders"), Table("public", "Orders")])
