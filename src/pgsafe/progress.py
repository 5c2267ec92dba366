"""A small progress protocol: operations report, the CLI renders."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def update(self, done_bytes: int, total_bytes: int | None = None) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    def update(self, done_bytes: int, total_bytes: int | None = None) -> None:
        return None

    def close(self) -> None:
        return None
