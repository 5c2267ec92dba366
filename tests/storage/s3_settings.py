"""S3 settings for the tests against moto's server: parts as small as S3 allows (so that
a 12 MiB object is a 3-part upload) and few retries."""

from __future__ import annotations

from dataclasses import replace

from pgsafe.repo.storage.s3 import MIN_PART_SIZE, S3Settings

PART_SIZE = MIN_PART_SIZE


def s3_settings(
    *,
    endpoint_url: str | None = None,
    max_attempts: int = 3,
    lock_ttl: float | None = None,
    conditional_writes: str | None = None,
) -> S3Settings:
    """The environment's settings (``S3Settings.from_env``) with the tests' part size,
    ``max_attempts``, and whichever of the others is given."""
    settings = replace(S3Settings.from_env(), part_size=PART_SIZE, max_attempts=max_attempts)
    if endpoint_url is not None:
        settings = replace(settings, endpoint_url=endpoint_url)
    if lock_ttl is not None:
        settings = replace(settings, lock_ttl=lock_ttl)
    if conditional_writes is not None:
        settings = replace(settings, conditional_writes=conditional_writes)
    return settings
