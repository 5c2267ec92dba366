"""``pgsafe demo``: the full exercise on a sandbox, ending with a verification report.

The demo is a throwaway: it always makes its own repository under the state folder and
ignores the user's (``--repo``, ``PGSAFE_REPO``, the config), so that its backups never
mix with real ones."""

from __future__ import annotations

import click

from pgsafe.cli.common import emit, global_options, settings
from pgsafe.config import state_home
from pgsafe.demo.run import run_demo


@click.command("demo")
@click.option("--logical-only", is_flag=True, help="skip the PITR part")
@global_options
def demo_cmd(logical_only: bool) -> None:
    """The full exercise: data, logical backups, loss, restores, PITR, verification."""
    s = settings()
    quiet = s.json or s.quiet

    def say(line: str) -> None:
        if not quiet:
            click.echo(line)

    if s.repo or s.repos:
        say("note: the demo writes into a throwaway repository of its own, never into "
            "--repo / PGSAFE_REPO / the config's repository")  # fmt: skip
    report, info = run_demo(state_home(), say, physical=not logical_only)
    doc = {
        **info,
        "ok": report.ok,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
    }
    emit(doc, report.summary(), quiet_text="ok" if report.ok else "FAILED")
    if not report.ok:
        raise click.exceptions.Exit(3)


COMMANDS: list[click.Command] = [demo_cmd]
