"""Partition and inheritance trees: what a table selection means (pure)."""

from __future__ import annotations

from pgsafe.logical.tables import Table
from pgsafe.logical.tree import Rel, Tree

P = ("public",)
TREE = Tree(
    [
        Rel("public", "prt1", "p"),
        Rel("public", "prt1_p1", "p", (("public", "prt1"),), partition=True),
        Rel("public", "prt1_p1_a", "r", (("public", "prt1_p1"),), partition=True),
        Rel("public", "prt1_def", "r", (("public", "prt1"),), partition=True),
        Rel("public", "a_star", "r"),
        Rel("public", "b_star", "r", (("public", "a_star"),)),
        Rel("public", "c_star", "r", (("public", "a_star"),)),
        Rel("public", "d_star", "r", (("public", "b_star"), ("public", "c_star"))),
        Rel("other", "lone", "r"),
    ]
)


def t(name: str, partitioned: bool = False) -> Table:
    return Table("public", name, partitioned)


def test_a_partitioned_table_means_every_partition_recursively() -> None:
    assert TREE.expand([t("prt1", True)]) == [
        t("prt1", True), t("prt1_def"), t("prt1_p1", True), t("prt1_p1_a")
    ]  # fmt: skip
    assert TREE.partitions(t("prt1_p1", True)) == [t("prt1_p1_a")]


def test_an_inheritance_parent_means_itself_alone() -> None:
    assert TREE.expand([t("a_star")]) == [t("a_star")]
    assert TREE.partitions(t("a_star")) == []
    assert TREE.inheritors(t("a_star")) == [t("b_star"), t("c_star"), t("d_star")]


def test_children_carry_their_ancestors_definitions() -> None:
    assert TREE.context([t("d_star")]) == [t("a_star"), t("b_star"), t("c_star")]
    assert TREE.context([t("prt1_p1_a")]) == [t("prt1", True), t("prt1_p1", True)]
    assert TREE.context([t("a_star"), t("b_star")]) == []
    assert TREE.context([Table("other", "lone")]) == []


def test_json_round_trip_keeps_the_tree() -> None:
    again = Tree.from_json(TREE.to_json())
    assert again.rels == TREE.rels
    kept = Tree.from_json(TREE.to_json({("public", "c_star")}))
    assert list(kept.rels) == [("public", "c_star")]
