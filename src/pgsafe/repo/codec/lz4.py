"""lz4 compression of streams, in standard LZ4 frames (``lz4 -d`` reads them).

Frames carry a content checksum, so damage is detected on decoding.  Levels: 0 is
lz4's fast mode (the CLI's default), 3..12 the high-compression mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import lz4.frame

from pgsafe.errors import VerificationFailed

EXTENSION = ".lz4"
DEFAULT_LEVEL = 0
LEVELS = range(0, 13)


def compress(chunks: Iterable[bytes], level: int = DEFAULT_LEVEL) -> Iterator[bytes]:
    """Compress a stream of chunks into one LZ4 frame, yielding output as it comes."""
    comp = lz4.frame.LZ4FrameCompressor(
        compression_level=level,
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        content_checksum=True,
        auto_flush=False,
    )
    yield comp.begin()
    for chunk in chunks:
        if chunk:
            out = comp.compress(chunk)
            if out:
                yield out
    yield comp.flush()


def decompress(
    chunks: Iterable[bytes], *, what: str = "the object", out_size: int = 1 << 20
) -> Iterator[bytes]:
    """Decompress one or more LZ4 frames, in pieces of at most ``out_size`` bytes.

    :class:`VerificationFailed` when the data is damaged, truncated, or followed by
    bytes that are not a frame.
    """
    dec = lz4.frame.LZ4FrameDecompressor()
    started = False
    try:
        for chunk in chunks:
            data = chunk
            while data or not (dec.needs_input or dec.eof):
                started = True
                if dec.eof:  # a frame ended: what follows must be another frame
                    dec = lz4.frame.LZ4FrameDecompressor()
                out = dec.decompress(data, max_length=out_size)
                data = dec.unused_data if dec.eof else b""
                if out:
                    yield out
    except RuntimeError as exc:
        raise VerificationFailed(f"{what} is damaged: lz4 {exc}") from None
    if not started or not dec.eof:
        raise VerificationFailed(f"{what} is damaged: lz4 data is truncated")
