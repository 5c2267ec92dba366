"""WAL file names and LSN arithmetic (pure functions).

A segment name is ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment number split
into a "log id" (high part) and a segment within it, both depending on the segment size.
Besides segments the archive holds ``<segment>.partial`` (the last, incomplete segment of
a timeline a standby was promoted from), ``<segment>.<offset>.backup`` (backup history
files) and ``<TLI>.history`` (timeline history files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgsafe.wal.rules import DEFAULT_SEGMENT_SIZE as DEFAULT_SEGMENT_SIZE

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_PARTIAL = re.compile(r"^([0-9A-F]{24})\.partial$")
_BACKUP = re.compile(r"^([0-9A-F]{24})\.([0-9A-F]{8})\.backup$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
# a restore point's name as `pgsafe mark` makes it; `recover --name` checks the same
RESTORE_POINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")


@dataclass(frozen=True)
class WalName:
    """A parsed archive file name."""

    name: str
    kind: str  # "segment" | "partial" | "backup" | "history"
    timeline: int
    segment: str | None = None  # the 24-character segment part (not for history files)

    @property
    def has_header(self) -> bool:
        """Does the file start with a WAL page header (segments and partial segments)?"""
        return self.kind in ("segment", "partial")


def parse(name: str) -> WalName | None:
    """Classify an archive file name; None for anything PostgreSQL would not archive."""
    if _SEGMENT.match(name):
        return WalName(name, "segment", int(name[:8], 16), name)
    m = _PARTIAL.match(name)
    if m:
        return WalName(name, "partial", int(name[:8], 16), m.group(1))
    m = _BACKUP.match(name)
    if m:
        return WalName(name, "backup", int(name[:8], 16), m.group(1))
    m = _HISTORY.match(name)
    if m:
        return WalName(name, "history", int(m.group(1), 16))
    return None


def segments_per_id(segment_size: int) -> int:
    return 0x100000000 // segment_size


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The segment number of a 24-character segment name (timeline ignored)."""
    return int(name[8:16], 16) * segments_per_id(segment_size) + int(name[16:24], 16)


def segment_name(timeline: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    per = segments_per_id(segment_size)
    return f"{timeline:08X}{segno // per:08X}{segno % per:08X}"


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def parse_lsn(text: str) -> int:
    """``'0/16B3748'`` → integer; ValueError when malformed."""
    m = _LSN.match(text.strip())
    if not m:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_segment(lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Number of the segment holding the byte at ``lsn``."""
    return lsn // segment_size


def segment_start(segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    return segno * segment_size
