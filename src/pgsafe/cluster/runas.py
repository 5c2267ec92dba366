"""Who runs the PostgreSQL server, and what that user can reach.

PostgreSQL refuses to run as root.  When pgsafe runs as root it runs the server (and
anything the server runs: archive_command, restore_command) as an unprivileged OS
user: ``$PGSAFE_SERVER_USER``, else ``postgres``.  Everything that user needs — the
data directory, its parents, the repository — must be reachable by it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from pgsafe.errors import OperationFailed
from pgsafe.pg.process import RunAs


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]
    home: str


def is_root() -> bool:
    return os.geteuid() == 0


def server_user() -> OsUser | None:
    """The OS user the server runs as, or None to run it as ourselves."""
    if not is_root():
        return None
    name = os.environ.get("PGSAFE_SERVER_USER", "postgres")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise OperationFailed(
            f"running as root, but there is no OS user {name!r} to run PostgreSQL as",
            hint="create it (useradd --system postgres) or set PGSAFE_SERVER_USER",
        ) from None
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    return OsUser(pw.pw_name, pw.pw_uid, pw.pw_gid, frozenset(groups), pw.pw_dir)


def repository_owner() -> tuple[int, int] | None:
    """(uid, gid) for a new local repository folder: as root, the server's OS user (it
    runs wal-push), when that user exists; None otherwise (the folder stays ours)."""
    if not is_root():
        return None
    try:
        pw = pwd.getpwnam(os.environ.get("PGSAFE_SERVER_USER", "postgres"))
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def popen_kwargs(user: OsUser | None) -> RunAs:
    """Keyword arguments for subprocess that run the child as ``user``."""
    if user is None:
        return {}
    env = dict(os.environ)
    env.update({"HOME": user.home, "USER": user.name, "LOGNAME": user.name})
    return {
        "user": user.uid,
        "group": user.gid,
        "extra_groups": sorted(user.groups),
        "env": env,
        "cwd": "/",
    }


def chown(path: Path, user: OsUser | None) -> None:
    """Give ``path`` itself to ``user`` (a link is changed, never followed)."""
    if user is not None:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def chown_tree(path: Path, user: OsUser | None) -> None:
    """Give ``path`` and everything under it to ``user``, never through a link: the
    tree is walked by descriptors (``os.fwalk``), each entry changed relative to its
    folder's descriptor without following it — the tree may belong to that user already
    and could be changed while we walk it."""
    if user is None:
        return
    os.chown(path, user.uid, user.gid)
    for _root, dirs, files, dir_fd in os.fwalk(path, follow_symlinks=False):
        for n in dirs + files:
            st = os.stat(n, dir_fd=dir_fd, follow_symlinks=False)
            if (st.st_uid, st.st_gid) != (user.uid, user.gid):
                os.chown(n, user.uid, user.gid, dir_fd=dir_fd, follow_symlinks=False)


def _allows(
    st: os.stat_result, user: OsUser, owner_bit: int, group_bit: int, other_bit: int
) -> bool:
    if st.st_uid == user.uid:
        return bool(st.st_mode & owner_bit)
    if st.st_gid in user.groups:
        return bool(st.st_mode & group_bit)
    return bool(st.st_mode & other_bit)


def unreachable_parent(path: Path, user: OsUser | None) -> Path | None:
    """The first existing ancestor of ``path`` that ``user`` cannot traverse, if any."""
    if user is None:
        return None
    p = path.absolute()
    for parent in reversed(p.parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None
        if not _allows(st, user, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return parent
    return None


def can_read(path: Path, user: OsUser | None) -> bool:
    if user is None:
        return os.access(path, os.R_OK)
    if unreachable_parent(path, user) is not None:
        return False
    st = path.stat()
    return _allows(st, user, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)


def require_reachable(path: Path, user: OsUser | None, what: str) -> None:
    bad = unreachable_parent(path, user)
    if bad is not None and user is not None:
        raise OperationFailed(
            f"the {what} {path} is not reachable by the OS user {user.name!r}: "
            f"{bad} does not let it through",
            hint=f"choose a location under a folder {user.name!r} can enter "
            f"(e.g. /var/lib/pgsafe, or chmod o+x {bad})",
        )
