"""Which config file is in play, and where each plain setting comes from (lean).

The config file: ``--config FILE``, else ``$PGSAFE_CONFIG``, else the first of
:data:`CANDIDATES` that exists.  A plain setting (``repo``, ``server``...) is its
flag when given, else its ``PGSAFE_*`` variable when set and not empty, else the
file's value, else its default.

:func:`pgsafe.config.settings.load_settings` reads the settings with these rules;
``wal-push``'s fast path uses them to find out that no config file takes part and
what the repository and server are.  Built-in modules and :mod:`pgsafe.errors` only.
"""

from __future__ import annotations

import os

from pgsafe.errors import BadInput

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Mapping

CONFIG_ENV = "PGSAFE_CONFIG"
CANDIDATES = ("pgsafe.toml", "~/.config/pgsafe/pgsafe.toml", "/etc/pgsafe/pgsafe.toml")
ENV = {
    "repo": "PGSAFE_REPO",
    "server": "PGSAFE_SERVER",
    "compress_level": "PGSAFE_COMPRESS_LEVEL",
    "compression": "PGSAFE_COMPRESSION",
    "encryption": "PGSAFE_ENCRYPTION",
}
FLAGGED = frozenset({"repo", "server"})  # the settings a global flag can give
DEFAULT_SERVER = "main"


def config_file(explicit: str | None) -> str | None:
    """The config file in play (its path, ``~`` expanded), or None when there is none.

    A file named by ``--config`` or ``$PGSAFE_CONFIG`` must exist (exit 2 otherwise);
    the candidates are looked for (one we may not read counts as absent)."""
    if explicit:
        path = os.path.expanduser(explicit)
        if not os.path.isfile(path):
            raise BadInput(f"config file {path} does not exist", hint="check --config")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = os.path.expanduser(env)
        if not os.path.isfile(path):
            raise BadInput(f"config file {path} (from {CONFIG_ENV}) does not exist")
        return path
    for candidate in CANDIDATES:
        path = os.path.expanduser(candidate)
        if os.path.isfile(path):
            return path
    return None


def flag_or_env(flags: Mapping[str, object], key: str) -> object | None:
    """The setting ``key`` (one of :data:`ENV`) from its flag (given: not None), or its
    environment variable (set and not empty); None when neither says."""
    value = flags.get(key) if key in FLAGGED else None
    if value is not None:
        return value
    return os.environ.get(ENV[key]) or None
