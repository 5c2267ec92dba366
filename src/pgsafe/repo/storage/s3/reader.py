"""Reading one S3 object as a file: a read that breaks in the middle resumes with a
ranged ``GetObject`` pinned to the object's ETag (so a changed object is an error, not
a splice of two versions)."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

from pgsafe.errors import OperationFailed
from pgsafe.repo.storage.s3.errors import Translate, status

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client


class ObjectReader(io.RawIOBase):
    """The body of one object; a read that breaks resumes with a ranged GET on the ETag."""

    RESUMES = 5

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        url: str,
        error: Translate,
        full: str,
        key: str,
        body: StreamingBody,
        etag: str,
        length: int,
    ) -> None:
        self._client, self._bucket, self._url, self._error = client, bucket, url, error
        self._full, self._key = full, key
        self._body, self._etag, self._length = body, etag, length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
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
                        f"reading {self._url}/{self._key} failed at byte {self._pos}: {exc}"
                    ) from None
                time.sleep(min(2.0, 0.2 * 2**attempt))
                self._reopen()
        if not data:
            raise OperationFailed(
                f"{self._url}/{self._key} ended at byte {self._pos} of {self._length}"
            )
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _reopen(self) -> None:
        import botocore.exceptions as bx

        self._body.close()
        try:
            r = self._client.get_object(
                Bucket=self._bucket,
                Key=self._full,
                Range=f"bytes={self._pos}-",
                IfMatch=self._etag,
            )
        except bx.ClientError as exc:
            if status(exc) == 412:
                raise OperationFailed(
                    f"{self._url}/{self._key} changed while it was being read"
                ) from None
            raise self._error(exc, "read", self._key) from None
        except bx.BotoCoreError as exc:
            raise self._error(exc, "read", self._key) from None
        self._body = r["Body"]

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
