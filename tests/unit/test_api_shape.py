"""pgsafe.api: one shape of signature (repository first, a typed request, a typed
result), and the lazy re-export from ``pgsafe`` that keeps wal-push lean."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing

from pgsafe import api
from pgsafe.repo.repository import Repository

OPERATIONS = [
    "dump", "backup", "restore", "verify", "recover", "mark", "export", "expire", "info",
    "list_backups", "undo", "restore_table",
]  # fmt: skip


def test_every_operation_takes_the_repository_then_one_frozen_request() -> None:
    for name in OPERATIONS:
        fn = getattr(api, name)
        hints = typing.get_type_hints(fn)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        assert params[0].name == "repo" and hints["repo"] is Repository, name
        assert len(params) <= 2, name
        if len(params) == 2:
            req = hints[params[1].name]
            assert req.__name__.endswith("Request"), name
            assert isinstance(req, type) and dataclasses.is_dataclass(req), name
            assert req.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
        assert hints["return"] is not type(None), name
        assert name in api.__all__


def test_pgsafe_re_exports_the_api_lazily() -> None:
    code = (
        "import sys, pgsafe\n"
        "from pgsafe import clock, errors\n"
        "assert 'pgsafe.api' not in sys.modules\n"
        "assert pgsafe.dump is pgsafe.api.dump and pgsafe.Backup is pgsafe.api.Backup\n"
        "import pgsafe.verify\n"
        "assert pgsafe.verify.__name__ == 'pgsafe.verify'  # the package, not the operation\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
