"""Encryption at rest in the age v1 format (https://age-encryption.org/v1), streamed.

What lands in the repository is a standard binary age file: ``age -d -i KEY`` (or
``age -d`` with the passphrase) decrypts it.  Two kinds of recipients:

* **X25519** public keys (``age1...``); the restoring side holds the identity.
* a **passphrase** (the ``scrypt`` recipient, alone in its header, as the spec demands).

Why our own implementation on top of ``cryptography`` rather than a binding: the
payload must stream with bounded memory (WAL and base backups of any size go through
generators), and we need to tell a wrong key (exit 2) from a damaged object (exit 3).
Of the libraries on PyPI, ``pyrage`` 1.4 (bindings of rage) offers passphrase
encryption only on whole ``bytes`` (``pyrage.passphrase.encrypt/decrypt``) and a
blocking ``encrypt_io(reader, writer)`` for X25519 only; ``age`` 0.5.1 (pure Python,
alpha, last release 2023) builds the whole ciphertext in memory by ``+=``.  The format
itself is small: an HMAC'd text header that wraps a 16-byte file key for each
recipient, then the STREAM construction: 64 KiB chunks of ChaCha20-Poly1305 with a
counter nonce and a last-chunk flag.  The primitives (X25519, HKDF-SHA256,
ChaCha20-Poly1305, scrypt, HMAC) are ``cryptography``'s (OpenSSL).  The tests check
interoperability both ways with the stock ``age`` CLI (Go) and with ``pyrage`` (Rust).

Errors: no identity or passphrase that opens the header is a :class:`BadInput`
(exit 2) -- a wrong key, or a damaged recipient line, which cryptography cannot tell
apart; every later failure (header MAC, any payload chunk, truncation, trailing bytes)
is :class:`VerificationFailed` (exit 3).  Plaintext of a chunk is released only after
its tag checked out; a damaged object may still have yielded its earlier good chunks,
so callers write to a temporary place and keep it only when the stream ends cleanly.

Passphrase cost: each object pays one scrypt both ways.  age's CLI uses work factor 18
(~1.5 s and 256 MiB here); we default to 15 (~0.1 s, 32 MiB) because ``wal-push`` and
``wal-get`` run once per 16 MB segment.  ``age -d`` accepts any factor up to 22.
X25519 costs a fraction of a millisecond and is the better choice for busy archives.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pgsafe.errors import BadInput, VerificationFailed
from pgsafe.repo.keys import (
    ENV_IDENTITY_FILE,
    ENV_PASSPHRASE,
    ENV_PASSPHRASE_FILE,
    Secret,
    X25519Identity,
    X25519Recipient,
)

EXTENSION = ".age"
INTRO = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024
TAG = 16
CIPHER_CHUNK = CHUNK + TAG
DEFAULT_WORK_FACTOR = 15
MAX_WORK_FACTOR = 22
MAX_HEADER = 64 * 1024
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)


# -- small primitives ----------------------------------------------------------------
def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    """Strict unpadded standard base64 (canonical encodings only)."""
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise _HeaderError("bad base64") from None
    if _b64(data) != text:
        raise _HeaderError("non-canonical base64")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _wrap_lines(body: bytes) -> bytes:
    text = _b64(body)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")
    return b"\n".join(lines) + b"\n"


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class _HeaderError(Exception):
    """The header is malformed (turned into VerificationFailed with the object's name)."""


# -- stanzas ---------------------------------------------------------------------------
def _x25519_stanza(recipient: X25519Recipient, file_key: bytes) -> bytes:
    eph = X25519PrivateKey.generate()
    share = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        shared = eph.exchange(recipient.key())
    except ValueError:
        raise BadInput(f"age recipient {recipient} is not a usable X25519 key") from None
    wrap_key = _hkdf(shared, share + recipient.public, _X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _wrap_lines(body)


def _scrypt_key(passphrase: Secret, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_SALT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase.reveal())


def _scrypt_stanza(passphrase: Secret, file_key: bytes, log_n: int) -> bytes:
    salt = os.urandom(16)
    body = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).encrypt(
        _ZERO_NONCE, file_key, None
    )
    return b"-> scrypt " + _b64(salt) + b" " + str(log_n).encode() + b"\n" + _wrap_lines(body)


# -- encryption ------------------------------------------------------------------------
def encrypt(
    chunks: Iterable[bytes],
    *,
    recipients: Sequence[X25519Recipient] = (),
    passphrase: Secret | None = None,
    work_factor: int = DEFAULT_WORK_FACTOR,
) -> Iterator[bytes]:
    """Encrypt a stream to X25519 ``recipients`` or to a ``passphrase`` (exactly one kind).

    Memory stays at about one input chunk plus 64 KiB, whatever the stream's length.
    """
    if (passphrase is None) == (not recipients):
        raise BadInput("age encryption needs either recipients or a passphrase (not both)")
    if not 1 <= work_factor <= MAX_WORK_FACTOR:
        raise BadInput(f"scrypt work factor must be between 1 and {MAX_WORK_FACTOR}")
    file_key = os.urandom(16)
    if passphrase is not None:
        stanzas = _scrypt_stanza(passphrase, file_key, work_factor)
    else:
        stanzas = b"".join(_x25519_stanza(r, file_key) for r in recipients)
    header = INTRO + stanzas + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    yield header + b" " + _b64(mac) + b"\n" + nonce

    buf = bytearray()
    counter = 0
    for chunk in chunks:
        if not chunk:
            continue
        buf += chunk
        if len(buf) <= CHUNK:
            continue
        out: list[bytes] = []
        view = memoryview(buf)
        pos = 0
        while len(buf) - pos > CHUNK:  # more follows: this chunk is not the last
            out.append(aead.encrypt(_nonce(counter, False), view[pos : pos + CHUNK], None))
            counter += 1
            pos += CHUNK
        view.release()
        del buf[:pos]
        yield b"".join(out)
    yield aead.encrypt(_nonce(counter, True), bytes(buf), None)


# -- decryption ------------------------------------------------------------------------
def _split_header(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``(header up to '---', mac, rest)`` once the header's end is in ``data``."""
    pos = data.find(b"\n---")
    while pos != -1:
        line_end = data.find(b"\n", pos + 1)
        if line_end == -1:
            return None
        line = data[pos + 1 : line_end]
        if line == b"---" or line.startswith(b"--- "):
            if not line.startswith(b"--- "):
                raise _HeaderError("no MAC")
            return data[: pos + 4], _unb64(line[4:]), data[line_end + 1 :]
        pos = data.find(b"\n---", pos + 1)
    return None


def _parse_stanzas(header: bytes) -> list[tuple[list[bytes], bytes]]:
    """The recipient stanzas of a header (without its '---' line)."""
    if not header.startswith(INTRO):
        raise _HeaderError("not an age v1 file")
    lines = header[len(INTRO) :].split(b"\n")
    if lines[-1] != b"---":
        raise _HeaderError("malformed header end")
    lines = lines[:-1]
    stanzas: list[tuple[list[bytes], bytes]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(b"-> "):
            raise _HeaderError("malformed recipient line")
        args = line[3:].split(b" ")
        if not args or any(not a for a in args):
            raise _HeaderError("malformed recipient line")
        i += 1
        body = b""
        while True:
            if i >= len(lines):
                raise _HeaderError("recipient body not terminated")
            part = lines[i]
            i += 1
            if len(part) > 64:
                raise _HeaderError("recipient body line too long")
            body += part
            if len(part) < 64:
                break
        stanzas.append((args, _unb64(body)))
    if not stanzas:
        raise _HeaderError("no recipients")
    return stanzas


def _unwrap(
    stanzas: list[tuple[list[bytes], bytes]],
    identities: Sequence[X25519Identity],
    passphrase: Secret | None,
    what: str,
    max_work_factor: int,
) -> bytes:
    kinds = {args[0] for args, _ in stanzas}
    if b"scrypt" in kinds:
        if len(stanzas) != 1:
            raise _HeaderError("an scrypt recipient must be alone")
        (args, body) = stanzas[0]
        if len(args) != 3 or not args[2].isdigit() or args[2].startswith(b"0"):
            raise _HeaderError("malformed scrypt recipient")
        salt, log_n = _unb64(args[1]), int(args[2])
        if len(salt) != 16 or len(body) != 32:
            raise _HeaderError("malformed scrypt recipient")
        if passphrase is None:
            raise BadInput(
                f"{what} is encrypted with a passphrase and none was given",
                hint=f"set {ENV_PASSPHRASE} or {ENV_PASSPHRASE_FILE}",
            )
        if log_n > max_work_factor:
            raise BadInput(
                f"{what} asks for scrypt work factor {log_n}, above the limit {max_work_factor}"
            )
        try:
            return ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).decrypt(
                _ZERO_NONCE, body, None
            )
        except InvalidTag:
            raise BadInput(
                f"wrong passphrase for {what} (or its header is damaged)",
                hint=f"check {ENV_PASSPHRASE} / {ENV_PASSPHRASE_FILE}; nothing was changed",
            ) from None
    x_stanzas = []
    for args, body in stanzas:
        if args[0] == b"X25519":
            if len(args) != 2 or len(body) != 32:
                raise _HeaderError("malformed X25519 recipient")
            share = _unb64(args[1])
            if len(share) != 32:
                raise _HeaderError("malformed X25519 recipient")
            x_stanzas.append((share, body))
    if not x_stanzas:
        kinds_text = ", ".join(sorted(k.decode("ascii", "replace") for k in kinds))
        raise BadInput(f"{what} is encrypted to recipients pgsafe does not support ({kinds_text})")
    if not identities:
        hint = f"set {ENV_IDENTITY_FILE} to the identity file (age-keygen) of a recipient"
        if passphrase is not None:
            hint += "; this object was not encrypted with a passphrase"
        raise BadInput(f"{what} is encrypted to X25519 recipients and no identity was given", hint)
    for ident in identities:
        key = ident.key()
        for share, body in x_stanzas:
            try:
                shared = key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:
                continue
            wrap_key = _hkdf(shared, share + ident.recipient.public, _X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
            except InvalidTag:
                continue
    raise BadInput(
        f"none of the age identities given opens {what} (wrong key, or its header is damaged)",
        hint=f"check {ENV_IDENTITY_FILE}: it must hold the identity of one of the recipients",
    )


def _read_header(
    it: Iterator[bytes],
    identities: Sequence[X25519Identity],
    passphrase: Secret | None,
    what: str,
    max_work_factor: int,
) -> tuple[bytes, bytes]:
    """Read an age header from ``it``: the file key it wraps for one of our keys (its
    MAC checked), and the bytes read past the header."""
    head = b""
    split = None
    try:
        for chunk in it:
            head += chunk
            split = _split_header(head)
            if split is not None or len(head) > MAX_HEADER:
                break
        if split is None:
            why = "header too long" if len(head) > MAX_HEADER else "header truncated"
            raise _HeaderError(why if head.startswith(INTRO[:8]) else "not an age file")
        header, mac, rest = split
        file_key = _unwrap(_parse_stanzas(header), identities, passphrase, what, max_work_factor)
        expected = hmac.new(_hkdf(file_key, b"", b"header"), header, sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise _HeaderError("header MAC does not match")
    except _HeaderError as exc:
        raise VerificationFailed(f"{what} is damaged: age {exc}") from None
    return file_key, rest


def decrypt(
    chunks: Iterable[bytes],
    *,
    identities: Sequence[X25519Identity] = (),
    passphrase: Secret | None = None,
    what: str = "the object",
    max_work_factor: int = MAX_WORK_FACTOR,
) -> Iterator[bytes]:
    """Decrypt an age stream, yielding plaintext as each chunk's tag checks out.

    :class:`BadInput` when no key given opens it (before any plaintext is yielded);
    :class:`VerificationFailed` when it is damaged, truncated or extended.
    """
    it = iter(chunks)
    file_key, rest = _read_header(it, identities, passphrase, what, max_work_factor)

    buf = bytearray()
    counter = 0
    aead: ChaCha20Poly1305 | None = None

    def damaged(why: str) -> VerificationFailed:
        return VerificationFailed(
            f"{what} is damaged: age payload {why}",
            hint="use another copy of this object (another repository)",
        )

    for chunk in itertools.chain((rest,), it):  # the payload: what follows the header
        buf += chunk
        if aead is None:
            if len(buf) < 16:
                continue
            aead = ChaCha20Poly1305(_hkdf(file_key, bytes(buf[:16]), b"payload"))
            del buf[:16]
        if len(buf) <= CIPHER_CHUNK:
            continue
        out: list[bytes] = []
        view = memoryview(buf)
        pos = 0
        while len(buf) - pos > CIPHER_CHUNK:  # more follows: not the last chunk
            try:
                out.append(
                    aead.decrypt(_nonce(counter, False), view[pos : pos + CIPHER_CHUNK], None)
                )
            except InvalidTag:
                view.release()
                raise damaged(f"chunk {counter} fails its authentication") from None
            counter += 1
            pos += CIPHER_CHUNK
        view.release()
        del buf[:pos]
        yield b"".join(out)
    if aead is None:
        if len(buf) < 16:
            raise damaged("is truncated (no nonce)")
        aead = ChaCha20Poly1305(_hkdf(file_key, bytes(buf[:16]), b"payload"))
        del buf[:16]
    if len(buf) < TAG:
        raise damaged("is truncated")
    if len(buf) == TAG and counter > 0:
        raise damaged("ends with an empty chunk")
    try:
        yield aead.decrypt(_nonce(counter, True), bytes(buf), None)
    except InvalidTag:
        raise damaged(f"last chunk {counter} fails its authentication (truncated?)") from None
