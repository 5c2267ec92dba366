"""Codec and storage benchmark: throughput (MB/s) and ratio of each codec on a
pg_dump-like input, and the time to put one 16 MiB object (a WAL segment) per backend.

    .venv/bin/python benchmarks/codecs.py [--size-mb 1024] [--out benchmarks/results]

The input is synthetic plain-format pg_dump text (COPY blocks of several table shapes:
pgbench-like accounts, orders with timestamps and amounts, customers with names and
e-mails, events with JSON payloads), generated deterministically into
benchmarks/work/ (ignored by git).  Each codec encodes it from 1 MiB reads, the result
is kept in memory, then decoded from there (no disk write in the timings); times are
wall-clock on this machine; MB are 10^6 bytes.
zstd-19 runs on a 16 MiB slice (it is ~200x slower); the table says so.

Writes ``<out>/<date>-codecs.json`` and ``<out>/<date>-codecs.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from pgsafe.repo.codec.pipeline import AgeSpec, CodecSpec, Pipeline  # noqa: E402
from pgsafe.repo.keys import AgeKeys, Secret, X25519Identity  # noqa: E402

MiB = 1 << 20
WORK = ROOT / "benchmarks" / "work"

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
         "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
         "Thomas", "Sarah", "Carlos", "Yuki", "Amira", "Chen", "Olga", "Kwame"]  # fmt: skip
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
        "Tanaka", "Okafor", "Novak", "Ivanova", "Mensah"]  # fmt: skip
CITIES = ["Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton",
          "Fairview", "Salem", "Madison", "Georgetown", "Arlington", "Ashland"]  # fmt: skip
STATUS = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
EVENTS = ["login", "logout", "view", "click", "purchase", "search", "error"]


def _rows_accounts(rng: random.Random, start: int, n: int) -> str:
    filler = " " * 84
    return "".join(f"{i}\t{i // 100000 + 1}\t{rng.randint(-5000, 5000)}\t{filler}\n"
                   for i in range(start, start + n))  # fmt: skip


def _rows_orders(rng: random.Random, start: int, n: int) -> str:
    base = 1_700_000_000
    out = []
    for i in range(start, start + n):
        ts = dt.datetime.fromtimestamp(base + i * 7 + rng.randint(0, 5), dt.UTC)
        out.append(f"{i}\t{rng.randint(1, 2_000_000)}\t{ts:%Y-%m-%d %H:%M:%S}+00\t"
                   f"{rng.randint(100, 99999) / 100:.2f}\t{rng.choice(STATUS)}\t"
                   f"{rng.randint(1, 40)}\n")  # fmt: skip
    return "".join(out)


def _rows_customers(rng: random.Random, start: int, n: int) -> str:
    out = []
    for i in range(start, start + n):
        f, la = rng.choice(FIRST), rng.choice(LAST)
        active = "t" if rng.random() < 0.9 else "f"
        out.append(f"{i}\t{f}\t{la}\t{f.lower()}.{la.lower()}{rng.randint(1, 999)}@example.com\t"
                   f"{rng.randint(1, 9999)} {rng.choice(LAST)} Street\t{rng.choice(CITIES)}\t"
                   f"{rng.randint(10000, 99999)}\t{active}\n")  # fmt: skip
    return "".join(out)


def _rows_events(rng: random.Random, start: int, n: int) -> str:
    out = []
    for i in range(start, start + n):
        uid = rng.getrandbits(128).to_bytes(16, "big").hex()
        ev = {"ev": rng.choice(EVENTS), "ms": rng.randint(1, 3000),
              "page": f"/p/{rng.randint(1, 500)}", "ok": rng.random() < 0.95}  # fmt: skip
        payload = json.dumps(ev)
        out.append(f"{i}\t{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}\t"
                   f"{payload.replace(chr(92), chr(92) * 2)}\n")  # fmt: skip
    return "".join(out)


TABLES = [("pgbench_accounts", "aid, bid, abalance, filler", _rows_accounts),
          ("orders", "id, customer_id, ordered_at, amount, status, items", _rows_orders),
          ("customers", "id, first_name, last_name, email, street, city, zip, active",
           _rows_customers),
          ("events", "id, session, payload", _rows_events)]  # fmt: skip


def make_input(path: Path, size: int) -> None:
    """Deterministic pg_dump-like text of about ``size`` bytes."""
    rng = random.Random(42)
    written = 0
    with path.open("w") as f:
        f.write("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n")
        rounds = 0
        while written < size:
            for name, cols, gen in TABLES:
                f.write(f"\nCOPY public.{name} ({cols}) FROM stdin;\n")
                for _ in range(10):
                    block = gen(rng, rounds * 20000 + 1, 2000)
                    f.write(block)
                    written += len(block)
                f.write("\\.\n")
            rounds += 1
        f.write("\n--\n-- PostgreSQL database dump complete\n--\n")


def read_chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    left = limit if limit is not None else 1 << 62
    with path.open("rb") as f:
        while left > 0 and (chunk := f.read(min(MiB, left))):
            left -= len(chunk)
            yield chunk


def bench_codec(label: str, pipe: Pipeline, src: Path, limit: int | None) -> dict[str, Any]:
    """Encode from the (page-cached) input file into memory, then decode from memory:
    no disk write in either timing, so the figures are the codecs' own."""
    size = min(src.stat().st_size, limit) if limit else src.stat().st_size
    t0, c0 = time.perf_counter(), time.process_time()
    stored_pieces = list(pipe.encode(read_chunks(src, limit)))
    t_enc, c_enc = time.perf_counter() - t0, time.process_time() - c0
    stored = sum(len(p) for p in stored_pieces)
    t0, c0 = time.perf_counter(), time.process_time()
    plain = 0
    for piece in pipe.decode_chunks(iter(stored_pieces)):
        plain += len(piece)
    t_dec, c_dec = time.perf_counter() - t0, time.process_time() - c0
    del stored_pieces
    assert plain == size, (label, plain, size)
    return {
        "codec": label,
        "suffix": pipe.suffix,
        "input_bytes": size,
        "stored_bytes": stored,
        "ratio": round(size / stored, 3),
        "encode_mb_s": round(size / 1e6 / t_enc, 1),
        "decode_mb_s": round(size / 1e6 / t_dec, 1),
        "encode_s": round(t_enc, 2),
        "decode_s": round(t_dec, 2),
        "encode_cpu_s": round(c_enc, 2),
        "decode_cpu_s": round(c_dec, 2),
        "encode_mb_per_cpu_s": round(size / 1e6 / max(c_enc, 1e-6), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_puts(src: Path, rounds: int) -> list[dict[str, Any]]:
    from pgsafe.repo.storage.base import Storage
    from pgsafe.repo.storage.memory import MemoryStorage
    from pgsafe.repo.storage.posix import PosixStorage
    from pgsafe.repo.storage.s3 import S3Settings, S3Storage
    from tests.fixtures_s3 import start_s3_server

    segment = b"".join(read_chunks(src, 16 * MiB))
    ident = X25519Identity.generate()
    zstd_age = Pipeline(CodecSpec("zstd", 1, AgeSpec()), AgeKeys(identities=(ident,)))
    server = start_s3_server()
    old_env = dict(os.environ)
    os.environ.update(server.env())
    tmp = Path(tempfile.mkdtemp(prefix="bench-posix-", dir=WORK))
    results = []
    try:
        bucket = server.new_bucket()
        backends: dict[str, Storage] = {
            "posix": PosixStorage(tmp),
            "memory": MemoryStorage(),
            "s3 (moto on 127.0.0.1)": S3Storage(f"s3://{bucket}/bench", S3Settings.from_env()),
        }
        for name, storage in backends.items():
            for mode in ("raw", "zstd-1+age"):
                times = []
                for i in range(rounds):
                    t0 = time.perf_counter()
                    if mode == "raw":
                        storage.put(f"wal/{mode}/{i:08d}", [segment])
                    else:
                        storage.put(f"wal/{mode}/{i:08d}.zst.age", zstd_age.encode([segment]))
                    times.append(time.perf_counter() - t0)
                results.append({
                    "backend": name, "object": f"16 MiB WAL-like, {mode}", "rounds": rounds,
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "min_ms": round(min(times) * 1000, 1),
                    "max_ms": round(max(times) * 1000, 1),
                })  # fmt: skip
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(old_env)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="input size (default 1024)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--put-rounds", type=int, default=10)
    ap.add_argument("--render", type=Path, metavar="JSON", help="only rewrite the .md of a result")
    args = ap.parse_args()
    if args.render:
        doc = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(doc))
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    src = WORK / f"dump-{args.size_mb}mb.sql"
    if not src.exists() or src.stat().st_size < args.size_mb * MiB:
        t0 = time.perf_counter()
        make_input(src, args.size_mb * MiB)
        print(f"generated {src} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    ident = X25519Identity.generate()
    xkeys = AgeKeys(identities=(ident,))
    pkeys = AgeKeys(passphrase=Secret(b"benchmark passphrase"))
    slice_19 = 16 * MiB
    configs: list[tuple[str, Pipeline, int | None]] = [
        ("none", Pipeline(CodecSpec("none")), None),
        ("lz4 (fast)", Pipeline(CodecSpec("lz4", 0)), None),
        ("lz4 -9", Pipeline(CodecSpec("lz4", 9)), None),
        ("gzip -1", Pipeline(CodecSpec("gzip", 1)), None),
        ("gzip -6", Pipeline(CodecSpec("gzip", 6)), None),
        ("zstd -1", Pipeline(CodecSpec("zstd", 1)), None),
        ("zstd -3 (default)", Pipeline(CodecSpec("zstd", 3)), None),
        ("zstd -9", Pipeline(CodecSpec("zstd", 9)), None),
        ("zstd -19 (16 MiB slice)", Pipeline(CodecSpec("zstd", 19)), slice_19),
        ("none + age (X25519)", Pipeline(CodecSpec("none", None, AgeSpec()), xkeys), None),
        ("lz4 + age (X25519)", Pipeline(CodecSpec("lz4", 0, AgeSpec()), xkeys), None),
        ("zstd -3 + age (X25519)", Pipeline(CodecSpec("zstd", 3, AgeSpec()), xkeys), None),
        ("zstd -3 + age (passphrase)",
         Pipeline(CodecSpec("zstd", 3, AgeSpec("passphrase")), pkeys), None),
    ]  # fmt: skip
    codecs = []
    for label, pipe, limit in configs:
        r = bench_codec(label, pipe, src, limit)
        print(json.dumps(r), file=sys.stderr)
        codecs.append(r)
    puts = bench_puts(src, args.put_rounds)
    for r in puts:
        print(json.dumps(r), file=sys.stderr)

    import cryptography
    import lz4
    import zstandard

    today = dt.date.today().isoformat()
    doc = {
        "date": today,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "zstandard": zstandard.__version__,
                    "lz4": lz4.__version__, "cryptography": cryptography.__version__},
        "input": {"kind": "synthetic plain pg_dump text (4 table shapes)",
                  "bytes": src.stat().st_size},
        "codecs": codecs,
        "puts": puts,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{today}-codecs.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = render(doc)
    (args.out / f"{today}-codecs.md").write_text(text)
    print(text)
    return 0


def _num(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def render(doc: dict[str, Any]) -> str:
    """The Markdown report of a results document."""
    m = doc["machine"]
    lines = [
        f"# Codec and storage benchmark, {doc['date']}",
        "",
        f"Machine: {m['cpus']} CPUs, Python {m['python']}, zstandard {m['zstandard']}, "
        f"lz4 {m['lz4']}, cryptography {m['cryptography']}.",
        f"Input: {doc['input']['bytes'] / MiB:.0f} MiB of synthetic plain-format pg_dump text "
        "(COPY blocks of pgbench-like accounts, orders, customers, JSON events); "
        "generated by `benchmarks/codecs.py`. Encoding reads it from the page cache in 1 MiB "
        "pieces and keeps the result in memory; decoding reads that; MB/s are 10^6 bytes per "
        "second of plain data.",
        "",
        "The machine (2 cores) was shared with other work while this ran (the 1-minute load "
        "average after each codec is shown), so wall-clock figures are pessimistic. 'MB per "
        "CPU-s' (plain bytes per second of this process's CPU time, all threads) is the "
        "figure least disturbed by that; on an idle machine zstd's worker threads make its "
        "wall-clock MB/s higher than its MB per CPU-s.",
        "",
        "| codec | suffix | ratio | encode MB/s | decode MB/s | encode MB per CPU-s "
        "| stored MiB | load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["codecs"]:
        dec = "(no work)" if r["suffix"] == "" else _num(r["decode_mb_s"])
        lines.append(f"| {r['codec']} | `{r['suffix'] or '-'}` | {r['ratio']:.2f} | "
                     f"{_num(r['encode_mb_s'])} | {dec} | {_num(r['encode_mb_per_cpu_s'])} | "
                     f"{r['stored_bytes'] / MiB:.0f} | {r['load_avg_1m']} |")  # fmt: skip
    lines += [
        "",
        "Put of one 16 MiB WAL-like object (the first 16 MiB of the input), per backend; "
        "`zstd-1+age` includes encoding:",
        "",
        "| backend | object | median ms | min ms | max ms |",
        "|---|---|---:|---:|---:|",
    ]
    for r in doc["puts"]:
        lines.append(f"| {r['backend']} | {r['object']} | {r['median_ms']} | {r['min_ms']} | "
                     f"{r['max_ms']} |")  # fmt: skip
    lines += ["", "The S3 figures are against moto's in-memory server on the loopback: they "
              "show pgsafe's and moto's own costs (signing, checksums, multipart, conditional "
              "writes), not a network's. The memory backend's raw put only keeps a "
              "reference."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
