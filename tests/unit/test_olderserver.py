"""Which newer client tools' output an older server is known to reject (pg.olderserver)."""

from __future__ import annotations

import pytest

from pgsafe.errors import BadInput
from pgsafe.pg.olderserver import check_loads, rejected
from pgsafe.pg.programs import find_program, installed_major, program_version


@pytest.mark.parametrize(
    ("tool", "server", "creates", "what"),
    [
        (17, 16, False, "SET transaction_timeout"),
        (18, 13, False, "SET transaction_timeout"),
        (15, 14, True, "CREATE DATABASE ... LOCALE_PROVIDER"),
        (16, 13, True, "CREATE DATABASE ... LOCALE_PROVIDER"),
        (15, 14, False, None),  # no database created: 15's output loads into 14
        (16, 14, False, None),
        (17, 17, False, None),
        (18, 17, True, None),
        (15, 15, True, None),
        (13, 13, True, None),
    ],
)
def test_known_rejections(tool: int, server: int, creates: bool, what: str | None) -> None:
    r = rejected(tool, server, creates_database=creates)
    assert (r.what if r else None) == what


def test_the_refusal_names_both_majors_and_the_package() -> None:
    major = installed_major()
    path = find_program("pg_restore", major)
    client = program_version(path)
    check_loads("pg_restore", path, client)  # its own major: no refusal
    if client < 15:
        pytest.skip(f"no older server is known to reject what pg_restore {client} writes")
    with pytest.raises(BadInput) as exc:
        check_loads("pg_restore", path, 13, creates_database=True)
    assert exc.value.exit_code == 2
    assert f"pg_restore {client} would load into a PostgreSQL" in exc.value.message
    assert "postgresql-client-1" in (exc.value.hint or "")
