"""A real S3-protocol server for the tests: moto's server (``python -m moto.server``),
started on 127.0.0.1 as a separate process, one per test worker.

Use it from a conftest or a test module::

    from tests.fixtures_s3 import s3_server, s3_bucket  # noqa: F401  (pytest fixtures)

``s3_server.env()`` gives the variables a pgsafe subprocess needs to reach it
(``PGSAFE_S3_ENDPOINT`` and test credentials); ``s3_bucket`` is a fresh empty bucket.
What the server does not model is listed in docs/storage.md.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "pgsafe-test-access-key"
SECRET_KEY = "pgsafe-test-secret-key-do-not-log"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path
    buckets: list[str] = field(default_factory=list)
    _client: Any = None

    def env(self) -> dict[str, str]:
        return {
            "PGSAFE_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A botocore S3 client of the server (made once)."""
        import botocore.session

        if self._client is None:
            self._client = self._make_client(botocore.session)
        return self._client

    def _make_client(self, session_mod: Any) -> Any:
        return session_mod.get_session().create_client(
            "s3", region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"pgsafe-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_s3_server() -> S3Server:
    """Start moto's S3 server on a free port of 127.0.0.1 and wait until it answers."""
    log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
    last = ""
    for _ in range(5):
        port = _free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return S3Server(f"http://127.0.0.1:{port}", proc, log)
            except OSError:
                time.sleep(0.1)
        last = log.read_text(errors="replace")[-2000:]
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError(f"moto's S3 server did not start:\n{last}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())  # S3Settings.from_env() and subprocesses find it
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()
    server.log.unlink(missing_ok=True)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()
