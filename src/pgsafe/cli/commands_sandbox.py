"""``pgsafe sandbox start|stop|status``."""

from __future__ import annotations

from dataclasses import asdict

import click

from pgsafe import sandbox
from pgsafe.cli.common import emit, global_options
from pgsafe.config import state_home


@click.group("sandbox")
@global_options
def sandbox_group() -> None:
    """A throwaway local PostgreSQL cluster (the embedded default)."""


@sandbox_group.command("start")
@global_options
def start_cmd() -> None:
    """Create (first time) and start the sandbox; print its connection string."""
    st = sandbox.start(state_home())
    verb = "created and started" if st.created else "running"
    emit(asdict(st), f"sandbox {verb}: {st.conninfo}\n  data: {st.datadir}")


@sandbox_group.command("stop")
@click.option("--remove", is_flag=True, help="also delete the sandbox's data")
@global_options
def stop_cmd(remove: bool) -> None:
    """Stop the sandbox (and with --remove delete it)."""
    st = sandbox.stop(state_home(), remove=remove)
    emit(asdict(st), "sandbox removed" if remove else "sandbox stopped")


@sandbox_group.command("status")
@global_options
def status_cmd() -> None:
    """Is the sandbox running, and how to connect to it."""
    st = sandbox.status(state_home())
    text = f"sandbox running: {st.conninfo}" if st.running else "sandbox not running"
    emit(asdict(st), text)


COMMANDS = [sandbox_group]
