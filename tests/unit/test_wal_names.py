"""WAL names, LSNs and the long page header."""

from __future__ import annotations

import struct

import pytest

from pgsafe.wal import names
from pgsafe.wal.header import read_long_header


@pytest.mark.parametrize(
    ("name", "kind", "tli"),
    [
        ("000000010000000000000001", "segment", 1),
        ("0000000A00000001000000FF", "segment", 10),
        ("000000020000000000000003.partial", "partial", 2),
        ("000000010000000000000002.00000028.backup", "backup", 1),
        ("00000003.history", "history", 3),
    ],
)
def test_parse(name: str, kind: str, tli: int) -> None:
    w = names.parse(name)
    assert w is not None and w.kind == kind and w.timeline == tli


@pytest.mark.parametrize(
    "name",
    [
        "",
        "RECOVERYXLOG",
        "00000001000000000000001",
        "000000010000000000000001.zst",
        "0000000g0000000000000001",
        "3.history",
        "../000000010000000000000001",
    ],
)
def test_parse_rejects(name: str) -> None:
    assert names.parse(name) is None


def test_segment_arithmetic_roundtrip() -> None:
    for size in (1 << 20, 16 << 20, 1 << 30):
        for segno in (0, 1, 255, 256, 4095, 70_000):
            n = names.segment_name(3, segno, size)
            assert names.segment_number(n, size) == segno
    assert names.segment_name(1, 256) == "000000010000000100000000"
    assert names.segment_number("0000000100000001000000FF") == 511


def test_lsn() -> None:
    assert names.parse_lsn("0/16B3748") == 0x16B3748
    assert names.parse_lsn("1/0") == 1 << 32
    assert names.format_lsn(names.parse_lsn("A/FF00")) == "A/FF00"
    assert names.lsn_segment(names.parse_lsn("0/3000000")) == 3
    for bad in ("", "0x16", "1/2/3", "G/1", "123456789/0"):
        with pytest.raises(ValueError):
            names.parse_lsn(bad)


def test_long_header() -> None:
    raw = struct.pack(
        "<HHIQI4xQII", 0xD110, 0x0002 | 0x0004, 2, 0x3000000, 0, 7312345678901234567, 16 << 20, 8192
    )
    h = read_long_header(raw + b"\0" * 100)
    assert (h.timeline, h.system_identifier, h.segment_size) == (2, 7312345678901234567, 16 << 20)
    with pytest.raises(ValueError):
        read_long_header(raw[:10])
    short = struct.pack("<HHIQI4xQII", 0xD110, 0, 2, 0, 0, 1, 16 << 20, 8192)
    with pytest.raises(ValueError):
        read_long_header(short)
