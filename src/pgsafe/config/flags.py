"""pgsafe's global flags, read from a command line in one place (lean).

The global flags are ``--config FILE``, ``--repo R``, ``--server S`` (each also as
``--repo=R``), ``--json``, ``-q``/``--quiet`` and ``-v``/``--verbose`` (counted:
``-v -v``, ``-vv``, and short clusters of ``q`` and ``v`` such as ``-qv``, as click
reads them).  They are accepted before and after the command name; ``--`` ends the
flags (what follows belongs to the command, or to another program).

Readers: :mod:`pgsafe.__main__` (the command name, to start ``wal-push`` and
``wal-get`` without click), the lean entry :mod:`pgsafe.wal.entry` (its whole command
line), and the click application (:mod:`pgsafe.cli.app`, for ``--json`` and the
verbosity before click has run).  click declares the same flags
(:func:`pgsafe.cli.common.global_options`) and stores them under the same names as
:meth:`GlobalFlags.settings_flags`, the mapping :func:`pgsafe.config.load_settings`
reads.

Built-in modules and :mod:`pgsafe.errors` only: ``wal-push``'s launcher imports this.
"""

from __future__ import annotations

from pgsafe.errors import BadInput

TYPE_CHECKING = False  # typing costs wal-push's fast path ~15 ms
if TYPE_CHECKING:
    from collections.abc import Iterable

VALUE_OPTIONS = {"--config": "config", "--repo": "repo", "--server": "server"}
SWITCHES = {"--json": "json", "--quiet": "quiet", "--verbose": "verbose"}
SHORT_SWITCHES = {"q": "quiet", "v": "verbose"}
_SHORT = frozenset(SHORT_SWITCHES)


class GlobalFlags:
    """One command line, read: the global flags, the command name, the rest.

    ``given`` records each global flag as it was spelled, without its dashes (a value
    for ``--repo``/``--server``/``--config``, a count for a switch; ``-qv`` counts ``q``
    and ``v``); ``extras`` counts the caller's own switches (``--probe``)."""

    __slots__ = ("command", "extras", "given", "positional", "unknown")

    def __init__(self) -> None:
        self.command: str | None = None
        self.positional: list[str] = []  # after the command name
        self.given: dict[str, object] = {}
        self.extras: dict[str, int] = {}
        self.unknown: list[str] = []  # other options (with strict=False)

    def add_positional(self, arg: str) -> None:
        if self.command is None:
            self.command = arg
        else:
            self.positional.append(arg)

    def _count(self, key: str) -> int:
        value = self.given.get(key, 0)
        return value if type(value) is int else 0

    @property
    def json(self) -> bool:
        return self._count("json") > 0

    @property
    def quiet(self) -> bool:
        return self._count("quiet") + self._count("q") > 0

    @property
    def verbose(self) -> int:
        return self._count("verbose") + self._count("v")

    def value(self, name: str) -> str | None:
        """``--config``, ``--repo`` or ``--server`` as given (the last one wins)."""
        v = self.given.get(name)
        return v if isinstance(v, str) else None

    def settings_flags(self) -> dict[str, object]:
        """The flags as :func:`pgsafe.config.load_settings` reads them (and as click
        stores them): the values given, ``json``/``quiet`` when set, ``verbose`` counted."""
        out: dict[str, object] = {}
        for name in VALUE_OPTIONS.values():
            v = self.value(name)
            if v is not None:
                out[name] = v
        if self.json:
            out["json"] = True
        if self.quiet:
            out["quiet"] = True
        if self.verbose:
            out["verbose"] = self.verbose
        return out


def _bump(counts: dict[str, object], key: str) -> None:
    n = counts.get(key, 0)
    counts[key] = (n if type(n) is int else 0) + 1


def parse(args: Iterable[str], *, extras: Iterable[str] = (), strict: bool = True) -> GlobalFlags:
    """Read ``args``.  The first positional argument is the command name, the others
    its arguments.  Another option, or a value option with no value, raises
    :class:`~pgsafe.errors.BadInput` (exit 2); with ``strict=False`` it is kept in
    ``unknown`` (the value of an option that takes one is then read as a positional
    argument: only the global flags are known here)."""
    out = GlobalFlags()
    extra = frozenset(extras)
    it = iter(args)
    for a in it:
        if a == "--":  # the rest is positional, as click reads it
            for rest in it:
                out.add_positional(rest)
            break
        key, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
        if key in VALUE_OPTIONS:
            if not eq:
                nxt = next(it, None)
                if nxt is None:
                    if strict:
                        raise BadInput(f"{key} needs a value")
                    out.unknown.append(a)
                    break
                value = nxt
            out.given[VALUE_OPTIONS[key]] = value
        elif a in SWITCHES:
            _bump(out.given, SWITCHES[a])
        elif a in extra:
            out.extras[a] = out.extras.get(a, 0) + 1
        elif len(a) > 1 and a[0] == "-" and a[1] != "-" and _SHORT.issuperset(a[1:]):
            for letter in a[1:]:
                _bump(out.given, letter)
        elif a.startswith("-") and a != "-":
            if strict:
                raise BadInput(f"unknown option {a}")
            out.unknown.append(a)
        else:
            out.add_positional(a)
    return out


def command_name(args: Iterable[str]) -> str | None:
    """The command a command line runs (the first argument that is not a global flag
    or a global flag's value), or None."""
    return parse(args, strict=False).command
