"""What a logical backup holds, as ``pg_restore -l`` lists it.

Custom archives stream into ``pg_restore -l`` from stdin; a directory dump needs only
its ``toc.dat``; a plain SQL dump is listed from the ``-- Name: ...; Type: ...``
comments pg_dump writes before each object.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgsafe.logical import materialize as mat
from pgsafe.logical.objectnames import stem
from pgsafe.pg.pipe import run_fed
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.repository import Repository

_PLAIN_HEADER = re.compile(
    r"^-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?); Owner: (.*)$"
)


def contents(repo: Repository, m: Manifest) -> list[str]:
    """One line per object in the backup (pg_restore -l style)."""
    major = m.pg_major
    if m.format == "plain":
        obj = m.object("dump")
        assert obj is not None
        return list(_plain_listing(mat.chunks(repo, m, obj)))
    if m.format == "directory":
        toc = next(
            o for o in m.objects if mat.plain_name(o) == f"{stem(m.database or '')}.dir/toc.dat"
        )
        with mat.scratch("contents-") as tmp:
            d = tmp / "dump"
            d.mkdir()
            mat.write_file(repo, m, toc, d / "toc.dat")
            return _listing([str(d)], None, major)
    if m.format == "all":
        lines: list[str] = []
        for obj in m.objects:
            if obj.role == "globals":
                lines.append("; roles and tablespaces (pg_dumpall --globals-only)")
            elif obj.role.startswith("db:"):
                lines.append(f"; database {obj.role[3:]}")
                lines += _listing([], obj, major, repo, m)
        return lines
    obj = m.object("dump")
    assert obj is not None
    return _listing([], obj, major, repo, m)


def _listing(
    args: list[str],
    obj: StoredObject | None,
    major: int | None,
    repo: Repository | None = None,
    m: Manifest | None = None,
) -> list[str]:
    _, env = tool_env(None)
    argv = [find_program("pg_restore", major), "-l", *args]
    data = mat.chunks(repo, m, obj) if obj is not None and repo and m else None
    out, _ = run_fed(argv, env, data, "pg_restore -l", capture_stdout=True)
    return [ln for ln in out.splitlines() if ln and not ln.startswith(";")]


def _plain_listing(chunks: Iterator[bytes]) -> Iterator[str]:
    pending = b""
    n = 0
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            if not raw.startswith(b"-- "):
                continue
            m = _PLAIN_HEADER.match(raw.decode(errors="replace"))
            if m:
                n += 1
                name, typ, schema, owner = m.groups()
                yield f"{n}; {typ} {schema if schema != '-' else '-'} {name} {owner}"
