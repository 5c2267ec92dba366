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

from pgsafe.repo.storage.base import LOCK_PREFIX
from pgsafe.repo.storage.s3.settings import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    MiB,
    S3Settings,
    parse_s3_url,
    part_size_for,
)
from pgsafe.repo.storage.s3.storage import S3Storage

__all__ = [
    "LOCK_PREFIX",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "MiB",
    "S3Settings",
    "S3Storage",
    "parse_s3_url",
    "part_size_for",
]
