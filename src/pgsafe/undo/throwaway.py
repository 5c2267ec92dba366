"""A throwaway cluster recovered to a target, paused there, looked at, then promoted.

Recovery stops at the target and pauses (``recovery_target_action = pause``): at that
moment the relations the next transaction holds in ACCESS EXCLUSIVE mode (a TRUNCATE,
a DROP) are visible in ``pg_locks``, and the transaction it stopped before is named in
the server log.  Then the cluster is promoted: a transaction it stopped before is
aborted there, so every row it deleted or changed is visible again, with its ``xmax``
still naming it (PostgreSQL keeps the raw xmax of an aborted deleter; autovacuum is
off so that nothing freezes it away).

The cluster is always stopped and removed: on success, on error, and on Ctrl-C or
SIGTERM (turned into :class:`KeyboardInterrupt` while it lives; a second signal during
the clean-up is ignored).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port
from pgsafe.cluster.throwaway import FAST_SETTINGS, clusters_dir
from pgsafe.config import state_home
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.pg.connect import connect
from pgsafe.recovery import window
from pgsafe.recovery.execute import RecoverRequest, recover, wait_for_recovery
from pgsafe.recovery.targets import TargetRequest
from pgsafe.repo.repository import Repository

PREFIX = "undo-"
_STOPPED_BEFORE = re.compile(r"recovery stopping before (?:commit|abort) of transaction (\d+)")

_LOCKED_SQL = """
SELECT DISTINCT l.relation::bigint
  FROM pg_catalog.pg_locks l
 WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = %s)
"""


@dataclass
class StopPoint:
    """What the paused cluster showed: the transaction recovery stopped before (when
    the log names one) and the relations held in ACCESS EXCLUSIVE mode in the database."""

    stopped_before: int | None = None
    locked: list[int] = field(default_factory=list)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt as SIGINT does (main thread only)."""
    try:
        old = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: the caller handles its own signals
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _quiet_cleanup(base: Path, major: int) -> None:
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        old = None
    try:
        cluster = LocalCluster(base / "data", major=major)
        if cluster.datadir.exists():
            cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def window_text(repo: Repository) -> str:
    """The recoverable window, as ``pgsafe info`` shows it (for refusals)."""
    rep = window.info(repo)
    spans = [
        f"{t.recoverable_from} .. {t.recoverable_to} (timeline {t.timeline})"
        for t in rep.timelines
        if t.recoverable_from
    ]
    return "; ".join(spans) or "nothing is recoverable yet (take a base backup)"


def _stopped_before(cluster: LocalCluster) -> int | None:
    try:
        text = cluster.log_file.read_text(errors="replace")
    except OSError:
        return None
    found = _STOPPED_BEFORE.findall(text)
    return int(found[-1]) if found else None


def _start(repo: Repository, cluster: LocalCluster, target: TargetRequest, timeout: float) -> str:
    cluster.configure({**FAST_SETTINGS, "autovacuum": "off"})
    cluster.start(port=free_port(), timeout=int(timeout))
    try:
        return wait_for_recovery(cluster, timeout)
    except OperationFailed as exc:
        if "before configured recovery target" in exc.message:
            raise BadInput(
                f"{target.describe()} is not in the archived WAL: recovery ended before it",
                hint=f"the recoverable window is {window_text(repo)}; "
                "`pgsafe mistakes` lists the destructive transactions in it",
            ) from None
        raise


@contextlib.contextmanager
def recovered(
    repo: Repository,
    target: TargetRequest,
    database: str,
    *,
    exclusive: bool,
    major: int,
    timeout: float = 3600,
) -> Iterator[tuple[LocalCluster, StopPoint]]:
    """A promoted throwaway cluster at ``target`` and what it showed while paused."""
    with _signals_interrupt():
        base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=clusters_dir(state_home())))
        try:
            base.chmod(0o755)
            pgdata = base / "data"
            req = RecoverRequest(
                pgdata=pgdata,
                kind=target.kind,
                value=target.value,
                exclusive=exclusive,
                pause=True,
                timeout=timeout,
            )
            recover(repo, req)
            cluster = LocalCluster(pgdata, major=major)
            state = _start(repo, cluster, target, timeout)
            stop = StopPoint(stopped_before=_stopped_before(cluster))
            if state == "paused":
                with connect(cluster.conninfo()) as conn:
                    stop.locked = [int(r[0]) for r in conn.execute(_LOCKED_SQL, (database,))]
                    conn.execute("SELECT pg_catalog.pg_promote(true, %s)", (int(timeout),))
                if wait_for_recovery(cluster, timeout) != "promoted":
                    raise OperationFailed("the throwaway cluster did not promote")
            yield cluster, stop
        finally:
            _quiet_cleanup(base, major)
