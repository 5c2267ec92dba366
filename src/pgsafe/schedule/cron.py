"""Cron expressions: parsing and the next matching instant, in UTC.

Owns the schedule grammar of ``[[jobs]]``:

* five fields ``minute hour day-of-month month day-of-week`` (as crontab(5)), or six
  fields with **seconds first** (``*/2 * * * * *``: every two seconds, for fast tests);
* in each field ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n`` and ``a/n``,
  lists ``a,b-c``; month names ``jan``..``dec`` and weekday names ``sun``..``sat``
  (``mon-fri``), case-insensitive; weekday ``7`` is Sunday as well as ``0``, and a
  range may end on Sunday (``fri-sun``);
* the macros ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
  (``@midnight``) and ``@hourly``;
* crontab's day rule: when both day-of-month and day-of-week are restricted (neither
  starts with ``*``), a day matches if **either** matches; otherwise both must.

Schedules are evaluated in UTC, always: no daylight-saving gaps or repeated hours, and
the same instants on every machine.  ``next_after`` accepts aware datetimes in any zone
and returns UTC.  The parser is our own rather than croniter: the expanded field sets
are needed anyway to write systemd ``OnCalendar=`` lines, croniter puts the seconds
field last, and its maintenance has been uncertain since 2024.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pgsafe.errors import BadInput

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

# name, lowest, highest, names (index + offset = value)
_FIELDS: dict[str, tuple[int, int, list[str], int]] = {
    "second": (0, 59, [], 0),
    "minute": (0, 59, [], 0),
    "hour": (0, 23, [], 0),
    "day-of-month": (1, 31, [], 0),
    "month": (1, 12, MONTHS, 1),
    "day-of-week": (0, 7, WEEKDAYS, 0),
}
_SEARCH_YEARS = 8  # a schedule with no instant within this many years never fires


@dataclass(frozen=True)
class CronExpr:
    """A parsed schedule: the allowed values of every field (day-of-week 0-6, Sunday 0)."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool
    has_seconds: bool

    def day_matches(self, year: int, month: int, day: int) -> bool:
        dom = day in self.days
        dow = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, when: datetime) -> bool:
        t = _utc(when)
        return (
            t.second in self.seconds
            and t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self.day_matches(t.year, t.month, t.day)
        )


class CronError(BadInput):
    """A schedule that is not a valid cron expression."""


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("cron times must be timezone-aware")
    return when.astimezone(UTC)


def _value(token: str, field: str) -> int:
    lo, hi, names, offset = _FIELDS[field]
    t = token.lower()
    if names and t in names:
        return names.index(t) + offset
    if not t.isdigit():
        hint = f" (or a name: {names[0]}..{names[-1]})" if names else ""
        raise CronError(f"{field} {token!r} is not a number{hint}")
    v = int(t)
    if not lo <= v <= hi:
        raise CronError(f"{field} {v} is out of range {lo}-{hi}")
    return v


def _field(text: str, field: str) -> frozenset[int]:
    lo, hi, _, _ = _FIELDS[field]
    if not text:
        raise CronError(f"empty {field} field")
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"empty item in {field} field {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(
                    f"{field} step {step_text!r} in {part!r} must be a whole number > 0"
                )
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, field), _value(b, field)
            if field == "day-of-week" and end == 0 and start > 0:
                end = 7  # "mon-sun": Sunday closes the week
            if start > end:
                raise CronError(f"{field} range {base!r} runs backwards")
        else:
            start = _value(base, field)
            end = hi if slash else start  # "5/15": from 5 to the end, every 15
        out.update(range(start, end + 1, step))
    if field == "day-of-week" and 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out)


def parse(text: str) -> CronExpr:
    """Parse a cron expression; :class:`CronError` (exit 2) says which field is wrong."""
    src = text.strip()
    expanded = MACROS.get(src.lower(), src)
    if src.startswith("@") and src.lower() not in MACROS:
        raise CronError(f"unknown schedule macro {src!r}", hint="use one of " + ", ".join(MACROS))
    parts = expanded.split()
    if len(parts) == 5:
        parts = ["0", *parts]
        has_seconds = False
    elif len(parts) == 6:
        has_seconds = True
    else:
        raise CronError(
            f"schedule {text!r} has {len(parts)} fields, expected 5 (minute hour day month "
            "weekday) or 6 (second first)",
            hint='e.g. "0 1 * * *" for 01:00 UTC every day',
        )
    names = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"]
    try:
        sets = [_field(p, n) for p, n in zip(parts, names, strict=True)]
    except CronError as exc:
        raise CronError(f"schedule {text!r}: {exc.message}", hint=exc.hint) from None
    expr = CronExpr(
        text=src,
        seconds=sets[0],
        minutes=sets[1],
        hours=sets[2],
        days=sets[3],
        months=sets[4],
        weekdays=sets[5],
        days_restricted=not parts[3].startswith("*"),
        weekdays_restricted=not parts[5].startswith("*"),
        has_seconds=has_seconds,
    )
    if not _possible(expr):
        raise CronError(f"schedule {text!r} never fires (no such day in any of its months)")
    return expr


def _possible(expr: CronExpr) -> bool:
    if expr.weekdays_restricted:
        return True  # any weekday occurs in every month
    return any(d <= _max_days(m) for m in expr.months for d in expr.days)


def _max_days(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _first(values: frozenset[int], at_least: int) -> int | None:
    cands = [v for v in values if v >= at_least]
    return min(cands) if cands else None


def next_after(expr: CronExpr, after: datetime) -> datetime:
    """The first instant strictly after ``after`` (aware) that matches, in UTC."""
    t = _utc(after).replace(microsecond=0) + timedelta(seconds=1)
    limit = t.year + _SEARCH_YEARS
    while t.year <= limit:
        if t.month not in expr.months:
            m = _first(expr.months, t.month)
            t = (
                datetime(t.year + 1, min(expr.months), 1, tzinfo=UTC)
                if m is None
                else datetime(t.year, m, 1, tzinfo=UTC)
            )
            continue
        if not expr.day_matches(t.year, t.month, t.day):
            t = datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=1)
            continue
        if t.hour not in expr.hours:
            h = _first(expr.hours, t.hour)
            day = datetime(t.year, t.month, t.day, tzinfo=UTC)
            t = day + timedelta(days=1) if h is None else day.replace(hour=h)
            continue
        if t.minute not in expr.minutes:
            mi = _first(expr.minutes, t.minute)
            hour = t.replace(minute=0, second=0)
            t = hour + timedelta(hours=1) if mi is None else hour.replace(minute=mi)
            continue
        if t.second not in expr.seconds:
            s = _first(expr.seconds, t.second)
            minute = t.replace(second=0)
            t = minute + timedelta(minutes=1) if s is None else minute.replace(second=s)
            continue
        return t
    raise CronError(f"schedule {expr.text!r} has no time within {_SEARCH_YEARS} years")


def fire_times(expr: CronExpr, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Matching instants in ``(after, until]``, at most ``limit`` of them (oldest first)."""
    out: list[datetime] = []
    t = after
    while len(out) < limit:
        t = next_after(expr, t)
        if t > _utc(until):
            break
        out.append(t)
    return out
