"""The -L list that orders the drops of restore --clean for partitioned indexes."""

from __future__ import annotations

from pgsafe.logical.indexorder import reorder

LISTING = """;
; Archive created at 2026-12-03 02:00:00 UTC
;
210; 1259 16390 TABLE public tp postgres
211; 1259 16393 TABLE public tp_1 postgres
3301; 1259 16396 INDEX public t_a_idx postgres
3302; 1259 16397 INDEX public tp_a_idx postgres
3303; 1259 16398 INDEX public mid_a_idx postgres
3304; 1259 16399 INDEX public unrelated_idx postgres
3400; 0 0 INDEX ATTACH public t_a_idx
"""


def test_deepest_first_in_the_place_of_the_first_everything_else_unmoved() -> None:
    depths = {("public", "tp_a_idx"): 0, ("public", "mid_a_idx"): 1, ("public", "t_a_idx"): 2}
    got = reorder(LISTING, depths).splitlines()
    lines = LISTING.splitlines()
    assert got[:5] == lines[:5]
    assert [ln.split()[5] for ln in got[5:8]] == ["t_a_idx", "mid_a_idx", "tp_a_idx"]
    assert got[8:] == [lines[8], lines[9]]  # unrelated_idx and the ATTACH entry stay


def test_nothing_moves_without_a_tree() -> None:
    assert reorder(LISTING, {}) == LISTING
    assert reorder(LISTING, {("public", "tp_a_idx"): 0}) == LISTING
