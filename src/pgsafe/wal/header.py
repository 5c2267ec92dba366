"""The long page header at the start of every WAL segment.

Layout (PostgreSQL ``XLogLongPageHeaderData``, little-endian on the platforms we run on):
``xlp_magic u16, xlp_info u16, xlp_tli u32, xlp_pageaddr u64, xlp_rem_len u32, (pad 4),
xlp_sysid u64, xlp_seg_size u32, xlp_xlog_blcksz u32``.
"""

from __future__ import annotations

import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mmap import mmap

XLP_LONG_HEADER = 0x0002
_FORMAT = "<HHIQI4xQII" if sys.byteorder == "little" else ">HHIQI4xQII"
_SIZE = struct.calcsize(_FORMAT)


class LongHeader:
    """The fields pgsafe uses (a plain class: wal-push's fast path imports this module,
    and ``dataclasses`` alone costs it ~20 ms)."""

    __slots__ = (
        "block_size",
        "magic",
        "page_address",
        "segment_size",
        "system_identifier",
        "timeline",
    )

    def __init__(
        self,
        magic: int,
        timeline: int,
        page_address: int,
        system_identifier: int,
        segment_size: int,
        block_size: int,
    ) -> None:
        self.magic = magic
        self.timeline = timeline
        self.page_address = page_address
        self.system_identifier = system_identifier
        self.segment_size = segment_size
        self.block_size = block_size

    def _fields(self) -> tuple[int, ...]:
        return (self.magic, self.timeline, self.page_address, self.system_identifier,
                self.segment_size, self.block_size)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LongHeader) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__)
        return f"LongHeader({names})"


def read_long_header(data: bytes | bytearray | memoryview | mmap) -> LongHeader:
    """Parse the long header of a segment; ValueError when ``data`` does not start with one."""
    if len(data) < _SIZE:
        raise ValueError("too short to be a WAL segment")
    magic, info, tli, pageaddr, _rem, sysid, segsize, blcksz = struct.unpack_from(_FORMAT, data)
    if not info & XLP_LONG_HEADER:
        raise ValueError("the first page has no long header")
    if segsize <= 0 or segsize & (segsize - 1) or blcksz <= 0 or blcksz & (blcksz - 1):
        raise ValueError("implausible segment or block size in the page header")
    return LongHeader(magic, tli, pageaddr, sysid, segsize, blcksz)
