"""pg.process (spawn / stream / drain / kill) and the prefetch helper, on plain programs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from pgsafe.errors import ToolFailed
from pgsafe.pg import process
from pgsafe.prefetch import Prefetch

PY = sys.executable


def test_stdout_streams_and_stderr_is_kept() -> None:
    code = "import sys; sys.stdout.write('x' * 300000); sys.stderr.write('pg: warning\\n')"
    with process.spawn([PY, "-c", code], None) as run:
        data = run.stdout.read()
    assert data == b"x" * 300000
    assert run.exited.ok and "warning" in run.exited.stderr
    run.exited.check("prog")


def test_failure_is_tool_failed_with_first_error_line() -> None:
    code = "import sys; sys.stderr.write('noise\\nprog: error: it broke\\nmore\\n'); sys.exit(3)"
    done = process.capture([PY, "-c", code], None)
    assert done.exited.returncode == 3
    with pytest.raises(ToolFailed, match=r"prog failed \(exit 3\): prog: error: it broke"):
        done.exited.check("prog")


def test_stderr_is_bounded() -> None:
    code = "import sys; sys.stderr.write('e' * (3 << 20) + '\\nlast: error: end\\n')"
    done = process.capture([PY, "-c", code], None)
    assert len(done.exited.stderr) < process.STDERR_HEAD + process.STDERR_TAIL + 200
    assert "bytes of stderr skipped" in done.exited.stderr
    assert done.exited.stderr.rstrip().endswith("last: error: end")


def test_an_exception_in_the_consumer_kills_and_reaps() -> None:
    code = "import time, sys\nwhile True:\n    sys.stdout.write('y' * 65536); sys.stdout.flush()"
    with pytest.raises(RuntimeError), process.spawn([PY, "-c", code], None) as run:
        run.stdout.read(10)
        proc = run.proc
        raise RuntimeError("consumer failed")
    assert proc.returncode is not None and proc.returncode < 0


def test_prefetch_yields_in_order_and_raises_in_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield from range(50)
        raise ValueError("source broke")

    got = []
    with Prefetch(source(), 4, "t") as ahead, pytest.raises(ValueError, match="source broke"):
        for item in ahead:
            got.append(item)
    assert got == list(range(50))


def test_prefetch_close_stops_a_producer_ahead_of_its_consumer() -> None:
    produced = []

    def source() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    ahead = Prefetch(source(), 2, "t")
    assert next(iter(ahead)) == 0
    ahead.close()
    assert len(produced) < 10
    assert not any(t.name == "t" and t.is_alive() for t in threading.enumerate())


def test_prefetch_runs_ahead() -> None:
    started = time.monotonic()

    def slow() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.05)
            yield i

    with Prefetch(slow(), 3, "t") as ahead:
        time.sleep(0.2)  # the producer finishes meanwhile
        t0 = time.monotonic()
        assert list(ahead) == [0, 1, 2]
        assert time.monotonic() - t0 < 0.05
    assert time.monotonic() - started < 1
