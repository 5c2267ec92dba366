"""The stem of a logical backup's object names, made from a database's name.

A database may be named anything PostgreSQL accepts — ``a/b``, ``..``, a newline, an
escape sequence — but an object name must be a plain relative file name (see
:func:`pgsafe.repo.catalog_names.object_name_problem`).  An ordinary name is its own
stem, so every backup made before this module reads as it did; any other name is
made safe (``/``, ``\\``, control characters and a leading dot become ``_``, the length
is bounded) with a short hash of the real name, so two such names never share a stem.
The real name is kept in the catalog (``database``); the stem only names files.
"""

from __future__ import annotations

import hashlib
import re

_ORDINARY = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,99}$")
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def stem(dbname: str) -> str:
    """The file-name stem for ``dbname`` (itself when it is an ordinary name)."""
    if _ORDINARY.match(dbname) and dbname.isprintable() and ".." not in dbname:
        return dbname
    safe = _UNSAFE.sub("_", dbname).lstrip(".")[:80] or "db"
    safe = safe.encode("utf-8", "replace").decode("utf-8")
    digest = hashlib.sha256(dbname.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}-{digest}"
