"""S3 under a broken network: a real TCP proxy between the backend and moto's server cuts
the connection in the middle of a download, and the read resumes where it stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from pgsafe.errors import OperationFailed
from pgsafe.repo.storage.s3 import S3Storage
from tests.fixtures_s3 import S3Server
from tests.storage.s3_settings import s3_settings


class CuttingProxy:
    """Forwards 127.0.0.1:port to the server; when armed, drops the next connection that
    has sent more than ``cut_after`` response bytes (``cuts`` counts how many it did)."""

    def __init__(self, upstream: tuple[str, int], cut_after: int) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.armed = 0
        self.cuts = 0
        self.refuse_after_cut = False  # then the server stays unreachable
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse_after_cut and self.cuts:
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if response and sent > self.cut_after:
                    with self._lock:
                        cut = self.armed > 0
                        if cut:
                            self.armed -= 1
                            self.cuts += 1
                    if cut:
                        break
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop = True
        self._listener.close()


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[CuttingProxy]:
    u = urlparse(s3_server.endpoint)
    p = CuttingProxy((u.hostname or "127.0.0.1", u.port or 80), cut_after=3 << 20)
    yield p
    p.close()


def test_download_resumes_after_a_cut(s3_bucket: str, proxy: CuttingProxy) -> None:
    settings = s3_settings(endpoint_url=f"http://127.0.0.1:{proxy.port}")
    storage = S3Storage(f"s3://{s3_bucket}/r", settings)
    data = os.urandom(12 << 20)
    storage.put("big", [data])
    proxy.armed = 2  # two cuts in one download
    with storage.open("big") as f:
        got = f.read()
    assert proxy.cuts == 2
    assert got == data


def test_download_keeps_resuming_while_it_makes_progress(
    s3_bucket: str, proxy: CuttingProxy
) -> None:
    storage = S3Storage(
        f"s3://{s3_bucket}/r", s3_settings(endpoint_url=f"http://127.0.0.1:{proxy.port}")
    )
    data = os.urandom(12 << 20)
    storage.put("big", [data])
    proxy.cut_after = 1 << 20
    proxy.armed = 100
    with storage.open("big") as f:
        got = f.read()
    assert proxy.cuts >= 8
    assert got == data


def test_download_fails_cleanly_when_the_server_stays_away(
    s3_bucket: str, proxy: CuttingProxy
) -> None:
    settings = s3_settings(endpoint_url=f"http://127.0.0.1:{proxy.port}", max_attempts=1)
    storage = S3Storage(f"s3://{s3_bucket}/r", settings)
    storage.put("big", [os.urandom(12 << 20)])
    proxy.armed = 1
    proxy.refuse_after_cut = True
    with pytest.raises(OperationFailed) as err, storage.open("big") as f:
        f.read()
    assert proxy.cuts == 1
    assert "PGSAFE_S3_ENDPOINT" in str(err.value.hint)  # says where it could not go
