"""Encryption keys and passphrases: loading them, and keeping them out of sight.

Secrets come from the environment or from files named in it (or passed by the caller,
e.g. from a config file's path settings) and live only in memory:

=============================== ======================================================
``PGSAFE_AGE_PASSPHRASE``       the passphrase itself (scrypt recipient)
``PGSAFE_AGE_PASSPHRASE_FILE``  a file whose first line is the passphrase
``PGSAFE_AGE_RECIPIENTS``       public keys ``age1...``, separated by commas or spaces
``PGSAFE_AGE_RECIPIENTS_FILE``  a file of ``age1...`` lines (``#`` comments allowed)
``PGSAFE_AGE_IDENTITY``         a secret key ``AGE-SECRET-KEY-1...`` itself
``PGSAFE_AGE_IDENTITY_FILE``    an identity file as written by ``age-keygen``
=============================== ======================================================

Nothing here prints, logs or stores a secret: :class:`Secret` and
:class:`X25519Identity` have a ``repr`` that shows no key material, and error messages
name the variable or file, never its content.  Identities also serve as recipients
(their public key), so a machine that holds the identity can both write and read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pgsafe.errors import BadInput
from pgsafe.repo import bech32

if TYPE_CHECKING:  # cryptography is imported when a key is used, not by every command
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

ENV_PASSPHRASE = "PGSAFE_AGE_PASSPHRASE"
ENV_PASSPHRASE_FILE = "PGSAFE_AGE_PASSPHRASE_FILE"
ENV_RECIPIENTS = "PGSAFE_AGE_RECIPIENTS"
ENV_RECIPIENTS_FILE = "PGSAFE_AGE_RECIPIENTS_FILE"
ENV_IDENTITY = "PGSAFE_AGE_IDENTITY"
ENV_IDENTITY_FILE = "PGSAFE_AGE_IDENTITY_FILE"

_RECIPIENT_HRP = "age"
_IDENTITY_HRP = "age-secret-key-"


class Secret:
    """A secret byte string whose ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> str | tuple[object, ...]:  # pickling would copy the secret
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class X25519Recipient:
    """An age X25519 public key (``age1...``): who can read what we encrypt."""

    public: bytes

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = bech32.decode(text.strip())
        except bech32.Bech32Error:
            hrp, data = "", b""
        if hrp != _RECIPIENT_HRP or len(data) != 32:
            raise BadInput(
                f"{_shorten(text)!r} is not an age X25519 recipient",
                hint="recipients are public keys starting with age1 (see age-keygen -y)",
            )
        return cls(data)

    def key(self) -> X25519PublicKey:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        return X25519PublicKey.from_public_bytes(self.public)

    def __str__(self) -> str:
        return bech32.encode(_RECIPIENT_HRP, self.public)

    def __repr__(self) -> str:
        return f"X25519Recipient({self!s})"


