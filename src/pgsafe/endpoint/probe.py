"""Probes that prove the server's OS user can run a WAL endpoint before it is configured.

Each probe runs ``wal-push --probe`` (write the repository, encode with its codec) or
``wal-get --probe`` (read the repository, decode) through the runtime and the endpoint,
as the server's OS user, with the environment the server's command will have — the
caller's inline age secrets removed, the endpoint's assignments added
(:func:`probe_env`).  A failing probe raises with the fix: which files that user must
be able to read.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping

from pgsafe.cluster import runas
from pgsafe.endpoint.command import AGE_VARS, Endpoint, endpoint_for, repo_location
from pgsafe.endpoint.runtime import Runtime
from pgsafe.errors import BadInput, OperationFailed
from pgsafe.pg.runner import first_error_line
from pgsafe.repo.repository import Repository


def probe_env(ep: Endpoint, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without pgsafe's age variables, plus the endpoint's: what the command
    will see when the server runs it (inline secrets of the caller do not count)."""
    out = {k: v for k, v in base.items() if k not in AGE_VARS}
    out.update(dict(ep.env))
    return out


def run_probe(
    rt: Runtime, ep: Endpoint, verb: str, user: runas.OsUser | None
) -> subprocess.CompletedProcess[str]:
    """``verb --probe`` through ``ep``, as the server's user, with the environment the
    server's command will have (the caller's inline age secrets removed)."""
    kwargs = runas.popen_kwargs(user)
    kwargs["env"] = probe_env(ep, kwargs.get("env") or os.environ)
    return subprocess.run(
        [*rt.argv, *ep.args(), verb, "--probe"], capture_output=True, text=True,
        check=False, timeout=60, stdin=subprocess.DEVNULL, **kwargs,
    )  # fmt: skip


def check_repo_writable(
    rt: Runtime, repo: Repository, user: runas.OsUser | None, ep: Endpoint | None = None
) -> None:
    """Run ``wal-push --probe`` as the server's user; raise with a fix when it fails."""
    ep = ep or endpoint_for(repo)
    proc = run_probe(rt, ep, "wal-push", user)
    if proc.returncode != 0:
        who = user.name if user else "the server's OS user"
        files = " ".join(shlex.quote(v) for k, v in ep.env if k.endswith("_FILE"))
        fix = f"give it the repository: chown -R {who} {shlex.quote(repo_location(repo))}"
        if files:
            fix += f"; and let it read {files} (chown {who}, chmod 0600)"
        if ep.config:
            fix += f"; and let it read the config {shlex.quote(ep.config)}"
        raise OperationFailed(
            f"the OS user {who!r} cannot archive into {repo_location(repo)}: "
            f"{first_error_line(proc.stderr)}",
            hint=fix,
        )


def check_repo_readable(rt: Runtime, ep: Endpoint, user: runas.OsUser | None) -> None:
    """Run ``wal-get --probe`` as the server's user; :class:`BadInput` with the fix
    (the key files it must read) when restore_command would fail."""
    proc = run_probe(rt, ep, "wal-get", user)
    if proc.returncode != 0:
        who = user.name if user else "the server's OS user"
        files = [v for k, v in ep.env if k.endswith("_FILE")]
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        raise BadInput(
            f"restore_command would fail for the OS user {who!r}: "
            + (lines[0][7:] if lines else proc.stderr.strip()[-300:]),
            hint=(
                f"let {who} read {' '.join(files)} (e.g. chown {who} FILE; chmod 0600 FILE)"
                if files
                else f"let {who} read the repository and its config"
            ),
        )
