"""The :class:`~pgsafe.repo.storage.base.Storage` protocol on an S3 bucket: atomic
puts (one ``PutObject`` or a multipart upload, conditional when the key must be new),
reads, listing, deletes and locks (see :mod:`pgsafe.repo.storage.s3` for the rules)."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO, cast

from pgsafe.errors import (
    NotFound,
    ObjectExists,
    OperationFailed,
    PgsafeError,
    RepositoryError,
)
from pgsafe.repo.storage.base import LOCK_PREFIX, ObjectStat
from pgsafe.repo.storage.s3.errors import code as error_code
from pgsafe.repo.storage.s3.errors import status
from pgsafe.repo.storage.s3.lease import Lease
from pgsafe.repo.storage.s3.reader import ObjectReader
from pgsafe.repo.storage.s3.settings import MAX_PARTS, MiB, S3Settings, parse_s3_url, part_size_for

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger("pgsafe.repo.storage.s3")


class S3Storage:
    """The :class:`~pgsafe.repo.storage.base.Storage` protocol on an S3 bucket."""

    def __init__(
        self, url: str, settings: S3Settings | None = None, *, client: S3Client | None = None
    ) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.settings = settings or S3Settings.from_env()
        self._conditional = self.settings.conditional_writes != "off"
        self._client_obj: S3Client | None = client
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
            return self._client_obj

    def _make_client(self) -> S3Client:
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
        client = session.create_client(
            "s3", region_name=region, endpoint_url=s.endpoint_url, config=config
        )
        return cast("S3Client", client)

    def _error(self, exc: BaseException, action: str, key: str = "") -> PgsafeError:
        """A pgsafe error for a botocore failure; never includes credentials."""
        import botocore.exceptions as bx

        where = f"{self.url}/{key}" if key else self.url
        code = error_code(exc)
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
            if not overwrite and status(exc) == 412:
                raise ObjectExists(f"object {key} already exists in the repository") from None
            if not overwrite and error_code(exc) == "ConditionalRequestConflict":
                raise ObjectExists(f"object {key} is being written by another process") from None
            raise self._error(exc, "write", key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "write", key) from None

    def _put(self, full: str, key: str, chunks: Iterable[bytes], overwrite: bool) -> int:
        cond: dict[str, str] = {} if overwrite or not self._conditional else {"IfNoneMatch": "*"}
        base = self.settings.part_size
        buf = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[Future[CompletedPartTypeDef]] = []
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

    def _finish(
        self, key: str, call: Callable[..., object], cond: Mapping[str, str], **kwargs: object
    ) -> None:
        """The call that makes the object visible, conditional when ``cond`` says so; a
        server that does not implement conditional writes gets check-then-put from now on."""
        import botocore.exceptions as bx

        try:
            call(**kwargs, **cond)
        except bx.ClientError as exc:
            if not (
                cond
                and self.settings.conditional_writes == "auto"
                and error_code(exc) in ("NotImplemented", "501")
            ):
                raise
            log.info("the S3 server does not implement If-None-Match: check-then-put")
            self._conditional = False
            if self.stat(key) is not None:
                raise ObjectExists(f"object {key} already exists in the repository") from None
            call(**kwargs)

    def _upload_part(
        self, full: str, upload_id: str, number: int, body: bytes
    ) -> CompletedPartTypeDef:
        r = self.client.upload_part(
            Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": r["ETag"]}

    def _abort(self, full: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except Exception as exc:  # the original error matters more; a lifecycle rule cleans up
            log.warning(
                "could not abort the multipart upload of %s: %s", full, error_code(exc) or exc
            )

    # -- read ---------------------------------------------------------------------------------
    def open(self, key: str) -> BinaryIO:
        import botocore.exceptions as bx

        full = self._full(key)
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=full)
        except (bx.ClientError, bx.BotoCoreError) as exc:
            raise self._error(exc, "read", key) from None
        raw = ObjectReader(
            self.client, self.bucket, self.url, self._error, full, key,
            r["Body"], r["ETag"], int(r["ContentLength"]),
        )  # fmt: skip
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=MiB))

    def stat(self, key: str) -> ObjectStat | None:
        import botocore.exceptions as bx

        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except bx.ClientError as exc:
            if status(exc) == 404 and error_code(exc) != "NoSuchBucket":
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
            if status(exc) == 404 and error_code(exc) != "NoSuchBucket":
                return
            raise self._error(exc, "delete", key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "delete", key) from None

    def free_bytes(self) -> int | None:
        return None

    # -- locks --------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, *, wait: bool = True) -> Iterator[None]:
        lease = Lease(
            self.client, self.bucket, self._error, self._full(LOCK_PREFIX + name), name,
            ttl=self.settings.lock_ttl, conditional=self._conditional,
        )  # fmt: skip
        lease.acquire(wait)
        try:
            yield
        finally:
            lease.release()
