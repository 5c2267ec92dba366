"""wal-push into an encrypted repository from a host holding only the public key: a
retry of the same file is accepted, other content under the same name is refused, and
the stored copy stays intact (compared through the plaintext digest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pgsafe.cluster.runas import repository_owner
from pgsafe.repo.keys import X25519Identity
from pgsafe.repo.repository import Repository


def push(repo: Path, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGSAFE_AGE")}
    return subprocess.run(
        [sys.executable, "-m", "pgsafe", "--repo", str(repo), "wal-push", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )


def test_retry_and_conflict_with_only_the_public_key(tmp_path: Path) -> None:
    public = str(X25519Identity.generate().recipient)  # the secret half is thrown away
    repo_path = tmp_path / "repo"
    Repository.open(
        str(repo_path),
        "main",
        create=True,
        owner=repository_owner(),
        codec={
            "compression": "zstd",
            "level": 3,
            "encryption": {"format": "age", "mode": "x25519"},
        },
        recipients=(public,),
    )
    wal = tmp_path / "00000002.history"
    wal.write_text("1\t0/3000000\tno recovery target specified\n")
    first = push(repo_path, wal)
    assert first.returncode == 0, first.stderr
    (stored,) = list(repo_path.rglob("00000002.history.zst.age"))
    before = stored.read_bytes()
    again = push(repo_path, wal)
    assert again.returncode == 0, again.stderr  # a retry after a crash goes through
    wal.write_text("1\t0/4000000\tsomething else\n")
    other = push(repo_path, wal)
    assert other.returncode == 1 and "DIFFERENT content" in other.stderr
    assert stored.read_bytes() == before
