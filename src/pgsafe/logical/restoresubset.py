"""Restore part of a database: tables chosen with ``-t`` now, or a backup taken with ``-t``.

Missing tables come back with their indexes, constraints, triggers and owned sequences
(the archive's entries for them, chosen by :mod:`pgsafe.logical.single_table`, restored
with ``pg_restore -L``); existing ones (with --clean) have their contents replaced in
one transaction.  Foreign keys and partition attachments that point at relations
neither in the backup nor in the target are left out, and other definitions that need
objects outside the subset (pg_dump -t does not follow dependencies) are reported as
warnings rather than stopping the restore; the data is then proven by the fingerprint
comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pgsafe.logical import clean as clean_mod
from pgsafe.logical import fingerprint as fp
from pgsafe.logical import materialize as mat
from pgsafe.logical import single_table as single
from pgsafe.logical import toolerrors
from pgsafe.logical.objectnames import stem
from pgsafe.logical.replay import pg_restore, pg_restore_to_file
from pgsafe.logical.restoreplan import (
    RestorePlan,
    RestoreRequest,
    backup_tables,
    backup_tree,
    is_superuser,
)
from pgsafe.logical.tables import Table
from pgsafe.logical.tree import Tree
from pgsafe.pg.connect import connect
from pgsafe.pg.olderserver import check_loads
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.repository import Repository

NOT_RESTORED = "not restored: "  # a warning for a statement of a table subset that failed
_REPLACE_HINT = (
    "the transaction was rolled back: nothing changed; the backup's rows do not fit the "
    "table as it is now (a constraint, trigger or definition that changed since the dump)"
)


def restore_subset(
    repo: Repository, req: RestoreRequest, p: RestorePlan, conninfo: str, major: int
) -> list[str]:
    """Restore the chosen tables of the backup into ``conninfo``; return the warnings
    (definitions left out, statements that failed: those start with NOT_RESTORED)."""
    m = req.backup
    chosen = p.tables or backup_tables(m)
    with connect(conninfo) as conn:
        present = {t.qualified for t in fp.existing(conn, chosen)}
        superuser = is_superuser(conn)
    missing = [t for t in chosen if t.qualified not in present]
    existing = [t for t in chosen if t.qualified in present]
    warnings: list[str] = []
    with mat.scratch("restore-") as tmp:
        if m.format == "custom":
            obj = m.object("dump")
            assert obj is not None
            archive = tmp / "backup.dump"
            mat.write_file(repo, m, obj, archive)
        else:
            archive = tmp / "dump"
            mat.materialize_directory(repo, m, f"{stem(m.database or '')}.dir/", archive)
        listing, entries = single.read_archive(archive, major)
        skip = single.dangling(entries, single.archive_relations(entries), _exists_in(conninfo))
        warnings += [
            f"left out {e.type} {e.name}: it needs {single.dependency_of(e)}, which is "
            "neither in the backup nor in the target"
            for e in skip
        ]
        if missing:
            keep = set(single.without(listing, skip))
            lines = [
                ln
                for ln in single.entries_for(listing, entries, missing, _context(req, conninfo))
                if ln in keep
            ]
            if not p.tables and not present:  # a -t backup restored whole, nothing there yet
                lines = single.without(listing, skip)
            warnings += _create_tables(req, conninfo, major, archive, lines)
        if existing:
            _replace_rows(req, conninfo, major, archive, listing, existing, superuser=superuser)
    return warnings


def _exists_in(conninfo: str) -> Callable[[str], bool]:
    def exists(name: str) -> bool:
        with connect(conninfo) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])

    return exists


def _context(req: RestoreRequest, conninfo: str) -> list[Table]:
    """The backup's context tables (recorded at dump time) that the target lacks."""
    context = [Table(s, n) for s, n in req.backup.options.get("context_tables", [])]
    with connect(conninfo) as conn:
        have = {t.qualified for t in fp.existing(conn, context)}
    return [t for t in context if t.qualified not in have]


def _create_tables(
    req: RestoreRequest, conninfo: str, major: int, archive: Path, lines: list[str]
) -> list[str]:
    """``pg_restore -L`` of the archive's entries ``lines``; the errors as warnings.

    A definition on top (trigger, index, policy...) that needs an object outside the
    subset is left out, saying why; once a table itself failed, every error counts
    (the others follow from it)."""
    listfile = archive.parent / "tables.list"
    listfile.write_text("\n".join(lines) + "\n")
    args = ["--no-password", "-L", str(listfile)]
    if req.jobs > 1:
        args += ["-j", str(req.jobs)]
    err = pg_restore(conninfo, major, [*args, str(archive)], allow_errors=True)
    errs = toolerrors.errors(err)
    failed = any(e.essential for e in errs)
    return [f"{NOT_RESTORED if failed else 'left out, '}{e}" for e in errs]


def _replace_rows(
    req: RestoreRequest,
    conninfo: str,
    major: int,
    archive: Path,
    listing: str,
    existing: list[Table],
    *,
    superuser: bool,
) -> None:
    """Replace the rows of the ``existing`` tables in one psql transaction: their
    triggers held off, DELETE FROM ONLY each, then the archive's data."""
    listfile = archive.parent / "data.list"
    listfile.write_text("\n".join(single.data_lines(listing, existing)) + "\n")
    script = archive.parent / "data.sql"
    pg_restore_to_file(major, ["-a", "-L", str(listfile), str(archive)], script)
    prologue = "SET LOCAL session_replication_role = replica;\n" if superuser else ""
    with connect(conninfo) as conn:
        tree = backup_tree(req.backup) or Tree.read(conn)
        kinds = {k: r.kind for k, r in tree.rels.items()}
        off, on = clean_mod.trigger_guards(conn, existing, replica=superuser)
    prologue += off + clean_mod.delete_statements(existing, kinds)
    clean, env = tool_env(conninfo)
    check_loads("psql", find_program("psql", major), major)
    argv = [
        find_program("psql", major),
        "--echo-errors",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "-d",
        clean or "",
        "-c",
        prologue,
        "-f",
        str(script),
        *(["-c", on] if on else []),
    ]
    toolerrors.run_checked(argv, env, None, "psql", hint=_REPLACE_HINT)
