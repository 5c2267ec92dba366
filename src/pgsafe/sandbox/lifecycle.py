"""The sandbox cluster's life: where it lives, start (initdb the first time), stop, status.

A throwaway local PostgreSQL cluster under pgsafe's state folder, the embedded default
that the demo uses.  Its connection goes through a private socket folder with ``trust``
for local connections; TCP on 127.0.0.1 asks for a password (scram-sha-256).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.cluster.ports import free_port, port_in_use


@dataclass(frozen=True)
class SandboxStatus:
    datadir: str
    running: bool
    port: int | None
    conninfo: str | None
    created: bool = False


def sandbox_root(home: Path) -> Path:
    return home / "sandbox"


def prepare_home(home: Path) -> None:
    """Create the state folder so that the server's OS user can traverse it."""
    home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(home, 0o755)
    user = runas.server_user()
    runas.require_reachable(home, user, "pgsafe state folder (PGSAFE_HOME)")


def _cluster(home: Path) -> LocalCluster:
    root = sandbox_root(home)
    meta = root / "sandbox.json"
    port = 0
    if meta.exists():
        port = int(json.loads(meta.read_text()).get("port", 0))
    return LocalCluster(root / "data", port=port)


def start(home: Path, settings: dict[str, str] | None = None) -> SandboxStatus:
    prepare_home(home)
    root = sandbox_root(home)
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    cluster = _cluster(home)
    created = False
    if not (cluster.datadir / "PG_VERSION").exists():
        if cluster.datadir.exists():
            shutil.rmtree(cluster.datadir)
        cluster.settings = dict(settings or {})
        cluster.initdb()
        created = True
    if not cluster.is_running():
        port = cluster.port if cluster.port and not port_in_use(cluster.port) else free_port()
        cluster.start(port=port)
        (root / "sandbox.json").write_text(json.dumps({"port": cluster.port}) + "\n")
    return SandboxStatus(str(cluster.datadir), True, cluster.port, cluster.conninfo(), created)


def stop(home: Path, *, remove: bool = False) -> SandboxStatus:
    cluster = _cluster(home)
    if cluster.datadir.exists():
        cluster.stop()
    if remove:
        cluster.destroy()
        shutil.rmtree(sandbox_root(home), ignore_errors=True)
    return SandboxStatus(str(cluster.datadir), False, None, None)


def status(home: Path) -> SandboxStatus:
    cluster = _cluster(home)
    if not (cluster.datadir / "PG_VERSION").exists():
        return SandboxStatus(str(cluster.datadir), False, None, None)
    running = cluster.is_running()
    return SandboxStatus(
        str(cluster.datadir),
        running,
        cluster.port if running else None,
        cluster.conninfo() if running else None,
    )
