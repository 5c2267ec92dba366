"""Time, behind a seam: tests may fix it with ``PGSAFE_FAKE_NOW`` (ISO 8601)."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def now() -> datetime:
    fake = os.environ.get("PGSAFE_FAKE_NOW")
    if fake:
        dt = datetime.fromisoformat(fake)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")
