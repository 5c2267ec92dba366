"""``pgsafe verify``: which proof a backup gets.

A logical backup is restored into a throwaway cluster and its fingerprints compared
(:func:`pgsafe.verify.logical.verify_logical`); a physical one is verified by a drill
(:func:`pgsafe.verify.drill.drill`: restored, recovered to the end of the backup,
checked with pg_verifybackup and amcheck).  Either way the result is recorded in the
backup's catalog entry.
"""

from __future__ import annotations

from pathlib import Path

from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.verify.drill import drill
from pgsafe.verify.logical import verify_logical
from pgsafe.verify.report import VerifyResult


def verify_backup(repo: Repository, m: Manifest, home: Path) -> VerifyResult:
    """Prove that backup ``m`` restores, by the proof its kind gets; ``home`` holds the
    throwaway clusters."""
    if m.kind == "logical":
        return verify_logical(repo, m, home)
    return drill(repo, m, home)  # a physical backup is verified by a drill
