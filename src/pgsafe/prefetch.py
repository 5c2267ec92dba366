"""Run an iterator ahead of its consumer in a thread, through a bounded queue.

Two stages of a stream overlap on two cores when one of them releases the GIL:
reading and hashing pg_basebackup's stdout while the codec compresses
(:mod:`pgsafe.physical.basebackup`), decoding a stored base backup while its files are
written (:mod:`pgsafe.recovery.extract`).  :class:`Prefetch` is that one pattern:

* a daemon thread pulls from the source into a queue of at most ``depth`` items, so
  memory stays bounded whatever the speed of either side;
* iterating yields the items in order; an exception of the source is raised in the
  consumer, at the point of the stream where it happened;
* :meth:`close` (or leaving a ``with`` block) stops the thread and joins it.  A thread
  blocked *inside* the source (reading a pipe) cannot be stopped: stop whatever feeds
  the source first (kill the program writing the pipe).

The file syncer (:mod:`pgsafe.syncer`) is another shape (work items handed to a thread,
one error kept for the end) and stays on its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_PUT_POLL_S = 0.1  # how often a blocked producer looks whether it was stopped


class _End:
    """The source ended; ``error`` is what it raised, if anything."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """The items of ``source``, produced ``depth`` ahead by a thread named ``name``."""

    def __init__(self, source: Iterable[T], depth: int, name: str) -> None:
        self._source = source
        self._queue: queue.Queue[T | _End] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: T | _End) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_POLL_S)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            for item in self._source:
                if self._stop.is_set():
                    return
                self._put(item)
        except BaseException as exc:  # handed to the consuming thread
            error = exc
        self._put(_End(error))

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
