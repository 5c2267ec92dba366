"""Commit times inside archived segments, read with PostgreSQL's own pg_waldump.

The recoverable window ends at the last archived commit; the planner asks for the last
commit time of a segment only at the end of each contiguous run, so this runs a few
times per plan, not once per segment.

pg_waldump reads the WAL of its own major only.  When that major's pg_waldump is not
installed, every commit time is unknown (``None``) and ``missing`` says which tool and
package would tell it: ``info`` still shows backups and WAL, ``recover --time`` refuses.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime

from pgsafe.errors import PgsafeError
from pgsafe.pg.programs import find_program
from pgsafe.pg.waldump import dump_text
from pgsafe.repo.repository import Repository
from pgsafe.wal import names
from pgsafe.wal.get import get

_COMMIT = re.compile(
    r"desc: COMMIT(?:_PREPARED \d+:)? (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC"
)


def commit_times(waldump_output: str) -> list[datetime]:
    out = []
    for m in _COMMIT.finditer(waldump_output):
        out.append(datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC))
    return out


class CommitScanner:
    """``(timeline, segno) -> last commit time`` over one repository, cached."""

    def __init__(self, repo: Repository, segment_size: int, major: int | None) -> None:
        self.repo = repo
        self.segment_size = segment_size
        self.major = major
        self._cache: dict[tuple[int, int], datetime | None] = {}
        self.missing: PgsafeError | None = None  # pg_waldump of ``major`` is not installed
        self._waldump: str | None = None
        try:
            self._waldump = find_program("pg_waldump", major)
        except PgsafeError as exc:
            self.missing = exc

    def __call__(self, timeline: int, segno: int) -> datetime | None:
        key = (timeline, segno)
        if key not in self._cache:
            self._cache[key] = self._scan(timeline, segno)
        return self._cache[key]

    def _scan(self, timeline: int, segno: int) -> datetime | None:
        if self._waldump is None:
            return None
        name = names.segment_name(timeline, segno, self.segment_size)
        with tempfile.TemporaryDirectory(prefix="pgsafe-waldump-") as d:
            path = os.path.join(d, name)
            if not get(self.repo, name, path):
                return None
            text = dump_text(path, major=self.major, rmgrs=("Transaction",))
        times = commit_times(text)
        return max(times) if times else None
