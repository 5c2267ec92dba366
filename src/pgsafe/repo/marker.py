"""The repository's own names and its marker's rules (lean: built-in modules only).

Owns: the marker's name and format version, what a marker must look like to be
accepted (it is repository content, so untrusted input), which markers mean "plain
zstd, no keys" (the only ones ``wal-push``'s fast path writes to), and the rule for
server names (a server is a top-level folder: it may not take the marker's name), and
how large a record read from the repository may be (:data:`RECORD_LIMIT`).

:class:`pgsafe.repo.repository.Repository` applies these rules with its error messages;
:mod:`pgsafe.wal.fastpush` applies the same ones to decline anything else.  No
``re``, ``typing`` or ``json`` here: the fast path's launcher imports this module.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Mapping

MARKER = "pgsafe-repo.json"
# The repository format this pgsafe writes and reads (the marker's "format").  The
# catalog's manifests carry pgsafe.repo.catalog.FORMAT_VERSION: a test holds them equal.
FORMAT_VERSION = 1
RECORD_LIMIT = 1 << 20  # a larger marker or server record is damage, never read whole
AGE_ENV_PREFIX = "PGSAFE_AGE_"  # every variable that can hand pgsafe an age key
ZSTD_LEVELS = range(1, 23)  # as pgsafe.repo.codec.pipeline's levels for zstd (a test)

_RESERVED = MARKER.split(".", 1)[0]  # "pgsafe-repo": names the repository's own
_SERVER_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_SERVER_CHARS = _SERVER_FIRST | frozenset("_.-")
_BECH32 = frozenset("qpzry9x8gf2tvdw0s3jn54khce6mua7l")  # age1 + 58 of these


def server_problem(name: str) -> tuple[str, str] | None:
    """``(message, hint)`` saying why ``name`` cannot be a server name, or None.

    A server name is a top-level folder of the repository: 1 to 63 letters, digits,
    ``.``, ``_`` and ``-``, starting with a letter or digit, and not a name the
    repository uses itself (its marker ``pgsafe-repo.json``)."""
    if not (0 < len(name) <= 63 and name[0] in _SERVER_FIRST and _SERVER_CHARS.issuperset(name)):
        return f"bad server name {name!r}", "use letters, digits, '.', '_' and '-' (e.g. main)"
    if name.lower().startswith(_RESERVED):
        return (
            f"bad server name {name!r}: names starting with {_RESERVED!r} are the repository's own",
            "choose another --server (e.g. main)",
        )
    return None


def is_age_recipient(text: object) -> bool:
    """An age X25519 public key as written: ``age1`` and 58 bech32 characters."""
    return (
        isinstance(text, str)
        and len(text) == 62
        and text.startswith("age1")
        and _BECH32.issuperset(text[4:])
    )


def marker_problem(doc: object) -> str | None:
    """Why ``doc`` (the parsed marker) is damaged, or None when its shape is right.

    Unknown keys are allowed (a newer pgsafe may add some); known ones must have their
    types.  Whether the codec is one this pgsafe knows is the codec's own check
    (:meth:`pgsafe.repo.codec.pipeline.CodecSpec.from_dict`)."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    fmt = doc.get("format", 0)
    if type(fmt) is not int or fmt < 0:
        return "format is not a number"
    codec = doc.get("codec") or {}
    if not isinstance(codec, dict) or not isinstance(codec.get("encryption") or {}, dict):
        return "codec is not an object"
    recipients = doc.get("age_recipients", [])
    if not isinstance(recipients, list) or not all(is_age_recipient(r) for r in recipients):
        return "age_recipients is not a list of age public keys"
    return None


def is_newer(doc: Mapping[str, object]) -> bool:
    """Written by a newer pgsafe (a format this one does not know)."""
    fmt = doc.get("format", 0)
    return type(fmt) is int and fmt > FORMAT_VERSION


def keys_possible(doc: Mapping[str, object], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether age keys can play a part: recipients in the marker, or a ``PGSAFE_AGE_*``
    variable set.  When not, there is nothing to load (and nothing to encrypt to)."""
    return bool(doc.get("age_recipients")) or any(k.startswith(AGE_ENV_PREFIX) for k in environ)


def is_plain_zstd(doc: Mapping[str, object]) -> bool:
    """The marker's codec is zstd (at a valid level or the default), unencrypted."""
    codec = doc.get("codec") or {}
    if not isinstance(codec, dict):
        return False
    level = codec.get("level")
    return (
        codec.get("compression", "zstd") == "zstd"
        and not codec.get("encryption")
        and (level is None or (type(level) is int and level in ZSTD_LEVELS))
    )
