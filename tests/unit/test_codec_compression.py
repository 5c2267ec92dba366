"""Compression codecs (zstd, lz4, gzip, none): roundtrips, standard framing that the stock
CLIs read both ways, damage detection, and bounded output pieces."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator

import pytest

from pgsafe.errors import VerificationFailed
from pgsafe.repo.codec import gzip, lz4, none, zstdstream

Enc = Callable[[Iterable[bytes], int], Iterator[bytes]]
Dec = Callable[..., Iterator[bytes]]

CODECS: dict[str, tuple[Enc, Dec, int, list[str], list[str]]] = {
    # name: compress, decompress, level, CLI decode argv, CLI encode argv
    "zstd": (
        zstdstream.compress,
        zstdstream.decompress,
        3,
        ["zstd", "-d", "-c"],
        ["zstd", "-c", "-3"],
    ),
    "lz4": (lz4.compress, lz4.decompress, 0, ["lz4", "-d", "-c"], ["lz4", "-c"]),
    "gzip": (gzip.compress, gzip.decompress, 6, ["gzip", "-d", "-c"], ["gzip", "-c"]),
}
DAMAGE_DETECTING = list(CODECS)


def sample(n: int) -> bytes:
    """Compressible but not trivial: text lines with counters, plus some random bytes."""
    lines = b"".join(
        b"%08d\tsome row text %d\t2024-01-15 10:30:00+00\n" % (i, i * 7) for i in range(n // 40 + 1)
    )
    return (lines[: n - n // 8] + os.urandom(n // 8))[:n]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or []


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"the {tool} CLI is missing: run scripts/system-deps.sh as root")
    return path


@pytest.mark.parametrize("name", [*CODECS, "none"])
@pytest.mark.parametrize("size", [0, 1, 1000, 3 << 20])
@pytest.mark.parametrize("chunk", [1, 65536, 1 << 20])
def test_roundtrip(name: str, size: int, chunk: int) -> None:
    if chunk == 1 and size > 1000:
        chunk = 4099  # byte-by-byte over megabytes is only slow
    data = sample(size)
    enc: Enc
    dec: Dec
    if name == "none":
        enc, dec, level = none.compress, none.decompress, 0
    else:
        enc, dec, level, _, _ = CODECS[name]
    stored = b"".join(enc(pieces(data, chunk), level))
    assert b"".join(dec(pieces(stored, chunk))) == data


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("size", [0, 5, 5 << 20])
def test_stock_cli_reads_what_we_write(name: str, size: int) -> None:
    enc, _, level, cli_dec, _ = CODECS[name]
    need(cli_dec[0])
    data = sample(size)
    stored = b"".join(enc(pieces(data, 1 << 20), level))
    proc = subprocess.run(cli_dec, input=stored, capture_output=True, check=True)
    assert proc.stdout == data


@pytest.mark.parametrize("name", CODECS)
def test_we_read_what_the_stock_cli_writes(name: str) -> None:
    _, dec, _, _, cli_enc = CODECS[name]
    need(cli_enc[0])
    data = sample(2 << 20)
    stored = subprocess.run(cli_enc, input=data, capture_output=True, check=True).stdout
    assert b"".join(dec(pieces(stored, 100_000))) == data
    # concatenated frames/members decode as one stream, as the CLIs do
    assert b"".join(dec([stored + stored])) == data + data


@pytest.mark.parametrize("name", DAMAGE_DETECTING)
def test_flipped_byte_is_detected(name: str) -> None:
    enc, dec, level, _, _ = CODECS[name]
    data = sample(1 << 20)
    stored = bytearray(b"".join(enc([data], level)))
    for pos in (len(stored) // 3, len(stored) // 2, len(stored) - 2):
        bad = bytearray(stored)
        bad[pos] ^= 0x10
        with pytest.raises(VerificationFailed) as err:
            b"".join(dec([bytes(bad)], what="obj.x"))
        assert err.value.exit_code == 3
        assert "obj.x" in str(err.value)


@pytest.mark.parametrize("name", DAMAGE_DETECTING)
@pytest.mark.parametrize("cut", ["truncated", "half", "empty", "trailing", "garbage"])
def test_truncated_or_extended_is_detected(name: str, cut: str) -> None:
    enc, dec, level, _, _ = CODECS[name]
    stored = b"".join(enc([sample(300_000)], level))
    bad = {
        "truncated": stored[:-3],
        "half": stored[: len(stored) // 2],
        "empty": b"",
        "trailing": stored + b"\0" * 64,
        "garbage": os.urandom(1000),
    }[cut]
    with pytest.raises(VerificationFailed):
        b"".join(dec(pieces(bad, 4096)))


@pytest.mark.parametrize("name", CODECS)
def test_output_comes_in_bounded_pieces(name: str) -> None:
    """64 MiB of zeros compresses to almost nothing; decoding must not produce it whole."""
    enc, dec, level, _, _ = CODECS[name]
    zeros = bytes(1 << 20)
    stored = b"".join(enc((zeros for _ in range(64)), level))
    assert len(stored) < 1 << 20
    total = 0
    for piece in dec([stored]):
        assert len(piece) <= 1 << 20
        total += len(piece)
    assert total == 64 << 20


def test_zstd_frame_walker_follows_skippable_frames() -> None:
    data = sample(200_000)
    frame = b"".join(zstdstream.compress([data], 3))
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    assert b"".join(zstdstream.decompress([skippable + frame + skippable])) == data
    with pytest.raises(VerificationFailed, match="truncated"):
        b"".join(zstdstream.decompress([frame + skippable[:-1]]))
