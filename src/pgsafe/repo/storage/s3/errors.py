"""What an S3 failure says: the error code and HTTP status of a botocore exception.

Turning a failure into a pgsafe error needs the bucket's URL: that is
``S3Storage._error`` (:mod:`pgsafe.repo.storage.s3.storage`), which the reader and the
lease receive as a :data:`Translate`.
"""

from __future__ import annotations

from collections.abc import Callable

from pgsafe.errors import PgsafeError

Translate = Callable[[BaseException, str, str], PgsafeError]
"""``(exception, action, key) -> the pgsafe error to raise``."""


def code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = str(err.get("Code", ""))
        if code:
            return code
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status or "")
    return ""


def status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0
