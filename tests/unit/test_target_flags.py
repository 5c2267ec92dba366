"""``target_request``: the one reading of the recovery-target flags (recover, drill)."""

from __future__ import annotations

import pytest

from pgsafe.errors import BadInput
from pgsafe.recovery.targets import TargetRequest, target_request


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ({"time": "2024-01-15 10:30:00"}, TargetRequest("time", "2024-01-15 10:30:00")),
        ({"xid": "748"}, TargetRequest("xid", "748")),
        ({"lsn": "0/3000148"}, TargetRequest("lsn", "0/3000148")),
        ({"name": "before-migration"}, TargetRequest("name", "before-migration")),
        ({"latest": True}, TargetRequest("latest")),
        ({"immediate": True}, TargetRequest("immediate")),
        ({"time": ""}, TargetRequest("time", "")),  # given, refused when parsed
    ],
)
def test_one_flag_names_one_target(flags: dict[str, object], want: TargetRequest) -> None:
    assert target_request(**flags) == want  # type: ignore[arg-type]
    assert target_request(**flags, default=TargetRequest()) == want  # type: ignore[arg-type]


def test_recover_needs_exactly_one() -> None:
    with pytest.raises(BadInput, match="exactly one target"):
        target_request()
    with pytest.raises(BadInput, match="exactly one target"):
        target_request(xid="12", lsn="0/1")
    with pytest.raises(BadInput, match="exactly one target"):
        target_request(latest=True, immediate=True)


def test_drill_takes_at_most_one_and_defaults() -> None:
    assert target_request(default=TargetRequest()) == TargetRequest("latest")
    with pytest.raises(BadInput, match="at most one"):
        target_request(xid="12", immediate=True, default=TargetRequest())


def test_describe() -> None:
    assert TargetRequest().describe() == "the end of the archive"
    assert TargetRequest("xid", "748").describe() == "xid 748"
