"""WAL replay through pgsafe's restore_command against ``cp`` of decompressed segments.

    .venv/bin/python -m benchmarks.replay --scale 20 --rounds 4 --out benchmarks/results/X
    .venv/bin/python -m benchmarks.replay --kind age|s3 ... (an encrypted or S3 repository)
    .venv/bin/python -m benchmarks.replay --pgbackrest ... (also archive-get, one call)

A cluster archives through ``pgsafe wal-push``; after a base backup, ``pgbench -i``
writes at least 30 segments.  The backup is restored once (``pgsafe recover --latest``,
not started) as a template; each run copies it and starts it with one restore_command:

* ``pgsafe``: what ``recover`` writes (the spool tried in the shell, then
  ``wal-get --spool DIR``: prefetching);
* ``pgsafe-python``: the same without the shell path (a Python process per segment);
* ``pgsafe-no-prefetch``: no spool at all (one fetch per call, as before);
* ``cp``: ``cp PLAIN/%f %p`` from a folder of the same segments already decompressed.

The repository (``--kind``): ``local-zstd`` (a local folder, the default codec),
``age`` (local, zstd then age X25519 encryption), ``s3`` (moto's S3 server on
127.0.0.1, zstd then age).

Contenders alternate (rotated each round); the time is from ``pg_ctl start`` until
recovery ended (``recovery.signal`` removed), polled every 10 ms.  Also: one
``wal-get`` call's wall time (no spool), medians of fresh processes, and with
``--pgbackrest`` pgBackRest's ``archive-get`` of the same segment from a stanza of
the same cluster (:mod:`benchmarks.walget_one`).  Figures are
printed and written to ``--out`` (.json and .md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from pgsafe.wal import names as walnames
from pgsafe.wal import prefetcher
from pgsafe.wal import spool as walspool

KINDS = ("local-zstd", "age", "s3")


def _pgsafe(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pgsafe", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"pgsafe {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def _psql(c: LocalCluster, sql: str) -> None:
    subprocess.run([c.program("psql"), "-X", "-q", "-d", c.conninfo(), "-c", sql], check=True,
                   capture_output=True)  # fmt: skip


def _restore_line(pgdata: Path) -> str:
    text = (pgdata / "postgresql.auto.conf").read_text()
    return [ln for ln in text.splitlines() if ln.startswith("restore_command")][-1]


def _set_restore(pgdata: Path, command: str) -> None:
    conf = pgdata / "postgresql.auto.conf"
    lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("restore_command")]
    quoted = command.replace("'", "''")
    conf.write_text("\n".join([*lines, f"restore_command = '{quoted}'", ""]))


def _replay(
    template: Path, run: Path, command: str, spool: Path | None, fetch: list[object]
) -> float:
    user = runas.server_user()
    subprocess.run(["cp", "-a", str(template), str(run)], check=True)
    _set_restore(run, command)
    if spool is not None:
        shutil.rmtree(spool, ignore_errors=True)
        spool.mkdir(mode=0o700)
        (spool / walspool.KEEP).touch()
        runas.chown_tree(spool, user)
    c = LocalCluster(run)
    t0 = time.monotonic()
    c.start(wait=False)
    while (run / "recovery.signal").exists():
        time.sleep(0.01)
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"recovery did not end: {c.log_file}")
    wall = time.monotonic() - t0
    c.destroy()
    if spool is not None:
        prefetcher.stop(str(spool))
        st = walspool.read_stats(str(spool))
        if st is not None:
            fetch.append({"fetched": st.fetched, "from_spool": st.from_spool,
                          "wait_s": round(st.wait_s, 3)})  # fmt: skip
        shutil.rmtree(spool, ignore_errors=True)
    return wall


def _one_call(command: list[str], dest: Path, runs: int) -> float:
    user = runas.server_user()
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*command, str(dest)], check=True, **runas.popen_kwargs(user))
        walls.append(time.perf_counter() - t0)
        dest.unlink()
    return statistics.median(walls)


def _spool_hit(head: str, seg: Path, folder: Path, runs: int, shell: str | None = None) -> float:
    """One wal-get call answered from the spool (a rename), as the server's user, with
    another process holding the spool's lock as a live prefetcher does (and its pid in
    ``ready``); with ``shell``, that restore_command's shell path (%f, %p in it) instead."""
    user = runas.server_user()
    sp = folder / "spool"
    sp.mkdir(mode=0o700)
    (sp / walspool.LOCK).touch()
    runas.chown_tree(sp, user)
    code = (
        "import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR);"
        "fcntl.lockf(fd,fcntl.LOCK_EX);print('ok',flush=True);time.sleep(600)"
    )
    python = "/usr/bin/python3" if user is not None else sys.executable  # the user's
    holder = subprocess.Popen([python, "-c", code, str(sp / walspool.LOCK)],
                              stdout=subprocess.PIPE, text=True,
                              **runas.popen_kwargs(user))  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
    (sp / walspool.READY).write_text(f"{holder.pid}\n")
    runas.chown(sp / walspool.READY, user)
    digest = hashlib.sha256(seg.read_bytes()).hexdigest()
    walls = []
    try:
        for _ in range(runs):
            shutil.copyfile(seg, sp / seg.name)
            runas.chown(sp / seg.name, user)
            line = walspool.sum_line(digest, os.stat(sp / seg.name))
            (sp / (seg.name + walspool.SUM)).write_bytes(line)
            argv = ["/bin/sh", "-c", f'{head} wal-get --spool {sp} {seg.name} "$0"', "x"]
            if shell is not None:
                cmd = shell.replace("%f", seg.name).replace("%p", '"$0"').replace("%%", "%")
                argv = ["/bin/sh", "-c", cmd, "x"]
            t0 = time.perf_counter()
            run_as = runas.popen_kwargs(user)
            run_as["cwd"] = str(folder)
            subprocess.run(argv, check=True, **run_as)
            walls.append(time.perf_counter() - t0)
            (folder / "x").unlink()
            (sp / (seg.name + walspool.SUM)).unlink(missing_ok=True)
            (sp / walspool.JOURNAL).unlink(missing_ok=True)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--base", default="/tmp")
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", choices=KINDS, default="local-zstd")
    ap.add_argument("--pgbackrest", action="store_true", help="also pgBackRest's archive-get")
    a = ap.parse_args()
    home = Path(os.environ.setdefault("PGSAFE_HOME", f"{a.base}/pgsafe-replay-home"))
    home.mkdir(exist_ok=True)
    os.chmod(home, 0o755)
    base = Path(a.base) / f"pgsafe-replay-{os.getpid()}"
    base.mkdir()
    os.chmod(base, 0o755)
    s3 = None
    try:
        if a.kind == "s3":
            from tests.fixtures_s3 import start_s3_server

            s3 = start_s3_server()
            os.environ.update(s3.env())
        doc = _bench(a, base, s3)
    finally:
        if s3 is not None:
            s3.stop()
        for pid in base.glob("*/postmaster.pid"):
            LocalCluster(pid.parent).destroy()
        shutil.rmtree(base, ignore_errors=True)
    Path(a.out + ".json").write_text(json.dumps(doc, indent=2) + "\n")
    md = [
        "# WAL replay: pgsafe's restore_command against cp (medians)",
        "",
        f"{doc['segments']} segments (pgbench -i -s {a.scale} after a base backup), "
        f"{a.rounds} rounds, contenders rotated; {os.cpu_count()} cores; "
        f"repository: {a.kind}; load average before: {doc['load_before']}.",
        "",
        "| restore_command | replay (s) | ratio to cp |",
        "|---|---|---|",
    ]
    cp = doc["median_s"]["cp"]
    for name, v in doc["median_s"].items():
        md.append(f"| {name} | {v:.2f} | {v / cp:.2f} |")
    md += ["", "One call (a fresh process, as the server's OS user), median wall time:", ""]
    for name, v in doc["one_call_s"].items():
        md.append(f"- {name}: {v * 1000:.0f} ms")
    md += ["", "Runs (s): " + json.dumps(doc["runs_s"])]
    md += ["", "The spool's journal per run: " + json.dumps(doc["pgsafe_wal_fetch"])]
    Path(a.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def _source(a: argparse.Namespace, base: Path, s3: Any) -> tuple[list[str], str, LocalCluster]:
    """The repository's settings on pgsafe's command line, and its URL; a new cluster
    archiving into it (at ``base/src``, running) with one base backup."""
    if a.kind == "local-zstd":
        where, url = ["--repo", str(base / "repo")], str(base / "repo")
    else:
        keys = base / "keys"
        keys.mkdir(mode=0o755)
        key = keys / "identity.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
        public = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True,
                                text=True).stdout.strip()  # fmt: skip
        os.chmod(key, 0o600)
        runas.chown(key, runas.server_user())
        os.environ["PGSAFE_AGE_IDENTITY_FILE"] = str(key)
        cfg = base / "repo.toml"
        cfg.write_text(f'encryption = "age"\nage_recipients = ["{public}"]\n')
        url = str(base / "repo") if s3 is None else f"s3://{s3.new_bucket()}/pgsafe"
        where = ["--config", str(cfg), "--repo", url]
    src = LocalCluster(base / "src", settings={"max_wal_size": "'4GB'"})
    src.initdb()
    src.start()
    _pgsafe(*where, "archive", "enable", "-d", src.conninfo(), "--restart")
    _pgsafe(*where, "backup", "-d", src.conninfo())
    return where, url, src


