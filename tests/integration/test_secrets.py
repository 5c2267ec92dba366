"""No password, passphrase or secret key in the repository, the server logs, the
configuration pgsafe writes, the command outputs, or any process's command line.

A run made with known secrets: a role with a password connecting over TCP
(``password=`` in the conninfo), a passphrase-encrypted repository (archiving, base
backup, logical dump, PITR) and an X25519 repository (dump and restore with the
identity file).  While it runs, a thread reads every process's ``/proc/PID/cmdline``
(what ``ps`` shows) and records any secret in it — except the pgsafe processes this
test starts itself with ``-d 'password=...'``: pgsafe's children (pg_basebackup,
pg_dump, pg_restore, psql, archive_command, restore_command) must not carry it.  It
also proves that pg_basebackup ran and got the password through ``PGPASSWORD``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.physical.switch import switch_and_wait
from pgsafe.repo.repository import Repository
from tests.conftest import Result, make_cluster, psql_exec, query, reachable_tmpdir, run_pgsafe
from tests.integration.test_physical_codecs import make_identity

# new for every run: another run of this test on the same machine (its processes are
# visible in /proc too) must not be taken for a leak of this run's secrets
PASSWORD = f"pw-{secrets.token_hex(6)}-known-password"
PASSPHRASE = f"pp-{secrets.token_hex(6)}-known-passphrase"


class ProcWatch:
    """Polls /proc for command lines holding a secret, and pg_basebackup's environment."""

    def __init__(self, secrets: list[bytes]) -> None:
        self.secrets = secrets
        self.leaks: list[str] = []
        self.basebackup_env: list[bool] = []  # per pg_basebackup seen: PGPASSWORD right?
        self._seen: set[int] = set()
        self._ours: set[bytes] = set()
        self._our_pids: set[int] = set()  # the pgsafe processes this test started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _parent(pid: int) -> int | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return int(stat.rsplit(")", 1)[1].split()[1])

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                pid = int(entry)
                parent = self._parent(pid)  # read first: a pid reused later has a new one
                try:
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                # the pgsafe this test starts gets the password on its own command line
                # (the user's choice); what matters is that it passes it to no child
                # (a child between fork and exec still shows its parent's argv: skip it)
                if parent == me:
                    self._ours.add(cmd)
                    self._our_pids.add(pid)
                ours = cmd in self._ours
                if any(s in cmd for s in self.secrets) and not ours:
                    self.leaks.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
                argv = cmd.split(b"\0")
                # only the pg_basebackup our pgsafe started (other tests run their own
                # in parallel, without a password)
                if (
                    b"pg_basebackup" in argv[0]
                    and b"-D" in argv
                    and pid not in self._seen
                    and parent in self._our_pids
                ):
                    try:
                        env = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                    except OSError:
                        continue
                    self._seen.add(pid)
                    self.basebackup_env.append(f"PGPASSWORD={PASSWORD}".encode() in env)
            time.sleep(0.002)


