"""Cron expressions: the grammar, crontab's day rule, and next instants in UTC."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pgsafe.errors import BadInput
from pgsafe.schedule import cron


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def nxt(expr: str, after: str) -> str:
    return cron.next_after(cron.parse(expr), t(after)).strftime("%Y-%m-%d %H:%M:%S %a")


@pytest.mark.parametrize(
    ("expr", "field", "values"),
    [
        ("* * * * *", "minutes", set(range(60))),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("5/15 * * * *", "minutes", {5, 20, 35, 50}),
        ("10-20/5 * * * *", "minutes", {10, 15, 20}),
        ("1,2,10-12 * * * *", "minutes", {1, 2, 10, 11, 12}),
        ("0 9-17 * * *", "hours", set(range(9, 18))),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * jan-mar,DEC *", "months", {1, 2, 3, 12}),
        ("0 0 * */3 *", "months", {1, 4, 7, 10}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "weekdays", {0}),
        ("0 0 * * 5-7", "weekdays", {0, 5, 6}),
        ("0 0 * * SUN,sat", "weekdays", {0, 6}),
        ("0 0 * * fri-sun", "weekdays", {0, 5, 6}),
        ("0 0 * * 5-0", "weekdays", {0, 5, 6}),
        ("*/2 * * * * *", "seconds", set(range(0, 60, 2))),
        ("0 1 * * *", "seconds", {0}),
    ],
)
def test_fields_expand(expr: str, field: str, values: set[int]) -> None:
    assert set(getattr(cron.parse(expr), field)) == values


def test_five_and_six_fields() -> None:
    five = cron.parse("0 1 * * *")
    assert not five.has_seconds and five.seconds == {0}
    six = cron.parse("30 0 1 * * *")
    assert six.has_seconds and six.seconds == {30} and six.minutes == {0} and six.hours == {1}


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros(macro: str, same_as: str) -> None:
    a, b = cron.parse(macro), cron.parse(same_as)
    assert (a.minutes, a.hours, a.days, a.months, a.weekdays) == (
        b.minutes,
        b.hours,
        b.days,
        b.months,
        b.weekdays,
    )


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("", "fields"),
        ("* * * *", "4 fields"),
        ("* * * * * * *", "7 fields"),
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range"),
        ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month 32"),
        ("* * * 13 *", "month 13"),
        ("* * * * 8", "day-of-week 8"),
        ("*/0 * * * *", "step '0'"),
        ("*/x * * * *", "step 'x'"),
        ("5-1 * * * *", "runs backwards"),
        ("* * * foo *", "month 'foo' is not a number (or a name: jan..dec)"),
        ("* * * * mon-xyz", "day-of-week 'xyz'"),
        ("1,,2 * * * *", "empty item"),
        ("a * * * *", "minute 'a' is not a number"),
        ("@often", "unknown schedule macro"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("61 * * * * *", "second 61"),
    ],
)
def test_bad_expressions_name_the_problem(expr: str, words: str) -> None:
    with pytest.raises(BadInput) as ei:
        cron.parse(expr)
    assert words in ei.value.message
    assert ei.value.exit_code == 2


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # every minute / second
        ("* * * * *", "2024-01-01 00:00:00", "2024-01-01 00:01:00 Mon"),
        ("* * * * *", "2024-01-01 00:00:59", "2024-01-01 00:01:00 Mon"),
        ("*/2 * * * * *", "2024-01-01 00:00:00", "2024-01-01 00:00:02 Mon"),
        ("*/2 * * * * *", "2024-01-01 00:00:01.900000", "2024-01-01 00:00:02 Mon"),
        ("*/2 * * * * *", "2024-01-01 23:59:58", "2024-01-02 00:00:00 Tue"),
        # strictly after
        ("0 1 * * *", "2024-01-01 01:00:00", "2024-01-02 01:00:00 Tue"),
        ("0 1 * * *", "2024-01-01 00:59:59", "2024-01-01 01:00:00 Mon"),
        # rollovers: hour, day, month, year
        ("30 * * * *", "2024-01-01 23:45:00", "2024-01-02 00:30:00 Tue"),
        ("0 0 1 * *", "2024-01-31 12:00:00", "2024-02-01 00:00:00 Thu"),
        ("0 0 1 1 *", "2024-06-01 00:00:00", "2025-01-01 00:00:00 Wed"),
        ("59 23 31 12 *", "2024-12-31 23:59:00", "2025-12-31 23:59:00 Wed"),
        # short months and leap years
        ("0 0 31 * *", "2024-04-01 00:00:00", "2024-05-31 00:00:00 Fri"),
        ("0 0 29 2 *", "2024-03-01 00:00:00", "2028-02-29 00:00:00 Tue"),
        ("0 0 29 2 *", "2023-01-01 00:00:00", "2024-02-29 00:00:00 Thu"),
        # weekdays, names, 7 = Sunday
        ("0 9 * * mon-fri", "2024-01-05 09:00:00", "2024-01-08 09:00:00 Mon"),
        ("0 9 * * 1-5", "2024-01-06 00:00:00", "2024-01-08 09:00:00 Mon"),
        ("0 0 * * 7", "2024-01-01 00:00:00", "2024-01-07 00:00:00 Sun"),
        ("0 0 * * sun", "2024-01-01 00:00:00", "2024-01-07 00:00:00 Sun"),
        ("0 12 * * sat,sun", "2024-01-01 00:00:00", "2024-01-06 12:00:00 Sat"),
        # crontab's day rule: both restricted -> either matches
        ("0 0 13 * fri", "2024-01-01 00:00:00", "2024-01-05 00:00:00 Fri"),
        ("0 0 13 * fri", "2024-01-12 00:00:00", "2024-01-13 00:00:00 Sat"),
        # ... one is '*' (or starts with it) -> both must match
        ("0 0 * * fri", "2024-01-05 00:00:00", "2024-01-12 00:00:00 Fri"),
        ("0 0 */2 * fri", "2024-01-01 00:00:00", "2024-01-05 00:00:00 Fri"),
        ("0 0 */2 * fri", "2024-01-05 00:00:00", "2024-01-19 00:00:00 Fri"),
        ("0 0 13 * *", "2024-01-14 00:00:00", "2024-02-13 00:00:00 Tue"),
        # steps, lists, ranges with steps
        ("0 */6 * * *", "2024-01-01 06:00:00", "2024-01-01 12:00:00 Mon"),
        ("15,45 8-10 * * *", "2024-01-01 10:45:00", "2024-01-02 08:15:00 Tue"),
        ("0 0 1 */3 *", "2024-02-01 00:00:00", "2024-04-01 00:00:00 Mon"),
        ("10 5/15 * * * *", "2024-01-01 00:50:10", "2024-01-01 01:05:10 Mon"),
        ("@hourly", "2024-01-01 00:00:00", "2024-01-01 01:00:00 Mon"),
        ("@weekly", "2024-01-01 00:00:00", "2024-01-07 00:00:00 Sun"),
        ("@monthly", "2024-12-15 00:00:00", "2025-01-01 00:00:00 Wed"),
    ],
)
def test_next_after(expr: str, after: str, expected: str) -> None:
    assert nxt(expr, after) == expected


def test_next_after_is_utc_across_daylight_saving_changes() -> None:
    """Schedules are UTC: a local clock's DST jump changes nothing, and any zone goes in."""
    expr = cron.parse("30 2 * * *")
    berlin = ZoneInfo("Europe/Berlin")
    # 2024-03-31 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): irrelevant in UTC
    before = datetime(2024, 3, 31, 1, 0, tzinfo=berlin)  # 00:00 UTC
    got = cron.next_after(expr, before)
    assert got == datetime(2024, 3, 31, 2, 30, tzinfo=UTC)
    assert got.tzinfo == UTC
    # in autumn 02:30 Berlin happens twice; UTC has exactly one 02:30 per day
    days = cron.fire_times(expr, t("2024-10-26 00:00:00"), t("2024-10-29 00:00:00"), 10)
    assert [d.day for d in days] == [26, 27, 28]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))
    # a New York time is converted, not read as UTC
    ny = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"))  # 05:30 UTC
    assert cron.next_after(cron.parse("0 6 * * *"), ny) == t("2024-11-03 06:00:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        cron.next_after(cron.parse("* * * * *"), datetime(2024, 1, 1))


def test_matches_agrees_with_next_after() -> None:
    exprs = ["*/7 3-5 * * *", "0 0 13 * fri", "0 0 */2 * fri", "5 4 * jan,jul mon-wed"]
    for text in exprs:
        e = cron.parse(text)
        got = cron.fire_times(e, t("2024-01-01 00:00:00"), t("2024-12-31 00:00:00"), 50)
        assert got and all(e.matches(x) for x in got)
        # and nothing matches in between two consecutive instants (checked per minute)
        a, b = got[0], got[1]
        m = a + timedelta(minutes=1)
        while m < b:
            assert not e.matches(m)
            m += timedelta(minutes=1)


def test_fire_times_bounds() -> None:
    e = cron.parse("0 * * * *")
    got = cron.fire_times(e, t("2024-01-01 00:00:00"), t("2024-01-01 05:00:00"), 100)
    assert [x.hour for x in got] == [1, 2, 3, 4, 5]  # (after, until]
    assert len(cron.fire_times(e, t("2024-01-01 00:00:00"), t("2024-02-01 00:00:00"), 3)) == 3
