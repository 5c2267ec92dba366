"""The archive_command and restore_command for a repository, proven before they are set.

Each picks the runtime the server's OS user can run (:mod:`~pgsafe.endpoint.runtime`),
the endpoint of the repository (:mod:`~pgsafe.endpoint.command`), runs the probe of its
verb as that user (:mod:`~pgsafe.endpoint.probe`) and only then answers with the
command line.  ``pgsafe archive enable`` / ``check`` and ``pgsafe recover`` use these.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.endpoint.command import endpoint_command, endpoint_for, is_s3
from pgsafe.endpoint.probe import check_repo_readable, check_repo_writable
from pgsafe.endpoint.runtime import Runtime, wal_runtime
from pgsafe.repo.repository import Repository
from pgsafe.wal import spool as wal_spool


def archive_command(
    home: Path, repo: Repository, user: runas.OsUser | None, config: Path | None = None
) -> tuple[str, Runtime]:
    """``wal-push %p`` into ``repo`` (``config``: its ``[[repos]]`` file), proven to
    write the repository as ``user``; with the runtime it runs."""
    ep = endpoint_for(repo, config=config)
    rt = wal_runtime(home, user, s3=is_s3(repo))
    check_repo_writable(rt, repo, user, ep)
    return endpoint_command(rt, ep, "wal-push %p"), rt


def restore_command(
    home: Path,
    repo: Repository,
    user: runas.OsUser | None,
    config: Path | None = None,
    spool: Path | None = None,
) -> str:
    """``wal-get %f %p`` from ``repo``, proven to decode as ``user``; with ``spool``,
    through that prefetch spool (``wal-get --spool DIR``: :mod:`pgsafe.wal.spool`).

    An encrypted repository's identity (or passphrase) file is named in the command
    (``PGSAFE_AGE_IDENTITY_FILE=...``); the server's user must be able to read it.
    """
    ep = endpoint_for(repo, config=config, decrypt=True)
    rt = wal_runtime(home, user, s3=is_s3(repo))
    check_repo_readable(rt, ep, user)
    if spool is None:
        return endpoint_command(rt, ep, "wal-get %f %p")
    where = f"--spool {shlex.quote(str(spool)).replace('%', '%%')} "
    command = endpoint_command(rt, ep, f"wal-get {where}%f %p")
    find, mv = shutil.which("find"), shutil.which("mv")
    if find is None or mv is None:
        return command  # every call through Python
    return wal_spool.shell_take(str(spool), find, mv) + command
