"""``wal-get``: copy one archived WAL file to where PostgreSQL asks (lean).

The object is looked up under the repository's own suffix first (one request), then,
only when that misses, by listing its folder for any other codec suffix (a repository
whose codec changed, or WAL archived before codecs).  It is decoded with the pipeline
its suffixes name (strict: damage is an error, never a short file).  With several
repositories each is tried in turn, and a copy that is missing or damaged in one is
read from the next; every such fallback is added to ``repo.notes``.

A file not in the archive is an ordinary answer (PostgreSQL probes past the end of the
archive and for history files of future timelines): :func:`get` returns False.
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from pgsafe.errors import BadInput, NotFound, OperationFailed, VerificationFailed
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.base import Storage
from pgsafe.wal import layout, names


def _members(repo: Repository) -> list[tuple[str, Storage]]:
    from pgsafe.repo.storage.mirror import MirrorStorage

    if isinstance(repo.storage, MirrorStorage):
        return [(m.name, m.storage) for m in repo.storage.members]
    return [("", repo.storage)]


def find(storage: Storage, server: str, wal: names.WalName, suffix: str) -> tuple[str, BinaryIO]:
    """``(key, open stream)`` of ``wal`` in ``storage``; NotFound when it is not there."""
    key = layout.wal_key(server, wal, suffix)
    try:
        return key, storage.open(key)
    except NotFound:
        pass
    present = set(storage.list(layout.wal_folder(server, wal)))
    for other in layout.all_suffixes(suffix)[1:]:
        k = layout.wal_key(server, wal, other)
        if k in present:
            try:
                return k, storage.open(k)
            except NotFound:
                continue
    raise NotFound(f"{wal.name} is not archived")


def _note(repo: Repository, text: str) -> None:
    from pgsafe.repo.storage.mirror import MirrorStorage

    if isinstance(repo.storage, MirrorStorage):
        repo.storage.notes.append(text)


def _decode_into(repo: Repository, key: str, src: BinaryIO, fd: int, what: str,
                 hasher: hashlib._Hash | None) -> None:  # fmt: skip
    """Decode ``src`` into the descriptor ``fd`` from its start (what an earlier,
    failed attempt wrote is cut off), feeding ``hasher`` the plaintext."""
    decoder = repo.decoder(key.rsplit("/", 1)[-1])
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    with src:
        for piece in decoder.decode(src, what=what):
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
            if hasher is not None:
                hasher.update(piece)


def decode_into(
    repo: Repository, name: str, fd: int, *, digest: bool = False
) -> tuple[bool, str | None]:
    """Write the plaintext of the archived ``name`` into the descriptor ``fd`` (a new,
    empty file): ``(found, sha256)``, found False when it is not archived, the sha256
    of what was written when ``digest``.  With several repositories a copy that is
    missing or damaged in one is read from the next (noted in ``repo.notes``).

    Raises BadInput (exit 2) for a missing or wrong key, VerificationFailed when every
    copy is damaged, OSError when ``fd`` cannot be written.
    """
    wal = names.parse(name)
    if wal is None:
        raise BadInput(f"{name!r} is not a WAL file name", hint="restore_command passes %f %p")
    suffix = repo.encoder().suffix
    members = _members(repo)
    problems: list[str] = []
    damage: VerificationFailed | None = None
    for label, storage in members:
        try:
            key, src = find(storage, repo.server, wal, suffix)
        except NotFound:
            problems.append(f"missing in {label}")
            continue
        h = hashlib.sha256() if digest else None
        try:
            _decode_into(repo, key, src, fd, name, h)
        except VerificationFailed as exc:
            damage = exc
            problems.append(f"damaged in {label}")
            continue
        if label and problems:
            _note(repo, f"{name}: read from repository {label} ({'; '.join(problems)})")
        return True, (h.hexdigest() if h is not None else None)
    if damage is not None:
        if len(members) > 1:
            raise VerificationFailed(
                f"no valid copy of {name}: " + "; ".join(problems), hint=damage.hint
            )
        raise damage
    return False, None


def get(repo: Repository, name: str, dest: str) -> bool:
    """Write the archived ``name`` to ``dest`` (atomically); False when it is not archived.

    Raises BadInput (exit 2) for a missing or wrong key, VerificationFailed when every
    copy is damaged, OperationFailed when the destination cannot be written.
    """
    folder = os.path.dirname(os.path.abspath(dest))
    tmp = os.path.join(folder, f".pgsafe-{os.path.basename(dest)}.{os.urandom(4).hex()}")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)  # fmt: skip
        except OSError as exc:
            raise OperationFailed(f"cannot restore {name} to {dest}: {exc.strerror}") from None
        try:
            found, _ = decode_into(repo, name, fd)
            if found:
                os.fsync(fd)
        except OSError as exc:
            raise OperationFailed(f"cannot restore {name} from {repo.storage.url}: {exc}") from None
        finally:
            os.close(fd)
        if found:
            os.replace(tmp, dest)
        return found
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
