"""The rules wal-push's fast path shares with the full path (pgsafe.repo.marker,
pgsafe.repo.storage.atomic, pgsafe.wal.rules): one implementation, the same verdicts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pgsafe.errors import VerificationFailed
from pgsafe.repo import catalog, marker
from pgsafe.repo.codec import pipeline
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage import atomic, nofollow
from pgsafe.wal import entry, fastpush
from tests.unit.test_wal_fastpush import SEG, SYSID, clean_env, make_repo, segment

__all__ = ["clean_env"]  # the fixture, used here by name

_OLD_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}\Z")


def test_constants_agree() -> None:
    assert marker.FORMAT_VERSION == catalog.FORMAT_VERSION
    assert pipeline._LEVELS["zstd"] == marker.ZSTD_LEVELS


@pytest.mark.parametrize(
    "text",
    ["age1" + "q" * 58, "age1" + "qpzry9x8gf2tvdw0s3jn54khce6mua7l" + "q" * 26, "age1" + "b" * 58,
     "age1" + "q" * 57, "AGE1" + "q" * 58, "age1" + "q" * 58 + "\n", "", "age1"],
)  # fmt: skip
def test_age_recipients_as_written(text: str) -> None:
    assert marker.is_age_recipient(text) == bool(_OLD_RECIPIENT.match(text))


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"format": 1}, None),
        ([], "not a JSON object"),
        ({"format": "1"}, "format is not a number"),
        ({"format": -1}, "format is not a number"),
        ({"codec": [1]}, "codec is not an object"),
        ({"codec": {"encryption": "age"}}, "codec is not an object"),
        ({"age_recipients": ["age1xyz"]}, "age_recipients is not a list of age public keys"),
    ],
)
def test_a_damaged_marker_is_refused_by_both_paths(
    clean_env: Path, doc: object, problem: str | None
) -> None:
    assert marker.marker_problem(doc) == problem
    make_repo(clean_env)
    root = clean_env / "repo"
    (root / "pgsafe-repo.json").write_text(json.dumps(doc))
    seg = segment(clean_env / "000000010000000A00000001")
    (root / "main" / "wal").mkdir(exist_ok=True)
    if problem is None:
        assert fastpush.push({"repo": str(root)}, str(seg)) is not None
        return
    with pytest.raises(VerificationFailed, match=re.escape(problem)):
        Repository.open(str(root))
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(seg)]) == 2


@pytest.mark.parametrize("record", [{"system_identifier": str(SYSID), "pg_major": 5},
                                    {"system_identifier": f"{SYSID}x"}])  # fmt: skip
def test_a_damaged_server_record_is_refused_by_both_paths(
    clean_env: Path, record: dict[str, object]
) -> None:
    make_repo(clean_env)
    root = clean_env / "repo"
    (root / "main" / "server.json").write_text(json.dumps({"wal_segment_size": SEG, **record}))
    (root / "main" / "wal").mkdir(exist_ok=True)
    seg = segment(clean_env / "000000010000000A00000001")
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(seg)]) == 2  # damaged: exit 3 -> 2


def test_the_reserved_server_name_is_refused_by_both_paths(clean_env: Path) -> None:
    assert marker.server_problem("pgsafe-repo.x") is not None
    assert fastpush.settings({"repo": "/r", "server": "Pgsafe-Repo"}) is None


def _folder(tmp_path: Path) -> int:
    return nofollow.open_root(str(tmp_path))


def test_write_new_never_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    dfd = _folder(tmp_path)
    try:
        assert atomic.write_new(dfd, "a", lambda fd: atomic.write_all(fd, b"one")) == 3
        with pytest.raises(FileExistsError):
            atomic.write_new(dfd, "a", lambda fd: atomic.write_all(fd, b"two"))
        assert (tmp_path / "a").read_bytes() == b"one"
        assert (tmp_path / "a").stat().st_mode & 0o777 == 0o600
        atomic.write_new(dfd, "a", lambda fd: atomic.write_all(fd, b"two"), overwrite=True)
        assert (tmp_path / "a").read_bytes() == b"two"

        def fail(fd: int) -> int:
            os.write(fd, b"partial")
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space"):
            atomic.write_new(dfd, "b", fail)
        (tmp_path / "c").symlink_to(tmp_path / "a")
        with pytest.raises(nofollow.LinkInRepository):
            atomic.write_new(dfd, "c", lambda fd: atomic.write_all(fd, b"x"), overwrite=True)
    finally:
        os.close(dfd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]
    assert (tmp_path / "a").read_bytes() == b"two"


def test_a_new_folder_is_made_with_its_mode(tmp_path: Path) -> None:
    dfd = _folder(tmp_path)
    try:
        sub = nofollow.open_dir(dfd, "new", lambda fd: atomic.claim(fd, 0o700, None))
        os.close(sub)
    finally:
        os.close(dfd)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("record", ["pgsafe-repo.json", "main/server.json"])
def test_an_oversized_record_is_refused_by_both_paths(clean_env: Path, record: str) -> None:
    make_repo(clean_env)
    root = clean_env / "repo"
    path = root / record
    path.write_bytes(path.read_bytes() + b" " * marker.RECORD_LIMIT)
    (root / "main" / "wal").mkdir(exist_ok=True)
    seg = segment(clean_env / "000000010000000A00000001")
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(seg)]) == 2  # damaged: exit 3 -> 2


def test_wal_is_never_archived_weaker_than_the_config_asks(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain marker (an attacker turned encryption off) while the environment asks for
    age: neither path stores the segment in the clear."""
    make_repo(clean_env)
    root = clean_env / "repo"
    (root / "main" / "wal").mkdir(exist_ok=True)
    seg = segment(clean_env / "000000010000000A00000001")
    monkeypatch.setenv("PGSAFE_ENCRYPTION", "age")
    assert fastpush.push({"repo": str(root)}, str(seg)) is None
    assert entry.main(["--repo", str(root), "wal-push", str(seg)]) != 0
    assert not [p for p in (root / "main" / "wal").rglob("*") if p.is_file()]


def test_a_new_timeline_may_start_with_its_parents_pages() -> None:
    """A recovery that ends inside a segment makes the new timeline's first segment from
    the parent's: its first page still says the parent's timeline.  Both paths accept it;
    a header naming a newer timeline than the file's name is refused."""
    from pgsafe.errors import OperationFailed
    from pgsafe.wal import rules
    from pgsafe.wal.header import LongHeader

    def header(tli: int) -> LongHeader:
        return LongHeader(0xD110, tli, 0, SYSID, SEG, 8192)

    rules.check_timeline("000000020000000000000003", 2, header(1))
    rules.check_timeline("000000020000000000000003", 2, header(2))
    with pytest.raises(OperationFailed):
        rules.check_timeline("000000020000000000000003", 2, header(3))
    with pytest.raises(OperationFailed):
        rules.check_timeline("000000020000000000000003", 2, header(0))
