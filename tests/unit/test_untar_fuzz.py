"""Fuzzing the tar extractor with hypothesis: crafted and mutated archives (names with
``..``, absolute names, NUL bytes, links, hard links, devices, duplicates, damaged
headers, truncation) never raise anything but pgsafe's own errors, and never create,
change or chmod anything outside the destination."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgsafe.errors import PgsafeError
from pgsafe.recovery.untar import BLOCK, Untar

CANARY = Path(tempfile.gettempdir()) / "pgsafe-fuzz-canary"


def header(name: bytes, kind: bytes, size: int, link: bytes = b"", mode: int = 0o777) -> bytes:
    h = bytearray(BLOCK)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[157:257] = link[:100].ljust(100, b"\0")
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % (sum(h[:148]) + 8 * 32 + sum(h[156:]))
    return bytes(h)


def canary_names() -> list[bytes]:
    c = str(CANARY).encode()
    return [c, c + b"/x", c[1:] + b"/x", b"../" + CANARY.name.encode()]


component = st.sampled_from(
    [b"a", b"b", b"evil", b"..", b".", b"", b"pg_tblspc", b"16385", b"a\0b", b"\xff", b"x" * 60]
)
name = st.one_of(
    st.lists(component, min_size=1, max_size=4).map(b"/".join),
    st.sampled_from(canary_names()),
    st.binary(max_size=110),
)
kind = st.sampled_from([b"0", b"\0", b"5", b"2", b"1", b"3", b"4", b"6", b"7", b"x", b"L", b"?"])
member = st.tuples(name, kind, st.binary(max_size=700), st.sampled_from([*canary_names(), b"a"]))


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    out = bytearray()
    for n, k, data, link in draw(st.lists(member, max_size=6)):
        out += header(n, k, len(data), link, draw(st.sampled_from([0o777, 0o600, 0o7777, 0])))
        out += data + bytes(-len(data) % BLOCK)
    out += bytes(2 * BLOCK)
    for _ in range(draw(st.integers(0, 3))):  # damage
        if out:
            at = draw(st.integers(0, len(out) - 1))
            out[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    return bytes(out)


def _state(p: Path) -> list[tuple[str, int, bytes]]:
    out = []
    for q in sorted([p, *p.rglob("*")]):
        s = q.lstat()
        out.append((str(q), s.st_mode, q.read_bytes() if stat.S_ISREG(s.st_mode) else b""))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=archives(), piece=st.sampled_from([1, 100, 512, 4096]))
def test_crafted_archives_stay_inside(data: bytes, piece: int) -> None:
    CANARY.mkdir(mode=0o700, exist_ok=True)
    (CANARY / "precious").write_bytes(b"keep")
    os.chmod(CANARY, 0o700)
    before = _state(CANARY)
    box = Path(tempfile.mkdtemp(prefix="pgsafe-fuzz-"))
    dest = box / "dest"
    dest.mkdir()
    try:
        u = Untar(dest)
        try:
            for i in range(0, len(data), piece):
                u.feed(data[i : i + piece])
            u.finish()
        except PgsafeError:
            pass
        finally:
            u.abort()
        assert _state(CANARY) == before
        assert os.listdir(box) == ["dest"]
        for q in dest.rglob("*"):  # everything made is a plain file or folder inside
            assert not q.is_symlink(), q
            s = q.lstat()
            assert stat.S_ISREG(s.st_mode) or stat.S_ISDIR(s.st_mode), q
            assert not s.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), q
    finally:
        shutil.rmtree(box)


def teardown_module() -> None:
    shutil.rmtree(CANARY, ignore_errors=True)