@pytest.fixture(scope="module")
def base(state_home: Path) -> Iterator[Path]:
    d = reachable_tmpdir("pgsafe-secrets-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_no_secret_anywhere(base: Path) -> None:
    keys = base / "keys"
    keys.mkdir(mode=0o755)
    ident = make_identity(keys)
    secret_key = next(
        ln for ln in ident.path.read_text().splitlines() if ln.startswith("AGE-SECRET-KEY-")
    )
    pp_file = keys / "passphrase"
    pp_file.write_text(PASSPHRASE + "\n")
    os.chmod(pp_file, 0o600)
    runas.chown(pp_file, runas.server_user())
    secrets = [PASSWORD, PASSPHRASE, secret_key]

    c = make_cluster(base, "src", {"max_wal_senders": "4"})
    outputs: list[Result] = []
    recovered = base / "recovered"
    repo_pp, repo_x = base / "repo-pp", base / "repo-x"
    try:
        psql_exec(
            c.conninfo(),
            f"CREATE ROLE secretive LOGIN SUPERUSER REPLICATION PASSWORD '{PASSWORD}'",
        )
        tcp = f"host=127.0.0.1 port={c.port} user=secretive dbname=postgres password={PASSWORD}"
        cfg_pp = base / "pp.toml"
        cfg_pp.write_text('encryption = "age-passphrase"\n')
        cfg_x = base / "x.toml"
        cfg_x.write_text(f'encryption = "age"\nage_recipients = ["{ident.public}"]\n')
        pp = ["--config", str(cfg_pp), "--repo", str(repo_pp)]
        x = ["--config", str(cfg_x), "--repo", str(repo_x)]
        pp_env = {"PGSAFE_AGE_PASSPHRASE_FILE": str(pp_file)}
        x_env = {"PGSAFE_AGE_IDENTITY_FILE": str(ident.path)}

        def run(*args: str, env: dict[str, str], code: int = 0) -> Result:
            r = run_pgsafe(*args, env=env, timeout=300)
            outputs.append(r)
            assert r.returncode == code, r.stdout + r.stderr
            return r

        with ProcWatch([s.encode() for s in secrets]) as watch:
            run(*pp, "archive", "enable", "-d", tcp, "--restart", env=pp_env)
            psql_exec(
                c.conninfo(), "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 50) g"
            )
            run(*pp, "backup", "-d", tcp, env=pp_env)
            run(*pp, "dump", "-d", tcp, env=pp_env)
            psql_exec(c.conninfo(), "INSERT INTO t VALUES (51)")
            switch_and_wait(c.conninfo(), Repository.open(str(repo_pp)), timeout=60)
            run(
                *pp, "recover", "--pgdata", str(recovered), "--latest", "--start", "--json",
                "--check", "SELECT count(*) = 51 FROM t", env=pp_env,
            )  # fmt: skip
            dumped = run(*x, "dump", "-d", tcp, "--json", env=x_env)
            backup_id = json.loads(dumped.stdout)["id"]
            psql_exec(c.conninfo(), "DROP DATABASE IF EXISTS secret_restore")
            target = tcp.replace("dbname=postgres", "dbname=secret_restore")
            run(*x, "restore", backup_id, "--create", "-d", target, env=x_env)
            # a failure with a password in its conninfo: the message must not carry it
            wrong = tcp.replace(PASSWORD, PASSWORD + "-wrong")
            failed = run(*pp, "backup", "-d", wrong, env=pp_env, code=2)
            assert "password" in failed.stderr.lower()

        assert watch.leaks == [], watch.leaks
        assert watch.basebackup_env, "pg_basebackup was never seen running"
        assert all(watch.basebackup_env), "pg_basebackup did not get PGPASSWORD"
        # archive_command (which reads the passphrase from its file) archived every segment
        # it was given: some, and no failure
        ((archived, failed),) = query(
            c.conninfo(), "SELECT archived_count, failed_count FROM pg_stat_archiver"
        )
        assert failed == 0 and archived != 0, (archived, failed)
        command = str(query(c.conninfo(), "SHOW archive_command")[0][0])
        assert f"PGSAFE_AGE_PASSPHRASE_FILE={pp_file}" in command

        places = [
            repo_pp, repo_x, c.log_file, c.datadir / "postgresql.auto.conf",
            LocalCluster(recovered).log_file, recovered / "postgresql.auto.conf",
        ]  # fmt: skip
        checked = 0
        for f in _files(*places):
            data = f.read_bytes()
            checked += 1
            for s in secrets:
                assert s.encode() not in data, f"{s[:6]}... found in {f}"
        assert checked > 20
        for r in outputs:
            for s in secrets:
                assert s not in r.stdout and s not in r.stderr, f"{s[:6]}... in an output"
    finally:
        LocalCluster(recovered).destroy()
        c.destroy()
