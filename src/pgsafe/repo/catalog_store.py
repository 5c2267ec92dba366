"""The catalog of backups on a repository: list its entries, read one, resolve a
reference, pick the newest usable, pin, and name a new backup.

Each entry is ``<server>/backups/<id>/manifest.json``, read as the untrusted input it is
(:mod:`pgsafe.repo.catalog`): a damaged entry is named, never taken for a backup.
:class:`~pgsafe.repo.repository.Repository` offers these as methods (``repo.load``,
``repo.resolve``...) and loads this module on first use: ``wal-push`` reads no catalog.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from pgsafe.errors import BadInput, NotFound, VerificationFailed
from pgsafe.repo import catalog
from pgsafe.repo.catalog import CatalogDamaged, DamagedEntry, Manifest
from pgsafe.repo.catalog_names import backup_id_problem
from pgsafe.repo.storage.base import MANIFEST_LIMIT, Storage, read_all


class _Repository(Protocol):
    """What the catalog needs of a :class:`pgsafe.repo.repository.Repository`."""

    storage: Storage
    server: str

    def backup_ids(self) -> list[str]: ...
    def backup_prefix(self, backup_id: str) -> str: ...
    def object_key(self, backup_id: str, name: str) -> str: ...
    def lock(self, name: str = ..., *, wait: bool = ...) -> AbstractContextManager[None]: ...
    def save(self, manifest: Manifest) -> None: ...


def entries(repo: _Repository) -> list[Manifest | DamagedEntry]:
    """Every catalog entry: a manifest, or a :class:`DamagedEntry` saying why not."""
    out: list[Manifest | DamagedEntry] = []
    for bid in repo.backup_ids():
        try:
            out.append(load(repo, bid))
        except CatalogDamaged as exc:
            out.append(DamagedEntry(bid, exc.message))
        except NotFound:
            continue  # removed since it was listed
    return out


def list_backups(repo: _Repository, *, skip_damaged: bool = True) -> list[Manifest]:
    """The readable backups; a damaged entry is left out (``entries`` names it), or
    with ``skip_damaged=False`` raises."""
    out = []
    for entry in entries(repo):
        if isinstance(entry, Manifest):
            out.append(entry)
        elif not skip_damaged:
            raise CatalogDamaged(entry.reason)
    return out


def load(repo: _Repository, backup_id: str) -> Manifest:
    """The manifest of one backup; :class:`CatalogDamaged` (exit 3) names what is
    wrong when the entry cannot be read as a backup."""
    problem = backup_id_problem(backup_id)
    if problem is not None:
        raise CatalogDamaged(
            f"catalog entry {repo.backup_prefix(backup_id)!r} is damaged: {problem}",
            hint="a folder pgsafe did not make; remove it from the repository",
        )
    key = repo.object_key(backup_id, "manifest.json")
    try:
        data = read_all(repo.storage, key, MANIFEST_LIMIT)
    except NotFound:
        raise NotFound(
            f"no backup {backup_id!r} in {repo.storage.url} (server {repo.server})",
            hint="`pgsafe list` shows the backups",
        ) from None
    except VerificationFailed as exc:
        raise CatalogDamaged(
            f"catalog entry {key} is damaged: larger than {MANIFEST_LIMIT} bytes",
            hint=exc.hint,
        ) from None
    return catalog.decode(data, key, expected_id=backup_id)


def resolve(repo: _Repository, ref: str) -> Manifest:
    """A backup by id, unique id prefix, or ``latest`` (the newest entry: when its
    manifest is damaged, that is an error — never silently an older backup)."""
    if not ref.strip():
        raise BadInput("an empty backup id names no backup", hint="`pgsafe list` shows the ids")
    ids = repo.backup_ids()
    if ref == "latest":
        dated = [i for i in ids if backup_id_problem(i) is None]  # a stray folder has no date
        if not dated:
            raise NotFound("the repository has no backups yet", hint="run pgsafe dump")
        return load(repo, dated[-1])
    if ref in ids:
        return load(repo, ref)
    matches = [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        return load(repo, matches[0])
    if len(matches) > 1:
        shown = ", ".join(repr(m) for m in matches[:5])
        raise BadInput(f"backup id {ref!r} is ambiguous: {shown}", hint="give more of the id")
    raise NotFound(
        f"no backup {ref!r} in {repo.storage.url} (server {repo.server})",
        hint="`pgsafe list` shows the backups",
    )


def latest(repo: _Repository, kind: str | None = None) -> Manifest | None:
    """The newest usable (status ``ok``) backup of ``kind`` (``logical`` or
    ``physical``; any kind when None), or None when there is none.

    Unlike ``resolve("latest")`` a damaged or unfinished newer entry is passed over:
    this answers "which backup can I use", not "what was written last"."""
    usable = [
        m for m in list_backups(repo) if m.status == "ok" and (kind is None or m.kind == kind)
    ]
    return usable[-1] if usable else None


def pin(repo: _Repository, ref: str, keep: bool = True) -> Manifest:
    """Pin a backup (``keep``) so that ``expire`` never removes it, or release the
    pin; ``ref`` as :func:`resolve` takes it.  Read, changed and saved under the
    catalog lock, so that no concurrent writer of the manifest is lost."""
    with repo.lock("catalog"):
        m = resolve(repo, ref)
        m.keep = keep
        repo.save(m)
    return m


def new_id(repo: _Repository, when: datetime, *parts: str) -> str:
    """A new backup id: the UTC stamp ``when``, then ``parts`` as words of [a-z0-9_]
    (``-2``, ``-3``... when taken, by a manifest or by a folder still being written)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    words = [re.sub(r"[^a-z0-9_]+", "_", p.lower()).strip("_")[:40] or "x" for p in parts]
    base = "-".join([stamp, *words])
    existing = set(repo.backup_ids())
    existing |= {k.split("/")[2] for k in repo.storage.list(f"{repo.server}/backups")}
    candidate, n = base, 1
    while candidate in existing:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
