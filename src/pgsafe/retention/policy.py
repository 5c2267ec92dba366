"""Retention policies from the config and flags.

``[retention]`` holds ``keep_last`` and/or ``keep_days``; ``[retention.logical]`` and
``[retention.physical]`` override them per kind.  A backup stays if *either* rule keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pgsafe.errors import BadInput


@dataclass(frozen=True)
class Rule:
    keep_last: int | None = None
    keep_days: float | None = None

    @property
    def empty(self) -> bool:
        return self.keep_last is None and self.keep_days is None


@dataclass(frozen=True)
class Policy:
    logical: Rule
    physical: Rule

    def rule(self, kind: str) -> Rule:
        return self.physical if kind == "physical" else self.logical


MAX_DAYS = 999_999_999  # the largest timedelta; more is not a number of days


def _number(value: object, what: str, *, integer: bool) -> float | int | None:
    if value is None:
        return None
    if not isinstance(value, int | float | str):  # a TOML value: a table, a list, a date...
        raise BadInput(f"{what} must be a number, not {value!r}")
    try:
        n = int(value) if integer else float(value)
    except (ValueError, OverflowError):
        raise BadInput(f"{what} must be a number, not {value!r}") from None
    if not integer:
        _check_days(n, what)
    if n < (1 if integer else 0):
        raise BadInput(f"{what} must be at least {1 if integer else 0}, not {value!r}")
    return n


def _check_days(days: float, what: str) -> None:
    """A number of days: finite, not negative (``nan`` and ``inf`` are refused)."""
    if not math.isfinite(days) or not 0 <= days <= MAX_DAYS:
        raise BadInput(
            f"{what} must be a number of days from 0 to {MAX_DAYS}, not {days!r}",
            hint="e.g. 30 (backups younger than 30 days are kept)",
        )


def _rule(table: Mapping[str, object], where: str, base: Rule | None = None) -> Rule:
    unknown = set(table) - {"keep_last", "keep_days", "logical", "physical"}
    if unknown:
        raise BadInput(
            f"unknown key(s) in {where}: {', '.join(sorted(unknown))}",
            hint="use keep_last and keep_days",
        )
    last = _number(table.get("keep_last"), f"{where}.keep_last", integer=True)
    days = _number(table.get("keep_days"), f"{where}.keep_days", integer=False)
    b = base or Rule()
    return Rule(
        keep_last=int(last) if last is not None else b.keep_last,
        keep_days=float(days) if days is not None else b.keep_days,
    )


def from_config(
    raw: Mapping[str, object], keep_last: int | None = None, keep_days: float | None = None
) -> Policy:
    """The policy of the config's ``[retention]``; flags, when given, replace it."""
    table = raw.get("retention", {})
    if not isinstance(table, Mapping):
        raise BadInput("[retention] in the config must be a table")
    base = _rule(table, "retention")
    per = {}
    for kind in ("logical", "physical"):
        sub = table.get(kind, {})
        if not isinstance(sub, Mapping):
            raise BadInput(f"[retention.{kind}] must be a table")
        per[kind] = _rule(sub, f"retention.{kind}", base)
    if keep_last is not None or keep_days is not None:
        if keep_last is not None and keep_last < 1:
            raise BadInput("--keep-last must be at least 1")
        if keep_days is not None:
            _check_days(keep_days, "--keep-days")
        flag = Rule(keep_last, keep_days)
        per = {"logical": flag, "physical": flag}
    return Policy(per["logical"], per["physical"])
