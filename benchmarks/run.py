"""pgsafe side by side with pg_basebackup, pgBackRest and the physical floor.

    .venv/bin/python benchmarks/run.py [--scale 100] [--runs 3] [--scales 10,50,100,200]
        [--only backup,restore,walpush,archiving,logical,scaling] [--quick] [--out DIR]

(``make bench BENCH_ARGS="..."`` runs the same.)  One throwaway cluster (PostgreSQL
defaults, fsync on) holds a pgbench database of ``--scale``; every contender of a part
runs in turn, A B C A B C ..., ``--runs`` times, and each run is measured with
``/usr/bin/time``: wall clock, CPU (user + sys of the whole child tree), peak RSS (the
largest single process of that tree, GNU time's ``%M``) and the size of what it wrote.
The parts:

* backup — full physical backup: pgsafe backup, pg_basebackup -Ft (client-zstd:1 and
  -z), pgBackRest full (lz4 and gz, process-max 2), ``tar cf - PGDATA | cat`` (the floor;
  piped because GNU tar does not read the files when it writes to /dev/null itself);
* restore — into a new data directory, up to a consistent, readable server: pgsafe
  recover --immediate --start, pgBackRest restore --type=immediate + pg_ctl start -w,
  raw extraction of an uncompressed pg_basebackup tar (no recovery: the floor);
* walpush — one 16 MiB segment, run as the server's OS user: pgsafe wal-push,
  pgBackRest archive-push (lz4), cp, ``python3 -c pass``;
* archiving — ``pgbench -c 4 -j 2 -T 60`` with archive_command = pgsafe wal-push,
  pgBackRest archive-push, /bin/true: TPS, WAL generated, ``.ready`` backlog at the end;
* logical — pgsafe dump vs ``pg_dump -Fc``; pgsafe restore -j 2 vs ``pg_restore -j 2``;
  pgsafe verify vs a bare restore (initdb + start + pg_restore + stop);
* scaling — pgsafe backup and recover at each of ``--scales``.

pgBackRest is installed with apt-get when missing and we are root (not with
``--quick``); when it is not there its contenders are skipped with a note.  Results go
to ``<out>/<date>-<name>.json`` (machine, every run, medians, ratios, targets) and a
Markdown table beside it.  Everything runs on the loopback and unix sockets, in a folder
under /tmp that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from archiving_load import backlog, q  # noqa: E402

from pgsafe import __version__ as PGSAFE_VERSION  # noqa: E402
from pgsafe.cluster import runas  # noqa: E402
from pgsafe.cluster.local import LocalCluster  # noqa: E402
from pgsafe.cluster.ports import free_port  # noqa: E402
from pgsafe.cluster.runas import repository_owner  # noqa: E402
from pgsafe.cluster.throwaway import FAST_SETTINGS  # noqa: E402
from pgsafe.endpoint import runtime  # noqa: E402
from pgsafe.physical.archiving import archive_command_for  # noqa: E402
from pgsafe.repo.repository import Repository  # noqa: E402

TIME = "/usr/bin/time"
MARK = "@@bench"
MB = 1 << 20
GB_PER_SCALE = 15.6 * MB  # pgbench: about 15.6 MB of data directory per scale unit
PARTS = ("backup", "restore", "walpush", "archiving", "logical", "scaling")
DATA_SETS = ("pgbench", "random")
# --data random: beside pgbench's (very compressible) tables, a table of incompressible
# bytes and hex text, about 7.7 MB of data directory per scale unit (half pgbench's):
# 128 random bytes (four sha256 digests) and a 32-character md5 text per row.
RANDOM_ROWS_PER_SCALE = 40_000
RANDOM_TABLE = (
    "CREATE TABLE bench_random AS SELECT g AS id,"
    " sha256(random()::text::bytea) || sha256(random()::text::bytea)"
    " || sha256(random()::text::bytea) || sha256(random()::text::bytea) AS payload,"
    " md5(random()::text) AS note FROM generate_series(1, {rows}) AS g;"
    " ALTER TABLE bench_random ADD PRIMARY KEY (id)"
)
STANZA = "bench"
DB = "bench"  # not "postgres": pgsafe verify recreates the dumped database by name
Fn = Callable[[int], dict[str, Any]]


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- measuring ----------------------------------------------------------------------------


def measure(
    argv: list[str],
    *,
    user: runas.OsUser | None = None,
    cwd: Path | None = None,
    ok: tuple[int, ...] = (0,),
) -> dict[str, Any]:
    """Run ``argv`` under GNU time; wall, user+sys CPU and peak RSS of its process tree."""
    kwargs = runas.popen_kwargs(user)
    if user is None and cwd is not None:
        kwargs["cwd"] = str(cwd)
    full = [TIME, "-f", f"{MARK} %e %U %S %M", *argv]
    t0 = time.perf_counter()
    proc = subprocess.run(
        full, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs
    )
    wall = time.perf_counter() - t0
    marks = [ln for ln in proc.stderr.splitlines() if ln.startswith(MARK)]
    if proc.returncode not in ok or not marks:
        tail = "\n".join(ln for ln in proc.stderr.splitlines()[-8:] if not ln.startswith(MARK))
        raise BenchError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n{tail}")
    _, _e, u, s, m = marks[-1].split()
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(float(u) + float(s), 2),
        "user_s": float(u),
        "sys_s": float(s),
        "max_rss_mb": round(int(m) / 1024, 1),
        "stdout": proc.stdout,
    }


def server_cpu_s(datadir: Path) -> float:
    """CPU seconds of a cluster's finished processes (walsenders, backends): the
    postmaster's cutime + cstime, which grow as it reaps them."""
    pid = (datadir / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def with_server_cpu(datadir: Path, fn: Fn) -> Fn:
    """``fn`` that also records the server-side CPU its run caused (``server_cpu_s``)."""

    def run(i: int) -> dict[str, Any]:
        before = server_cpu_s(datadir)
        r = fn(i)
        r["server_cpu_s"] = round(server_cpu_s(datadir) - before, 2)
        return r

    return run


def shell(script: str) -> list[str]:
    return ["bash", "-c", f"set -eo pipefail; {script}"]


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def data_bytes(datadir: Path) -> int:
    """A data directory's size without pg_wal (whose size is max_wal_size's business,
    not the data's: a base backup takes only the WAL of its own start and stop)."""
    return tree_bytes(datadir) - tree_bytes(datadir / "pg_wal")


def fresh_dir(path: Path, user: runas.OsUser | None, mode: int = 0o755) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=mode)
    os.chmod(path, mode)
    runas.chown(path, user)
    return path


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


