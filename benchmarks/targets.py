"""The targets pgsafe is held to, as one table (``TARGETS``), evaluated on a results
document: each row gives its name, goal and how it is judged.  Most are a ratio of two
medians (``Ratio``); the rest need more than two figures and are small functions
(``Rule``).  A target whose figures are missing is left out (or marked n/a)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.harness.constants import MB

Doc = dict[str, Any]
TargetRow = dict[str, Any]


def _med(doc: Doc, part: str, name: str, key: str = "wall_s") -> float | None:
    p = doc["parts"].get(part)
    if part == "logical_dump":
        p = doc["parts"].get("logical", {}).get("dump")
    c = (p or {}).get("contenders", {}).get(name)
    return None if c is None else c["median"].get(key)


def _target(name: str, goal: str, met: bool | None, ratio: float | None, detail: str) -> TargetRow:
    return {
        "name": name,
        "goal": goal,
        "met": met,
        "ratio": None if ratio is None else round(ratio, 2),
        "detail": detail,
    }


@dataclass(frozen=True)
class Ratio:
    """pgsafe's median wall time over another contender's, at most ``limit``."""

    name: str
    goal: str
    part: str
    ours: str
    theirs: str
    limit: float
    detail: Callable[[float, float], str]

    def evaluate(self, doc: Doc) -> list[TargetRow]:
        if self.part not in doc["parts"]:
            return []
        ours, theirs = _med(doc, self.part, self.ours), _med(doc, self.part, self.theirs)
        if not (ours and theirs):
            return []
        ratio = ours / theirs
        return [
            _target(self.name, self.goal, ratio <= self.limit, ratio, self.detail(ours, theirs))
        ]


@dataclass(frozen=True)
class Rule:
    """A target judged by a function of the whole document."""

    evaluate: Callable[[Doc], list[TargetRow]]


def backup_vs_pgbackrest(doc: Doc) -> list[TargetRow]:
    parts = doc["parts"]
    if "backup" not in parts:
        return []
    ours = _med(doc, "backup", "pgsafe backup")
    size = _med(doc, "backup", "pgsafe backup", "out_bytes")
    pgbr = {k: v for k, v in parts["backup"]["contenders"].items() if k.startswith("pgBackRest")}
    if not (pgbr and ours):
        return [
            _target(
                "backup vs pgBackRest",
                "≥ 2× faster than pgBackRest's fastest",
                None,
                None,
                "pgBackRest not run",
            )
        ]
    fastest = min(pgbr, key=lambda k: pgbr[k]["median"]["wall_s"])
    t, s = pgbr[fastest]["median"]["wall_s"], pgbr[fastest]["median"]["out_bytes"]
    ratio = t / ours
    return [
        _target(
            "backup vs pgBackRest",
            "≥ 2× faster than pgBackRest's fastest, output no larger",
            ratio >= 2 and (size or 0) <= s,
            ratio,
            f"{fastest}: {t:.1f} s, {s / MB:.0f} MiB; pgsafe {ours:.1f} s, "
            f"{(size or 0) / MB:.0f} MiB (speed-up {ratio:.2f}×, size "
            f"{(size or 0) / s:.2f}×)",
        )
    ]


def archiving_under_load(doc: Doc) -> list[TargetRow]:
    parts = doc["parts"]
    if "archiving" not in parts:
        return []
    tps = _med(doc, "archiving", "pgsafe wal-push", "tps")
    base = _med(doc, "archiving", "/bin/true", "tps")
    runs = parts["archiving"]["contenders"].get("pgsafe wal-push", {}).get("runs", [])
    worst = max((r["ready_at_end"] for r in runs), default=0)
    if not (tps and base):
        return []
    return [
        _target(
            "archiving under load",
            "no backlog (≤ 1 .ready: the segment in flight), TPS ≥ 95% of /bin/true",
            worst <= 1 and tps / base >= 0.95,
            tps / base,
            f"TPS {tps:.0f} vs {base:.0f}; worst .ready at end: {worst}",
        )
    ]


def dump_vs_pg_dump(doc: Doc) -> list[TargetRow]:
    if "logical" not in doc["parts"]:
        return []
    ours, theirs = (
        _med(doc, "logical_dump", "pgsafe dump"),
        _med(doc, "logical_dump", "pg_dump -Fc"),
    )
    so = _med(doc, "logical_dump", "pgsafe dump", "out_bytes")
    st = _med(doc, "logical_dump", "pg_dump -Fc", "out_bytes")
    if not (ours and theirs and so and st):
        return []
    return [
        _target(
            "dump vs pg_dump -Fc",
            "≥ 1.5× faster, output no larger",
            theirs / ours >= 1.5 and so <= st,
            theirs / ours,
            f"pgsafe {ours:.1f} s, {so / MB:.0f} MiB; pg_dump {theirs:.1f} s, {st / MB:.0f} MiB",
        )
    ]


def peak_rss(doc: Doc) -> list[TargetRow]:
    parts = doc["parts"]
    rss: list[tuple[str, float]] = []
    if "scaling" in parts:
        for scale, row in parts["scaling"]["scales"].items():
            for k in ("backup", "restore"):
                rss.append((f"{k} at scale {scale}", max(r["max_rss_mb"] for r in row[k]["runs"])))
    for part in ("backup", "restore", "walpush"):
        for name, c in parts.get(part, {}).get("contenders", {}).items():
            if name.startswith("pgsafe"):
                rss.append(
                    (f"{name} (scale {doc['scale']})", max(r["max_rss_mb"] for r in c["runs"]))
                )
    for sub in ("dump", "restore", "verify"):
        for name, c in parts.get("logical", {}).get(sub, {}).get("contenders", {}).items():
            if name.startswith("pgsafe"):
                rss.append((name, max(r["max_rss_mb"] for r in c["runs"])))
    if not rss:
        return []
    where, peak = max(rss, key=lambda x: x[1])
    return [
        _target(
            "peak RSS",
            "≤ 100 MB at every scale",
            peak <= 100,
            peak / 100,
            f"largest: {peak:.0f} MB ({where}); ratio = peak / 100 MB",
        )
    ]


TARGETS: list[Ratio | Rule] = [
    Rule(backup_vs_pgbackrest),
    Ratio(
        "backup vs raw-read floor", "≤ 1.5× the tar floor",
        "backup", "pgsafe backup", "tar floor", 1.5,
        lambda ours, floor: f"pgsafe {ours:.1f} s, tar {floor:.1f} s",
    ),
    Ratio(
        "restore vs pgBackRest", "≤ 1.0× pgBackRest's time",
        "restore", "pgsafe recover", "pgBackRest restore", 1.0,
        lambda ours, theirs: f"pgsafe {ours:.1f} s, pgBackRest {theirs:.1f} s",
    ),
    Ratio(
        "wal-push vs pgBackRest", "≤ 1.0× archive-push per segment",
        "walpush", "pgsafe wal-push", "pgBackRest archive-push", 1.0,
        lambda ours, theirs: f"pgsafe {ours * 1000:.0f} ms, pgBackRest {theirs * 1000:.0f} ms",
    ),
    Rule(archiving_under_load),
    Rule(dump_vs_pg_dump),
    Rule(peak_rss),
]  # fmt: skip


def targets(doc: Doc) -> list[TargetRow]:
    """Every target of ``TARGETS`` that ``doc`` has the figures for, in the table's order."""
    return [row for t in TARGETS for row in t.evaluate(doc)]
