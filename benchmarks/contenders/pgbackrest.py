"""pgBackRest as a contender: installed with apt-get when missing (and allowed), run with
its own config, repository, lock and log folders."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.constants import STANZA
from benchmarks.harness.files import fresh_dir
from benchmarks.harness.measure import BenchError, log
from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster


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
        return str(proc.stdout)

    def backups(self) -> set[str]:
        d = self.repo / "backup" / STANZA
        return {p.name for p in d.iterdir() if re.fullmatch(r"\d{8}-\d{6}F", p.name)}
