"""The command line PostgreSQL's archive_command / restore_command run.

:func:`command_line` is the runtime's argv (:mod:`pgsafe.endpoint.runtime`), then the
:class:`Endpoint`, then the verb (``wal-push %p`` or ``wal-get %f %p``).  The endpoint
is ``--repo URL`` (a folder, made absolute, or ``s3://...``) or, for ``[[repos]]``,
``--config FILE`` (absolute) so that every repository is reached; ``--server``; and a
few environment assignments written in front of the command (``NAME=value pgsafe ...``,
run by the server's shell).

Only *names of files* and public settings are ever put there, never a secret:

* a passphrase-encrypted repository needs ``PGSAFE_AGE_PASSPHRASE_FILE`` for both
  commands; an X25519 one needs nothing to encrypt (the public recipients are in the
  repository's marker) and ``PGSAFE_AGE_IDENTITY_FILE`` to decrypt (restore_command);
* S3 needs the non-secret ``PGSAFE_S3_*`` / ``AWS_REGION``-like settings; credentials
  come from the server's own environment or ``~postgres/.aws`` (never the command).

A passphrase or identity given inline (``PGSAFE_AGE_PASSPHRASE``, ``PGSAFE_AGE_IDENTITY``)
cannot be carried: :func:`endpoint_for` refuses with the fix (a file the server's OS
user can read).  Whether the server's user can read those files is proven by the
probes run as that user (:mod:`pgsafe.endpoint.probe`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pgsafe.endpoint.runtime import Runtime
from pgsafe.errors import BadInput
from pgsafe.repo.keys import (
    ENV_IDENTITY,
    ENV_IDENTITY_FILE,
    ENV_PASSPHRASE,
    ENV_PASSPHRASE_FILE,
    ENV_RECIPIENTS,
    ENV_RECIPIENTS_FILE,
)
from pgsafe.repo.repository import Repository
from pgsafe.repo.storage.mirror import MirrorStorage

S3_SETTINGS = (
    "PGSAFE_S3_ENDPOINT",
    "PGSAFE_S3_REGION",
    "PGSAFE_S3_ADDRESSING_STYLE",
    "PGSAFE_S3_PART_SIZE_MB",
    "PGSAFE_S3_UPLOAD_CONCURRENCY",
    "PGSAFE_S3_MAX_ATTEMPTS",
    "PGSAFE_S3_CONDITIONAL_WRITES",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
)
_FILE_VARS = (ENV_PASSPHRASE_FILE, ENV_IDENTITY_FILE, ENV_RECIPIENTS_FILE)
AGE_VARS = (*_FILE_VARS, ENV_PASSPHRASE, ENV_IDENTITY, ENV_RECIPIENTS)


@dataclass(frozen=True)
class Endpoint:
    """The repository part of a WAL endpoint command."""

    server: str
    repo_url: str | None = None
    config: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def args(self) -> list[str]:
        where = ["--config", self.config] if self.config else ["--repo", self.repo_url or ""]
        return [*where, "--server", self.server]


def repo_url(url: str) -> str:
    """A repository URL as a command line must hold it (local folders made absolute)."""
    return url if "://" in url else str(Path(url).absolute())


def repo_location(repo: Repository) -> str:
    """:func:`repo_url` of ``repo``'s storage (the first of several)."""
    return repo_url(repo.storage.url)


def urls(repo: Repository) -> list[str]:
    """The URL of each repository ``repo`` writes to (several with ``[[repos]]``)."""
    if isinstance(repo.storage, MirrorStorage):
        return [m.storage.url for m in repo.storage.members]
    return [repo.storage.url]


def is_s3(repo: Repository) -> bool:
    """Whether one of the repositories is on S3 (a copied runtime then carries botocore)."""
    return any(u.startswith("s3://") for u in urls(repo))


def _inline_refused(var: str, file_var: str, what: str) -> BadInput:
    return BadInput(
        f"{what} is given inline in {var}; pgsafe never writes a secret into "
        "archive_command/restore_command",
        hint=f"put it in a file the server's OS user can read (e.g. install -o postgres "
        f"-m 0600 KEYFILE /etc/pgsafe/) and set {file_var} to that file",
    )


def endpoint_for(
    repo: Repository,
    *,
    config: Path | None = None,
    decrypt: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """The endpoint for ``repo``: ``config`` when the repositories come from its
    ``[[repos]]``; ``decrypt`` for restore_command."""
    env = os.environ if environ is None else environ
    pairs: list[tuple[str, str]] = []
    if is_s3(repo):
        pairs += [(k, env[k]) for k in S3_SETTINGS if env.get(k)]
    spec = repo.codec_spec()
    if spec.encryption is not None and spec.encryption.mode == "passphrase":
        if env.get(ENV_PASSPHRASE_FILE):
            pairs.append((ENV_PASSPHRASE_FILE, str(Path(env[ENV_PASSPHRASE_FILE]).absolute())))
        elif env.get(ENV_PASSPHRASE):
            raise _inline_refused(ENV_PASSPHRASE, ENV_PASSPHRASE_FILE, "the passphrase")
    elif spec.encryption is not None:
        if env.get(ENV_RECIPIENTS):  # public keys: fine on a command line
            pairs.append((ENV_RECIPIENTS, env[ENV_RECIPIENTS]))
        if env.get(ENV_RECIPIENTS_FILE):
            pairs.append((ENV_RECIPIENTS_FILE, str(Path(env[ENV_RECIPIENTS_FILE]).absolute())))
        if decrypt and env.get(ENV_IDENTITY_FILE):
            pairs.append((ENV_IDENTITY_FILE, str(Path(env[ENV_IDENTITY_FILE]).absolute())))
        elif decrypt and env.get(ENV_IDENTITY):
            raise _inline_refused(ENV_IDENTITY, ENV_IDENTITY_FILE, "the age identity")
    if config is not None:
        return Endpoint(repo.server, config=str(config.absolute()), env=tuple(pairs))
    return Endpoint(repo.server, repo_url=repo_url(repo.storage.url), env=tuple(pairs))


def command_line(
    runtime: Runtime,
    repo_url: str | None,
    server: str,
    verb: str,
    *,
    config: str | None = None,
    env: Sequence[tuple[str, str]] = (),
) -> str:
    """A shell command for postgresql.conf, every path quoted, ``%`` escaped.

    ``verb`` is ``"wal-push %p"`` or ``"wal-get %f %p"``: its placeholders stay live.
    ``config`` replaces ``--repo`` (``[[repos]]``); ``env`` pairs go in front of the
    command as ``NAME=value`` (file names and public settings only, never secrets).
    """
    where = ["--config", config] if config else ["--repo", repo_url or ""]
    words = [*runtime.argv, *where, "--server", server]
    assigns = [f"{k}={shlex.quote(v)}" for k, v in env]
    quoted = " ".join([*assigns, *(shlex.quote(w) for w in words)]).replace("%", "%%")
    return f"{quoted} {verb}"


def endpoint_command(runtime: Runtime, ep: Endpoint, verb: str) -> str:
    """:func:`command_line` of ``runtime`` and ``ep``."""
    return command_line(runtime, ep.repo_url, ep.server, verb, config=ep.config, env=ep.env)
