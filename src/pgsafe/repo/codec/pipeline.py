"""The codec pipeline: compression then (optionally) age encryption, as one stream.

A :class:`CodecSpec` says what a repository does to objects (it holds no secret and can
go into configs and manifests); a :class:`Pipeline` applies it with the keys at hand::

    pipe = Pipeline(CodecSpec("zstd", 3, AgeSpec("x25519")), load_age_keys())
    storage.put(name + pipe.suffix, pipe.encode(chunks))
    with storage.open(name + pipe.suffix) as f:
        for piece in pipe.decode(f, what=name):
            ...

Stored objects keep standard framing, one standard layer per suffix: ``.zst`` is read
by ``zstd -d``, ``.lz4`` by ``lz4 -d``, ``.gz`` by ``gzip -d``, ``.age`` by ``age -d``
(so ``x.zst.age`` is ``age -d x.zst.age | zstd -d``).  Everything streams: memory stays
bounded whatever the object's size (a few MiB; about 25 MiB more when zstd uses its
worker threads on large objects, see :mod:`pgsafe.repo.codec.zstdstream`).  Every
codec runs in C code that releases the GIL.

Errors while decoding: :class:`~pgsafe.errors.BadInput` (exit 2) when the key is
missing or wrong, :class:`~pgsafe.errors.VerificationFailed` (exit 3) when the object
is damaged, truncated or extended.  A decode that fails may already have yielded
earlier pieces: write them somewhere temporary and keep them only on a clean end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal, cast, get_args

from pgsafe.errors import BadInput

if TYPE_CHECKING:
    from pgsafe.repo.keys import AgeKeys

# Each compression module (and the library behind it: zstandard, lz4, zlib) and the
# keys module are imported on first use, not here: wal-push into a plain zstd
# repository loads zstandard only (tests/unit/test_wal_lean.py holds that line).

Compression = Literal["zstd", "lz4", "gzip", "none"]
AgeMode = Literal["x25519", "passphrase"]
COMPRESSIONS: tuple[Compression, ...] = get_args(Compression)
# the age module (and cryptography's primitives) is imported only when a stream is
# encrypted or decrypted: wal-push without encryption does not pay for it
AGE_EXTENSION = ".age"
AGE_DEFAULT_WORK_FACTOR = 15
AGE_MAX_WORK_FACTOR = 22
READ_SIZE = 1 << 20

# copies of each compression module's EXTENSION, DEFAULT_LEVEL and LEVELS, so that
# naming and validating do not import the modules (tests/unit/test_codec_pipeline.py
# checks that they agree)
_SUFFIX: dict[Compression, str] = {"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz", "none": ""}
_DEFAULT_LEVEL: dict[Compression, int | None] = {"zstd": 3, "lz4": 0, "gzip": 6, "none": None}
_LEVELS: dict[Compression, range] = {
    "zstd": range(1, 23),
    "lz4": range(0, 13),
    "gzip": range(1, 10),
    "none": range(0),
}


@dataclass(frozen=True)
class AgeSpec:
    """How objects are encrypted: to X25519 recipients, or with a passphrase (scrypt).

    Which recipients and which passphrase is not part of the spec: those come from
    :func:`pgsafe.repo.keys.load_age_keys` when a :class:`Pipeline` is made.
    """

    mode: AgeMode = "x25519"
    work_factor: int = AGE_DEFAULT_WORK_FACTOR

    def __post_init__(self) -> None:
        if self.mode not in get_args(AgeMode):
            raise BadInput(
                f"unknown age encryption mode {self.mode!r}", hint="use x25519 or passphrase"
            )
        if not 10 <= self.work_factor <= AGE_MAX_WORK_FACTOR:
            raise BadInput(
                f"scrypt work factor {self.work_factor} is out of range",
                hint=f"use 10..{AGE_MAX_WORK_FACTOR} (age's CLI uses 18)",
            )


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{value!r} is not a whole number")
    return int(value)


@dataclass(frozen=True)
class CodecSpec:
    """What a repository does to each object: compression (and its level), encryption."""

    compression: Compression = "zstd"
    level: int | None = None
    encryption: AgeSpec | None = None

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise BadInput(
                f"unknown compression {self.compression!r}",
                hint="use one of " + ", ".join(COMPRESSIONS),
            )
        if self.level is not None:
            levels = _LEVELS[self.compression]
            if self.level not in levels:
                where = f"{levels.start}..{levels.stop - 1}" if levels else "no level"
                raise BadInput(
                    f"compression level {self.level} is not valid for {self.compression}",
                    hint=f"{self.compression} takes {where}",
                )

    @property
    def effective_level(self) -> int | None:
        return self.level if self.level is not None else _DEFAULT_LEVEL[self.compression]

    @property
    def suffix(self) -> str:
        return _SUFFIX[self.compression] + (AGE_EXTENSION if self.encryption else "")

    @property
    def label(self) -> str:
        """How objects are stored, for the catalog: ``zstd``, ``lz4+age``, ``none``..."""
        return self.compression + ("+age" if self.encryption else "")

    def to_dict(self) -> dict[str, object]:
        """A JSON-able description (no secret in it), e.g. for a manifest."""
        enc = self.encryption
        return {
            "compression": self.compression,
            "level": self.effective_level,
            "encryption": None
            if enc is None
            else {"format": "age", "mode": enc.mode, "work_factor": enc.work_factor},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> CodecSpec:
        """From :meth:`to_dict`'s JSON (a repository marker's ``codec``); BadInput,
        TypeError or ValueError for one of the wrong shape."""
        enc = doc.get("encryption")
        spec = None
        if enc:
            if not isinstance(enc, Mapping):
                raise TypeError("encryption is not an object")
            mode, work_factor = enc.get("mode", "x25519"), enc.get("work_factor")
            if not isinstance(mode, str):
                raise TypeError("the encryption mode is not a string")
            spec = AgeSpec(
                mode=cast(AgeMode, mode),  # checked by AgeSpec
                work_factor=AGE_DEFAULT_WORK_FACTOR if work_factor is None else _int(work_factor),
            )
        level = doc.get("level")
        compression = doc.get("compression", "zstd")
        if not isinstance(compression, str):
            raise TypeError("the compression is not a string")
        return cls(
            cast(Compression, compression),  # checked by CodecSpec
            None if level is None else _int(level),
            spec,
        )

    @classmethod
    def parse(
        cls, compression: str, level: int | None = None, encryption: str | None = None
    ) -> CodecSpec:
        """From config words: ``compression`` ``zstd|lz4|gzip|none``; ``encryption``
        ``none``/empty, ``age`` or ``age-x25519`` (recipients), ``age-passphrase``."""
        enc: AgeSpec | None
        word = (encryption or "none").strip().lower()
        if word in ("", "none", "off", "no"):
            enc = None
        elif word in ("age", "age-x25519", "x25519"):
            enc = AgeSpec("x25519")
        elif word in ("age-passphrase", "passphrase", "age-scrypt"):
            enc = AgeSpec("passphrase")
        else:
            raise BadInput(
                f"unknown encryption {encryption!r}", hint="use none, age or age-passphrase"
            )
        return cls(cast(Compression, compression.strip().lower()), level, enc)


def split_suffix(name: str) -> tuple[str, CodecSpec]:
    """``("base", spec)`` of an object name such as ``base.zst.age``, from its suffixes.

    The spec's level is unknown (None) and an encryption's mode is a guess: decoding
    does not need either (the age header says which recipient type it holds).
    """
    encryption = None
    if name.endswith(AGE_EXTENSION):
        name, encryption = name[: -len(AGE_EXTENSION)], AgeSpec()
    comp: Compression
    for comp in ("zstd", "lz4", "gzip"):
        ext = _SUFFIX[comp]
        if name.endswith(ext):
            return name[: -len(ext)], CodecSpec(comp, None, encryption)
    return name, CodecSpec("none", None, encryption)


_Compressor = Callable[[Iterable[bytes], int], Iterator[bytes]]


def _compressor(compression: Compression) -> _Compressor:
    if compression == "zstd":
        from pgsafe.repo.codec import zstdstream

        return zstdstream.compress
    if compression == "lz4":
        from pgsafe.repo.codec import lz4

        return lz4.compress
    if compression == "gzip":
        from pgsafe.repo.codec import gzip

        return gzip.compress
    from pgsafe.repo.codec import none

    return none.compress


def _decompressor(compression: Compression) -> Callable[..., Iterator[bytes]]:
    if compression == "zstd":
        from pgsafe.repo.codec import zstdstream

        return zstdstream.decompress
    if compression == "lz4":
        from pgsafe.repo.codec import lz4

        return lz4.decompress
    if compression == "gzip":
        from pgsafe.repo.codec import gzip

        return gzip.decompress
    from pgsafe.repo.codec import none

    return none.decompress


class Pipeline:
    """Encode and decode streams for one :class:`CodecSpec` with the keys at hand."""

    def __init__(self, spec: CodecSpec, keys: AgeKeys | None = None) -> None:
        self.spec = spec
        self._given_keys = keys

    @property
    def _keys(self) -> AgeKeys:
        if self._given_keys is None:  # empty keys, made only when asked for
            from pgsafe.repo.keys import AgeKeys

            self._given_keys = AgeKeys()
        return self._given_keys

    def __repr__(self) -> str:
        return f"Pipeline({self.spec!r}, keys from {list(self._keys.sources)!r})"

    @property
    def suffix(self) -> str:
        return self.spec.suffix

    def check_encode(self) -> None:
        """Raise :class:`BadInput` now if ``encode`` would lack a key (nothing written)."""
        enc = self.spec.encryption
        if enc is None:
            return
        from pgsafe.repo.keys import (
            ENV_IDENTITY_FILE,
            ENV_PASSPHRASE,
            ENV_PASSPHRASE_FILE,
            ENV_RECIPIENTS,
            ENV_RECIPIENTS_FILE,
        )

        if enc.mode == "passphrase" and self._keys.passphrase is None:
            raise BadInput(
                "the repository encrypts with a passphrase and none was given",
                hint=f"set {ENV_PASSPHRASE} or {ENV_PASSPHRASE_FILE}",
            )
        if enc.mode == "x25519" and not self._keys.encryption_recipients():
            raise BadInput(
                "the repository encrypts to age recipients and none was given",
                hint=f"set {ENV_RECIPIENTS}, {ENV_RECIPIENTS_FILE} or {ENV_IDENTITY_FILE}",
            )

    def check_decode(self) -> None:
        """Raise :class:`BadInput` now if no key at all could decrypt (nothing read)."""
        if self.spec.encryption is not None and (
            self._keys.passphrase is None and not self._keys.identities
        ):
            from pgsafe.repo.keys import ENV_IDENTITY_FILE, ENV_PASSPHRASE_FILE

            raise BadInput(
                "the repository is encrypted and no identity or passphrase was given",
                hint=f"set {ENV_IDENTITY_FILE} (X25519) or {ENV_PASSPHRASE_FILE}",
            )

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The stored form of a plaintext stream (keys are checked before this returns)."""
        self.check_encode()
        level = self.spec.effective_level
        out = _compressor(self.spec.compression)(chunks, 0 if level is None else level)
        enc = self.spec.encryption
        if enc is None:
            return out
        from pgsafe.repo.codec import age

        if enc.mode == "passphrase":
            return age.encrypt(out, passphrase=self._keys.passphrase, work_factor=enc.work_factor)
        return age.encrypt(out, recipients=self._keys.encryption_recipients())

    def decode_chunks(
        self, chunks: Iterable[bytes], *, what: str = "the object"
    ) -> Iterator[bytes]:
        """The plaintext of a stored stream given as chunks (see :meth:`decode`)."""
        return self.decompressor()(self.decrypt_chunks(chunks, what=what), what=what)

    def decrypt_chunks(
        self, chunks: Iterable[bytes], *, what: str = "the object"
    ) -> Iterator[bytes]:
        """The first stage of :meth:`decode_chunks`: the stream decrypted, still
        compressed (the stream itself when the repository does not encrypt)."""
        self.check_decode()
        if self.spec.encryption is None:
            return iter(chunks)
        from pgsafe.repo.codec import age

        return age.decrypt(
            chunks,
            identities=self._keys.identities,
            passphrase=self._keys.passphrase,
            what=what,
        )

    def decompressor(self) -> Callable[..., Iterator[bytes]]:
        """The second stage of :meth:`decode_chunks`: ``f(chunks, what=...)`` decompresses
        (its module is imported now, so it can run in a process that cannot import)."""
        return _decompressor(self.spec.compression)

    def decode(self, stream: BinaryIO, *, what: str = "the object") -> Iterator[bytes]:
        """The plaintext of a stored object, in pieces of at most about 1 MiB."""
        return self.decode_chunks(_read_chunks(stream), what=what)


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(READ_SIZE):
        yield chunk


def pipeline_for(name: str, keys: AgeKeys | None = None) -> Pipeline:
    """A pipeline that decodes the object ``name`` by its suffixes (``.zst.age``...)."""
    return Pipeline(split_suffix(name)[1], keys)
