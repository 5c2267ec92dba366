"""The repository the settings name: one way to open it for every command.

``--repo`` (or ``PGSAFE_REPO``, or ``repo`` in the config) names one repository;
``[[repos]]`` in the config, with no ``repo`` given, names several that are used as
one (:meth:`Repository.open_many <pgsafe.repo.repository.Repository.open_many>`).

With ``create``, a missing repository is made with the configured codec and age
recipients, and the marker of an existing one must not be weaker than the config asks
(:meth:`Repository.check_pinned <pgsafe.repo.repository.Repository.check_pinned>`):
commands that write new backups open it so.  ``wal-push`` and ``wal-get`` open it
without (they never create a repository).  Lean: the CLI, and the full path of the
WAL endpoints, use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgsafe.repo.repository import Repository

if TYPE_CHECKING:
    from pgsafe.config.settings import Settings


def open_repository(
    settings: Settings,
    *,
    create: bool = False,
    writes: bool = False,
    owner: tuple[int, int] | None = None,
) -> Repository:
    """The repository of ``settings``; with ``create``, made when missing (with the
    configured codec, owned by ``owner`` when given) and checked against the configured
    encryption; ``writes`` (``wal-push``) checks it too without creating anything."""
    codec = None
    if create:
        from pgsafe.repo.codec.pipeline import CodecSpec  # as Repository: codecs on use

        level = settings.compress_level if settings.compression == "zstd" else None
        codec = CodecSpec.parse(settings.compression, level, settings.encryption).to_dict()
    if not settings.repo and settings.repos:
        repo = Repository.open_many(
            list(settings.repos),
            settings.server,
            create=create,
            codec=codec,
            recipients=settings.age_recipients,
            owner=owner,
        )
    else:
        repo = Repository.open(
            settings.repo,
            settings.server,
            create=create,
            codec=codec,
            recipients=settings.age_recipients,
            owner=owner,
        )
    if create or writes:  # what writes new objects must not write them weaker than configured
        repo.check_pinned(settings.encryption, settings.age_recipients)
    return repo
