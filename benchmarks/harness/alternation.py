"""Running contenders alternately (A B A B ..., or rotated), and the medians and result
shape of a part."""

from __future__ import annotations

import statistics
from typing import Any

from .constants import MB
from .measure import Fn, log


def alternate(
    contenders: list[tuple[str, Fn]], runs: int, *, rotate: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Run every contender once per round for ``runs`` rounds (A B A B ...).  With
    ``rotate``, round i starts at contender i (A B C, B C A, C A B): for parts whose
    runs change the database (pgbench's writes), so that no contender always comes
    first after the setup or always last."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in contenders}
    for i in range(runs):
        k = i % len(contenders) if rotate else 0
        for name, fn in contenders[k:] + contenders[:k]:
            r = fn(i)
            r.pop("stdout", None)
            out[name].append(r)
            size = f", {r['out_bytes'] / MB:.1f} MiB" if r.get("out_bytes") is not None else ""
            what = f"{r['tps']:.0f} TPS" if "tps" in r else f"{r.get('wall_s', 0):.2f} s"
            log(f"  {name} [{i + 1}/{runs}]: {what}{size}")
    return out


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [
        k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


def part_result(
    runs: dict[str, list[dict[str, Any]]], commands: dict[str, str], notes: list[str]
) -> dict[str, Any]:
    return {
        "contenders": {
            name: {"command": commands.get(name, ""), "runs": rs, "median": medians(rs)}
            for name, rs in runs.items()
            if rs
        },
        "notes": notes,
    }
