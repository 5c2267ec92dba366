"""How pgsafe reaches an S3 bucket: :class:`S3Settings` (from ``PGSAFE_S3_*`` and the
AWS variables, see :mod:`pgsafe.repo.storage.s3`), the ``s3://bucket/prefix`` URL and
the multipart part sizes.  No credentials in here: botocore's chain finds them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pgsafe.errors import BadInput

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000


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
