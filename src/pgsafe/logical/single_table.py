"""Restoring single tables from a custom or directory archive.

``pg_restore -t`` alone brings back a table's definition and data but not its
indexes, constraints, defaults or triggers.  pgsafe selects those too: it reads the
archive's schema script (``pg_restore -s -f -``), keeps each entry that belongs to the
table (by its ``-- Name: …; Type: …`` header, and for indexes by their ``ON table``),
and restores exactly those TOC entries with ``pg_restore -L``.

When the table still exists and ``--clean`` was given, the table's *contents* are
replaced in one transaction (DELETE, then the archive's data) so that foreign keys
and dependent views stay in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pgsafe.logical.tables import Table
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env

_HEADER = re.compile(r"^-- Name: (.*); Type: (.*); Schema: (.*); Owner: (.*)$")
_TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


@dataclass(frozen=True)
class Entry:
    type: str
    schema: str
    name: str
    owner: str
    body: str


def _quote(ident: str) -> str:
    return ident if _PLAIN_IDENT.match(ident) else '"' + ident.replace('"', '""') + '"'


def parse_script(script: str) -> list[Entry]:
    entries: list[Entry] = []
    current: list[str] | None = None
    body: list[str] = []
    for line in script.splitlines():
        m = _HEADER.match(line)
        if m:
            if current is not None:
                entries.append(Entry(*current, "\n".join(body)))  # type: ignore[call-arg]
            current = [m.group(2), m.group(3), m.group(1), m.group(4)]
            body = []
        elif current is not None:
            body.append(line)
    if current is not None:
        entries.append(Entry(*current, "\n".join(body)))  # type: ignore[call-arg]
    return entries


def _qualified_forms(t: Table) -> set[str]:
    return {f"{s}.{n}" for s in (t.schema, _quote(t.schema)) for n in (t.name, _quote(t.name))}


def _on_table(body: str, t: Table) -> bool:
    return any(
        re.search(rf" ON (?:ONLY )?{re.escape(q)}(?: |$)", body) for q in _qualified_forms(t)
    )


def owned_sequences(entries: list[Entry], t: Table) -> set[str]:
    """Sequences that go away with the table: serial (OWNED BY) and identity columns."""
    out = set()
    for e in entries:
        if e.schema != listed(t.schema):
            continue
        for q in _qualified_forms(t):
            if (e.type == "SEQUENCE OWNED BY" and f"OWNED BY {q}." in e.body) or (
                e.type == "SEQUENCE" and f"ALTER TABLE {q} " in e.body
            ):
                out.add(e.name)
    return out


def listed(name: str) -> str:
    """A name as pg_dump prints it in ``-- Name:`` headers and ``pg_restore -l`` lines:
    newlines and carriage returns become spaces (its ``sanitize_line``).  Matching must
    use this form, else a table whose name holds a newline is never found."""
    return name.replace("\r", " ").replace("\n", " ")


def belongs(e: Entry, t: Table) -> bool:
    """Does this archive entry belong to table ``t`` (and go away with it)?"""
    schema, name = listed(t.schema), listed(t.name)
    if e.schema != schema and e.type not in ("COMMENT", "ACL"):
        return False
    prefix = name + " "
    if e.type in ("TABLE", "TABLE ATTACH"):  # a partition's ATTACH is named after it
        return e.name == name
    if e.type in ("DEFAULT", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "RULE"):
        return e.name.startswith(prefix)
    if e.type == "INDEX":
        return _on_table(e.body, t)  # the SQL body holds the real name
    if e.type in ("COMMENT", "ACL"):
        return e.schema == schema and e.name in (f"TABLE {name}", f"COLUMN {name}.")
    return False


_REFERENCES = re.compile(r"REFERENCES (\S+?)\(")
_ATTACH = re.compile(r"ALTER (?:TABLE|INDEX) (?:ONLY )?(\S+) ATTACH PARTITION")


def dependency_of(e: Entry) -> str | None:
    """The other relation an entry needs (as printed, SQL-quoted), for entries that can
    refer outside a table subset: foreign keys and partition attachments."""
    if e.type == "FK CONSTRAINT":
        m = _REFERENCES.search(e.body)
        return m.group(1) if m else None
    if e.type in ("TABLE ATTACH", "INDEX ATTACH"):
        m = _ATTACH.search(e.body)
        return m.group(1) if m else None
    return None


def dangling(
    entries: list[Entry], in_archive: set[str], exists: Callable[[str], bool]
) -> list[Entry]:
    """Entries whose referenced relation is neither in the archive nor in the target."""
    out = []
    for e in entries:
        dep = dependency_of(e)
        if dep is not None and dep not in in_archive and not exists(dep):
            out.append(e)
    return out


def archive_relations(entries: list[Entry]) -> set[str]:
    """Every table and index of the archive, in each way pg_dump may print its name."""
    out: set[str] = set()
    for e in entries:
        if e.type in ("TABLE", "INDEX"):
            out |= _qualified_forms(Table(e.schema, e.name))
    return out


def toc_lines(listing: str, wanted: set[tuple[str, str, str, str]]) -> list[str]:
    """The ``pg_restore -l`` lines whose (type, schema, name, owner) is wanted."""
    out = []
    for line in listing.splitlines():
        m = _TOC_LINE.match(line)
        if not m:
            continue
        rest = m.group(4)
        for key in wanted:
            if rest == " ".join(key) or (key[3] == "" and rest == " ".join(key[:3])):
                out.append(line)
                break
    return out


def read_archive(archive: Path, major: int | None) -> tuple[str, list[Entry]]:
    """(``pg_restore -l`` listing, parsed schema entries) of an archive file or folder."""
    _, env = tool_env(None)
    pg_restore = find_program("pg_restore", major)
    listing, _ = run_fed(
        [pg_restore, "-l", str(archive)], env, None, "pg_restore -l", capture_stdout=True
    )
    script, _ = run_fed(
        [pg_restore, "-s", "-f", "-", str(archive)], env, None, "pg_restore -s", capture_stdout=True
    )
    return listing, parse_script(script)


def without(listing: str, drop: list[Entry]) -> list[str]:
    """The listing's TOC lines minus the given entries."""
    gone = set(toc_lines(listing, {(e.type, e.schema, e.name, e.owner) for e in drop}))
    return [ln for ln in listing.splitlines() if _TOC_LINE.match(ln) and ln not in gone]