def _archived(where: list[str], plain: Path) -> list[str]:
    """Every segment of timeline 1 from the first one ``info`` lists, fetched by
    ``wal-get`` into ``plain`` (decompressed) until the archive ends."""
    doc = json.loads(_pgsafe(*where, "info", "--json"))
    first = str(doc["timelines"][0]["wal"]["first"])
    tli, seg = int(first[:8], 16), int(first[8:16], 16) * 256 + int(first[16:], 16)
    segs: list[str] = []
    while True:
        name = walnames.segment_name(tli, seg, 16 << 20)
        proc = subprocess.run([sys.executable, "-m", "pgsafe", *where, "wal-get", name,
                               str(plain / name)], capture_output=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            return segs
        segs.append(name)
        seg += 1


def _bench(a: argparse.Namespace, base: Path, s3: Any) -> dict[str, Any]:
    where, url, src = _source(a, base, s3)
    subprocess.run([src.program("pgbench"), "-i", "-I", "dtGvp", "-s", str(a.scale), "-d",
                    src.conninfo()], check=True, capture_output=True)  # fmt: skip
    switch_and_wait(src.conninfo(), Repository.open(url, "main"))
    plain = base / "plain"
    plain.mkdir()
    segs = _archived(where, plain)
    runas.chown_tree(plain, runas.server_user())
    os.chmod(plain, 0o755)
    extra: dict[str, float] = {}
    if a.pgbackrest:
        from benchmarks.walget_one import archive_get_wall

        extra = archive_get_wall(base / "pgbackrest", src, plain / segs[len(segs) // 2], 15)
    src.stop()
    template = base / "template"
    _pgsafe(*where, "recover", "--pgdata", str(template), "--latest")
    for old in base.glob("template.spool-*"):
        shutil.rmtree(old)
    with_spool = _restore_line(template).split("=", 1)[1].strip()[1:-1].replace("''", "'")
    spool = base / "run.spool"
    found = re.search(r"--spool (\S+) ", with_spool)
    assert found is not None, with_spool
    pgsafe_cmd = with_spool.replace(found.group(1), str(spool))  # the shell path's too
    shell_part, _, python_cmd = pgsafe_cmd.rpartition(" 2>/dev/null; ")  # shell, then Python
    plain_cmd = re.sub(r"--spool \S+ ", "", python_cmd)
    contenders = {
        "pgsafe": (pgsafe_cmd, spool),
        "pgsafe-python": (python_cmd, spool),
        "pgsafe-no-prefetch": (plain_cmd, None),
        "cp": (f"cp {plain}/%f %p", None),
    }
    load = round(os.getloadavg()[0], 2)
    runs: dict[str, list[float]] = {n: [] for n in contenders}
    fetch: dict[str, list[object]] = {n: [] for n, (_, sp) in contenders.items() if sp}
    order = list(contenders)
    for i in range(a.rounds):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            command, sp = contenders[name]
            wall = _replay(template, base / "run", command, sp, fetch.get(name, []))
            runs[name].append(round(wall, 3))
            print(f"round {i + 1} {name}: {wall:.2f} s", flush=True)
    one = base / "one"
    one.mkdir()
    runas.chown(one, runas.server_user())
    head = plain_cmd.split(" wal-get ")[0]
    mid = segs[len(segs) // 2]
    argv = ["/bin/sh", "-c", f'{head} wal-get {mid} "$0"']
    cp_argv = ["/bin/sh", "-c", f'cp {plain}/{mid} "$0"']
    one_call = {"pgsafe wal-get (no spool)": _one_call(argv, one / "x", 15),
                "cp": _one_call(cp_argv, one / "x", 15), **extra}  # fmt: skip
    try:
        one_call["pgsafe wal-get from the spool"] = _spool_hit(head, plain / segs[1], one, 15)
        other = base / "one-shell"
        other.mkdir()
        runas.chown(other, runas.server_user())
        shell = shell_part + " 2>/dev/null; exit 1"
        shell = shell.replace(str(spool), str(other / "spool"))
        one_call["pgsafe shell path from the spool"] = _spool_hit(
            head, plain / segs[1], other, 15, shell=shell
        )
    except (OSError, subprocess.SubprocessError, AssertionError) as exc:
        print(f"spool hit not measured: {exc}", flush=True)
    return {
        "kind": a.kind,
        "segments": len(segs),
        "load_before": load,
        "runs_s": runs,
        "median_s": {n: round(statistics.median(v), 3) for n, v in runs.items()},
        "one_call_s": {n: round(v, 4) for n, v in one_call.items()},
        "restore_commands": {n: c for n, (c, _) in contenders.items()},
        "pgsafe_wal_fetch": fetch,
    }


if __name__ == "__main__":
    main()
