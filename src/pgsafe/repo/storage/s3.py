"""A repository in S3-compatible object storage: ``s3://bucket/prefix``.

Connection settings follow the AWS conventions, so the standard credential chain works
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
``AWS_PROFILE``, config and credentials files, instance and container roles):

================================ =========================================================
``PGSAFE_S3_ENDPOINT``           endpoint URL of an S3-compatible server (else
                                 ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS)
``PGSAFE_S3_REGION``             region (else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` /
                                 the AWS config; ``us-east-1`` when none says)
``PGSAFE_S3_ADDRESSING_STYLE``   ``path`` / ``virtual`` / ``auto`` (``path`` when an
                                 endpoint is set: what MinIO, Ceph and most others want)
``PGSAFE_S3_PART_SIZE_MB``       multipart part size (default 8; at least 5)
``PGSAFE_S3_UPLOAD_CONCURRENCY`` parts uploaded in parallel (default 2)
``PGSAFE_S3_MAX_ATTEMPTS``       attempts per request, with backoff (default 8)
``PGSAFE_S3_CONDITIONAL_WRITES`` ``auto`` (default), ``on`` or ``off`` (see below)
================================ =========================================================

Writes are atomic: a stream up to one part is one ``PutObject``; a longer one is a
multipart upload whose object appears only at ``CompleteMultipartUpload``; any failure,
including an exception raised by the stream itself, aborts the upload.  Nothing is
staged on disk; memory holds at most ``concurrency + 1`` parts.  Parts start at 8 MiB
and double every 1000 parts (S3 allows 10,000), so objects up to ~8 TB fit.

``put(overwrite=False)`` refuses an existing key with a conditional write
(``If-None-Match: *`` on ``PutObject`` and ``CompleteMultipartUpload``), which AWS S3
and recent S3-compatible servers honour atomically.  A server that answers
``NotImplemented`` is remembered and served by check-then-put instead, which has a race
(two writers of the same new key in the same instant may both succeed); so does
``PGSAFE_S3_CONDITIONAL_WRITES=off``.  pgsafe's own writers of one key are serialised
by the repository lock, so the race needs two pgsafe runs outside it.

Locks are leases: an object ``.lock-NAME`` created with ``If-None-Match: *``, renewed
by a background thread every third of its time to live (default 60 s) with ``If-Match``
on its ETag, deleted on release.  A holder that dies leaves a lease that others take
over once it has not been renewed for its time to live (judged by the server's clock:
its ``Last-Modified`` against the ``Date`` of the response).  A holder that cannot renew
(e.g. cut off for longer than the time to live) loses the lock; that is logged.

Retries: botocore's ``standard`` mode (exponential backoff with jitter, throttling and
5xx errors, connection errors) for every request; reads that break in the middle of an
object resume from where they stopped with a ranged ``GetObject`` pinned to the ETag.

botocore is imported when the backend is first used (``wal-push`` against a local
repository never pays for it); the smaller botocore is used rather than boto3, which
costs another 0.1 s of import for nothing we need.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from pgsafe.errors import (
    BadInput,
    LockHeld,
    NotFound,
    ObjectExists,
    OperationFailed,
    PgsafeError,
    RepositoryError,
)
from pgsafe.repo.storage.base import ObjectStat

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
LOCK_PREFIX = ".lock-"


# -- settings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Settings:
    """How to reach the server and how to write to it (no credentials in here)."""

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    part_size: int = 8 * MiB
    upload_concurrency: int = 2
    max_attempts: int = 8
    conditional_writes: str = "auto"  # auto | on | off
    lock_ttl: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise BadInput("the S3 part size must be at least 5 MB (S3's minimum)")
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise BadInput(
                f"bad S3 addressing style {self.addressing_style!r}",
                hint="use path, virtual or auto",
            )
        if self.conditional_writes not in ("auto", "on", "off"):
            raise BadInput("PGSAFE_S3_CONDITIONAL_WRITES must be auto, on or off")
        if self.upload_concurrency < 1 or self.max_attempts < 1 or self.lock_ttl <= 0:
            raise BadInput("S3 concurrency, attempts and lock time to live must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if env is None else env

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise BadInput(f"{name} must be a number, not {raw!r}") from None

        endpoint = (
            env.get("PGSAFE_S3_ENDPOINT")
            or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL")
            or None
        )
        style = env.get("PGSAFE_S3_ADDRESSING_STYLE") or ("path" if endpoint else "auto")
        return cls(
            endpoint_url=endpoint,
            region=env.get("PGSAFE_S3_REGION") or None,
            addressing_style=style,
            part_size=int(number("PGSAFE_S3_PART_SIZE_MB", 8) * MiB),
            upload_concurrency=int(number("PGSAFE_S3_UPLOAD_CONCURRENCY", 2)),
            max_attempts=int(number("PGSAFE_S3_MAX_ATTEMPTS", 8)),
            conditional_writes=(env.get("PGSAFE_S3_CONDITIONAL_WRITES") or "auto").lower(),
        )


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; the prefix has no outer slashes."""
    if not url.startswith("s3://"):
        raise BadInput(f"not an S3 URL: {url!r}", hint="use s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket or not all(c.isalnum() or c in ".-_" for c in bucket):
        raise BadInput(f"bad S3 bucket name in {url!r}", hint="use s3://bucket/prefix")
    prefix = prefix.strip("/")
    if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
        raise BadInput(f"bad S3 prefix in {url!r}", hint="use s3://bucket/some/prefix")
    return bucket, prefix


def part_size_for(part_number: int, base: int) -> int:
    """Size of part ``part_number`` (1-based): doubles every 1000 parts, up to 5 GiB."""
    return min(base << ((part_number - 1) // 1000), MAX_PART_SIZE)


# -- errors ------------------------------------------------------------------------------------
def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = str(err.get("Code", ""))
        if code:
            return code
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status or "")
    return ""


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


class S3Storage:
    """The :class:`~pgsafe.repo.storage.base.Storage` protocol on an S3 bucket."""

    def __init__(
        self, url: str, settings: S3Settings | None = None, *, client: Any | None = None
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.settings = settings or S3Settings.from_env()
        self._conditional = self.settings.conditional_writes != "off"
        self._client_obj = client
        self._client_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint={self.settings.endpoint_url!r})"

    # -- client and errors ------------------------------------------------------------------
    @property
    def client(self) -> S3Client:
        with self._client_lock:
            if self._client_obj is None:
                self._client_obj = self._make_client()
            return cast("S3Client", self._client_obj)

    def _make_client(self) -> Any:
        import botocore.config
        import botocore.session

        s = self.settings
        session = botocore.session.get_session()
        region = s.region or session.get_config_variable("region") or "us-east-1"
        config = botocore.config.Config(
            retries={"max_attempts": s.max_attempts, "mode": "standard"},
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            max_pool_connections=s.upload_concurrency + 4,
            s3={"addressing_style": s.addressing_style},  # type: ignore[arg-type]
        )
        return session.create_client(
            "s3", region_name=region, endpoint_url=s.endpoint_url, config=config
        )

    def _error(self, exc: BaseException, action: str, key: str = "") -> PgsafeError:
        """A pgsafe error for a botocore failure; never includes credentials."""
        import botocore.exceptions as bx

        where = f"{self.url}/{key}" if key else self.url
        code = _code(exc)
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return RepositoryError(
                f"no S3 credentials to {action} {where}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            )
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionError | bx.HTTPClientError):
            return OperationFailed(
                f"cannot reach the S3 endpoint to {action} {where}: {exc}",
                hint="check PGSAFE_S3_ENDPOINT / AWS_ENDPOINT_URL and the network",
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFound(f"object {key} is missing from the repository {self.url}")
        if code == "NoSuchBucket":
            return RepositoryError(
                f"S3 bucket {self.bucket} does not exist",
                hint="create the bucket first (pgsafe does not create buckets)",
            )
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return RepositoryError(
                f"S3 refused to {action} {where} ({code})",
                hint="check the credentials and the bucket policy",
            )
        return OperationFailed(f"cannot {action} {where}: S3 error {code or exc}")

    def _full(self, key: str) -> str:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise ValueError(f"bad storage key {key!r}")
        rel = "/".join(parts)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    # -- put ----------------------------------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes], *, overwrite: bool = False) -> int:
        import botocore.exceptions as bx

        full = self._full(key)
        if not overwrite and not self._conditional and self.stat(key) is not None:
            raise ObjectExists(f"object {key} already exists in the repository")
        try:
            return self._put(full, key, chunks, overwrite)
        except bx.ClientError as exc:
            if not overwrite and _status(exc) == 412:
                raise ObjectExists(f"object {key} already exists in the repository") from None
            if not overwrite and _code(exc) == "ConditionalRequestConflict":
                raise ObjectExists(f"object {key} is being written by another process") from None
            raise self._error(exc, "write", key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "write", key) from None

    def _put(self, full: str, key: str, chunks: Iterable[bytes], overwrite: bool) -> int:
        cond: dict[str, Any] = {} if overwrite or not self._conditional else {"IfNoneMatch": "*"}
        base = self.settings.part_size
        buf = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[Future[dict[str, Any]]] = []
        pool: ThreadPoolExecutor | None = None
        c = self.client
        try:
            for chunk in chunks:
                buf += chunk
                size += len(chunk)
                while len(buf) >= part_size_for(len(parts) + 1, base):
                    if len(parts) + 1 >= MAX_PARTS:
                        raise OperationFailed(f"object {key} is too large for S3 multipart")
                    n = part_size_for(len(parts) + 1, base)
                    if upload_id is None:
                        upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=full)[
                            "UploadId"
                        ]
                        pool = ThreadPoolExecutor(self.settings.upload_concurrency)
                    assert pool is not None
                    # bound memory: wait while too many parts are in flight
                    while sum(not f.done() for f in parts) >= self.settings.upload_concurrency:
                        next(f for f in parts if not f.done()).result()
                    parts.append(
                        pool.submit(
                            self._upload_part, full, upload_id, len(parts) + 1, bytes(buf[:n])
                        )
                    )
                    del buf[:n]
            if upload_id is None:
                self._finish(key, c.put_object, cond, Bucket=self.bucket, Key=full, Body=bytes(buf))
                return size
            assert pool is not None
            if buf:
                parts.append(
                    pool.submit(self._upload_part, full, upload_id, len(parts) + 1, bytes(buf))
                )
            del buf
            done = [f.result() for f in parts]
            self._finish(
                key,
                c.complete_multipart_upload,
                cond,
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
            upload_id = None
            return size
        finally:
            if pool is not None:
                for f in parts:
                    f.cancel()
                pool.shutdown(wait=True)
            if upload_id is not None:
                self._abort(full, upload_id)

    def _finish(self, key: str, call: Any, cond: dict[str, Any], **kwargs: Any) -> None:
        """The call that makes the object visible, conditional when ``cond`` says so; a
        server that does not implement conditional writes gets check-then-put from now on."""
        import botocore.exceptions as bx

        try:
            call(**kwargs, **cond)
        except bx.ClientError as exc:
            if not (
                cond
                and self.settings.conditional_writes == "auto"
                and _code(exc) in ("NotImplemented", "501")
            ):
                raise
            log.info("the S3 server does not implement If-None-Match: check-then-put")
            self._conditional = False
            if self.stat(key) is not None:
                raise ObjectExists(f"object {key} already exists in the repository") from None
            call(**kwargs)

    def _upload_part(self, full: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        r = self.client.upload_part(
            Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": r["ETag"]}

    def _abort(self, full: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except Exception as exc:  # the original error matters more; a lifecycle rule cleans up
            log.warning("could not abort the multipart upload of %s: %s", full, _code(exc) or exc)

    # -- read ---------------------------------------------------------------------------------
    def open(self, key: str) -> BinaryIO:
        import botocore.exceptions as bx

        full = self._full(key)
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=full)
        except (bx.ClientError, bx.BotoCoreError) as exc:
            raise self._error(exc, "read", key) from None
        raw = _ObjectReader(self, full, key, r["Body"], r["ETag"], int(r["ContentLength"]))
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=MiB))

    def stat(self, key: str) -> ObjectStat | None:
        import botocore.exceptions as bx

        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except bx.ClientError as exc:
            if _status(exc) == 404 and _code(exc) != "NoSuchBucket":
                return None
            raise self._error(exc, "examine", key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "examine", key) from None
        return ObjectStat(key.strip("/"), int(r["ContentLength"]), r["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix``, in S3's order (UTF-8 byte order = code point order)."""
        import botocore.exceptions as bx

        p = prefix.strip("/")
        base = f"{self.prefix}/" if self.prefix else ""
        query = self._full(p) if p else base
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=query):
                for obj in page.get("Contents", []):
                    rel = self._rel(obj["Key"])
                    if p and rel != p and not rel.startswith(p + "/"):
                        continue
                    if rel.rsplit("/", 1)[-1].startswith(LOCK_PREFIX):
                        continue
                    yield rel
        except (bx.ClientError, bx.BotoCoreError) as exc:
            raise self._error(exc, "list", prefix) from None

    def delete(self, key: str) -> None:
        import botocore.exceptions as bx

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except bx.ClientError as exc:
            if _status(exc) == 404 and _code(exc) != "NoSuchBucket":
                return
            raise self._error(exc, "delete", key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "delete", key) from None

    def free_bytes(self) -> int | None:
        return None

    # -- locks --------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[None]:
        lease = _Lease(self, self._full(LOCK_PREFIX + name), name)
        lease.acquire(wait)
        try:
            yield
        finally:
            lease.release()


class _ObjectReader(io.RawIOBase):
    """The body of one object; a read that breaks resumes with a ranged GET on the ETag."""

    RESUMES = 5

    def __init__(
        self, storage: S3Storage, full: str, key: str, body: Any, etag: str, length: int
    ) -> None:
        self._s, self._full, self._key = storage, full, key
        self._body, self._etag, self._length = body, etag, length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        import botocore.exceptions as bx
        import urllib3.exceptions as ux

        view = memoryview(b).cast("B")
        want = len(view)
        if self._pos >= self._length or not want:
            return 0
        for attempt in range(self.RESUMES + 1):
            try:
                data = self._body.read(want)
                break
            except (bx.BotoCoreError, ux.HTTPError, OSError) as exc:
                if attempt == self.RESUMES:
                    raise OperationFailed(
                        f"reading {self._s.url}/{self._key} failed at byte {self._pos}: {exc}"
                    ) from None
                time.sleep(min(2.0, 0.2 * 2**attempt))
                self._reopen()
        if not data:
            raise OperationFailed(
                f"{self._s.url}/{self._key} ended at byte {self._pos} of {self._length}"
            )
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _reopen(self) -> None:
        import botocore.exceptions as bx

        self._body.close()
        try:
            r = self._s.client.get_object(
                Bucket=self._s.bucket,
                Key=self._full,
                Range=f"bytes={self._pos}-",
                IfMatch=self._etag,
            )
        except bx.ClientError as exc:
            if _status(exc) == 412:
                raise OperationFailed(
                    f"{self._s.url}/{self._key} changed while it was being read"
                ) from None
            raise self._s._error(exc, "read", self._key) from None
        except bx.BotoCoreError as exc:
            raise self._s._error(exc, "read", self._key) from None
        self._body = r["Body"]

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _Lease:
    """One holder's lease on a lock object (see the module docstring)."""

    def __init__(self, storage: S3Storage, full: str, name: str) -> None:
        self._s, self._full, self._name = storage, full, name
        self._ttl = storage.settings.lock_ttl
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

        c = self._s.client
        delay = 0.1
        while True:
            try:
                if self._s._conditional:
                    r = c.put_object(
                        Bucket=self._s.bucket, Key=self._full, Body=self._body(), IfNoneMatch="*"
                    )
                else:  # check-then-put: racy, see the module docstring
                    if self._current() is not None:
                        raise _Held
                    r = c.put_object(Bucket=self._s.bucket, Key=self._full, Body=self._body())
                self._etag = r["ETag"]
                break
            except _Held:
                pass
            except bx.ClientError as exc:
                if _status(exc) not in (412, 409):
                    raise self._s._error(exc, "lock", self._full) from None
                if self._take_over_expired():
                    break
            except bx.BotoCoreError as exc:
                raise self._s._error(exc, "lock", self._full) from None
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
            r = self._s.client.get_object(Bucket=self._s.bucket, Key=self._full)
        except bx.ClientError as exc:
            if _status(exc) == 404:
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
            r = self._s.client.put_object(
                Bucket=self._s.bucket, Key=self._full, Body=self._body(), IfMatch=etag
            )
        except bx.ClientError as exc:
            if _status(exc) in (412, 409, 404):
                return False
            raise
        self._etag = r["ETag"]
        return True

    def _renew(self) -> None:
        import botocore.exceptions as bx

        while not self._stop.wait(self._ttl / 3):
            assert self._etag is not None
            try:
                r = self._s.client.put_object(
                    Bucket=self._s.bucket, Key=self._full, Body=self._body(), IfMatch=self._etag
                )
                self._etag = r["ETag"]
            except bx.ClientError as exc:
                if _status(exc) in (412, 404):
                    self.lost = True
                    log.error("lost the lease of repository lock %r", self._name)
                    return
                log.warning("could not renew the lease of lock %r: %s", self._name, _code(exc))
            except bx.BotoCoreError as exc:
                log.warning("could not renew the lease of lock %r: %s", self._name, exc)

    def release(self) -> None:
        import botocore.exceptions as bx

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost or self._etag is None:
            return
        c = self._s.client
        try:
            c.delete_object(Bucket=self._s.bucket, Key=self._full, IfMatch=self._etag)
        except bx.ClientError as exc:
            if _status(exc) in (412, 404):
                return  # someone else holds it now: not ours to delete
            if _code(exc) in ("NotImplemented", "InvalidArgument", "501"):
                cur = self._current()
                if cur is not None and cur[0] == self._etag:
                    c.delete_object(Bucket=self._s.bucket, Key=self._full)
                return
            log.warning("could not release lock %r: %s (it expires)", self._name, _code(exc))
        except bx.BotoCoreError as exc:
            log.warning("could not release lock %r: %s (it expires)", self._name, exc)


class _Held(Exception):
    pass
