"""The daemon assembled: ``serve(...)`` is ``pgsafe daemon`` without its flags.

It takes the repository, the validated ``[[jobs]]`` and where the child commands go,
holds the repository lock ``daemon`` (one daemon per repository and server: a second
one is refused with :class:`~pgsafe.errors.BadInput`), installs the SIGTERM / SIGINT
handling of :class:`~pgsafe.schedule.runner.StopControl`, optionally serves the
Prometheus metrics, and runs :class:`~pgsafe.schedule.daemon.Daemon` until it is
stopped (or, with ``once``, over what is due now).  The CLI only parses flags, sets
up logging, calls it and renders the :class:`~pgsafe.schedule.daemon.Summary`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from pgsafe.config import Settings
from pgsafe.errors import BadInput, LockHeld
from pgsafe.repo import runs
from pgsafe.repo.repository import Repository
from pgsafe.schedule.daemon import Daemon, Summary, SystemClock
from pgsafe.schedule.jobs import ScheduleConfig
from pgsafe.schedule.runner import Runner, StopControl, Target

log = logging.getLogger("pgsafe.schedule")


def target_for(s: Settings) -> Target:
    """Where the child commands of the jobs go: this config, repository and server
    (a local repository as an absolute path: the children may run elsewhere)."""
    if s.repo is None:
        raise BadInput("no repository given", hint="set repo in the config, or pass --repo")
    url = s.repo if "://" in s.repo else str(Path(s.repo).expanduser().absolute())
    cfg = str(s.config_path.absolute()) if s.config_path else None
    return Target(repo_url=url, server=s.server, config_path=cfg)


def require_jobs(cfg: ScheduleConfig, config_path: Path | None) -> None:
    """Refuse (exit 2) a schedule without jobs, naming the config file read."""
    if not cfg.jobs:
        where = f"config file {config_path}" if config_path else "no config file was found"
        raise BadInput(
            f"there are no [[jobs]] to run ({where})",
            hint='add e.g. [[jobs]] schedule = "0 1 * * *" command = "dump" to the config',
        )


def install_signals(stop: StopControl) -> None:
    """SIGTERM / SIGINT: the first asks for a stop after the running job (within
    ``stop_grace``), a second stops the running job now."""

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = not stop.requested
        stop.request()
        if first:
            log.warning(
                "%s received: no new job starts; the running job may finish (stop_grace), "
                "then pgsafe exits; send it again to stop the job now",
                name,
            )
        else:
            log.warning("%s received again: stopping the running job now", name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def serve(
    repo: Repository,
    config: ScheduleConfig,
    target: Target,
    *,
    once: bool = False,
    metrics_port: int | None = None,
    raw_config: Mapping[str, object] | None = None,
    on_metrics: Callable[[str], None] | None = None,
    stop: StopControl | None = None,
) -> Summary:
    """Run the daemon for ``repo`` (see the module doc); returns what it ran.

    ``raw_config`` is the config file's content, for the metrics' thresholds;
    ``on_metrics`` is told the metrics URL once it is served; ``stop`` lets a caller
    stop the daemon (signals are handled either way).
    """
    if not config.jobs:
        raise BadInput("there are no [[jobs]] to run", hint="add [[jobs]] to the config")
    stop = stop or StopControl()
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(repo.lock("daemon", wait=False))
        except LockHeld:
            raise BadInput(
                f"another pgsafe daemon is already running for server {repo.server!r} "
                f"on {repo.storage.url}",
                hint="one daemon per repository and server: stop the other one first",
            ) from None
        install_signals(stop)
        if metrics_port is not None:
            from pgsafe.schedule.metrics_http import MetricsServer, render_all

            server = MetricsServer(metrics_port, lambda: render_all(repo, raw_config))
            stack.callback(server.close)
            if on_metrics is not None:
                on_metrics(f"http://127.0.0.1:{server.port}/metrics")
        runner = Runner(repo, target, config, stop=stop)
        done = runs.last_runs(runs.read_history(repo), completed_only=True)
        daemon = Daemon(
            config.jobs,
            runner.run,
            SystemClock(),
            stop,
            last_slots={name: r.slot() for name, r in done.items()},
        )
        names = ", ".join(j.name for j in config.jobs)
        log.info("daemon started for server %s on %s: %s", repo.server, repo.storage.url, names)
        return daemon.run_once() if once else daemon.run()
