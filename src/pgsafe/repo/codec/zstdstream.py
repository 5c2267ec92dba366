"""zstd for the codec pipeline: bounded-memory compression (multi-threaded for large
objects) and strict decoding, both in standard zstd frames (``zstd -d`` reads them).
:mod:`pgsafe.repo.codec.zstd` keeps the simpler helpers of the first backup commands.

Compression: a stream that fits in one job (4 MiB) is compressed by the calling
thread; a larger one by zstd's worker threads (one per core, up to 8) in jobs of 4 MiB,
which caps zstd's own buffers at about 25 MiB for levels 1-9 (the default job size
grows with the level's window, to hundreds of MiB).  Levels 19-22 need 100-700 MiB
whatever the job size: that is the price of those levels.

Decoding: ``zstandard``'s streaming readers return what they have when the input ends in the
middle of a frame, without an error: a truncated object would decode "successfully"
to a shorter output.  :class:`FrameWalker` follows the frame structure of RFC 8878
(frame headers, block headers, checksums, skippable frames) over the compressed bytes
as they pass, without decompressing, so :func:`decompress` can tell a clean end from a
truncation, and trailing garbage from more frames.  Output comes in pieces of at most
``out_size`` bytes, however well the input compressed (a gigabyte of zeros is a few
kilobytes of zstd).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import IO, cast

import zstandard

from pgsafe.errors import VerificationFailed

EXTENSION = ".zst"
DEFAULT_LEVEL = 3
LEVELS = range(1, 23)
JOB_SIZE = 4 << 20
MAX_THREADS = 8
ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK = 0xFFFFFFF0
_SKIPPABLE_MAGIC = 0x184D2A50
_DID_SIZES = (0, 1, 2, 4)
_FCS_SIZES = (0, 2, 4, 8)


def default_threads() -> int:
    n = min(os.cpu_count() or 1, MAX_THREADS)
    return n if n > 1 else 0


def compress(
    chunks: Iterable[bytes],
    level: int = DEFAULT_LEVEL,
    *,
    threads: int | None = None,
    job_size: int = JOB_SIZE,
) -> Iterator[bytes]:
    """Compress a stream into one zstd frame with a content checksum, yielding output as
    it comes; worker threads only once the stream proves larger than one job."""
    it = iter(chunks)
    head: list[bytes] = []
    seen = 0
    for chunk in it:
        head.append(chunk)
        seen += len(chunk)
        if seen > job_size:
            break
    workers = 0
    if seen > job_size:
        workers = default_threads() if threads is None else threads
    params = zstandard.ZstdCompressionParameters.from_level(
        level, threads=workers, job_size=job_size if workers else 0, write_checksum=True
    )
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    for chunk in itertools.chain(head, it):
        out = cobj.compress(chunk)
        if out:
            yield out
    del head
    yield cobj.flush()


class FrameError(ValueError):
    """The bytes do not follow the zstd frame format."""


class FrameWalker:
    """Tracks where a stream of zstd bytes is in its frame structure."""

    def __init__(self) -> None:
        self.frames = 0
        self._state = "magic"
        self._need = 4
        self._hdr = bytearray()
        self._skip = 0
        self._after_skip = "magic"
        self._checksum = False
        self._last_block = False

    @property
    def at_frame_boundary(self) -> bool:
        """True when every frame fed so far is complete (and at least one was)."""
        return self.frames > 0 and self._state == "magic" and not self._hdr and not self._skip

    def feed(self, data: bytes | memoryview) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                pos += take
                if not self._skip:
                    self._enter(self._after_skip)
                continue
            take = min(self._need - len(self._hdr), n - pos)
            self._hdr += data[pos : pos + take]
            pos += take
            if len(self._hdr) == self._need:
                field = bytes(self._hdr)
                self._hdr.clear()
                self._on_field(field)

    def _enter(self, state: str) -> None:
        """Go to ``state``; ``block-done`` and ``checksum`` resolve to the next real one."""
        if state == "block-done":
            state = (
                ("checksum" if self._checksum else "frame-done") if self._last_block else "block"
            )
        if state == "checksum":
            self._skip, self._after_skip = 4, "frame-done"
            return
        if state == "frame-done":
            self.frames += 1
            state = "magic"
        self._state = state
        self._need = {"magic": 4, "skipsize": 4, "fhd": 1, "block": 3}.get(state, self._need)

    def _skip_then(self, count: int, then: str) -> None:
        if count:
            self._skip, self._after_skip = count, then
        else:
            self._enter(then)

    def _on_field(self, field: bytes) -> None:
        state = self._state
        if state == "magic":
            magic = int.from_bytes(field, "little")
            if magic == ZSTD_MAGIC:
                self._enter("fhd")
            elif magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                self._enter("skipsize")
            else:
                raise FrameError("not a zstd frame (bad magic number)")
        elif state == "skipsize":
            self._skip_then(int.from_bytes(field, "little"), "frame-done")
        elif state == "fhd":
            d = field[0]
            if d & 0x08:
                raise FrameError("reserved bit set in the frame header")
            single = bool(d & 0x20)
            self._checksum = bool(d & 0x04)
            fcs = _FCS_SIZES[d >> 6] or (1 if single else 0)
            rest = (0 if single else 1) + _DID_SIZES[d & 3] + fcs
            self._state, self._need = "hdrrest", rest
            if not rest:
                self._enter("block")
        elif state == "hdrrest":
            self._enter("block")
        elif state == "block":
            h = int.from_bytes(field, "little")
            self._last_block = bool(h & 1)
            btype, size = (h >> 1) & 3, h >> 3
            if btype == 3:
                raise FrameError("reserved block type")
            if size > 128 * 1024:
                raise FrameError("block larger than 128 KiB")
            self._skip_then(1 if btype == 1 else size, "block-done")


class _Source:
    """A ``read(n)`` face over an iterator of chunks that shows every byte to a walker."""

    def __init__(self, chunks: Iterable[bytes], walker: FrameWalker) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self._walker = walker

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return b""
        if n < 0 or n >= len(self._buf):
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        self._walker.feed(out)
        return out

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def decompress(
    chunks: Iterable[bytes], *, what: str = "the object", out_size: int = 1 << 20
) -> Iterator[bytes]:
    """Decompress one or more zstd frames; :class:`VerificationFailed` when the data is
    damaged (bad checksum, bad structure), truncated, or followed by other bytes."""
    walker = FrameWalker()
    source = _Source(chunks, walker)
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(IO[bytes], source), read_size=1 << 20, read_across_frames=True, closefd=False
    )
    try:
        while True:
            out = reader.read(out_size)
            if not out:
                break
            yield out
        source.drain()
    except (zstandard.ZstdError, FrameError) as exc:
        raise VerificationFailed(f"{what} is damaged: zstd {exc}") from None
    if not walker.at_frame_boundary:
        raise VerificationFailed(f"{what} is damaged: zstd data is truncated")