# -- the environment ----------------------------------------------------------------------


def _first(path: str, pattern: str) -> str:
    with contextlib.suppress(OSError):
        m = re.search(pattern, Path(path).read_text(), re.M)
        if m:
            return m.group(1).strip()
    return "?"


def tool_version(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def machine_info(base: Path, pg_bin: str) -> dict[str, Any]:
    disk = subprocess.run(
        ["df", "-h", "--output=source,fstype,size,avail", str(base)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rota = "?"
    dev = disk.splitlines()[-1].split()[0] if disk.strip() else ""
    name = Path(dev).name
    with contextlib.suppress(OSError):
        rota = Path(f"/sys/block/{name}/queue/rotational").read_text().strip()
    git = tool_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
    return {
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(_first("/proc/meminfo", r"^MemTotal:\s*(\d+)")) / 2**20, 1),
        "disk": " ".join(disk.splitlines()[-1].split()) if disk.strip() else "?",
        "disk_rotational": {"0": False, "1": True}.get(rota),
        "kernel": platform.release(),
        "os": _first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)'),
        "python": platform.python_version(),
        "postgresql": tool_version([os.path.join(pg_bin, "postgres"), "--version"]),
        "pgbackrest": tool_version(["pgbackrest", "version"]),
        "pgsafe": PGSAFE_VERSION,
        "git_commit": git,
        # the code measured is the work tree: uncommitted changes under src/ are listed
        "src_uncommitted": [ln[3:] for ln in (dirty or "").splitlines()],
    }


def ensure_pgbackrest(allow_install: bool, notes: list[str]) -> bool:
    if shutil.which("pgbackrest"):
        return True
    if not allow_install:
        notes.append(
            "pgBackRest is not installed (and --quick/--no-install): its contenders skipped"
        )
        return False
    if not runas.is_root():
        notes.append("pgBackRest is not installed and we are not root: its contenders skipped")
        return False
    log("installing pgbackrest with apt-get")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "pgbackrest"]):
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if proc.returncode != 0:
            notes.append(
                f"apt-get could not install pgbackrest ({proc.stderr.strip()[-200:]}):"
                " its contenders skipped"
            )
            return False
    notes.append("pgBackRest was installed by the harness with apt-get")
    return shutil.which("pgbackrest") is not None


@dataclass
class PgBackRest:
    """pgBackRest with its own config, repository, lock and log folders under ``root``."""

    root: Path
    cluster: LocalCluster
    user: runas.OsUser | None

    @property
    def conf(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def setup(self) -> None:
        fresh_dir(self.root, self.user)
        for d in ("repo", "log", "lock", "spool"):
            fresh_dir(self.root / d, self.user, 0o750)
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.repo}\nrepo1-retention-full=99\n"
            f"log-path={self.root / 'log'}\nlock-path={self.root / 'lock'}\n"
            f"spool-path={self.root / 'spool'}\n"
            "log-level-console=warn\nlog-level-file=off\nprocess-max=2\nstart-fast=y\n"
            "compress-type=lz4\n"
            f"[{STANZA}]\npg1-path={self.cluster.datadir}\n"
            f"pg1-socket-path={self.cluster.run_dir}\npg1-port={self.cluster.port}\n"
        )
        runas.chown(self.conf, self.user)

    def argv(self, *args: str) -> list[str]:
        return ["pgbackrest", f"--config={self.conf}", f"--stanza={STANZA}", *args]

    def archive_command(self) -> str:
        return shlex.join(self.argv("archive-push")) + " %p"

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            **runas.popen_kwargs(self.user),
        )
        if proc.returncode != 0:
            raise BenchError(f"pgbackrest {' '.join(args)}: {proc.stderr.strip()[-400:]}")
        return proc.stdout

    def backups(self) -> set[str]:
        d = self.repo / "backup" / STANZA
        return {p.name for p in d.iterdir() if re.fullmatch(r"\d{8}-\d{6}F", p.name)}


