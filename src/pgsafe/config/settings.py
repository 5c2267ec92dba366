"""Frozen settings, validated once at the edge.

The config file is TOML: ``--config FILE``, else ``$PGSAFE_CONFIG``, else
``./pgsafe.toml``, else ``~/.config/pgsafe/pgsafe.toml``, else ``/etc/pgsafe/pgsafe.toml``
(:mod:`pgsafe.config.discovery`, which ``wal-push``'s fast path shares).
Recognised top-level keys: ``repo``, ``server``, ``compression`` (zstd, lz4, gzip, none),
``compress_level``, ``encryption`` (none, age, age-passphrase), ``age_recipients``; table
``[postgres]`` with ``dbname``, ``host``, ``port``, ``user``.  Other tables
(``[retention]``, ``[[jobs]]``, ...) are kept in ``raw`` for the features that own them.

The config is trusted input, but a mistake in it must never be silent: a file that is
not UTF-8, a top-level key that no feature reads (a typo such as ``reop`` would
otherwise leave the repository unset), an unknown ``[postgres]`` key or a port that is
not a number from 1 to 65535 is refused with one line and a hint (exit 2).  A feature
that adds a top-level key adds it to :data:`TOP_LEVEL_KEYS`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pgsafe.config import discovery
from pgsafe.errors import BadInput


def state_home() -> Path:
    """pgsafe's state folder: ``$PGSAFE_HOME``; as root ``/var/lib/pgsafe`` (which the
    server's OS user can reach); else ``$XDG_DATA_HOME/pgsafe`` or ``~/.local/share/pgsafe``."""
    env = os.environ.get("PGSAFE_HOME")
    if env:
        return Path(env).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/lib/pgsafe")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "pgsafe"


ConfigTable = Mapping[str, object]
"""A table of the TOML config as :mod:`tomllib` reads it: raw, checked by the feature
that reads it (the schedule, retention, status thresholds)."""


@dataclass(frozen=True)
class PostgresDefaults:
    """``[postgres]``: connection defaults under the ``-d -h -p -U`` flags."""

    dbname: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None


@dataclass(frozen=True)
class Settings:
    repo: str | None = None
    server: str = "main"
    json: bool = False
    quiet: bool = False
    verbose: int = 0
    compress_level: int = 3
    compression: str = "zstd"
    encryption: str = "none"
    age_recipients: tuple[str, ...] = ()
    repos: tuple[tuple[str, str], ...] = ()
    config_path: Path | None = None
    postgres: PostgresDefaults = field(default_factory=PostgresDefaults)
    raw: ConfigTable = field(default_factory=dict)  # the whole config file


def find_config(explicit: str | None) -> Path | None:
    """The config file in play (:func:`pgsafe.config.discovery.config_file`)."""
    path = discovery.config_file(explicit)
    return Path(path) if path is not None else None


# Every top-level key some feature reads; anything else is a mistake (see the module doc).
TOP_LEVEL_KEYS = frozenset(
    {
        "repo", "repos", "server", "compression", "compress_level", "encryption",
        "age_recipients", "postgres",
        "retention",  # pgsafe.retention.policy
        "status", "max_backup_age", "max_wal_age", "max_unproven_age",  # pgsafe.status
        "jobs", "daemon", "hooks", "hook_timeout", "on_success", "on_failure",  # schedule
    }
)  # fmt: skip
POSTGRES_KEYS = ("dbname", "host", "port", "user")


def read_config(path: Path) -> dict[str, object]:
    import tomllib  # only when a config file exists (wal-push without one skips it)

    try:
        with path.open("rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInput(
            f"config file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            hint="TOML files are UTF-8: convert it (e.g. iconv -f latin1 -t utf-8)",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"config file {path} is not valid TOML: {exc}") from None


def _check_keys(cfg: ConfigTable, path: Path | None) -> None:
    unknown = sorted(set(cfg) - TOP_LEVEL_KEYS)
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], sorted(TOP_LEVEL_KEYS), n=1)
    raise BadInput(
        f"unknown key(s) in {path}: {', '.join(unknown)}",
        hint=(f"did you mean {close[0]!r}? " if close else "")
        + f"known keys: {', '.join(sorted(TOP_LEVEL_KEYS))}",
    )


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadInput(f"{what} must be a port number from 1 to 65535, not {value!r}")
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise BadInput(
            f"{what} must be a port number from 1 to 65535, not {value!r}",
            hint="e.g. port = 5432",
        )
    return int(text)


