"""The pure parts of undo: the plan's text and counts, and how names change with --as."""

from __future__ import annotations

from pgsafe.undo.model import Conflict, RowAction, TableAction, TablePlan, UndoResult
from pgsafe.undo.wholetable import _renamed


def test_renamed_keeps_the_suffix_or_prefixes_the_new_name() -> None:
    assert _renamed("orders_pkey", "orders", "orders_at_noon") == "orders_at_noon_pkey"
    assert _renamed("orders_id_seq", "orders", "o2") == "o2_id_seq"
    assert _renamed("by_customer", "orders", "o2") == "o2_by_customer"


def test_result_counts_rows_back_and_conflicts() -> None:
    rows = TablePlan(
        "public.orders",
        TableAction.ROWS,
        "delete",
        ["id"],
        {RowAction.INSERT: 3, RowAction.UPDATE: 2, RowAction.CONFLICT: 1},
        [Conflict("(7)", "(7,x)")],
    )
    whole = TablePlan("public.notes", TableAction.CREATE, "drop-table", [], rows=25)
    r = UndoResult("transaction 726", "shop", 726, [rows, whole], refused=True)
    assert r.rows_back == 30 and r.conflicts == 1
    text = r.text()
    assert "undo of transaction 726 in database shop" in text
    assert "conflict in public.orders: (7) is now (7,x)" in text
    assert "public.notes: drop-table: comes back whole (25 rows" in text
    assert "refused: 1 conflicting rows; nothing was changed" in text
    done = UndoResult("time x", "shop", None, [whole], applied=True, operation="restore-table")
    assert done.text().startswith("restore-table as of time x into database shop")
    assert "done in one transaction: 25 rows back" in done.text()
