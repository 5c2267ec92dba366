"""zstd compression of streams, in standard zstd frames (``zstd -d`` reads them).

The C library releases the GIL; large streams use zstd's own worker threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import zstandard

EXTENSION = ".zst"
DEFAULT_LEVEL = 3


def _threads() -> int:
    n = os.cpu_count() or 1
    return n if n > 1 else 0


def compress(chunks: Iterable[bytes], level: int = DEFAULT_LEVEL) -> Iterator[bytes]:
    """Compress a stream of chunks into one zstd frame, yielding output as it comes."""
    cctx = zstandard.ZstdCompressor(level=level, threads=_threads(), write_checksum=True)
    cobj = cctx.compressobj()
    for chunk in chunks:
        out = cobj.compress(chunk)
        if out:
            yield out
    tail = cobj.flush()
    if tail:
        yield tail


def compress_bytes(data: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    return bytes(zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data))


def decompress(stream: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Decompress a zstd stream (one or more frames)."""
    dctx = zstandard.ZstdDecompressor()
    yield from dctx.read_to_iter(stream, read_size=chunk_size, write_size=chunk_size)


def decompress_bytes(data: bytes) -> bytes:
    dobj = zstandard.ZstdDecompressor().decompressobj()
    return bytes(dobj.decompress(data))


class DecompressError(Exception):
    pass


ZstdError = zstandard.ZstdError