def _postgres(cfg: ConfigTable, path: Path | None) -> PostgresDefaults:
    pg = cfg.get("postgres", {})
    if not isinstance(pg, dict):
        raise BadInput(f"[postgres] in {path} must be a table")
    unknown = sorted(set(pg) - set(POSTGRES_KEYS))
    if unknown:
        hint = f"known keys: {', '.join(POSTGRES_KEYS)}"
        if "password" in unknown:
            hint = "pgsafe never reads passwords from its config: use ~/.pgpass or PGPASSFILE"
        raise BadInput(f"unknown key(s) in [postgres] of {path}: {', '.join(unknown)}", hint=hint)
    texts: dict[str, str | None] = {}
    for key in ("dbname", "host", "user"):
        value = pg.get(key)
        if value is not None and not isinstance(value, str):
            raise BadInput(f"[postgres] {key} in {path} must be a string, not {value!r}")
        texts[key] = value
    port = _port(pg["port"], f"[postgres] port in {path}") if "port" in pg else None
    return PostgresDefaults(texts["dbname"], texts["host"], port, texts["user"])


def _int(value: object, what: str) -> int:
    try:
        if isinstance(value, int | float | str):
            return int(value)
    except (ValueError, OverflowError):  # "x", nan, inf
        pass
    raise BadInput(f"{what} must be a whole number, not {value!r}")


def load_settings(flags: Mapping[str, object]) -> Settings:
    """Merge defaults, file, environment and flags (flags that are None are unset)."""
    config = flags.get("config")
    path = find_config(config if isinstance(config, str) else None)
    file_cfg = read_config(path) if path else {}
    _check_keys(file_cfg, path)
    merged: dict[str, object] = {
        "repo": file_cfg.get("repo"),
        "server": file_cfg.get("server", discovery.DEFAULT_SERVER),
        "compress_level": file_cfg.get("compress_level", 3),
        "compression": file_cfg.get("compression", "zstd"),
        "encryption": file_cfg.get("encryption", "none"),
    }
    for key in discovery.ENV:
        value = discovery.flag_or_env(flags, key)
        if value is not None:
            merged[key] = value
    level = _int(merged["compress_level"], "compress_level")
    recipients = file_cfg.get("age_recipients", [])
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise BadInput("age_recipients must be a list of age public keys (age1...)")
    repos = _repos(file_cfg, path)
    if repos and file_cfg.get("repo"):
        raise BadInput(f"{path} sets both repo and [[repos]]", hint="keep one of them")
    pg = _postgres(file_cfg, path)
    return Settings(
        repo=str(merged["repo"]) if merged["repo"] else None,
        server=str(merged["server"]),
        json=bool(flags.get("json")),
        quiet=bool(flags.get("quiet")),
        verbose=_int(flags.get("verbose") or 0, "-v"),
        compress_level=level,
        compression=str(merged["compression"]),
        encryption=str(merged["encryption"]),
        age_recipients=tuple(recipients),
        repos=repos,
        config_path=path,
        postgres=pg,
        raw=file_cfg,
    )


def _repos(cfg: ConfigTable, path: Path | None) -> tuple[tuple[str, str], ...]:
    """``[[repos]]``: ``url`` and an optional ``name`` each; the first is the primary."""
    tables = cfg.get("repos", [])
    if not isinstance(tables, list):
        raise BadInput(f"repos in {path} must be [[repos]] tables")
    out: list[tuple[str, str]] = []
    for i, t in enumerate(tables, 1):
        if not isinstance(t, dict) or not isinstance(t.get("url"), str) or not t["url"]:
            raise BadInput(
                f"[[repos]] number {i} in {path} needs a url",
                hint='url = "/srv/backups" or url = "s3://bucket/prefix"',
            )
        unknown = set(t) - {"url", "name"}
        if unknown:
            raise BadInput(f"unknown key(s) in [[repos]] number {i}: {', '.join(sorted(unknown))}")
        name = str(t.get("name") or f"repo{i}")
        if name in {n for n, _ in out}:
            raise BadInput(f"two [[repos]] are named {name!r}")
        out.append((name, t["url"]))
    return tuple(out)
