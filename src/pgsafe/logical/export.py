"""``pgsafe export ID PATH``: a backup as plain standard files.

The files are what pg_dump wrote (``.dump`` for pg_restore, ``.sql`` for psql, a
directory-format folder) or what pg_basebackup wrote (``base.tar`` and PostgreSQL's
``backup_manifest``), decoded and checksum-verified, plus the catalog entry
and a README saying how to restore them without pgsafe.  The export is assembled in a
hidden sibling folder and renamed into place, so a failed export leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pgsafe.errors import BadInput
from pgsafe.logical import materialize as mat
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository


@dataclass(frozen=True)
class ExportResult:
    id: str
    path: str
    files: list[str]


def _restore_hint(m: Manifest) -> list[str]:
    if m.kind == "physical":
        return [
            "mkdir -m 700 pgdata && tar -xf base.tar -C pgdata",
            "pg_verifybackup -n -m backup_manifest pgdata   # every file checked",
            "# then add recovery.signal and a restore_command to replay archived WAL",
        ]
    db = m.database or "DBNAME"
    if m.format == "plain":
        return [f"createdb -T template0 {db}", f"psql -v ON_ERROR_STOP=1 -d {db} -f {db}.sql"]
    if m.format == "custom":
        return [
            f"pg_restore -l {db}.dump",
            f"createdb -T template0 {db}",
            f"pg_restore -d {db} {db}.dump",
        ]
    if m.format == "directory":
        return [f"createdb -T template0 {db}", f"pg_restore -j 4 -d {db} {db}.dir"]
    return [
        "psql -d postgres -f globals.sql   # roles, tablespaces",
        "pg_restore -C -d postgres databases/NAME.dump   # each database",
    ]


def export(repo: Repository, m: Manifest, dest: Path) -> ExportResult:
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(
            f"{dest} already exists and is not an empty folder",
            hint="choose a new or empty folder; pgsafe never overwrites files",
        )
    if not dest.parent.is_dir():
        raise BadInput(f"folder {dest.parent} does not exist", hint="create it first")
    try:
        work = Path(tempfile.mkdtemp(prefix=".pgsafe-export-", dir=dest.parent))
    except OSError as exc:
        raise BadInput(f"cannot write in {dest.parent}: {exc.strerror}") from None
    try:
        files: list[str] = []
        for obj in m.objects:
            if obj.role == "schema":
                continue  # verify's helper, not part of the backup proper
            rel = mat.plain_name(obj)
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            mat.write_file(repo, m, obj, target)
            files.append(rel)
        (work / "manifest.json").write_text(json.dumps(m.to_dict(), indent=2) + "\n")
        readme = [
            f"pgsafe backup {m.id} ({m.kind}, {m.format}), taken {m.started_at}",
            f"from PostgreSQL {m.pg_version}. Restore without pgsafe:",
            "",
            *[f"    {line}" for line in _restore_hint(m)],
            "",
        ]
        (work / "README.txt").write_text("\n".join(readme))
        os.chmod(work, 0o755)
        if dest.exists():
            dest.rmdir()
        os.rename(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    dirs = sorted({f.split("/")[0] for f in files if "/" in f})
    shown = [f for f in files if "/" not in f] + [d + "/" for d in dirs]
    return ExportResult(m.id, str(dest), sorted(shown))
