"""Progress rendered with rich on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


class RichProgress:
    def __init__(self, description: str) -> None:
        self._p = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._p.start()
        self._task = self._p.add_task(description, total=None)

    def update(self, done_bytes: int, total_bytes: int | None = None) -> None:
        self._p.update(self._task, completed=done_bytes, total=total_bytes)

    def close(self) -> None:
        self._p.stop()
