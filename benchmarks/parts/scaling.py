"""scaling — pgsafe backup and recover at each of ``--scales`` (the main scale's figures
come from the backup and restore parts)."""

from __future__ import annotations

import shutil
import time
from typing import Any

from benchmarks.harness.bench import Bench
from benchmarks.harness.constants import GB_PER_SCALE, MB
from benchmarks.harness.files import data_bytes
from benchmarks.harness.measure import log
from benchmarks.parts import backup, restore


def run(bench: Bench, scales: list[int], runs: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    notes: list[str] = []
    parts = bench.doc.get("parts", {})
    for scale in scales:
        key = str(scale)
        if scale == bench.args.scale and "backup" in parts and "restore" in parts:
            rows[key] = {
                "source": "the backup and restore parts",
                "data_mb": bench.doc.get("data_dir_mb"),
                "backup": parts["backup"]["contenders"]["pgsafe backup"],
                "restore": parts["restore"]["contenders"]["pgsafe recover"],
            }
            continue
        elapsed = (time.monotonic() - bench.t_start) / 60
        if bench.args.budget_min and elapsed > bench.args.budget_min:
            notes.append(
                f"stopped before scale {scale}: {elapsed:.0f} min elapsed, over the "
                f"--budget-min {bench.args.budget_min:g}"
            )
            break
        free = shutil.disk_usage(bench.base).free
        need = 3.5 * GB_PER_SCALE * scale * bench.data_factor()
        if free < need:
            notes.append(
                f"stopped before scale {scale}: {free / 2**30:.1f} GiB free, "
                f"about {need / 2**30:.1f} GiB needed"
            )
            break
        log(f"scaling: scale {scale}")
        c = bench.cluster(f"scale-{scale}")
        try:
            bench.pgbench_init(c, scale)
            data_mb = round(data_bytes(c.datadir) / MB)
            b = backup.run(bench, c, runs, full=False)
            r = restore.run(bench, c, runs, full=False)
            rows[key] = {
                "source": f"a cluster of scale {scale}",
                "data_mb": data_mb,
                "backup": b["contenders"]["pgsafe backup"],
                "restore": r["contenders"]["pgsafe recover"],
            }
        finally:
            c.destroy()
            bench.clusters.remove(c)
    for key, row in rows.items():
        if row.get("data_mb") is None:
            row["data_mb"] = round(GB_PER_SCALE * int(key) / MB)
    return {"scales": rows, "notes": notes}