class X25519Identity:
    """An age X25519 secret key; its ``repr`` shows only the matching public key."""

    __slots__ = ("_private", "recipient")

    def __init__(self, private: bytes) -> None:
        if len(private) != 32:
            raise BadInput("an age identity must hold 32 bytes of key")
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._private = Secret(private)
        pub = X25519PrivateKey.from_private_bytes(private).public_key()
        self.recipient = X25519Recipient(pub.public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(os.urandom(32))

    @classmethod
    def parse(cls, text: str, *, source: str = "the identity") -> X25519Identity:
        try:
            hrp, data = bech32.decode(text.strip())
        except bech32.Bech32Error:
            hrp, data = "", b""
        if hrp != _IDENTITY_HRP or len(data) != 32:
            raise BadInput(
                f"{source} is not an age X25519 identity",
                hint="identities are secret keys starting with AGE-SECRET-KEY-1 (age-keygen)",
            )
        return cls(data)

    def key(self) -> X25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return X25519PrivateKey.from_private_bytes(self._private.reveal())

    def to_secret_string(self) -> Secret:
        """The ``AGE-SECRET-KEY-1...`` text, wrapped so that it is not shown by accident."""
        return Secret(bech32.encode(_IDENTITY_HRP, self._private.reveal()).upper().encode())

    def __repr__(self) -> str:
        return f"X25519Identity(public={self.recipient!s})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Identity) and other._private == self._private

    def __hash__(self) -> int:
        return hash(self._private)


@dataclass(frozen=True)
class AgeKeys:
    """The key material at hand: what encrypts (passphrase or recipients) and what decrypts
    (passphrase or identities).  ``sources`` names where each came from, for messages."""

    passphrase: Secret | None = None
    recipients: tuple[X25519Recipient, ...] = ()
    identities: tuple[X25519Identity, ...] = ()
    sources: tuple[str, ...] = field(default=())

    def encryption_recipients(self) -> tuple[X25519Recipient, ...]:
        """Explicit recipients, then the public keys of the identities, without repeats."""
        out: list[X25519Recipient] = []
        for r in (*self.recipients, *(i.recipient for i in self.identities)):
            if r not in out:
                out.append(r)
        return tuple(out)

    @property
    def empty(self) -> bool:
        return self.passphrase is None and not self.recipients and not self.identities


def _shorten(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 24 else text[:20] + "..."


def _read_file(path: Path, what: str) -> str:
    try:
        return path.expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise BadInput(f"cannot read {what} {path}: {reason}") from None


def parse_recipients(text: str) -> tuple[X25519Recipient, ...]:
    """Recipients from text: ``age1...`` separated by commas, spaces or lines; ``#`` comments."""
    words: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        words += [w for w in re.split(r"[\s,]+", line) if w]
    return tuple(X25519Recipient.parse(w) for w in words)


def parse_identities(text: str, *, source: str) -> tuple[X25519Identity, ...]:
    """Identities from an ``age-keygen`` file: one ``AGE-SECRET-KEY-1...`` a line, ``#``
    comments and blank lines ignored.  Messages name the line, never its content."""
    out: list[X25519Identity] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(X25519Identity.parse(line, source=f"line {n} of {source}"))
    if not out:
        raise BadInput(f"{source} holds no age identity", hint="create one with age-keygen")
    return tuple(out)


def load_age_keys(
    env: Mapping[str, str] | None = None,
    *,
    passphrase_file: str | Path | None = None,
    recipients: Iterable[str] = (),
    recipients_file: str | Path | None = None,
    identity_file: str | Path | None = None,
) -> AgeKeys:
    """Collect age key material from explicit settings and the ``PGSAFE_AGE_*`` variables.

    Explicit arguments (from a config file or flags) come first; the environment adds to
    them.  Raises :class:`BadInput` on unreadable files, malformed keys, an empty
    passphrase, or a passphrase given twice.  Returns empty :class:`AgeKeys` when nothing
    is configured (the caller decides whether encryption needs it).
    """
    env = os.environ if env is None else env
    sources: list[str] = []

    passphrase: Secret | None = None
    pp_file = passphrase_file or env.get(ENV_PASSPHRASE_FILE) or None
    if env.get(ENV_PASSPHRASE) and pp_file:
        raise BadInput(
            f"both {ENV_PASSPHRASE} and a passphrase file are set",
            hint="give the passphrase one way only",
        )
    if env.get(ENV_PASSPHRASE):
        passphrase = Secret(env[ENV_PASSPHRASE].encode())
        sources.append(ENV_PASSPHRASE)
    elif pp_file:
        text = _read_file(Path(pp_file), "passphrase file")
        first = text.split("\n", 1)[0].rstrip("\r")
        if not first:
            raise BadInput(f"passphrase file {pp_file} is empty")
        passphrase = Secret(first.encode())
        sources.append(f"passphrase file {pp_file}")

    recips: list[X25519Recipient] = [X25519Recipient.parse(r) for r in recipients]
    if recips:
        sources.append("recipients")
    if env.get(ENV_RECIPIENTS):
        recips += parse_recipients(env[ENV_RECIPIENTS])
        sources.append(ENV_RECIPIENTS)
    rfile = recipients_file or env.get(ENV_RECIPIENTS_FILE) or None
    if rfile:
        recips += parse_recipients(_read_file(Path(rfile), "recipients file"))
        sources.append(f"recipients file {rfile}")

    idents: list[X25519Identity] = []
    if env.get(ENV_IDENTITY):
        idents += parse_identities(env[ENV_IDENTITY], source=ENV_IDENTITY)
        sources.append(ENV_IDENTITY)
    ifile = identity_file or env.get(ENV_IDENTITY_FILE) or None
    if ifile:
        text = _read_file(Path(ifile), "identity file")
        idents += parse_identities(text, source=f"identity file {ifile}")
        sources.append(f"identity file {ifile}")

    return AgeKeys(passphrase, tuple(recips), tuple(idents), tuple(sources))