def entries_for(
    listing: str,
    entries: list[Entry],
    tables: list[Table],
    definitions: Sequence[Table] = (),
) -> list[str]:
    """The TOC lines to restore for ``tables``: definitions, indexes, constraints, data;
    for ``definitions`` (ancestors a backup carries without rows) the definition alone."""
    wanted: set[tuple[str, str, str, str]] = set()
    for e in entries:
        if e.type == "TABLE" and any(
            e.schema == d.schema and e.name == d.name for d in definitions
        ):
            wanted.add((e.type, e.schema, e.name, e.owner))
    for e in entries:
        if any(belongs(e, t) for t in tables):
            wanted.add((e.type, e.schema, e.name, e.owner))
    indexes = {(k[1], k[2]) for k in wanted if k[0] == "INDEX"}
    for e in entries:  # a partition's index joins the partitioned index above it
        if e.type == "INDEX ATTACH" and (e.schema, e.name) in indexes:
            wanted.add((e.type, e.schema, e.name, e.owner))
    owners = {(e.schema, e.name): e.owner for e in entries if e.type == "TABLE"}
    for t in tables:
        schema, name = listed(t.schema), listed(t.name)
        owner = owners.get((schema, name), "")
        wanted.add(("TABLE DATA", schema, name, owner))
        for seq in owned_sequences(entries, t):
            for e in entries:
                if e.schema == schema and e.name == seq and e.type.startswith("SEQUENCE"):
                    wanted.add((e.type, e.schema, e.name, e.owner))
            wanted.add(("SEQUENCE SET", schema, seq, owner))
    return toc_lines(listing, wanted)


def data_lines(listing: str, tables: list[Table]) -> list[str]:
    out = []
    for line in listing.splitlines():
        m = _TOC_LINE.match(line)
        if m and any(
            m.group(4).startswith(f"TABLE DATA {listed(t.schema)} {listed(t.name)} ")
            for t in tables
        ):
            out.append(line)
    return out
