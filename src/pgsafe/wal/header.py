"""The long page header at the start of every WAL segment.

Layout (PostgreSQL ``XLogLongPageHeaderData``, little-endian on the platforms we run on):
``xlp_magic u16, xlp_info u16, xlp_tli u32, xlp_pageaddr u64, xlp_rem_len u32, (pad 4),
xlp_sysid u64, xlp_seg_size u32, xlp_xlog_blcksz u32``.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

XLP_LONG_HEADER = 0x0002
_FORMAT = "<HHIQI4xQII" if sys.byteorder == "little" else ">HHIQI4xQII"
_SIZE = struct.calcsize(_FORMAT)


@dataclass(frozen=True)
class LongHeader:
    magic: int
    timeline: int
    page_address: int
    system_identifier: int
    segment_size: int
    block_size: int


def read_long_header(data: bytes) -> LongHeader:
    """Parse the long header of a segment; ValueError when ``data`` does not start with one."""
    if len(data) < _SIZE:
        raise ValueError("too short to be a WAL segment")
    magic, info, tli, pageaddr, _rem, sysid, segsize, blcksz = struct.unpack_from(_FORMAT, data)
    if not info & XLP_LONG_HEADER:
        raise ValueError("the first page has no long header")
    if segsize <= 0 or segsize & (segsize - 1) or blcksz <= 0 or blcksz & (blcksz - 1):
        raise ValueError("implausible segment or block size in the page header")
    return LongHeader(magic, tli, pageaddr, sysid, segsize, blcksz)
