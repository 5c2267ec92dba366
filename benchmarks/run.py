"""``make bench``: pgsafe side by side with pg_basebackup, pgBackRest and the physical
floor.  The entry point only: ``benchmarks/cli.py`` says what runs, and ``--help`` lists
the parts and options.

    .venv/bin/python benchmarks/run.py [--scale 100] [--runs 3] [--quick] [--out DIR] ...
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "src", ROOT):  # pgsafe from this work tree, and the benchmarks package
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
