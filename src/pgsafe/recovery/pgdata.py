"""The data directory ``recover`` writes: what is never one (``/``, a home folder or a
folder holding one, the repository), what ``--force`` may replace (a stopped PostgreSQL
data directory), and the swap of a proven new directory into place (a rename beside it,
or entry by entry inside a mount point)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
from pathlib import Path

from pgsafe.cluster import runas
from pgsafe.cluster.local import LocalCluster
from pgsafe.errors import BadInput
from pgsafe.repo.repository import Repository
from pgsafe.syncer import fsync_directory

STAGING = ".pgsafe-recover-"


def repo_folders(repo: Repository) -> list[Path]:
    """The local folders of the repository (and of its mirrors)."""
    from pgsafe.repo.storage.mirror import MirrorStorage
    from pgsafe.repo.storage.posix import PosixStorage

    stores = (
        [m.storage for m in repo.storage.members]
        if isinstance(repo.storage, MirrorStorage)
        else [repo.storage]
    )
    return [Path(os.path.realpath(s.root)) for s in stores if isinstance(s, PosixStorage)]


def refuse_protected(d: Path, repo: Repository) -> None:
    """``/``, home folders and anything holding one, and the repository: never a data
    directory, whatever the flags."""
    real = Path(os.path.realpath(d))
    if real == Path("/"):
        raise BadInput("refusing --pgdata /", hint="name the data directory's own folder")
    for pw in pwd.getpwall():
        home = Path(os.path.realpath(pw.pw_dir)) if pw.pw_dir else None
        if home is None or home == Path("/"):
            continue
        if real == home or home.is_relative_to(real):
            raise BadInput(
                f"refusing --pgdata {d}: it is or holds the home folder {home} of {pw.pw_name!r}",
                hint="name the data directory's own folder (e.g. /var/lib/postgresql/15/main)",
            )
    for root in repo_folders(repo):
        if real == root or root.is_relative_to(real) or real.is_relative_to(root):
            raise BadInput(
                f"refusing --pgdata {d}: it overlaps the repository {root}",
                hint="recover into a folder outside the repository",
            )


def check_pgdata(d: Path, force: bool, repo: Repository) -> None:
    """Refuse a data directory recover must not write (exit 2), before anything is read."""
    refuse_protected(d, repo)
    if d.exists() and not d.is_dir():
        raise BadInput(f"{d} exists and is not a folder")
    if d.exists() and any(d.iterdir()):
        if not force:
            raise BadInput(
                f"data directory {d} is not empty",
                hint="choose an empty or new folder, or pass --force to replace its contents",
            )
        if LocalCluster(d).is_running():
            raise BadInput(f"a PostgreSQL server is running in {d}", hint="stop it first")
        version = d / "PG_VERSION"
        if version.is_symlink() or not version.is_file():
            raise BadInput(
                f"{d} is not a PostgreSQL data directory (no PG_VERSION): "
                "--force replaces only a stopped data directory",
                hint="choose an empty or new folder",
            )
    runas.require_reachable(d, runas.server_user(), "data directory")


def empty(d: Path) -> None:
    for child in d.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


STAGING = ".pgsafe-recover-"


def swap(real: Path, new: Path) -> None:
    old = real.parent / f"{STAGING}old-{secrets.token_hex(6)}"
    os.rename(real, old)
    try:
        os.rename(new, real)
    except BaseException:
        os.rename(old, real)
        raise
    fsync_directory(str(real.parent))
    shutil.rmtree(old, ignore_errors=True)


def swap_inside(real: Path, new: Path) -> None:
    """``real`` is a mount point: move its entries aside, inside it, then the new ones up."""
    old = real / f"{STAGING}old-{secrets.token_hex(6)}"
    old.mkdir(mode=0o700)
    moved: list[str] = []
    try:
        for entry in sorted(os.listdir(real)):
            if entry not in (new.name, old.name):
                os.rename(real / entry, old / entry)
                moved.append(entry)
    except BaseException:
        for entry in moved:
            os.rename(old / entry, real / entry)
        old.rmdir()
        raise
    for entry in sorted(os.listdir(new)):
        os.rename(new / entry, real / entry)
    new.rmdir()
    fsync_directory(str(real))
    shutil.rmtree(old, ignore_errors=True)
