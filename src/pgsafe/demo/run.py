"""Run the whole demo: sandbox, repository, part one (logical), part two (PITR)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pgsafe import clock, sandbox
from pgsafe.cluster import runas
from pgsafe.demo import logical
from pgsafe.demo import physical as physical_part
from pgsafe.demo.report import DemoReport
from pgsafe.models.backup import JsonObject
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.repo.repository import Repository


def demo_repo_path(home: Path) -> Path:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    base = home / "demo"
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(base, 0o755)
    path = base / f"repo-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"repo-{stamp}-{n}"
    return path


def run_demo(
    home: Path, say: Callable[[str], None], *, physical: bool = True
) -> tuple[DemoReport, JsonObject]:
    """The whole exercise, in a new throwaway repository (never the user's)."""
    report = DemoReport(say)
    st = sandbox.start(home)
    say(f"sandbox PostgreSQL: {st.conninfo}")
    url = str(demo_repo_path(home))
    repo = Repository.open(url, "demo", create=True, owner=runas.repository_owner())
    say(f"repository: {url}")
    base = ConnOptions(dbname=st.conninfo)
    info: JsonObject = {"sandbox": st.conninfo, "repo": url}
    info["logical"] = logical.run(report, repo, base, home)
    if physical:
        info["physical"] = physical_part.run(report, repo, home)
    return report, info
