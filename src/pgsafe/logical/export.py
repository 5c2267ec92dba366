"""``pgsafe export ID PATH``: a backup as plain standard files.

The files are what pg_dump wrote (``.dump`` for pg_restore, ``.sql`` for psql, a
directory-format folder) or what pg_basebackup wrote (``base.tar`` and PostgreSQL's
``backup_manifest``), decoded and checksum-verified, plus the catalog entry
and a README saying how to restore them without pgsafe.  The export is assembled in a
hidden sibling folder and renamed into place, so a failed export leaves nothing.

The export is private like the repository it comes from: folders 0700, files 0600.  Its
file names come from the catalog, which is untrusted: each is confined to the export
folder (:mod:`pgsafe.confined`), and a destination that is a symbolic link (dangling or
not) is refused.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pgsafe import confined
from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.logical import materialize as mat
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository


@dataclass(frozen=True)
class ExportResult:
    id: str
    path: str
    files: list[str]


def _restore_hint(m: Manifest, files: list[str]) -> list[str]:
    """The shell commands that restore the export without pgsafe; the database and
    file names are shell-quoted (a database may be named anything PostgreSQL accepts)."""
    if m.kind == BackupKind.PHYSICAL:
        return [
            "mkdir -m 700 pgdata && tar -xf base.tar -C pgdata",
            "pg_verifybackup -n -m backup_manifest pgdata   # every file checked",
            "# then add recovery.signal and a restore_command to replay archived WAL",
        ]
    db = shlex.quote(m.database) if m.database else "DBNAME"
    suffix = {"plain": ".sql", "custom": ".dump", "directory": ".dir"}.get(m.format or "")
    if suffix is None:
        return [
            "psql -d postgres -f globals.sql   # roles, tablespaces",
            "pg_restore -C -d postgres databases/NAME.dump   # each database",
        ]
    data = next(
        (f.split("/")[0] for f in files if f.split("/")[0].endswith(suffix)), f"NAME{suffix}"
    )
    data = shlex.quote(data)
    create = f"createdb -T template0 {db}"
    if m.format == "plain":
        return [create, f"psql -v ON_ERROR_STOP=1 -d {db} -f {data}"]
    if m.format == "custom":
        return [f"pg_restore -l {data}", create, f"pg_restore -d {db} {data}"]
    return [create, f"pg_restore -j 4 -d {db} {data}"]


def _check_destination(dest: Path) -> None:
    if dest.is_symlink():
        raise BadInput(
            f"{dest} is a symbolic link",
            hint="name a new folder (or an empty one) that is not a link; "
            "pgsafe does not export through links",
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(
            f"{dest} already exists and is not an empty folder",
            hint="choose a new or empty folder; pgsafe never overwrites files",
        )
    if not dest.parent.is_dir():
        raise BadInput(f"folder {dest.parent} does not exist", hint="create it first")


def export(repo: Repository, m: Manifest, dest: Path) -> ExportResult:
    """Write backup ``m`` into the new (or empty) folder ``dest``: folders 0700, files
    0600, every file created inside the export from its catalog name, never through a
    link (:mod:`pgsafe.confined`)."""
    dest = dest.absolute()
    _check_destination(dest)
    try:
        work = Path(tempfile.mkdtemp(prefix=".pgsafe-export-", dir=dest.parent))
    except OSError as exc:
        raise BadInput(f"cannot write in {dest.parent}: {exc.strerror}") from None
    try:
        os.chmod(work, 0o700)
        dir_fd = confined.open_dir(work)
        try:
            files = _write_all(repo, m, dir_fd)
        finally:
            os.close(dir_fd)
        _check_destination(dest)  # again, just before the rename
        if dest.exists():
            dest.rmdir()
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    dirs = sorted({f.split("/")[0] for f in files if "/" in f})
    shown = [f for f in files if "/" not in f] + [d + "/" for d in dirs]
    return ExportResult(m.id, str(dest), sorted(shown))


def _write_all(repo: Repository, m: Manifest, dir_fd: int) -> list[str]:
    files: list[str] = []
    for obj in m.objects:
        if obj.role == "schema":
            continue  # verify's helper, not part of the backup proper
        rel = mat.plain_name(obj)
        if rel in ("manifest.json", "README.txt"):
            raise VerificationFailed(
                f"backup {m.id} has an object named {obj.name!r}, which export writes itself",
                hint="the catalog was changed outside pgsafe",
            )
        mat.write_into(repo, m, obj, dir_fd, rel)
        files.append(rel)
    with confined.create_file(dir_fd, "manifest.json") as f:
        f.write((json.dumps(m.to_dict(), indent=2, ensure_ascii=False) + "\n").encode())
    readme = [
        f"pgsafe backup {m.id} ({m.kind}, {m.format}), taken {m.started_at}",
        f"from PostgreSQL {m.pg_version}. Restore without pgsafe:",
        "",
        *[f"    {line}" for line in _restore_hint(m, files)],
        "",
    ]
    with confined.create_file(dir_fd, "README.txt") as f:
        f.write("\n".join(readme).encode())
    return files
