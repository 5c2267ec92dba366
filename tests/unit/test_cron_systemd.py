"""Cron expressions as systemd ``OnCalendar=`` lines: exact strings, and the same
instants as systemd's own calendar parser (``systemd-analyze calendar``) computes."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from pgsafe.schedule import cron
from pgsafe.schedule.install import oncalendar

BASE = datetime(2024, 2, 27, 22, 59, 58, tzinfo=UTC)  # near a leap day, a month end


@pytest.mark.parametrize(
    ("expr", "lines"),
    [
        ("0 1 * * *", ["*-*-* 01:00:00 UTC"]),
        ("@hourly", ["*-*-* *:00:00 UTC"]),
        ("*/15 * * * *", ["*-*-* *:00/15:00 UTC"]),
        ("*/2 * * * * *", ["*-*-* *:*:00/2 UTC"]),
        ("0 9-17 * * mon-fri", ["Mon..Fri *-*-* 09..17:00:00 UTC"]),
        ("0 0 * * sat,sun", ["Sat,Sun *-*-* 00:00:00 UTC"]),
        ("0 0 * * 0", ["Sun *-*-* 00:00:00 UTC"]),
        ("30 4 1,15 * *", ["*-*-01,15 04:30:00 UTC"]),
        ("0 0 1 */3 *", ["*-01/3-01 00:00:00 UTC"]),
        ("0 0 13 * fri", ["*-*-13 00:00:00 UTC", "Fri *-*-* 00:00:00 UTC"]),
        ("5 0 1-7 jan mon", ["*-01-01..07 00:05:00 UTC", "Mon *-01-* 00:05:00 UTC"]),
        ("0 0 * * mon-sun", ["*-*-* 00:00:00 UTC"]),
        ("0 12 10-20/5 * *", ["*-*-10,15,20 12:00:00 UTC"]),
    ],
)
def test_oncalendar_lines(expr: str, lines: list[str]) -> None:
    assert oncalendar(cron.parse(expr)) == lines


def _systemd_times(spec: str, n: int) -> list[datetime]:
    proc = subprocess.run(
        [
            "systemd-analyze",
            "calendar",
            f"--iterations={n}",
            f"--base-time={BASE.strftime('%Y-%m-%d %H:%M:%S')} UTC",
            spec,
        ],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin", "SYSTEMD_COLORS": "0"},
        check=True,
    )
    found = re.findall(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC", proc.stdout)
    return [datetime.fromisoformat(x).replace(tzinfo=UTC) for x in found]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize(
    "expr",
    [
        "0 1 * * *",
        "*/15 * * * *",
        "*/2 * * * * *",
        "0 9-17 * * mon-fri",
        "0 0 13 * fri",
        "5 0 1-7 jan,mar mon",
        "0 0 29 2 *",
        "0 */6 1,15,31 * *",
        "10 5/15 * * * *",
        "0 0 */2 * fri",
        "@weekly",
        "0 0 1 */3 *",
    ],
)
def test_systemd_fires_at_the_same_instants(expr: str) -> None:
    e = cron.parse(expr)
    n = 12
    ours = cron.fire_times(e, BASE, datetime(2100, 1, 1, tzinfo=UTC), n)
    theirs: set[datetime] = set()
    for spec in oncalendar(e):
        theirs.update(_systemd_times(spec, n))
    assert sorted(theirs)[:n] == ours
