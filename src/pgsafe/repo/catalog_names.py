"""The grammar of names that come out of a catalog: backup ids and object names.

Everything read from a repository is untrusted input (whoever can write the repository
can write its manifests, and the checksum of a manifest has no key).  A backup id names
a folder of the repository and appears in messages; an object name becomes a storage
key and, on export and restore, a file name.  Both are checked here, as pure functions
with no I/O, when a catalog entry is decoded — and object names again where a file is
created from one (:mod:`pgsafe.confined`), so that a name that slipped past decoding
still cannot leave its destination.
"""

from __future__ import annotations

import re

# What Repository.new_id makes: a UTC stamp, then words of [a-z0-9_], "-" between.
BACKUP_ID_MAX = 200
_BACKUP_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z(?:-[a-z0-9_]{1,64})*")

OBJECT_NAME_MAX = 1024  # characters of the whole name
OBJECT_PART_MAX = 255  # characters of one component (NAME_MAX of most filesystems)
OBJECT_DEPTH_MAX = 8  # components


def backup_id_problem(backup_id: object) -> str | None:
    """Why ``backup_id`` is not an id pgsafe makes, or None when it is one."""
    if not isinstance(backup_id, str):
        return f"the id is a {type(backup_id).__name__}, not a string"
    if len(backup_id) > BACKUP_ID_MAX:
        return f"the id is longer than {BACKUP_ID_MAX} characters"
    if not _BACKUP_ID_RE.fullmatch(backup_id):
        return f"{backup_id!r} is not a pgsafe backup id (YYYYMMDDTHHMMSSZ-words)"
    return None


def _bad_char(text: str) -> str | None:
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF:
            return ch
    return None


def object_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an object of a backup, or None when it can.

    An object name is relative and ``/``-separated, at most :data:`OBJECT_DEPTH_MAX`
    components of at most :data:`OBJECT_PART_MAX` characters each; no component is
    empty, ``.`` or ``..``; no character is a control character (NUL, newline, ESC...)
    or a lone surrogate; and the name is at most :data:`OBJECT_NAME_MAX` characters.
    """
    if not isinstance(name, str):
        return f"the object name is a {type(name).__name__}, not a string"
    if not name:
        return "an object name is empty"
    if len(name) > OBJECT_NAME_MAX:
        return f"an object name is longer than {OBJECT_NAME_MAX} characters"
    bad = _bad_char(name)
    if bad is not None:
        return f"object name {name!r} holds the control character {bad!r}"
    if name.startswith("/"):
        return f"object name {name!r} is absolute"
    if "\\" in name:
        return f"object name {name!r} holds a backslash"
    parts = name.split("/")
    if len(parts) > OBJECT_DEPTH_MAX:
        return f"object name {name!r} has more than {OBJECT_DEPTH_MAX} components"
    for part in parts:
        if part in ("", ".", ".."):
            return f"object name {name!r} has an empty, '.' or '..' component"
        if len(part) > OBJECT_PART_MAX:
            return f"object name {name!r} has a component longer than {OBJECT_PART_MAX}"
    return None


def text_problem(value: str, *, limit: int) -> str | None:
    """Why a catalog string used as a name (server, kind, format...) is unusable."""
    if len(value) > limit:
        return f"it is longer than {limit} characters"
    bad = _bad_char(value)
    if bad is not None:
        return f"it holds the control character {bad!r}"
    return None
