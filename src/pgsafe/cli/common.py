"""Shared CLI pieces: global flags (accepted before and after the command name),
connection flags, settings, and output."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar

import click

from pgsafe.cluster import runas
from pgsafe.config import Settings, load_settings, open_repository
from pgsafe.errors import BadInput
from pgsafe.pg.conninfo import ConnOptions
from pgsafe.progress import NullProgress, Progress
from pgsafe.repo.repository import Repository

F = TypeVar("F", bound=Callable[..., object])  # a click command function, any signature
_META = "pgsafe.flags"
FlagValue = str | int | bool | tuple[str, ...] | None  # what click gives a global option

PORT = click.IntRange(1, 65535)  # every --port: a TCP port number, else a usage error (exit 2)


def _store(ctx: click.Context, param: click.Parameter, value: FlagValue) -> FlagValue:
    """Keep a global flag given before or after the command name (the context's meta
    is shared by the group and the command); ``-v`` counts on both sides, as
    :mod:`pgsafe.config.flags` counts it.  The names are those of
    :meth:`pgsafe.config.flags.GlobalFlags.settings_flags`."""
    if value is None or value is False or value == 0 or value == ():
        return value
    flags: dict[str, FlagValue] = ctx.meta.setdefault(_META, {})
    assert param.name is not None
    if isinstance(param, click.Option) and param.count:
        before = flags.get(param.name, 0)
        assert isinstance(value, int) and isinstance(before, int)
        value += before
    flags[param.name] = value
    return value


def global_options(f: F) -> F:
    opts = [
        click.option(
            "--config",
            type=str,
            default=None,
            expose_value=False,
            callback=_store,
            help="TOML config file",
        ),
        click.option(
            "--repo",
            type=str,
            default=None,
            expose_value=False,
            callback=_store,
            help="repository: a folder (or $PGSAFE_REPO)",
        ),
        click.option(
            "--server",
            type=str,
            default=None,
            expose_value=False,
            callback=_store,
            help="server name inside the repository (default main)",
        ),
        click.option(
            "--json",
            "json",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_store,
            help="one JSON document on stdout",
        ),
        click.option(
            "-q",
            "--quiet",
            "quiet",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_store,
            help="print only what is asked for",
        ),
        click.option(
            "-v",
            "--verbose",
            "verbose",
            count=True,
            expose_value=False,
            callback=_store,
            help="more logging",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def conn_options(f: F) -> F:
    opts = [
        click.option(
            "-d",
            "--dbname",
            type=str,
            default=None,
            help="database name or connection string / URI",
        ),
        click.option("-h", "--host", type=str, default=None, help="server host or socket folder"),
        click.option("-p", "--port", type=PORT, default=None, help="server port"),
        click.option("-U", "--username", type=str, default=None, help="user name"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def settings() -> Settings:
    ctx = click.get_current_context()
    root = ctx.find_root()
    cached = root.meta.get("pgsafe.settings")
    if isinstance(cached, Settings):
        return cached
    s = load_settings(ctx.meta.get(_META, {}))
    root.meta["pgsafe.settings"] = s
    return s


def conn(
    dbname: str | None, host: str | None, port: int | None, username: str | None
) -> ConnOptions:
    pg = settings().postgres
    return ConnOptions(
        dbname=dbname or pg.dbname,
        host=host or pg.host,
        port=port or pg.port,
        user=username or pg.user,
    )


def emit(
    doc: Mapping[str, object], text: str | Callable[[], str], *, quiet_text: str | None = None
) -> None:
    """Print the result: JSON with --json, else the text; with --quiet only ``quiet_text``."""
    s = settings()
    if s.json:
        click.echo(json_text(doc))
        return
    if s.quiet:
        if quiet_text:
            click.echo(visible(quiet_text))
        return
    out = text() if callable(text) else text
    if out:
        click.echo(visible(out))


def _escape(ch: str) -> str:
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts an
# escape sequence, CSI is one byte in C1), DEL, lone surrogates (a name that was not
# UTF-8), the line and paragraph separators, and the bidirectional overrides that
# reorder what is shown.  Strings from a repository are untrusted: a label or a database
# name must not be able to rewrite the screen.
_HIDDEN = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def visible(text: str) -> str:
    """``text`` for a terminal: control characters and escape sequences made visible as
    ``\\x1b``-style escapes (newlines and tabs kept)."""
    return _HIDDEN.sub(lambda m: _escape(m.group()), text)


_JSON_HIDDEN = re.compile(r"[\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(doc: Mapping[str, object]) -> str:
    """``doc`` as JSON for stdout.  ``json`` escapes C0 controls itself; the other
    characters a terminal acts on (see :func:`visible`) can only occur inside strings,
    where ``\\uXXXX`` is the same character to any JSON reader."""
    text = json.dumps(doc, indent=2, default=str, ensure_ascii=False)
    return _JSON_HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def label_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--label``: a note stored in the catalog, so UTF-8 text of bounded length."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(
            f"--label {value!a} is not UTF-8 text",
            hint="give the label as UTF-8 text (the catalog stores it as JSON)",
        ) from None
    if len(value) > LABEL_MAX:
        raise BadInput(f"--label is longer than {LABEL_MAX} characters", hint="shorten it")
    return value


LABEL_MAX = 1000


def info(message: str) -> None:
    """A line for people on stderr (never with --json or --quiet)."""
    s = settings()
    if not s.json and not s.quiet:
        click.echo(message, err=True)


def progress(description: str) -> Progress:
    s = settings()
    if s.json or s.quiet or not sys.stderr.isatty():
        return NullProgress()
    from pgsafe.cli.richprogress import RichProgress

    return RichProgress(description)


def open_repo(*, create: bool = False) -> Repository:
    """The repository of the settings (:func:`pgsafe.config.open_repository`); one
    created now belongs to the server's OS user when we are root (it runs wal-push)."""
    owner = runas.repository_owner() if create else None
    return open_repository(settings(), create=create, owner=owner)


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def table(headers: list[str], rows: list[list[str]]) -> str:
    rows = [[visible(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    fmt = "  ".join("{:<" + str(w) + "}" for w in widths)
    lines = [fmt.format(*headers)]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
