"""gzip compression of streams (RFC 1952 members; ``gzip -d`` reads them).

zlib does the work and releases the GIL.  The gzip trailer's CRC-32 and length are
checked on decoding; concatenated members decode as one stream, as ``gzip -d`` does.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from pgsafe.errors import VerificationFailed

EXTENSION = ".gz"
DEFAULT_LEVEL = 6
LEVELS = range(1, 10)
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def compress(chunks: Iterable[bytes], level: int = DEFAULT_LEVEL) -> Iterator[bytes]:
    """Compress a stream of chunks into one gzip member, yielding output as it comes."""
    comp = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()


def decompress(
    chunks: Iterable[bytes], *, what: str = "the object", out_size: int = 1 << 20
) -> Iterator[bytes]:
    """Decompress gzip members, in pieces of at most ``out_size`` bytes.

    :class:`VerificationFailed` when the data is damaged, truncated, or followed by
    bytes that are not a gzip member.
    """
    dec = zlib.decompressobj(_GZIP_WBITS)
    started = False
    try:
        for chunk in chunks:
            data = chunk
            while data:
                started = True
                if dec.eof:  # a member ended: what follows must be another member
                    dec = zlib.decompressobj(_GZIP_WBITS)
                out = dec.decompress(data, out_size)
                if out:
                    yield out
                if dec.eof:
                    data = dec.unused_data
                elif dec.unconsumed_tail:
                    data = dec.unconsumed_tail
                elif len(out) == out_size:
                    data = b""
                    while len(out) == out_size and not dec.eof:  # output still pending
                        out = dec.decompress(b"", out_size)
                        if out:
                            yield out
                else:
                    data = b""
    except zlib.error as exc:
        raise VerificationFailed(f"{what} is damaged: gzip {exc}") from None
    if not started or not dec.eof:
        raise VerificationFailed(f"{what} is damaged: gzip data is truncated")