# -- the bench ----------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    base: Path
    user: runas.OsUser | None
    notes: list[str] = field(default_factory=list)
    clusters: list[LocalCluster] = field(default_factory=list)
    pgbr: PgBackRest | None = None
    main: LocalCluster | None = None
    doc: dict[str, Any] = field(default_factory=dict)
    t_start: float = field(default_factory=time.monotonic)

    # helpers ----------------------------------------------------------------------------
    def pgsafe(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pgsafe", *args]

    def new_repo(self, path: Path) -> Repository:
        shutil.rmtree(path, ignore_errors=True)
        repo = Repository.open(str(path), "main", create=True, owner=repository_owner())
        runas.chown_tree(path, self.user)
        return repo

    def cluster(self, name: str, extra: dict[str, str] | None = None) -> LocalCluster:
        c = LocalCluster(self.base / name, settings={"max_wal_size": "'1GB'", **(extra or {})})
        self.clusters.append(c)
        c.initdb()
        c.start()
        return c

    def pgbench_init(self, c: LocalCluster, scale: int) -> None:
        log(f"pgbench -i -s {scale} (server-side generation)")
        execute(c, f"CREATE DATABASE {DB}")
        argv = [c.program("pgbench"), *self.conn(c)[:-2], "-i", "-I", "dtGvp", "-s", str(scale)]
        subprocess.run([*argv, DB], check=True, capture_output=True)
        if self.args.data == "random":
            rows = RANDOM_ROWS_PER_SCALE * scale
            log(f"random data: {rows} rows of random bytea and text")
            execute(c, RANDOM_TABLE.format(rows=rows), DB)
            with psycopg_conn(c, DB) as conn:
                counted = conn.execute("SELECT count(*) FROM bench_random").fetchone()[0]
            self.doc.setdefault("random_rows", {})[str(scale)] = counted
        execute(c, "CHECKPOINT")

    def data_factor(self) -> float:
        """Data directory size relative to pgbench alone, for the free-space checks."""
        return 1.5 if self.args.data == "random" else 1.0

    def conn(self, c: LocalCluster, db: str = DB) -> list[str]:
        return ["-h", str(c.run_dir), "-p", str(c.port), "-U", "postgres", "-d", db]

    def stop_leftover(self, pgdata: Path) -> None:
        if (pgdata / "postmaster.pid").exists():
            LocalCluster(pgdata, user=self.user).destroy()
        shutil.rmtree(pgdata, ignore_errors=True)

    # parts ------------------------------------------------------------------------------
    def backup_part(self, c: LocalCluster, runs: int, *, full: bool = True) -> dict[str, Any]:
        out = fresh_dir(self.base / "backup-out", None)
        bb = c.program("pg_basebackup")
        cmds: dict[str, str] = {}

        def pgsafe_backup(i: int) -> dict[str, Any]:
            repo = out / f"pgsafe-{i}"
            self.new_repo(repo)
            r = measure(
                self.pgsafe("--repo", str(repo), "-q", "backup", *self.conn(c)), cwd=self.base
            )
            r["out_bytes"] = tree_bytes(repo)
            shutil.rmtree(repo)
            return r

        def basebackup(flag: str) -> Fn:
            def run(i: int) -> dict[str, Any]:
                dest = out / f"bb-{i}"
                shutil.rmtree(dest, ignore_errors=True)
                r = measure(
                    [bb, *self.conn(c)[:-2], "-D", str(dest), "-F", "t", "-c", "fast", flag],
                    cwd=self.base,
                )
                r["out_bytes"] = tree_bytes(dest)
                shutil.rmtree(dest)
                return r

            return run

        def pgbackrest(kind: str) -> Fn:
            def run(i: int) -> dict[str, Any]:
                assert self.pgbr is not None
                self.pgbr.run("expire", "--repo1-retention-full=1")
                before = self.pgbr.backups()
                r = measure(
                    self.pgbr.argv("--type=full", f"--compress-type={kind}", "backup"),
                    user=self.user,
                )
                new = self.pgbr.backups() - before
                r["out_bytes"] = sum(
                    tree_bytes(self.pgbr.repo / "backup" / STANZA / n) for n in new
                )
                return r

            return run

        def floor(i: int) -> dict[str, Any]:
            return measure(
                shell(f"tar cf - -C {shlex.quote(str(c.datadir))} . | cat > /dev/null"), ok=(0, 1)
            )

        contenders: list[tuple[str, Fn]] = [("pgsafe backup", pgsafe_backup)]
        cmds["pgsafe backup"] = "pgsafe --repo R backup -d CONN (repository codec: zstd-3)"
        if full:
            contenders += [
                ("pg_basebackup -Ft client-zstd:1", basebackup("--compress=client-zstd:1")),
                ("pg_basebackup -Ft -z", basebackup("-z")),
            ]
            cmds["pg_basebackup -Ft client-zstd:1"] = (
                "pg_basebackup -D OUT -Ft -c fast --compress=client-zstd:1"
            )
            cmds["pg_basebackup -Ft -z"] = "pg_basebackup -D OUT -Ft -c fast -z"
            if self.pgbr:
                contenders += [
                    ("pgBackRest full lz4", pgbackrest("lz4")),
                    ("pgBackRest full gz", pgbackrest("gz")),
                ]
                for k in ("lz4", "gz"):
                    cmds[f"pgBackRest full {k}"] = (
                        f"pgbackrest --stanza=bench --type=full --compress-type={k} backup "
                        "(process-max=2, start-fast=y, as postgres)"
                    )
            contenders.append(("tar floor", floor))
            cmds["tar floor"] = "tar cf - -C PGDATA . | cat > /dev/null"
        contenders = [(n, with_server_cpu(c.datadir, fn)) for n, fn in contenders]
        try:
            res = alternate(contenders, runs)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        notes = [
            "CPU s = the contender's own process tree; server CPU s = the server processes "
            "that ended with its run (walsender, backends: pg_basebackup's reading and "
            "pgsafe's server-side zstd happen there; pgBackRest reads the files itself)",
            "sizes: pgsafe = its repository folder (data tar with the backup's WAL, "
            "manifests, catalog); pg_basebackup = base.tar + pg_wal.tar; pgBackRest = "
            "the backup set's folder (the WAL it needs is in its archive, not counted)",
            "all contenders read a data directory that is in the page cache",
        ]
        return part_result(res, cmds, notes)

    def restore_part(self, c: LocalCluster, runs: int, *, full: bool = True) -> dict[str, Any]:
        work = fresh_dir(self.base / "restore", None)
        repo = work / "pgsafe-repo"
        self.new_repo(repo)
        log("restore: one pgsafe backup to restore from")
        subprocess.run(
            self.pgsafe("--repo", str(repo), "-q", "backup", *self.conn(c)),
            check=True,
            capture_output=True,
            cwd=self.base,
        )
        cmds = {"pgsafe recover": "pgsafe --repo R recover --pgdata NEW --immediate --start"}
        tar_src = work / "tar"
        contenders: list[tuple[str, Fn]] = []

        def target(i: int, who: str) -> Path:
            d = work / f"{who}-{i}"
            self.stop_leftover(d)
            return d

        def pgsafe_recover(i: int) -> dict[str, Any]:
            d = target(i, "pgsafe")
            try:
                r = measure(
                    self.pgsafe(
                        "--repo",
                        str(repo),
                        "-q",
                        "recover",
                        "--pgdata",
                        str(d),
                        "--immediate",
                        "--start",
                        "--port",
                        str(free_port()),
                    ),
                    cwd=self.base,
                )
                r["out_bytes"] = tree_bytes(d)
            finally:
                self.stop_leftover(d)
            return r

        def pgbackrest_restore(i: int) -> dict[str, Any]:
            assert self.pgbr is not None
            d = target(i, "pgbr")
            fresh_dir(d, self.user, 0o700)
            sock = fresh_dir(work / "pgbr-sock", self.user)
            try:
                start = shlex.join(
                    [
                        c.program("pg_ctl"),
                        "-D",
                        str(d),
                        "-w",
                        "-t",
                        "3600",
                        "-l",
                        str(sock / f"pgbr-{i}.log"),
                        "-o",
                        f"-p {free_port()} -k {sock} -c listen_addresses=''",
                        "start",
                    ]
                )
                restore = shlex.join(
                    self.pgbr.argv(
                        f"--pg1-path={d}", "--type=immediate", "--target-action=pause", "restore"
                    )
                )
                r = measure(shell(f"{restore} && {start}"), user=self.user)
                r["out_bytes"] = tree_bytes(d)
            finally:
                self.stop_leftover(d)
            return r

        def tar_extract(i: int) -> dict[str, Any]:
            d = target(i, "tar")
            fresh_dir(d, self.user, 0o700)
            try:
                r = measure(["tar", "xf", str(tar_src / "base.tar"), "-C", str(d)], user=self.user)
                r["out_bytes"] = tree_bytes(d)
            finally:
                self.stop_leftover(d)
            return r

        contenders.append(("pgsafe recover", pgsafe_recover))
        if full and self.pgbr:
            self.pgbr.run("expire", "--repo1-retention-full=1")
            if not self.pgbr.backups():
                self.pgbr.run("--type=full", "--compress-type=lz4", "backup")
            contenders.append(("pgBackRest restore", pgbackrest_restore))
            cmds["pgBackRest restore"] = (
                "pgbackrest --stanza=bench --pg1-path=NEW --type=immediate --target-action=pause"
                " restore && pg_ctl -D NEW -w start (process-max=2, lz4 backup, as postgres)"
            )
        if full:
            log("restore: an uncompressed pg_basebackup tar for the extraction floor")
            fresh_dir(tar_src, self.user)
            subprocess.run(
                [
                    c.program("pg_basebackup"),
                    *self.conn(c)[:-2],
                    "-D",
                    str(tar_src),
                    "-F",
                    "t",
                    "-X",
                    "fetch",
                    "-c",
                    "fast",
                ],
                check=True,
                capture_output=True,
            )
            os.chmod(tar_src / "base.tar", 0o644)
            contenders.append(("tar extraction", tar_extract))
            cmds["tar extraction"] = (
                "tar xf base.tar -C NEW (uncompressed, WAL inside; no recovery)"
            )
        try:
            res = alternate(contenders, runs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        notes = [
            "pgsafe and pgBackRest: timed until the restored server accepts connections "
            "(hot standby, consistent, paused at the end of the backup); the tar floor is "
            "extraction only",
            "out_bytes: size of the restored data directory",
        ]
        return part_result(res, cmds, notes)

    def walpush_part(self, c: LocalCluster, pushes: int) -> dict[str, Any]:
        work = fresh_dir(self.base / "walpush", self.user)
        q(c, "SELECT pg_switch_wal()")
        q(c, "SELECT pg_switch_wal()")
        segs = sorted(p for p in (c.datadir / "pg_wal").iterdir() if len(p.name) == 24)
        seg = segs[-2]
        repo = work / "pgsafe-repo"
        self.new_repo(repo)
        rt = runtime.wal_runtime(self.base / "home", self.user)
        cp_dest = fresh_dir(work / "cp", self.user)
        names = iter(f"00000001000000FF{i:08X}" for i in range(100000))
        python3 = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

        def copy() -> Path:
            name = next(names)
            dest = work / name
            shutil.copyfile(seg, dest)
            os.chmod(dest, 0o644)
            return dest

        def pgsafe_push(i: int) -> dict[str, Any]:
            s = copy()
            r = measure([*rt.argv, "--repo", str(repo), "wal-push", str(s)], user=self.user)
            s.unlink()
            return r

        def pgbr_push(i: int) -> dict[str, Any]:
            assert self.pgbr is not None
            s = copy()
            r = measure(self.pgbr.argv("archive-push", str(s)), user=self.user)
            s.unlink()
            return r

        def cp(i: int) -> dict[str, Any]:
            s = copy()
            r = measure(["cp", str(s), str(cp_dest / s.name)], user=self.user)
            s.unlink()
            return r

        def start_floor(i: int) -> dict[str, Any]:
            return measure([python3, "-c", "pass"], user=self.user)

        contenders: list[tuple[str, Fn]] = [("pgsafe wal-push", pgsafe_push)]
        cmds = {
            "pgsafe wal-push": f"{shlex.join(rt.argv)} --repo R wal-push SEG ({rt.kind} runtime)"
        }
        if self.pgbr:
            contenders.append(("pgBackRest archive-push", pgbr_push))
            cmds["pgBackRest archive-push"] = "pgbackrest --stanza=bench archive-push SEG (lz4)"
        contenders += [("cp", cp), ("python3 -c pass", start_floor)]
        cmds["cp"] = "cp SEG DIR/"
        cmds["python3 -c pass"] = f"{python3} -c pass"
        try:
            res = alternate(contenders, pushes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        notes = [
            f"{pushes} pushes per contender, each of a copy of one real 16 MiB segment "
            "under a new name, run as the server's OS user"
        ]
        return part_result(res, cmds, notes)

    def archiving_part(self, c: LocalCluster, runs: int, seconds: int) -> dict[str, Any]:
        work = fresh_dir(self.base / "archiving", self.user)
        home = self.base / "home"
        restore_cmd = self.pgbr.archive_command() if self.pgbr else "/bin/true"

        def set_command(cmd: str) -> None:
            with contextlib.suppress(Exception):
                q(c, "SELECT pg_switch_wal()")
            wait_drained(c, 900)
            with psycopg_conn(c) as conn:
                conn.execute(
                    f"ALTER SYSTEM SET archive_command = '{cmd.replace(chr(39), chr(39) * 2)}'"
                )
                conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)

        def load(cmd: str) -> dict[str, Any]:
            set_command(cmd)
            execute(c, "CHECKPOINT")
            q(c, "SELECT pg_stat_reset_shared('archiver')")
            lsn0 = q(c, "SELECT pg_current_wal_lsn()::text")
            proc = subprocess.run(
                [
                    c.program("pgbench"),
                    *self.conn(c)[:-2],
                    "-c",
                    "4",
                    "-j",
                    "2",
                    "-T",
                    str(seconds),
                    "-n",
                    DB,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            run: dict[str, Any] = {
                "tps": float(re.findall(r"tps = ([\d.]+)", proc.stdout)[-1]),
                "wal_mb": round(
                    int(q(c, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')::bigint"))
                    / MB,
                    1,
                ),
                "ready_at_end": backlog(c),
            }
            t0 = time.monotonic()
            q(c, "SELECT pg_switch_wal()")
            wait_drained(c, 900)
            run["drain_s"] = round(time.monotonic() - t0, 2)
            row = q(c, "SELECT archived_count || ',' || failed_count FROM pg_stat_archiver")
            run["archived"], run["failed"] = (int(x) for x in str(row).split(","))
            return run

        def pgsafe_run(i: int) -> dict[str, Any]:
            repo = self.new_repo(work / f"pgsafe-{i}")
            try:
                return load(archive_command_for(home, repo, self.user))
            finally:
                set_command("/bin/true")
                shutil.rmtree(work / f"pgsafe-{i}", ignore_errors=True)

        contenders: list[tuple[str, Fn]] = [("pgsafe wal-push", pgsafe_run)]
        cmds = {"pgsafe wal-push": "archive_command = pgsafe --repo R wal-push %p"}
        if self.pgbr:
            pgbr = self.pgbr
            contenders.append(("pgBackRest archive-push", lambda i: load(pgbr.archive_command())))
            cmds["pgBackRest archive-push"] = (
                "archive_command = pgbackrest --stanza=bench archive-push %p (lz4)"
            )
        contenders.append(("/bin/true", lambda i: load("/bin/true")))
        cmds["/bin/true"] = "archive_command = /bin/true"
        try:
            res = alternate(contenders, runs, rotate=True)
        finally:
            set_command(restore_cmd)
            shutil.rmtree(work, ignore_errors=True)
        notes = [
            f"pgbench -c 4 -j 2 -T {seconds} -n on the scale-{self.args.scale} database, "
            "a CHECKPOINT before each run, the order rotated each round (A B C, B C A, "
            "C A B); ready_at_end = .ready files when pgbench ends, "
            "drain_s = time until none is left after a final pg_switch_wal"
        ]
        return part_result(res, cmds, notes)

    def logical_part(self, c: LocalCluster, runs: int) -> dict[str, Any]:
        work = fresh_dir(self.base / "logical", self.user)
        cmds: dict[str, str] = {}
        last: dict[str, Any] = {}

        def pgsafe_dump(i: int) -> dict[str, Any]:
            repo = work / f"pgsafe-{i}"
            self.new_repo(repo)
            r = measure(
                self.pgsafe("--repo", str(repo), "--json", "dump", *self.conn(c)), cwd=self.base
            )
            r["out_bytes"] = tree_bytes(repo)
            old = last.get("repo")
            if old:
                shutil.rmtree(old, ignore_errors=True)
            last["repo"], last["id"] = repo, json.loads(r["stdout"])["id"]
            return r

        def pg_dump(i: int) -> dict[str, Any]:
            f = work / "pg_dump.dump"
            r = measure([c.program("pg_dump"), *self.conn(c), "-Fc", "-f", str(f)], cwd=self.base)
            os.chmod(f, 0o644)
            r["out_bytes"] = f.stat().st_size
            return r

        def drop(db: str) -> None:
            execute(c, f'DROP DATABASE IF EXISTS "{db}"')

        def pgsafe_restore(i: int) -> dict[str, Any]:
            db = f"bench_pgsafe_{i}"
            drop(db)
            try:
                return measure(
                    self.pgsafe(
                        "--repo",
                        str(last["repo"]),
                        "-q",
                        "restore",
                        last["id"],
                        "--create",
                        "-j",
                        "2",
                        *self.conn(c, db),
                    ),
                    cwd=self.base,
                )
            finally:
                drop(db)

        def pg_restore(i: int) -> dict[str, Any]:
            db = f"bench_pgr_{i}"
            drop(db)
            conn = shlex.join(self.conn(c)[:-2])
            try:
                return measure(
                    shell(
                        f"{c.program('createdb')} {conn} {db} && {c.program('pg_restore')} {conn} "
                        f"-d {db} -j 2 {work / 'pg_dump.dump'}"
                    ),
                    cwd=self.base,
                )
            finally:
                drop(db)

        def pgsafe_verify(i: int) -> dict[str, Any]:
            return measure(
                self.pgsafe("--repo", str(last["repo"]), "-q", "verify", last["id"]), cwd=self.base
            )

        def bare(i: int) -> dict[str, Any]:
            d = work / f"bare-{i}"
            self.stop_leftover(d)
            conf = " ".join(f"-c {k}={v.strip(chr(39))}" for k, v in FAST_SETTINGS.items())
            port = free_port()
            prog = c.program
            script = (
                f"{prog('initdb')} -D {d} -U postgres --auth-local=trust -E UTF8 "
                f"--locale=C.UTF-8 --data-checksums --no-instructions >/dev/null && "
                f'{prog("pg_ctl")} -D {d} -l {d}.log -w -o "-p {port} -k {work} '
                f"-c listen_addresses='' {conf}\" start >/dev/null && "
                f"{prog('pg_restore')} -h {work} -p {port} -U postgres -d postgres "
                f"{work / 'pg_dump.dump'} && {prog('pg_ctl')} -D {d} -m fast -w stop >/dev/null"
            )
            try:
                return measure(shell(script), user=self.user)
            finally:
                self.stop_leftover(d)

        out: dict[str, Any] = {}
        try:
            log("logical: dump")
            res = alternate([("pgsafe dump", pgsafe_dump), ("pg_dump -Fc", pg_dump)], runs)
            cmds["pgsafe dump"] = (
                "pgsafe --repo R dump -d CONN (custom format, zstd-3, fingerprints)"
            )
            cmds["pg_dump -Fc"] = "pg_dump -Fc -f OUT -d CONN (gzip level 6 inside)"
            out["dump"] = part_result(
                res, cmds, ["out_bytes: pgsafe = its repository folder; pg_dump = the .dump file"]
            )
            log("logical: restore -j 2")
            res = alternate(
                [("pgsafe restore -j 2", pgsafe_restore), ("pg_restore -j 2", pg_restore)], runs
            )
            out["restore"] = part_result(
                res,
                {
                    "pgsafe restore -j 2": (
                        "pgsafe restore ID --create -d NEWDB -j 2 (with fingerprint check)"
                    ),
                    "pg_restore -j 2": "createdb NEWDB && pg_restore -j 2 -d NEWDB pg_dump.dump",
                },
                [],
            )
            log("logical: verify")
            res = alternate([("pgsafe verify", pgsafe_verify), ("bare restore", bare)], runs)
            out["verify"] = part_result(
                res,
                {
                    "pgsafe verify": "pgsafe verify ID (checksums, throwaway cluster, pg_restore, "
                    "fingerprints)",
                    "bare restore": "initdb + pg_ctl start (same fast settings) + pg_restore "
                    "(1 job, as verify) + pg_ctl stop",
                },
                [],
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out

    def scaling_part(self, scales: list[int], runs: int) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        notes: list[str] = []
        parts = self.doc.get("parts", {})
        for scale in scales:
            key = str(scale)
            if scale == self.args.scale and "backup" in parts and "restore" in parts:
                rows[key] = {
                    "source": "the backup and restore parts",
                    "data_mb": self.doc.get("data_dir_mb"),
                    "backup": parts["backup"]["contenders"]["pgsafe backup"],
                    "restore": parts["restore"]["contenders"]["pgsafe recover"],
                }
                continue
            elapsed = (time.monotonic() - self.t_start) / 60
            if self.args.budget_min and elapsed > self.args.budget_min:
                notes.append(
                    f"stopped before scale {scale}: {elapsed:.0f} min elapsed, over the "
                    f"--budget-min {self.args.budget_min:g}"
                )
                break
            free = shutil.disk_usage(self.base).free
            need = 3.5 * GB_PER_SCALE * scale * self.data_factor()
            if free < need:
                notes.append(
                    f"stopped before scale {scale}: {free / 2**30:.1f} GiB free, "
                    f"about {need / 2**30:.1f} GiB needed"
                )
                break
            log(f"scaling: scale {scale}")
            c = self.cluster(f"scale-{scale}")
            try:
                self.pgbench_init(c, scale)
                data_mb = round(data_bytes(c.datadir) / MB)
                b = self.backup_part(c, runs, full=False)
                r = self.restore_part(c, runs, full=False)
                rows[key] = {
                    "source": f"a cluster of scale {scale}",
                    "data_mb": data_mb,
                    "backup": b["contenders"]["pgsafe backup"],
                    "restore": r["contenders"]["pgsafe recover"],
                }
            finally:
                c.destroy()
                self.clusters.remove(c)
        for key, row in rows.items():
            if row.get("data_mb") is None:
                row["data_mb"] = round(GB_PER_SCALE * int(key) / MB)
        return {"scales": rows, "notes": notes}


@contextlib.contextmanager
def psycopg_conn(c: LocalCluster, db: str | None = None) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(c.conninfo(db or "postgres"), autocommit=True) as conn:
        yield conn


def execute(c: LocalCluster, statement: str, db: str | None = None) -> None:
    """A statement that returns no rows (``q`` is for one value)."""
    with psycopg_conn(c, db) as conn:
        conn.execute(statement)


def wait_drained(c: LocalCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while backlog(c) and time.monotonic() < deadline:
        time.sleep(0.1)


# -- targets and rendering ----------------------------------------------------------------


def _med(doc: dict[str, Any], part: str, name: str, key: str = "wall_s") -> float | None:
    p = doc["parts"].get(part)
    if part == "logical_dump":
        p = doc["parts"].get("logical", {}).get("dump")
    c = (p or {}).get("contenders", {}).get(name)
    return None if c is None else c["median"].get(key)


def _target(
    name: str, goal: str, met: bool | None, ratio: float | None, detail: str
) -> dict[str, Any]:
    return {
        "name": name,
        "goal": goal,
        "met": met,
        "ratio": None if ratio is None else round(ratio, 2),
        "detail": detail,
    }


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    parts = doc["parts"]
    if "backup" in parts:
        ours, size = (
            _med(doc, "backup", "pgsafe backup"),
            _med(doc, "backup", "pgsafe backup", "out_bytes"),
        )
        pgbr = {
            k: v for k, v in parts["backup"]["contenders"].items() if k.startswith("pgBackRest")
        }
        if pgbr and ours:
            fastest = min(pgbr, key=lambda k: pgbr[k]["median"]["wall_s"])
            t, s = pgbr[fastest]["median"]["wall_s"], pgbr[fastest]["median"]["out_bytes"]
            ratio = t / ours
            out.append(
                _target(
                    "backup vs pgBackRest",
                    "≥ 2× faster than pgBackRest's fastest, output no larger",
                    ratio >= 2 and (size or 0) <= s,
                    ratio,
                    f"{fastest}: {t:.1f} s, {s / MB:.0f} MiB; pgsafe {ours:.1f} s, "
                    f"{(size or 0) / MB:.0f} MiB (speed-up {ratio:.2f}×, size "
                    f"{(size or 0) / s:.2f}×)",
                )
            )
        else:
            out.append(
                _target(
                    "backup vs pgBackRest",
                    "≥ 2× faster than pgBackRest's fastest",
                    None,
                    None,
                    "pgBackRest not run",
                )
            )
        floor = _med(doc, "backup", "tar floor")
        if floor and ours:
            out.append(
                _target(
                    "backup vs raw-read floor",
                    "≤ 1.5× the tar floor",
                    ours / floor <= 1.5,
                    ours / floor,
                    f"pgsafe {ours:.1f} s, tar {floor:.1f} s",
                )
            )
    if "restore" in parts:
        ours, theirs = (
            _med(doc, "restore", "pgsafe recover"),
            _med(doc, "restore", "pgBackRest restore"),
        )
        if ours and theirs:
            out.append(
                _target(
                    "restore vs pgBackRest",
                    "≤ 1.0× pgBackRest's time",
                    ours / theirs <= 1.0,
                    ours / theirs,
                    f"pgsafe {ours:.1f} s, pgBackRest {theirs:.1f} s",
                )
            )
    if "walpush" in parts:
        ours, theirs = (
            _med(doc, "walpush", "pgsafe wal-push"),
            _med(doc, "walpush", "pgBackRest archive-push"),
        )
        if ours and theirs:
            out.append(
                _target(
                    "wal-push vs pgBackRest",
                    "≤ 1.0× archive-push per segment",
                    ours / theirs <= 1.0,
                    ours / theirs,
                    f"pgsafe {ours * 1000:.0f} ms, pgBackRest {theirs * 1000:.0f} ms",
                )
            )
    if "archiving" in parts:
        tps = _med(doc, "archiving", "pgsafe wal-push", "tps")
        base = _med(doc, "archiving", "/bin/true", "tps")
        runs = parts["archiving"]["contenders"].get("pgsafe wal-push", {}).get("runs", [])
        worst = max((r["ready_at_end"] for r in runs), default=0)
        if tps and base:
            out.append(
                _target(
                    "archiving under load",
                    "no backlog (≤ 1 .ready: the segment in flight), TPS ≥ 95% of /bin/true",
                    worst <= 1 and tps / base >= 0.95,
                    tps / base,
                    f"TPS {tps:.0f} vs {base:.0f}; worst .ready at end: {worst}",
                )
            )
    if "logical" in parts:
        ours, theirs = (
            _med(doc, "logical_dump", "pgsafe dump"),
            _med(doc, "logical_dump", "pg_dump -Fc"),
        )
        so = _med(doc, "logical_dump", "pgsafe dump", "out_bytes")
        st = _med(doc, "logical_dump", "pg_dump -Fc", "out_bytes")
        if ours and theirs and so and st:
            out.append(
                _target(
                    "dump vs pg_dump -Fc",
                    "≥ 1.5× faster, output no larger",
                    theirs / ours >= 1.5 and so <= st,
                    theirs / ours,
                    f"pgsafe {ours:.1f} s, {so / MB:.0f} MiB; pg_dump {theirs:.1f} s, "
                    f"{st / MB:.0f} MiB",
                )
            )
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
    if rss:
        where, peak = max(rss, key=lambda x: x[1])
        out.append(
            _target(
                "peak RSS",
                "≤ 100 MB at every scale",
                peak <= 100,
                peak / 100,
                f"largest: {peak:.0f} MB ({where}); ratio = peak / 100 MB",
            )
        )
    return out


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


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scales", default="10,50,100,200")
    ap.add_argument(
        "--data",
        choices=DATA_SETS,
        default="pgbench",
        help="pgbench only, or pgbench plus a table of random (incompressible) bytes and text",
    )
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts among {','.join(PARTS)}")
    ap.add_argument("--seconds", type=int, default=60, help="pgbench -T of the archiving part")
    ap.add_argument("--pushes", type=int, default=10, help="wal-push runs per contender")
    ap.add_argument("--quick", action="store_true", help="smoke run: scale 1, 1 run, no load")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install pgbackrest")
    ap.add_argument(
        "--budget-min",
        type=float,
        default=0,
        help="scaling: start no new scale after this many minutes (0: no limit)",
    )
    ap.add_argument("--no-pgbackrest", action="store_true", help="leave pgBackRest out")
    ap.add_argument("--name", default=None, help="results file name (default bench / quick)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = set(args.parts) - set(PARTS)
    if bad:
        ap.error(f"unknown part(s) {', '.join(sorted(bad))}; choose among {', '.join(PARTS)}")
    args.scale_list = [int(s) for s in args.scales.split(",") if s.strip()]
    if args.quick:
        args.scale, args.runs, args.pushes, args.scale_list = 1, 1, 2, [1]
        args.parts = [p for p in args.parts if p != "archiving"]
    args.name = args.name or ("quick" if args.quick else "bench")
    if args.data != "pgbench" and not args.name.endswith(args.data):
        args.name += f"-{args.data}"
    return args


def write(doc: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    doc["targets"] = targets(doc)
    path = out / f"{doc['date']}-{doc['name']}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    path.with_suffix(".md").write_text(render(doc))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.exists(TIME):
        raise SystemExit(f"{TIME} is missing: apt-get install time")
    for var in ("PGSAFE_REPO", "PGSAFE_CONFIG", "PGSAFE_COMPRESSION", "PGSAFE_ENCRYPTION"):
        os.environ.pop(var, None)
    t_start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="pgsafe-bench-", dir="/tmp"))
    os.chmod(base, 0o755)
    (base / "home").mkdir(mode=0o755)
    os.environ["PGSAFE_HOME"] = str(base / "home")
    user = runas.server_user()
    b = Bench(args, base, user)
    doc: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "name": args.name,
        "command": "benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "scale": args.scale,
        "data": args.data,
        "runs": args.runs,
        "parts_selected": args.parts,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "parts": {},
        "notes": b.notes,
    }
    b.doc = doc
    need = 3.5 * GB_PER_SCALE * args.scale * b.data_factor()
    free = shutil.disk_usage(base).free
    if free < need:
        raise SystemExit(f"{free / 2**30:.1f} GiB free under /tmp, about {need / 2**30:.1f} needed")
    if args.no_pgbackrest:
        have_pgbr = False
        b.notes.append("pgBackRest left out (--no-pgbackrest)")
    else:
        have_pgbr = ensure_pgbackrest(not (args.quick or args.no_install), b.notes)
    path = None
    try:
        main_parts = [p for p in args.parts if p != "scaling"]
        needs_main = bool(main_parts) or args.scale in args.scale_list
        if needs_main:
            log(f"main cluster, scale {args.scale}")
            c = b.main = b.cluster(
                "main",
                {"wal_level": "replica", "archive_mode": "on", "archive_command": "'/bin/true'"},
            )
            if have_pgbr:
                b.pgbr = PgBackRest(base / "pgbackrest", c, user)
                b.pgbr.setup()
                c.stop()
                c.configure({"archive_command": "'" + b.pgbr.archive_command() + "'"})
                c.start()
                b.pgbr.run("stanza-create")
            b.pgbench_init(c, args.scale)
            doc["machine"] = machine_info(base, os.path.dirname(c.program("postgres")))
            doc["data_dir_mb"] = round(data_bytes(c.datadir) / MB)
            scaling_from_main = args.scale in args.scale_list and "scaling" in args.parts
            for part in PARTS[:-1]:
                wanted = part in args.parts
                if part in ("backup", "restore") and scaling_from_main:
                    wanted = True
                if not wanted:
                    continue
                log(f"part: {part}")
                load0 = [round(x, 2) for x in os.getloadavg()]
                if part == "backup":
                    res = b.backup_part(c, args.runs)
                elif part == "restore":
                    res = b.restore_part(c, args.runs)
                elif part == "walpush":
                    res = b.walpush_part(c, args.pushes)
                elif part == "archiving":
                    res = b.archiving_part(c, args.runs, args.seconds)
                else:
                    res = b.logical_part(c, args.runs)
                res["load_before"], res["load_after"] = (
                    load0,
                    [round(x, 2) for x in os.getloadavg()],
                )
                doc["parts"][part] = res
                doc["load_after"] = res["load_after"]
                doc["elapsed_min"] = round((time.monotonic() - t_start) / 60, 1)
                path = write(doc, args.out)
            c.destroy()
            b.clusters.remove(c)
            if b.pgbr:
                shutil.rmtree(b.pgbr.root, ignore_errors=True)
        else:
            doc["machine"] = machine_info(base, "/usr/lib/postgresql/15/bin")
        if "scaling" in args.parts:
            log("part: scaling")
            load0 = [round(x, 2) for x in os.getloadavg()]
            res = b.scaling_part(args.scale_list, args.runs)
            res["load_before"], res["load_after"] = load0, [round(x, 2) for x in os.getloadavg()]
            doc["parts"]["scaling"] = res
        doc["load_after"] = [round(x, 2) for x in os.getloadavg()]
        doc["elapsed_min"] = round((time.monotonic() - t_start) / 60, 1)
        path = write(doc, args.out)
    finally:
        for c in b.clusters:
            c.destroy()
        shutil.rmtree(base, ignore_errors=True)
    log(f"results: {path} and {path.with_suffix('.md')}")
    print(path.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
