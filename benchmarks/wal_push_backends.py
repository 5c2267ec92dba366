"""wal-push time per 16 MiB segment, per backend and codec.

    .venv/bin/python benchmarks/wal_push_backends.py [--segments 8] [--out benchmarks/results]

Real WAL: a throwaway cluster (fsync off) inserts random text until ``--segments``
completed segments exist; they are copied out.  For each case a fresh repository is
made with that codec, one segment is pushed to warm up (it writes the server record),
then each other segment is pushed once by a new ``python -m pgsafe wal-push`` process,
as PostgreSQL's archive_command would, and its wall time recorded.  Cases: a local
folder and moto's S3 server on 127.0.0.1 (``tests/fixtures_s3.py``), each with zstd
(level 1 for WAL) and zstd + age (X25519 recipient); locally also zstd + age with a
passphrase (one scrypt per segment, work factor 15).

moto is an in-memory server on the loopback: S3 figures here measure pgsafe's client
side (botocore import, signing, one PUT), not a real service's latency.

Writes ``<out>/<date>-wal-push-backends.json`` and ``.md``; the median of the runs per
case (at least 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from pgsafe.cluster.local import LocalCluster  # noqa: E402
from pgsafe.repo.codec.pipeline import CodecSpec  # noqa: E402
from pgsafe.repo.repository import Repository  # noqa: E402
from tests.fixtures_s3 import start_s3_server  # noqa: E402


def make_segments(work: Path, count: int) -> list[Path]:
    """``count`` completed 16 MiB WAL segments of random-text inserts."""
    c = LocalCluster(work / "pg", settings={"fsync": "off", "max_wal_size": "2GB"})
    c.initdb()
    c.start()
    out = work / "segments"
    out.mkdir()
    try:
        with psycopg.connect(c.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id bigint, body text)")
            names: list[str] = []
            while len(names) < count + 1:
                conn.execute(
                    "INSERT INTO t SELECT g, md5(random()::text) || repeat(md5(g::text), 4)"
                    " FROM generate_series(1, 40000) g"
                )
                row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
                assert row is not None
                if str(row[0]) not in names:
                    names.append(str(row[0]))
        segs = []
        for name in names[:-1][-count:]:  # completed ones only
            dst = out / name
            shutil.copyfile(c.datadir / "pg_wal" / name, dst)
            segs.append(dst)
        return segs
    finally:
        c.destroy()


def age_keypair(work: Path) -> tuple[Path, str]:
    key = work / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    pub = subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return key, pub


def push_times(url: str, segs: list[Path], env: dict[str, str]) -> list[float]:
    times = []
    for i, seg in enumerate(segs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pgsafe", "--repo", url, "wal-push", str(seg)],
            capture_output=True, text=True, env={**os.environ, **env}, check=False,
        )  # fmt: skip
        took = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"wal-push failed: {proc.stderr}")
        if i:  # the first push (server record, cold caches) is a warm-up
            times.append(took)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgsafe-bench-walpush-", dir="/tmp"))
    os.chmod(work, 0o755)
    s3 = start_s3_server()
    results: list[dict[str, Any]] = []
    try:
        segs = make_segments(work, args.segments)
        _key, pub = age_keypair(work)
        pp = work / "passphrase"
        pp.write_text("benchmark passphrase\n")
        zstd = CodecSpec("zstd")
        age = CodecSpec.parse("zstd", None, "age")
        age_pp = CodecSpec.parse("zstd", None, "age-passphrase")
        os.environ.update(s3.env())
        client = s3.client()
        cases: list[tuple[str, str, CodecSpec, dict[str, str]]] = [
            ("posix", "zstd", zstd, {}),
            ("posix", "zstd+age (x25519)", age, {}),
            ("posix", "zstd+age (passphrase)", age_pp, {"PGSAFE_AGE_PASSPHRASE_FILE": str(pp)}),
            ("s3 (moto, 127.0.0.1)", "zstd", zstd, s3.env()),
            ("s3 (moto, 127.0.0.1)", "zstd+age (x25519)", age, s3.env()),
        ]
        for n, (backend, codec, spec, env) in enumerate(cases):
            if backend == "posix":
                url = str(work / f"repo-{n}")
            else:
                bucket = f"bench-{n}"
                client.create_bucket(Bucket=bucket)
                url = f"s3://{bucket}/pgsafe"
            os.environ.update(env)
            Repository.open(url, create=True, codec=spec.to_dict(), recipients=(pub,))
            times = push_times(url, segs, env)
            for k in env:
                if k.startswith("PGSAFE_AGE"):
                    os.environ.pop(k, None)
            results.append(
                {
                    "backend": backend,
                    "codec": codec,
                    "runs": len(times),
                    "median_s": round(statistics.median(times), 4),
                    "min_s": round(min(times), 4),
                    "max_s": round(max(times), 4),
                }
            )
            print(f"{backend:22} {codec:22} median {statistics.median(times):.3f} s", flush=True)
    finally:
        s3.stop()
        shutil.rmtree(work, ignore_errors=True)
    day = dt.date.today().isoformat()
    doc = {
        "date": day,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": sys.version.split()[0],
        "segment_bytes": 16 * 1024 * 1024,
        "results": results,
        "note": "wall time of one `python -m pgsafe wal-push` process per segment "
        "(interpreter start-up included); moto is in-memory on the loopback",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{day}-wal-push-backends.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# wal-push per segment, per backend ({day})",
        "",
        f"{os.cpu_count()} CPUs, {platform.platform()}, Python {doc['python']}. "
        "Wall time of one `python -m pgsafe wal-push` of a real 16 MiB segment "
        "(a new process each time, as archive_command runs it); median of "
        f"{results[0]['runs'] if results else 0} segments per case, after a warm-up push.",
        "",
        "| backend | codec | median s | min s | max s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['codec']} | {r['median_s']:.3f} | {r['min_s']:.3f} "
            f"| {r['max_s']:.3f} |"
        )
    lines += [
        "",
        "moto's S3 server is in memory on 127.0.0.1: the S3 rows measure pgsafe's client "
        "side (botocore import, request signing, one PUT), not a real service's latency.",
        "",
    ]
    (args.out / f"{day}-wal-push-backends.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
