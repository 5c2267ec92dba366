"""Repository locks on S3 as leases (see :mod:`pgsafe.repo.storage.s3`): an object
``.lock-NAME`` created with ``If-None-Match: *``, renewed by a thread with ``If-Match``
on its ETag, taken over once expired by the server's clock, deleted on release."""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from pgsafe.errors import LockHeld
from pgsafe.repo.storage.s3.errors import Translate, code, status

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger("pgsafe.repo.storage.s3")


class Lease:
    """One holder's lease on a lock object (see the module docstring)."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        error: Translate,
        full: str,
        name: str,
        *,
        ttl: float,
        conditional: bool,
    ) -> None:
        self._client, self._bucket, self._error = client, bucket, error
        self._full, self._name = full, name
        self._ttl = ttl
        self._conditional = conditional
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _body(self) -> bytes:
        doc = {"ttl": self._ttl, "host": socket.gethostname(), "pid": os.getpid(),
               "token": secrets.token_hex(8), "at": time.time()}  # fmt: skip
        return json.dumps(doc).encode()

    def acquire(self, wait: bool) -> None:
        import botocore.exceptions as bx

        c = self._client
        delay = 0.1
        while True:
            try:
                if self._conditional:
                    r = c.put_object(
                        Bucket=self._bucket, Key=self._full, Body=self._body(), IfNoneMatch="*"
                    )
                else:  # check-then-put: racy, see the module docstring
                    if self._current() is not None:
                        raise _Held
                    r = c.put_object(Bucket=self._bucket, Key=self._full, Body=self._body())
                self._etag = r["ETag"]
                break
            except _Held:
                pass
            except bx.ClientError as exc:
                if status(exc) not in (412, 409):
                    raise self._error(exc, "lock", self._full) from None
                if self._take_over_expired():
                    break
            except bx.BotoCoreError as exc:
                raise self._error(exc, "lock", self._full) from None
            if not wait:
                raise LockHeld(
                    f"the repository lock {self._name!r} is held by another pgsafe process",
                    hint="wait for it to finish",
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self._name}", daemon=True)
        self._thread.start()

    def _current(self) -> tuple[str, float, float] | None:
        """``(etag, age in seconds by the server's clock, ttl)`` of the lease, or None."""
        import botocore.exceptions as bx

        try:
            r = self._client.get_object(Bucket=self._bucket, Key=self._full)
        except bx.ClientError as exc:
            if status(exc) == 404:
                return None
            raise
        with r["Body"] as body:
            raw = body.read(4096)
        try:
            ttl = float(json.loads(raw).get("ttl", self._ttl))
        except (ValueError, AttributeError):
            ttl = self._ttl
        date = r["ResponseMetadata"]["HTTPHeaders"].get("date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
        return r["ETag"], now - r["LastModified"].timestamp(), ttl

    def _take_over_expired(self) -> bool:
        import botocore.exceptions as bx

        cur = self._current()
        if cur is None:
            return False  # released meanwhile: the next round creates it
        etag, age_s, ttl = cur
        if age_s <= ttl:
            return False
        log.warning("taking over the expired lease of lock %r (%.0f s old)", self._name, age_s)
        try:
            r = self._client.put_object(
                Bucket=self._bucket, Key=self._full, Body=self._body(), IfMatch=etag
            )
        except bx.ClientError as exc:
            if status(exc) in (412, 409, 404):
                return False
            raise
        self._etag = r["ETag"]
        return True

    def _renew(self) -> None:
        import botocore.exceptions as bx

        while not self._stop.wait(self._ttl / 3):
            assert self._etag is not None
            try:
                r = self._client.put_object(
                    Bucket=self._bucket, Key=self._full, Body=self._body(), IfMatch=self._etag
                )
                self._etag = r["ETag"]
            except bx.ClientError as exc:
                if status(exc) in (412, 404):
                    self.lost = True
                    log.error("lost the lease of repository lock %r", self._name)
                    return
                log.warning("could not renew the lease of lock %r: %s", self._name, code(exc))
            except bx.BotoCoreError as exc:
                log.warning("could not renew the lease of lock %r: %s", self._name, exc)

    def release(self) -> None:
        import botocore.exceptions as bx

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost or self._etag is None:
            return
        c = self._client
        try:
            c.delete_object(Bucket=self._bucket, Key=self._full, IfMatch=self._etag)
        except bx.ClientError as exc:
            if status(exc) in (412, 404):
                return  # someone else holds it now: not ours to delete
            if code(exc) in ("NotImplemented", "InvalidArgument", "501"):
                cur = self._current()
                if cur is not None and cur[0] == self._etag:
                    c.delete_object(Bucket=self._bucket, Key=self._full)
                return
            log.warning("could not release lock %r: %s (it expires)", self._name, code(exc))
        except bx.BotoCoreError as exc:
            log.warning("could not release lock %r: %s (it expires)", self._name, exc)


class _Held(Exception):
    pass
