"""What restore -t --clean runs on existing tables (pure)."""

from __future__ import annotations

from pgsafe.logical.clean import _fires, delete_statements
from pgsafe.logical.tables import Table


def test_delete_only_each_table_that_holds_rows() -> None:
    kinds = {("public", "prt1"): "p", ("public", "prt1_a"): "r", ("public", "a_star"): "r"}
    got = delete_statements(
        [Table("public", "prt1"), Table("public", "prt1_a"), Table("public", "a_star")], kinds
    )
    assert got == 'DELETE FROM ONLY "public"."prt1_a";\nDELETE FROM ONLY "public"."a_star";\n'
    assert 'DELETE FROM ONLY "odd""s"."t"' in delete_statements([Table('odd"s', "t")], {})


def test_which_triggers_fire_in_the_restore_session() -> None:
    # O: origin (fires unless replica), A: always, R: replica only, D is filtered out
    assert _fires("O", replica=False) and not _fires("O", replica=True)
    assert _fires("A", replica=False) and _fires("A", replica=True)
    assert _fires("R", replica=True) and not _fires("R", replica=False)
