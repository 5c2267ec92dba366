"""The last recovery's WAL figures, kept for ``info`` (pgsafe.recovery.lastrecovery):
recorded per repository and server, read back as untrusted."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pgsafe.recovery import lastrecovery
from pgsafe.recovery.walfetch import WalFetch


def test_recorded_per_repository_and_server(tmp_path: Path) -> None:
    fetch = WalFetch(2, 31, 1, 0.42)
    lastrecovery.record(tmp_path, "/r", "main", "/data", "promoted", fetch)
    last = lastrecovery.load(tmp_path, "/r", "main")
    assert last is not None and last.wal_fetch == fetch
    assert (last.pgdata, last.state) == ("/data", "promoted")
    assert lastrecovery.load(tmp_path, "/r", "other") is None
    assert lastrecovery.load(tmp_path, "/other", "main") is None
    (path,) = (tmp_path / lastrecovery.FOLDER).iterdir()
    assert path.stat().st_mode & 0o777 == 0o600
    lastrecovery.record(tmp_path, "/r", "main", "/data2", "paused", WalFetch(0, 5, 0, 1))
    last = lastrecovery.load(tmp_path, "/r", "main")
    assert last is not None and (last.pgdata, last.wal_fetch.segments_from_spool) == ("/data2", 5)


def test_a_record_of_another_shape_or_a_link_is_ignored(tmp_path: Path) -> None:
    lastrecovery.record(tmp_path, "/r", "main", "/data", "promoted", WalFetch(1, 1, 0, 0.1))
    (path,) = (tmp_path / lastrecovery.FOLDER).iterdir()
    doc = json.loads(path.read_text())
    for bad in ({**doc, "segments_fetched": -1}, {**doc, "wait_s": True},
                {**doc, "pgdata": 5}, {**doc, "server": "x"}, [doc]):  # fmt: skip
        path.write_text(json.dumps(bad))
        assert lastrecovery.load(tmp_path, "/r", "main") is None, bad
    path.write_text("x" * (lastrecovery.LIMIT + 10))
    assert lastrecovery.load(tmp_path, "/r", "main") is None
    path.unlink()
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(doc))
    os.symlink(target, path)
    assert lastrecovery.load(tmp_path, "/r", "main") is None
