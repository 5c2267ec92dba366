"""Watch a tar stream go by and keep a copy of a few small members.

pg_basebackup writes plain ustar headers (names under 100 bytes), so a 512-byte block
state machine is enough: it picks ``backup_label`` and ``backup_manifest`` out of the
stream without buffering the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

BLOCK = 512


class TarTap:
    """Iterate chunks through unchanged; afterwards ``captured`` holds the wanted members."""

    def __init__(self, chunks: Iterable[bytes], wanted: set[str], limit: int = 256 << 20):
        self._chunks = chunks
        self._wanted = wanted
        self._limit = limit
        self.captured: dict[str, bytes] = {}
        self.members = 0
        self._header = bytearray()
        self._remaining = 0  # body bytes (with padding) still to skip or capture
        self._body_len = 0
        self._current: str | None = None
        self._buf = bytearray()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._feed(memoryview(chunk))
            yield chunk

    def _feed(self, data: memoryview) -> None:
        while data:
            if self._remaining:
                take = min(self._remaining, len(data))
                if self._current is not None:
                    self._buf += data[:take]
                self._remaining -= take
                data = data[take:]
                if not self._remaining:
                    self._finish_member()
                continue
            take = min(BLOCK - len(self._header), len(data))
            self._header += data[:take]
            data = data[take:]
            if len(self._header) == BLOCK:
                self._start_member(bytes(self._header))
                self._header.clear()

    def _start_member(self, header: bytes) -> None:
        if header == b"\0" * BLOCK:
            return
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
        if prefix:
            name = f"{prefix}/{name}"
        size_field = header[124:136].split(b"\0", 1)[0].strip() or b"0"
        size = int(size_field, 8)
        self.members += 1
        self._body_len = size
        self._remaining = (size + BLOCK - 1) // BLOCK * BLOCK
        name = name.removeprefix("./")
        self._current = name if name in self._wanted and size <= self._limit else None
        self._buf = bytearray()
        if not self._remaining:
            self._finish_member()

    def _finish_member(self) -> None:
        if self._current is not None:
            self.captured[self._current] = bytes(self._buf[: self._body_len])
        self._current = None
        self._buf = bytearray()
