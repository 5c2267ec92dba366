"""A repository: one storage backend, a server name, and the catalog layout on it.

Layout (keys)::

    pgsafe-repo.json                       marker: format version, codec, age recipients
    <server>/backups/<id>/manifest.json    catalog entry, written last
    <server>/backups/<id>/<objects>        the backup's files
    <server>/wal/...                       archived WAL (see pgsafe.wal)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from pgsafe.errors import (
    BadInput,
    RepositoryError,
    RepositoryReadOnly,
    VerificationFailed,
)
from pgsafe.repo import catalog
from pgsafe.repo.catalog import DamagedEntry, Manifest
from pgsafe.repo.marker import (
    FORMAT_VERSION,
    is_newer,
    keys_possible,
    marker_problem,
    server_problem,
)
from pgsafe.repo.marker import (
    MARKER as MARKER,
)
from pgsafe.repo.storage.base import RECORD_LIMIT, Storage, read_all
from pgsafe.repo.storage.posix import PosixStorage

if TYPE_CHECKING:
    from pgsafe.repo.codec.pipeline import CodecSpec, Pipeline
    from pgsafe.repo.keys import AgeKeys

log = logging.getLogger(__name__)


def validate_server(name: str) -> str:
    """A server name is a top-level folder of the repository
    (:func:`pgsafe.repo.marker.server_problem`: the rule wal-push's fast path applies)."""
    problem = server_problem(name)
    if problem is not None:
        raise BadInput(problem[0], hint=problem[1])
    return name


def open_storage(url: str, *, create: bool, owner: tuple[int, int] | None = None) -> Storage:
    """Storage for a repository URL: a local folder, or ``s3://bucket/prefix``.

    S3 settings and credentials come from the environment (see
    :mod:`pgsafe.repo.storage.s3`); the bucket must exist, ``create`` never makes one.
    ``owner`` (uid, gid): who a local folder made now belongs to — the caller decides
    (as root, the server's OS user, which runs wal-push: :func:`pgsafe.cluster.runas.
    repository_owner`); the repository knows no OS user.
    """
    if url.startswith("s3://"):
        from pgsafe.repo.storage.s3 import S3Storage  # imports botocore only when used

        return S3Storage(url)
    if "://" in url:
        raise BadInput(
            f"unsupported repository URL {url!r}",
            hint="use a local folder path or s3://bucket/prefix",
        )
    root = Path(url).expanduser()
    if root.exists() and not root.is_dir():
        raise RepositoryError(
            f"repository path {root} is not a folder", hint="choose a folder for --repo"
        )
    if not root.exists():
        if not create:
            raise RepositoryError(
                f"no repository at {root}",
                hint="check --repo / PGSAFE_REPO; a backup command creates it",
            )
        try:
            root.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise RepositoryError(
                f"cannot create the repository folder {root}: {exc.strerror}",
                hint="choose a folder you can write, or fix its permissions",
            ) from None
        if owner is not None:
            _give_to(root, owner)
    elif create and not os.access(root, os.W_OK | os.X_OK):
        raise RepositoryError(
            f"repository {root} is not writable",
            hint="fix its permissions or choose another --repo",
        )
    return PosixStorage(root)


def _give_to(root: Path, owner: tuple[int, int]) -> None:
    """Give the new repository folder ``root`` to ``owner`` (uid, gid).

    ``root`` was just made by this process; it is changed through a descriptor opened
    without following a link (never ``chown`` of a path)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, *owner)
    finally:
        os.close(fd)


_NAMES_RECIPIENTS = {
    "PGSAFE_AGE_RECIPIENTS",
    "PGSAFE_AGE_RECIPIENTS_FILE",
    "PGSAFE_AGE_IDENTITY",
    "PGSAFE_AGE_IDENTITY_FILE",
}


# The marker (and a codec description in it) as JSON: its shape is checked on read by
# repo.marker.marker_problem and CodecSpec.from_dict, then read by key in this module.
MarkerDoc = dict[str, Any]


def _checked_marker(data: bytes, where: str) -> MarkerDoc:
    """The repository marker, checked as the untrusted input it is (exit 3 if damaged).

    Unknown keys are kept (a newer pgsafe may add some); known ones must have their
    types, the codec must be one this pgsafe knows, and recipients must be age keys.
    """
    from pgsafe.repo.codec.pipeline import CodecSpec

    def damaged(why: str) -> VerificationFailed:
        return VerificationFailed(
            f"the repository marker {MARKER} in {where} is damaged: {why}",
            hint="restore it from a copy of the repository",
        )

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise damaged("not JSON") from None
    problem = marker_problem(doc)  # the shape: the rule wal-push's fast path applies
    if problem is not None:
        raise damaged(problem)
    try:
        CodecSpec.from_dict(doc.get("codec") or {})
    except (BadInput, TypeError, ValueError) as exc:
        raise damaged(f"codec: {exc}") from None
    doc["format"] = doc.get("format", 0)
    return cast("MarkerDoc", doc)


class Repository:
    """A repository and the server whose backups we read or write in it.

    The repository's codec (compression, level, encryption and the public age
    recipients) is chosen when it is created and kept in its marker, so that every
    writer — including ``wal-push`` run by PostgreSQL — stores objects the same way.
    """

    def __init__(
        self,
        storage: Storage,
        server: str = "main",
        *,
        codec: MarkerDoc | None = None,
        recipients: tuple[str, ...] = (),
    ) -> None:
        self.storage = storage
        self.server = validate_server(server)
        self.marker: MarkerDoc = {
            "format": FORMAT_VERSION,
            "created_by": "pgsafe",
            "codec": codec or {"compression": "zstd", "level": 3, "encryption": None},
            "age_recipients": list(recipients),
        }
        self._keys: AgeKeys | None = None

    @classmethod
    def open(
        cls,
        url: str | None,
        server: str = "main",
        *,
        create: bool = False,
        codec: MarkerDoc | None = None,
        recipients: tuple[str, ...] = (),
        owner: tuple[int, int] | None = None,
    ) -> Repository:
        """Open (with ``create``, make) a repository; ``codec`` and ``recipients`` apply
        only to a repository created now, ``owner`` to a local folder made now."""
        if not url:
            raise BadInput("no repository given", hint="pass --repo PATH or set PGSAFE_REPO")
        storage = open_storage(url, create=create, owner=owner)
        repo = cls(storage, server, codec=codec, recipients=recipients)
        repo._check_marker(create=create)
        return repo

    @classmethod
    def open_many(
        cls,
        repos: list[tuple[str, str]],
        server: str = "main",
        *,
        create: bool = False,
        codec: MarkerDoc | None = None,
        recipients: tuple[str, ...] = (),
        owner: tuple[int, int] | None = None,
    ) -> Repository:
        """Several repositories as one (``[[repos]]``): writes go to each, reads fall
        back to the next when an object is missing or damaged."""
        from pgsafe.repo.storage.mirror import Member, MirrorStorage

        if len(repos) == 1:
            return cls.open(
                repos[0][1], server, create=create, codec=codec, recipients=recipients, owner=owner
            )
        members = [
            Member(name, open_storage(url, create=create, owner=owner)) for name, url in repos
        ]
        repo = cls(MirrorStorage(members), server, codec=codec, recipients=recipients)
        repo._check_marker(create=create)
        for m in members[1:]:  # a repository added later gets the marker
            if m.storage.stat(MARKER) is None and create:
                m.storage.put(MARKER, [read_all(members[0].storage, MARKER)])
        return repo

    def open_object(self, key: str, sha256: str, size: int) -> BinaryIO:
        """A stored object to read; with several repositories, the first valid copy."""
        from pgsafe.repo.storage.mirror import MirrorStorage

        if isinstance(self.storage, MirrorStorage):
            return self.storage.open_valid(key, sha256, size)
        return self.storage.open(key)

    @property
    def notes(self) -> list[str]:
        """What happened on the way worth telling (fallbacks to another repository)."""
        from pgsafe.repo.storage.mirror import MirrorStorage

        return list(self.storage.notes) if isinstance(self.storage, MirrorStorage) else []

    def holders(self, key: str) -> list[str]:
        """Names of the repositories that hold ``key`` (one name for a single repository)."""
        from pgsafe.repo.storage.mirror import MirrorStorage

        if isinstance(self.storage, MirrorStorage):
            return self.storage.holders(key)
        return ["default"] if self.storage.stat(key) is not None else []

    # -- codec -----------------------------------------------------------------
    def codec_spec(self) -> CodecSpec:
        from pgsafe.repo.codec.pipeline import CodecSpec

        return CodecSpec.from_dict(self.marker.get("codec") or {})

    def age_keys(self) -> AgeKeys:
        """Key material: the repository's public recipients plus ``PGSAFE_AGE_*``."""
        if self._keys is None:
            from pgsafe.repo.keys import load_age_keys

            self._keys = load_age_keys(recipients=self.marker.get("age_recipients", []))
        return self._keys

    def age_keys_if_any(self) -> AgeKeys | None:
        """:meth:`age_keys`, or None when there can be none: no recipients in the marker
        and no ``PGSAFE_AGE_*`` variable set (then :func:`load_age_keys` would return
        empty keys; skipping it keeps the keys module off wal-push's import path)."""
        if self._keys is None and not keys_possible(self.marker):
            return None
        return self.age_keys()

    def encoder(self) -> Pipeline:
        """The pipeline new objects are written with."""
        from pgsafe.repo.codec.pipeline import Pipeline

        return Pipeline(self.codec_spec(), self.age_keys_if_any())

    def decoder(self, name: str) -> Pipeline:
        """The pipeline that reads the stored object ``name`` (by its suffixes)."""
        from pgsafe.repo.codec.pipeline import pipeline_for

        return pipeline_for(name, self.age_keys_if_any())

    def _check_marker(self, *, create: bool) -> None:
        if self.storage.stat(MARKER) is not None:
            doc = _checked_marker(read_all(self.storage, MARKER, RECORD_LIMIT), self.storage.url)
            if is_newer(doc):
                raise RepositoryError(
                    "repository was written by a newer pgsafe", hint="upgrade pgsafe"
                )
            self.marker = doc
            return
        if any(True for _ in self.storage.list("")):
            raise RepositoryError(
                f"{self.storage.url} is not empty and is not a pgsafe repository",
                hint="choose an empty or new folder for --repo",
            )
        if not create:
            raise RepositoryError(
                f"{self.storage.url} is not a pgsafe repository yet",
                hint="a backup command (pgsafe dump / pgsafe backup) creates it",
            )
        if self.marker["codec"].get("encryption"):
            self.encoder().check_encode()  # no key to encrypt with: refuse before creating
        body = json.dumps(self.marker, indent=2).encode() + b"\n"
        self.storage.put(MARKER, [body], overwrite=True)

    def check_pinned(self, encryption: str | None, recipients: tuple[str, ...]) -> None:
        """Refuse a marker that weakens what the user configured (exit 3).

        The marker is repository content: whoever can write the repository could turn
        encryption off, or add a recipient of their own, so that the next backup is
        written in the clear or readable by them.  When the config asks for encryption,
        the marker must say the same mode; when it names recipients, the marker may
        name no others (``PGSAFE_AGE_RECIPIENTS`` counts as named too).
        """
        from pgsafe.repo.codec.pipeline import CodecSpec

        wanted = CodecSpec.parse("none", None, encryption).encryption
        have = self.codec_spec().encryption
        if wanted is not None and (have is None or have.mode != wanted.mode):
            said = "no encryption" if have is None else f"age {have.mode}"
            raise VerificationFailed(
                f"the repository marker {MARKER} in {self.storage.url} says {said},"
                f" but the configuration asks for age {wanted.mode}",
                hint="the marker was changed outside pgsafe, or --repo names another"
                " repository; nothing was written",
            )
        stored = self.marker.get("age_recipients", [])
        if not stored or not (recipients or _NAMES_RECIPIENTS & set(os.environ)):
            return
        from pgsafe.repo.keys import X25519Recipient, load_age_keys

        named = {r.public for r in load_age_keys(recipients=recipients).encryption_recipients()}
        extra = [r for r in stored if X25519Recipient.parse(r).public not in named]
        if named and extra:
            raise VerificationFailed(
                f"the repository marker {MARKER} in {self.storage.url} names age"
                f" recipient(s) the configuration does not: {', '.join(extra)}",
                hint="backups would be readable by that key; check who changed the marker",
            )

    # -- keys ----------------------------------------------------------------
    def backup_prefix(self, backup_id: str) -> str:
        return f"{self.server}/backups/{backup_id}"

    def object_key(self, backup_id: str, name: str) -> str:
        return f"{self.backup_prefix(backup_id)}/{name}"

    def lock(self, name: str = "catalog", *, wait: bool = True) -> AbstractContextManager[None]:
        return self.storage.lock(f"{self.server}-{name}", wait=wait)

    @contextmanager
    def in_use(self, backup_id: str, *, wait: bool = True) -> Iterator[None]:
        """Held while a restore, verification or recovery reads a backup; ``expire``
        skips a backup whose lock it cannot take.

        On a repository this process cannot write (a read-only snapshot or mount, no
        write permission) the lock file cannot be made, and the backup is read without
        one.  The lock exists only to keep ``expire`` from removing the backup while
        it is read; through a read-only mount no ``expire`` can run, and every read is
        checked against the catalog's checksums, so a backup removed by a writer
        elsewhere meanwhile ends the read with an error — never a wrong result.  A
        lock file that already exists (a snapshot taken with one) is locked as usual.
        """
        with ExitStack() as held:
            try:
                held.enter_context(self.storage.lock(f"{self.server}-use-{backup_id}", wait=wait))
            except RepositoryReadOnly:
                log.info("repository %s is read-only: reading %s unlocked", self.storage.url,
                         backup_id)  # fmt: skip
            yield

    # -- catalog -------------------------------------------------------------
    def backup_ids(self) -> list[str]:
        """The name of every backup folder that holds a manifest, readable or not."""
        ids = set()
        prefix = f"{self.server}/backups/"
        for key in self.storage.list(f"{self.server}/backups"):
            rest = key[len(prefix) :]
            parts = rest.split("/")
            if len(parts) == 2 and parts[1] == "manifest.json":
                ids.add(parts[0])
        return sorted(ids)

    def entries(self) -> list[Manifest | DamagedEntry]:
        """Every catalog entry: a manifest, or a :class:`DamagedEntry` saying why not."""
        from pgsafe.repo import catalog_store

        return catalog_store.entries(self)

    def list_backups(self, *, skip_damaged: bool = True) -> list[Manifest]:
        """The readable backups (:func:`pgsafe.repo.catalog_store.list_backups`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.list_backups(self, skip_damaged=skip_damaged)

    def damaged(self) -> list[DamagedEntry]:
        return [e for e in self.entries() if isinstance(e, DamagedEntry)]

    def load(self, backup_id: str) -> Manifest:
        """The manifest of one backup (:func:`pgsafe.repo.catalog_store.load`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.load(self, backup_id)

    def resolve(self, ref: str) -> Manifest:
        """A backup by id, unique id prefix, or ``latest``
        (:func:`pgsafe.repo.catalog_store.resolve`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.resolve(self, ref)

    def latest(self, kind: str | None = None) -> Manifest | None:
        """The newest usable backup of ``kind``, or None
        (:func:`pgsafe.repo.catalog_store.latest`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.latest(self, kind)

    def pin(self, ref: str, keep: bool = True) -> Manifest:
        """Pin a backup so that ``expire`` never removes it, or release the pin
        (:func:`pgsafe.repo.catalog_store.pin`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.pin(self, ref, keep)

    def save(self, manifest: Manifest) -> None:
        key = self.object_key(manifest.id, "manifest.json")
        self.storage.put(key, [catalog.encode(manifest)], overwrite=True)

    def new_id(self, when: datetime, *parts: str) -> str:
        """A new backup id (:func:`pgsafe.repo.catalog_store.new_id`)."""
        from pgsafe.repo import catalog_store

        return catalog_store.new_id(self, when, *parts)

    def delete_backup(self, backup_id: str) -> None:
        """Remove a backup: its manifest first (so it stops being listed), then objects."""
        prefix = self.backup_prefix(backup_id)
        self.storage.delete(f"{prefix}/manifest.json")
        for key in list(self.storage.list(prefix)):
            self.storage.delete(key)
