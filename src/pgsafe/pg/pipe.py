"""Run a PostgreSQL program while feeding it a stream on stdin.

If producing the stream fails (a damaged object, say), the program is killed before
it sees end-of-file, so a truncated input is never taken for a whole one.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterable
from typing import IO

from pgsafe.errors import ToolFailed
from pgsafe.pg.runner import first_error_line


def _feed(
    proc: subprocess.Popen[bytes], data: Iterable[bytes], errors: list[BaseException]
) -> None:
    assert proc.stdin is not None
    try:
        for chunk in data:
            proc.stdin.write(chunk)
    except (BrokenPipeError, ValueError):
        pass  # the program stopped reading; its exit status tells why
    except BaseException as exc:
        errors.append(exc)
        proc.kill()
    finally:
        with contextlib.suppress(BrokenPipeError, ValueError):
            proc.stdin.close()


def run_fed(
    argv: list[str],
    env: dict[str, str],
    data: Iterable[bytes] | None,
    what: str,
    *,
    capture_stdout: bool = False,
    allow_failure: bool = False,
) -> tuple[str, str]:
    """Run ``argv`` with ``data`` on stdin; return (stdout, stderr); raise on failure
    (unless ``allow_failure``: then the caller reads stderr)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    feed_errors: list[BaseException] = []
    outputs: dict[str, bytes] = {"out": b"", "err": b""}
    threads = []
    if data is not None:
        threads.append(threading.Thread(target=_feed, args=(proc, data, feed_errors)))
    if capture_stdout:
        threads.append(threading.Thread(target=_drain, args=(proc.stdout, outputs, "out")))
    threads.append(threading.Thread(target=_drain, args=(proc.stderr, outputs, "err")))
    for t in threads:
        t.start()
    try:
        rc = proc.wait()
    finally:
        for t in threads:
            t.join()
        for pipe in (proc.stdout, proc.stderr):  # unclosed, they leak a descriptor each
            if pipe is not None:
                pipe.close()
    if feed_errors:
        raise feed_errors[0]
    err = outputs["err"].decode(errors="replace")
    if rc != 0 and not allow_failure:
        raise ToolFailed(f"{what} failed (exit {rc}): {first_error_line(err)}")
    return outputs["out"].decode(errors="replace"), err


def _drain(stream: IO[bytes] | None, outputs: dict[str, bytes], key: str) -> None:
    assert stream is not None
    outputs[key] = stream.read()
