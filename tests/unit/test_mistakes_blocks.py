"""Reading pg_waldump's output a block at a time gives what reading it a line at a time does.

The text is a real capture (``data/waldump-pg15-mistakes.txt``, its workload at its
top): deletes, HOT and other updates, savepoints rolled back and released, an abort, a
prepared transaction, a multixact, TRUNCATE, VACUUM FULL and ALTER TABLE rewrites, a
table made and dropped, DROP DATABASE.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

from pgsafe.mistakes.blocks import Window, read_block, read_lines
from pgsafe.mistakes.collect import Collector, Committed
from pgsafe.pg.waldump import text_blocks

TEXT = (Path(__file__).parent / "data" / "waldump-pg15-mistakes.txt").read_text()
LINES = TEXT.splitlines(keepends=True)
EVERYTHING = Window(-1, 0, None)
Read = tuple[list[Committed], int | None, Collector]  # what came out, the last LSN fed


def _by_lines(window: Window = EVERYTHING) -> Read:
    got: list[Committed] = []
    c = Collector()
    last = read_lines(LINES, c, window, got.append)
    return got, last, c


def _by_blocks(n: int, window: Window = EVERYTHING, c: Collector | None = None) -> Read:
    """Blocks of ``n`` lines, the LSN of the last record fed as ``scan._feed`` keeps it."""
    got: list[Committed] = []
    c = c or Collector()
    last = None
    for i in range(0, len(LINES), n):
        fed = read_block("".join(LINES[i : i + n]), c, window, got.append)
        last = fed if fed is not None else last
    return got, last, c


def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def test_the_capture_holds_every_kind_of_record_read() -> None:
    got, _, _ = _by_lines()
    assert any(c.written for c in got) and any(c.truncate_record for c in got)
    assert any(c.multixacts for c in got) and any(c.subxacts for c in got)
    assert any(c.dropped_databases for c in got) and any(c.dropped for c in got)
    assert sum(1 for line in LINES if line.startswith("rmgr: Storage")) > 1


def test_blocks_of_any_size_give_what_lines_give() -> None:
    want, last, c = _by_lines()
    for n in (1, 2, 3, 7, 50, 333, len(LINES)):
        got, got_last, gc = _by_blocks(n)
        assert got == want, n
        assert got_last == last and (gc.last_lsn, gc.last_time) == (c.last_lsn, c.last_time)


def test_a_window_cuts_the_blocks_as_it_cuts_the_lines() -> None:
    lsns = [_lsn(m) for m in re.findall(r", lsn: ([0-9A-F]+/[0-9A-F]+),", TEXT)]
    third, two_thirds = lsns[len(lsns) // 3], lsns[2 * len(lsns) // 3]
    for window in (Window(third, 0, None), Window(-1, third, two_thirds),
                   Window(third, third + 1, None), Window(-1, lsns[-1] + 1, None)):  # fmt: skip
        want, last, _ = _by_lines(window)
        for n in (1, 5, 40, len(LINES)):
            got, got_last, _ = _by_blocks(n, window)
            assert (got, got_last) == (want, last), (window, n)


def test_rows_match_a_plain_count_of_the_lines() -> None:
    """An independent count: DELETE / UPDATE / HOT_UPDATE lines per transaction and
    relfilenode, subtransactions folded into the transaction whose commit lists them."""
    rows: dict[int, Counter[tuple[int, int, str]]] = {}
    committed: dict[int, Counter[tuple[int, int, str]]] = {}
    for line in LINES:
        if not line.startswith("rmgr: "):
            continue
        xid = int(line.split("tx:")[1].split(",")[0])
        desc = line.split("desc: ", 1)[1]
        op = desc.split(" ", 1)[0]
        if line.startswith("rmgr: Heap ") and op in ("DELETE", "UPDATE", "HOT_UPDATE"):
            _, db, rfn = desc.split("rel ", 1)[1].split(" ", 1)[0].split("/")
            kind = "delete" if op == "DELETE" else "update"
            rows.setdefault(xid, Counter())[(int(db), int(rfn), kind)] += 1
        elif line.startswith("rmgr: Transaction") and op.startswith(("COMMIT", "ABORT")):
            if op.endswith("_PREPARED"):
                xid = int(desc.split(" ", 2)[1].rstrip(":"))
            subs = desc.split("subxacts: ")[1].split(";")[0].split() if "subxacts:" in desc else []
            mine = rows.pop(xid, Counter())
            for s in subs:
                mine += rows.pop(int(s), Counter())
            if op.startswith("COMMIT") and mine:
                committed[xid] = mine
    got, _, _ = _by_blocks(50)
    counted = {
        c.xid: Counter({(db, rfn, k): n for (db, rfn), v in c.rows.items()
                        for k, n in (("delete", v.deletes), ("update", v.updates)) if n})
        for c in got if c.rows
    }  # fmt: skip
    assert counted == committed and len(committed) > 5


def test_a_plain_commit_not_wanted_makes_nothing() -> None:
    """``wanted`` is asked about plain commits only: nothing after the time (no
    relfilenode dropped, no subtransaction, no invalidation), not COMMIT_PREPARED."""
    want, _, _ = _by_lines()
    got, _, _ = _by_blocks(7, c=Collector(wanted=lambda xid, lsn, rows: rows >= 20))
    plain = {int(x) for x in re.findall(r"tx: +(\d+), [^\n]*desc: COMMIT [-\d:. ]+ UTC\n", TEXT)}
    kept = [c for c in want if c.xid not in plain or c.dropped_databases
            or sum(n.deletes + n.updates for n in c.rows.values()) >= 20]  # fmt: skip
    assert got == kept and len(kept) < len(want) and plain


def _settling(fewest: int, only: int | None = None) -> Collector:
    """A collector that wants what ``fewest`` and ``only`` say, and is told so."""
    c = Collector(wanted=lambda xid, lsn, rows: rows >= fewest and only in (None, xid))
    c.fewest_rows, c.only_xid = fewest, only
    return c


def test_transactions_too_small_are_dropped_uncounted_with_the_same_result() -> None:
    """Told the fewest rows ``wanted`` accepts, a block skips the transactions that write
    and end in it with fewer: what comes out is what the line reader keeps, for blocks
    of any size (a transaction's rows spread over several blocks add up), the last LSN
    and time too."""
    want, last, lines = _by_lines()
    big = [x for x in want if x.dropped_databases or x.dropped or x.subxacts
           or sum(n.deletes + n.updates for n in x.rows.values()) >= 10]  # fmt: skip
    multi_block = [x for x in big if not x.dropped_databases and not x.dropped]
    assert multi_block and len(big) < len(want)
    for fewest in (2, 10):
        for n in (1, 2, 3, 7, 50, len(LINES)):
            c = _settling(fewest)
            got, got_last, _ = _by_blocks(n, c=c)
            assert c.settles
            kept = [x for x in want if x.xid not in _plain() or x.dropped_databases
                    or sum(v.deletes + v.updates for v in x.rows.values()) >= fewest]  # fmt: skip
            assert got == kept, (fewest, n)
            assert got_last == last and (c.last_lsn, c.last_time) == (lines.last_lsn,
                                                                      lines.last_time)  # fmt: skip


def test_the_time_read_so_far_is_the_last_commit_s_after_each_block() -> None:
    """``last_time`` (what ``--until`` stops on) follows the commits a block skips."""
    plain, settling = Collector(), _settling(10)
    for i in range(0, len(LINES), 7):
        block = "".join(LINES[i : i + 7])
        read_block(block, plain, EVERYTHING, lambda _: None)
        read_block(block, settling, EVERYTHING, lambda _: None)
        assert settling.last_time == plain.last_time, i


def test_only_the_xid_wanted_is_counted() -> None:
    want, _, _ = _by_lines()
    target = max((x for x in want if x.xid in _plain()), key=lambda x: len(x.rows))
    for n in (1, 7, len(LINES)):
        got, _, _ = _by_blocks(n, c=_settling(1, target.xid))
        plain_kept = [x for x in got if x.xid in _plain() and not x.dropped_databases]
        assert plain_kept == [target], n


def _plain() -> set[int]:
    return {int(x) for x in re.findall(r"tx: +(\d+), [^\n]*desc: COMMIT [-\d:. ]+ UTC\n", TEXT)}


def test_text_blocks_are_whole_lines() -> None:
    data = TEXT.encode() + b"no newline at the end"
    for size in (1, 100, 4096, len(data) * 2):
        blocks = list(text_blocks(io.BytesIO(data), size))
        assert "".join(blocks).encode() == data
        assert all(b.endswith("\n") for b in blocks[:-1])
    assert list(text_blocks(io.BytesIO(b"a\xffb\n"), 2)) == ["a\ufffdb\n"]
