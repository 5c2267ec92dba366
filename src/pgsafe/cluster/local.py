"""A local PostgreSQL cluster that pgsafe controls.

Used by the sandbox, the throwaway clusters of restore tests and ``recover --start``.
The server listens on 127.0.0.1 and on a private socket folder (the *run dir*, which
also holds the server log); when pgsafe is root the server runs as the ``postgres``
OS user and everything it touches is owned by that user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pgsafe.cluster import datafiles, runas
from pgsafe.cluster.ports import free_port
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.pg.process import Exited, run_short
from pgsafe.pg.programs import find_program, installed_major, program_version

_SOCKET_MAX = 90  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


def run_dir_for(datadir: Path) -> Path:
    """Folder holding the socket and the server log of a cluster."""
    preferred = datadir.absolute().parent / f"{datadir.name}.run"
    if len(str(preferred)) <= _SOCKET_MAX:
        return preferred
    digest = hashlib.sha1(str(datadir.absolute()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pgsafe-run-{digest}"


@dataclass
class LocalCluster:
    datadir: Path
    port: int = 0
    major: int = 0
    user: runas.OsUser | None = field(default=None)
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.datadir = self.datadir.absolute()
        if self.user is None:
            self.user = runas.server_user()
        if not self.major:
            ver = self.datadir / "PG_VERSION"
            self.major = int(ver.read_text().strip()) if ver.exists() else installed_major()

    # -- paths -------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.datadir)

    @property
    def log_file(self) -> Path:
        return self.run_dir / "server.log"

    def program(self, name: str) -> str:
        return find_program(name, self.major)

    def conninfo(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A libpq key=value string; every value quoted, so a database named with
        spaces, quotes or ``=`` (anything PostgreSQL accepts) connects as itself."""
        return " ".join(
            f"{key}={_quoted(str(value))}"
            for key, value in (
                ("host", self.run_dir), ("port", self.port), ("user", user), ("dbname", dbname),
            )
        )  # fmt: skip

    # -- lifecycle ---------------------------------------------------------
    def _run(self, argv: list[str], timeout: float = 120) -> Exited:
        """Run initdb or pg_ctl as the cluster's OS user (:func:`pgsafe.pg.process.run_short`)."""
        return run_short(argv, timeout=timeout, popen_kwargs=runas.popen_kwargs(self.user))

    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.run_dir, 0o700)
        runas.chown(self.run_dir, self.user)

    def initdb(self, *, checksums: bool = True) -> None:
        """Create the cluster (data checksums on, UTF8, superuser ``postgres``)."""
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise BadInput(
                f"data directory {self.datadir} is not empty",
                hint="choose an empty or new folder",
            )
        runas.require_reachable(self.datadir.parent, self.user, "data directory")
        self.datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.datadir, 0o700)
        runas.chown(self.datadir, self.user)
        argv = [
            self.program("initdb"), "-D", str(self.datadir), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-instructions",
        ]  # fmt: skip
        if checksums:
            argv.append("--data-checksums")
        elif self.major >= 18:  # PostgreSQL 18's initdb turns checksums on by default
            argv.append("--no-data-checksums")
        proc = self._run(argv, timeout=300)
        if not proc.ok:
            raise OperationFailed(f"initdb failed: {proc.first_error()}")
        self.configure({"listen_addresses": "'127.0.0.1'", **self.settings})

    def configure(self, settings: dict[str, str]) -> None:
        """Append settings (already quoted as postgresql.conf wants) to postgresql.auto.conf."""
        if not settings:
            return
        text = "".join(f"{k} = {v}\n" for k, v in settings.items())
        datafiles.append(self.datadir, "postgresql.auto.conf", text, self.user)

    def start(self, *, port: int | None = None, wait: bool = True, timeout: int = 120) -> None:
        if self.is_running():
            return
        self.port = port or self.port or free_port()
        self._prepare_run_dir()
        opts = f"-p {self.port} -k {self.run_dir} -c listen_addresses=127.0.0.1"
        argv = [
            self.program("pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_file),
            "-o", opts, "-t", str(timeout), "start",
        ]  # fmt: skip
        argv.insert(1, "-w" if wait else "-W")
        proc = self._run(argv, timeout=timeout + 30)
        if not proc.ok:
            raise OperationFailed(
                "PostgreSQL did not start: " + (self.last_log_error() or proc.first_error()),
                hint=f"see the server log {self.log_file}",
            )

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the server accepts connections (consistent, for a standby)."""
        isready = self.program("pg_isready")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = run_short([isready, "-q", "-h", str(self.run_dir), "-p", str(self.port)],
                              timeout=timeout)  # fmt: skip
            if ready.ok:
                return
            if not self.is_running():
                raise OperationFailed(
                    f"PostgreSQL stopped: {self.last_log_error() or 'see the log'}",
                    hint=f"see the server log {self.log_file}",
                )
            time.sleep(0.2)
        raise OperationFailed(f"PostgreSQL was not ready within {timeout:.0f} s")

    def stop(self, mode: str = "fast", timeout: int = 120) -> None:
        if not self.is_running():
            return
        proc = self._run(
            [self.program("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
             "-t", str(timeout), "stop"],
            timeout=timeout + 30,
        )  # fmt: skip
        if not proc.ok and self.is_running():
            raise OperationFailed(f"PostgreSQL did not stop: {proc.first_error()}")

    def promote(self, timeout: int = 120) -> None:
        proc = self._run(
            [self.program("pg_ctl"), "-D", str(self.datadir), "-w", "-t", str(timeout), "promote"],
            timeout=timeout + 30,
        )
        if not proc.ok:
            raise OperationFailed(f"promote failed: {proc.first_error()}")

    def is_running(self) -> bool:
        pid_file = self.datadir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
            if len(lines) > 3 and not self.port:
                self.port = int(lines[3])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
            return False
        except PermissionError:
            return True
        return True

    def destroy(self) -> None:
        """Stop (immediately) and remove the data directory and run dir."""
        with contextlib.suppress(OperationFailed):
            self.stop(mode="immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def last_log_error(self) -> str | None:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return None
        for line in reversed(text.splitlines()[-200:]):
            if "FATAL" in line or "PANIC" in line or "ERROR" in line:
                return line.strip()
        return None

    def version(self) -> int:
        return program_version(self.program("postgres"))


def _quoted(value: str) -> str:
    """``value`` as a libpq conninfo value: single-quoted, ``\\`` and ``'`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
