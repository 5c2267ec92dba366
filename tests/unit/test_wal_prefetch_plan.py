"""What the prefetcher fetches next (pgsafe.wal.prefetcher.Prefetcher.wanted): the
segments after the last one asked for, on the timeline PostgreSQL will ask for each,
stopping at the end of the archive; and the default depth and threads."""

from __future__ import annotations

from typing import Any, cast

from pgsafe.wal import history, names, prefetcher


def _p(depth: int = 4) -> prefetcher.Prefetcher:
    return prefetcher.Prefetcher("/nonexistent", -1, "/nonexistent", cast(Any, None), depth, 1)


def test_the_next_segments_on_the_same_timeline() -> None:
    p = _p()
    assert p.wanted() == []  # nothing asked yet
    p.follow("want 0000000100000000000000FE\n")
    assert p.wanted() == [
        "0000000100000000000000FF", "000000010000000100000000",
        "000000010000000100000001", "000000010000000100000002",
    ]  # fmt: skip


def test_across_a_timeline_switch() -> None:
    p = _p(depth=5)
    switch = names.parse_lsn("0/5000100")  # in segment 5: timeline 2 copies it
    p.path_spans = history.path_to(2, [(1, switch)])
    p.follow("got 000000010000000000000003 spool 0.01\n")
    assert p.wanted() == [
        "000000010000000000000004", "000000020000000000000005", "000000020000000000000006",
        "000000020000000000000007", "000000020000000000000008",
    ]  # fmt: skip
    p.follow("got 000000020000000000000006 spool 0.01\n")
    assert p.wanted()[0] == "000000020000000000000007"


def test_never_past_the_end_of_the_archive_until_asked_again() -> None:
    p = _p()
    p.follow("want 000000010000000000000003\n")
    p.missing.add("000000010000000000000005")
    assert p.wanted() == ["000000010000000000000004"]
    p.follow("want 000000010000000000000004\n")  # asked again: look again
    assert p.wanted()[0] == "000000010000000000000005"


def test_untrusted_journal_lines_are_ignored() -> None:
    p = _p()
    p.follow("got ../../etc/passwd spool 1\nwant\nhello world\nwant 00000001000000000000000g\n")
    assert p.cursor is None


def test_defaults_for_2_and_16_cores() -> None:
    assert (prefetcher.default_jobs(2), prefetcher.default_depth(2)) == (1, 8)
    assert (prefetcher.default_jobs(16), prefetcher.default_depth(16)) == (8, 16)
    assert prefetcher.default_jobs(1) == 1
