"""Settings: defaults < config file < PGSAFE_* environment < command-line flags.

:mod:`pgsafe.config.flags` (the global flags of a command line) and
:mod:`pgsafe.config.discovery` (which config file, which variable) are lean: ``wal-push``'s
fast path imports them.  So this package imports nothing itself: :class:`Settings`,
:func:`load_settings`, :func:`state_home` (:mod:`pgsafe.config.settings`: dataclasses,
pathlib, tomllib) and :func:`open_repository` (:mod:`pgsafe.config.repository`) are
loaded on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from pgsafe.config.repository import open_repository
    from pgsafe.config.settings import Settings, load_settings, state_home

__all__ = ["Settings", "load_settings", "open_repository", "state_home"]
_WHERE = {
    "Settings": "settings",
    "load_settings": "settings",
    "state_home": "settings",
    "open_repository": "repository",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
