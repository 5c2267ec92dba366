"""Bech32 (BIP 173), the text encoding of age keys (``age1...``, ``AGE-SECRET-KEY-1...``).

age uses plain Bech32 (not Bech32m) without BIP 173's 90-character limit.  Only what the
age key formats need: encode and decode 8-bit data under a human-readable part.
"""

from __future__ import annotations

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class Bech32Error(ValueError):
    """The text is not valid Bech32 (bad characters, mixed case, bad checksum)."""


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise Bech32Error("invalid padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Bech32 text of ``data`` under ``hrp`` (lower case)."""
    hrp = hrp.lower()
    values = _convert(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """``(hrp, data)`` of a Bech32 string; :class:`Bech32Error` when it is not valid."""
    if text.lower() != text and text.upper() != text:
        raise Bech32Error("mixed case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise Bech32Error("no separator or too short")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise Bech32Error("bad character")
    hrp = text[:pos]
    try:
        values = [_CHARSET.index(c) for c in text[pos + 1 :]]
    except ValueError:
        raise Bech32Error("bad character") from None
    if _polymod([*_hrp_expand(hrp), *values]) != 1:
        raise Bech32Error("bad checksum")
    return hrp, bytes(_convert(values[:-6], 5, 8, pad=False))
