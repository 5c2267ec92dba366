"""The results files: ``<out>/<date>-<name>.json`` (machine, every run, medians, targets)
and the Markdown report beside it (``render``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.harness.constants import GB_PER_SCALE, MB, RANDOM_ROWS_PER_SCALE
from benchmarks.targets import targets


def _fmt_size(b: float | None) -> str:
    return "-" if b is None else f"{b / MB:,.0f} MiB" if b >= 10 * MB else f"{b / MB:.1f} MiB"


def _table(part: dict[str, Any], ref: str | None, title: str) -> list[str]:
    cs = part["contenders"]
    if not cs:
        return []
    lines = [
        f"### {title}",
        "",
        "| contender | wall (median) | × pgsafe | CPU s | peak RSS | output | runs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    server = any("server_cpu_s" in c["median"] for c in cs.values())
    if server:
        lines[2] = lines[2].replace("| CPU s |", "| CPU s | server CPU s |")
        lines[3] += "---:|"
    ref_t = cs[ref]["median"]["wall_s"] if ref and ref in cs else None
    for name, c in cs.items():
        m = c["median"]
        ratio = f"{m['wall_s'] / ref_t:.2f}" if ref_t else "-"
        wall = f"{m['wall_s']:.3f} s" if m["wall_s"] < 1 else f"{m['wall_s']:.1f} s"
        cpu = f"{m['cpu_s']:.2f}" + (f" | {m.get('server_cpu_s', 0):.2f}" if server else "")
        lines.append(
            f"| {name} | {wall} | {ratio} | {cpu} | {m['max_rss_mb']:.0f} MB | "
            f"{_fmt_size(m.get('out_bytes'))} | {len(c['runs'])} |"
        )
    lines += [""] + [f"- {n}" for n in part.get("notes", [])] + [""]
    return lines


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    n_dirty = len(m.get("src_uncommitted") or [])
    dirty = f" + uncommitted changes to {n_dirty} files under src/" if n_dirty else ""
    lines = [
        f"# pgsafe benchmark, {doc['date']} ({doc['name']})",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, disk "
        f"`{m['disk']}` (rotational: {m['disk_rotational']}), Linux {m['kernel']}, {m['os']}; "
        f"{m['postgresql']}; {m['pgbackrest'] or 'pgBackRest not installed'}; pgsafe "
        f"{m['pgsafe']} ({m['git_commit']}{dirty}), Python {m['python']}. Shared and noisy: load "
        f"average {doc['load_before']} before, {doc['load_after']} after. Contenders run "
        "alternately (A B A B ...); figures are medians; CPU is user+sys of the child "
        "process tree, peak RSS the largest single process of it.",
        "",
        f"Data: pgbench scale {doc['scale']}"
        + (
            f" plus {RANDOM_ROWS_PER_SCALE * doc['scale']:,} rows of random bytea and text"
            if doc.get("data") == "random"
            else ""
        )
        + f" ({doc.get('data_dir_mb', round(GB_PER_SCALE * doc['scale'] / MB)):,} MB data "
        "directory), "
        f"{doc['runs']} runs per contender. Elapsed: {doc.get('elapsed_min', '?')} min.",
        "",
    ]
    if doc.get("notes"):
        lines += [f"- {n}" for n in doc["notes"]] + [""]
    lines += [
        "## Targets",
        "",
        "| target | goal | met | ratio | detail |",
        "|---|---|---|---:|---|",
    ]
    for t in doc["targets"]:
        met = {True: "met", False: "**not met**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {t['goal']} | {met} | {t['ratio']} | {t['detail']} |")
    lines.append("")
    parts = doc["parts"]
    titles = {
        "backup": ("Full physical backup", "pgsafe backup"),
        "restore": ("Restore to a new data directory", "pgsafe recover"),
        "walpush": ("One wal-push of a 16 MiB segment", "pgsafe wal-push"),
    }
    lines += ["## Results", ""]
    for key, (title, ref) in titles.items():
        if key in parts:
            lines += _table(parts[key], ref, title)
    if "archiving" in parts:
        lines += [
            "### Archiving under pgbench -c 4 -j 2",
            "",
            "| archive_command | TPS | × /bin/true | WAL | .ready at end | drained in "
            "| archived | failed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        cs = parts["archiving"]["contenders"]
        base = cs.get("/bin/true", {}).get("median", {}).get("tps")
        for name, c in cs.items():
            md = c["median"]
            worst = max(r["ready_at_end"] for r in c["runs"])
            rel = f"{md['tps'] / base:.3f}" if base else "-"
            lines.append(
                f"| {name} | {md['tps']:.0f} | {rel} | {md['wal_mb']:.0f} MiB | "
                f"{md['ready_at_end']:.0f} (max {worst}) | {md['drain_s']:.1f} s | "
                f"{md['archived']:.0f} | {md['failed']:.0f} |"
            )
        lines += [""] + [f"- {n}" for n in parts["archiving"]["notes"]] + [""]
    if "logical" in parts:
        lg = parts["logical"]
        for sub, title, ref in (
            ("dump", "Logical dump", "pgsafe dump"),
            ("restore", "Logical restore", "pgsafe restore -j 2"),
            ("verify", "Verification vs a bare restore", "pgsafe verify"),
        ):
            if sub in lg:
                lines += _table(lg[sub], ref, title)
    if "scaling" in parts:
        lines += [
            "### Scaling (pgsafe)",
            "",
            "| scale | data | backup | s per GiB | backup RSS "
            "| restore | s per GiB | restore RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for scale, row in parts["scaling"]["scales"].items():
            gib = row["data_mb"] / 1024
            b, r = row["backup"]["median"], row["restore"]["median"]
            lines.append(
                f"| {scale} | {row['data_mb']:,} MB | {b['wall_s']:.1f} s | "
                f"{b['wall_s'] / gib:.1f} | {b['max_rss_mb']:.0f} MB | {r['wall_s']:.1f} s | "
                f"{r['wall_s'] / gib:.1f} | {r['max_rss_mb']:.0f} MB |"
            )
        lines += [""] + [f"- {n}" for n in parts["scaling"]["notes"]] + [""]
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    doc["targets"] = targets(doc)
    path = out / f"{doc['date']}-{doc['name']}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    path.with_suffix(".md").write_text(render(doc))
    return path
