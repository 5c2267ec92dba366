"""Durations as people write them in a config: ``90s``, ``15m``, ``26h``, ``8d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

from pgsafe.errors import BadInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(text: str, what: str = "duration") -> timedelta:
    s = str(text).strip().lower().replace(" ", "")
    if not s or _PART.sub("", s):
        raise BadInput(f"{what} {text!r} is not a duration", hint="write e.g. 90s, 15m, 26h, 8d")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
    return timedelta(seconds=seconds)


def human(td: timedelta | float | None) -> str:
    if td is None:
        return "-"
    s = td.total_seconds() if isinstance(td, timedelta) else float(td)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"
