"""The schema of a catalog entry: a manifest body (parsed JSON) checked field by field.

A manifest is untrusted input: the checksum beside it has no key, so whoever can write
the repository can write any body with a matching checksum.  :func:`manifest_from_body`
turns a body into a :class:`~pgsafe.repo.catalog.Manifest` only when every field has the
type and range pgsafe relies on; anything else raises :class:`CatalogDamaged` naming
the first field that is wrong (``objects[2].size is -1, not a size``).  The caller
(:mod:`pgsafe.repo.repository`) makes that one backup DAMAGED; the rest of the
repository keeps working.

Rules:

- **required** keys: ``id``, ``kind``, ``server``, ``status``, ``started_at``,
  ``finished_at``; the other fields have defaults, as in the dataclasses.
- **unknown keys** — at the top level, in an object or in a verification — are kept
  (``extra``) and ignored: a newer pgsafe that adds a field does not lock this version
  out, and re-saving an entry (``pgsafe keep``, a verification) does not drop them.
- **ids** follow :func:`pgsafe.repo.catalog_names.backup_id_problem` and must equal the
  folder the manifest is in; **object names** follow
  :func:`~pgsafe.repo.catalog_names.object_name_problem`, and appear once each.
- **numbers** are ints (never bool or float) from 0 to :data:`MAX_SIZE` (2**53: exact
  in every JSON reader); **times** are ISO 8601 with an offset.
- the values other modules read out of ``options`` and ``physical`` have their types
  checked too (a list of ``[schema, table]`` pairs, an LSN string...).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pgsafe.errors import VerificationFailed
from pgsafe.models.kinds import BackupKind
from pgsafe.repo.catalog_names import text_problem

MAX_SIZE = 2**53
MAX_OBJECTS = 100_000
MAX_VERIFICATIONS = 10_000
KINDS = tuple(BackupKind)
SHA256_RE = re.compile(r"[0-9a-f]{64}")
_LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
_WAL_RE = re.compile(r"[0-9A-F]{24}")


class CatalogDamaged(VerificationFailed):
    """A catalog entry cannot be read as a backup (exit 3, like any damage)."""


class Checker:
    """Reads typed values out of one manifest body, naming the field of any error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, problem: str) -> CatalogDamaged:
        return CatalogDamaged(
            f"catalog entry {self.where} is damaged: {field}: {problem}",
            hint="the manifest was changed outside pgsafe or by a newer pgsafe; "
            "restore it from a copy, or remove the backup folder",
        )

    def dict_(self, value: object, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"is {_what(value)}, not an object")
        return value

    def list_(self, value: object, field: str, limit: int = MAX_OBJECTS) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"is {_what(value)}, not a list")
        if len(value) > limit:
            raise self.fail(field, f"has more than {limit} entries")
        return value

    def str_(self, value: object, field: str, limit: int = 4096, *, plain: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"is {_what(value)}, not a string")
        if len(value) > limit:
            raise self.fail(field, f"is longer than {limit} characters")
        if plain:
            problem = text_problem(value, limit=limit)
            if problem:
                raise self.fail(field, problem)
        return value

    def opt_str(self, value: object, field: str, limit: int = 4096) -> str | None:
        return None if value is None else self.str_(value, field, limit)

    def int_(self, value: object, field: str, limit: int = MAX_SIZE) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"is {_what(value)}, not an integer")
        if not 0 <= value < limit:
            raise self.fail(field, f"is {value}, out of range (0 to {limit - 1})")
        return value

    def opt_int(self, value: object, field: str, limit: int = MAX_SIZE) -> int | None:
        return None if value is None else self.int_(value, field, limit)

    def bool_(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, f"is {_what(value)}, not true or false")
        return value

    def time(self, value: object, field: str) -> str:
        text = self.str_(value, field, 64, plain=True)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(field, f"{text!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise self.fail(field, f"{text!r} has no time zone offset")
        return text

    def pattern(self, value: object, field: str, regex: re.Pattern[str], what: str) -> str:
        text = self.str_(value, field, 256)
        if not regex.fullmatch(text):
            raise self.fail(field, f"{text!r} is not {what}")
        return text

    def str_list(self, value: object, field: str) -> list[str]:
        return [self.str_(v, f"{field}[{i}]") for i, v in enumerate(self.list_(value, field))]

    def pairs(self, value: object, field: str) -> list[list[str]]:
        out = []
        for i, pair in enumerate(self.list_(value, field)):
            items = self.str_list(pair, f"{field}[{i}]")
            if len(items) != 2:
                raise self.fail(f"{field}[{i}]", "is not a [schema, table] pair")
            out.append(items)
        return out


def _what(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def check_options(c: Checker, options: dict[str, Any]) -> None:
    """The option values that restore and verify read, with the types they expect."""
    for key in ("tables",):
        if key in options:
            c.pairs(options[key], f"options.{key}")
    for key in ("table_args", "exclude_args", "databases", "roles"):
        if key in options:
            c.str_list(options[key], f"options.{key}")
    for key in ("schema_only", "data_only", "statistics"):
        if key in options:
            c.bool_(options[key], f"options.{key}")
    if "jobs" in options:
        c.int_(options["jobs"], "options.jobs", 10_000)
    if "fingerprint_method" in options:
        c.str_(options["fingerprint_method"], "options.fingerprint_method", 64)
    if "db_tables" in options:
        for db, tables in c.dict_(options["db_tables"], "options.db_tables").items():
            c.pairs(tables, f"options.db_tables[{db!r}]")
    if "codec" in options:
        c.dict_(options["codec"], "options.codec")


def check_physical(c: Checker, physical: dict[str, Any]) -> None:
    """The base-backup facts that recovery plans with."""
    for key in ("start_lsn", "stop_lsn"):
        if key in physical:
            c.pattern(physical[key], f"physical.{key}", _LSN_RE, "an LSN")
    for key in ("start_wal", "stop_wal"):
        if key in physical:
            c.pattern(physical[key], f"physical.{key}", _WAL_RE, "a WAL segment name")
    for key in ("timeline", "stop_timeline"):
        if key in physical:
            c.int_(physical[key], f"physical.{key}", 2**32)
    if physical.get("next_xid") is not None:
        c.int_(physical["next_xid"], "physical.next_xid", 2**64)
    if "wal_segment_size" in physical:
        c.int_(physical["wal_segment_size"], "physical.wal_segment_size", 2**31)
    for key in ("timezone", "backup_label", "compression", "raw_sha256"):
        if physical.get(key) is not None:
            c.str_(physical[key], f"physical.{key}", 1 << 20)
    if "wal_ranges" in physical:
        c.list_(physical["wal_ranges"], "physical.wal_ranges")


def check_fingerprint(c: Checker, fingerprint: dict[str, Any]) -> None:
    """``{database: {table: {"rows": n, "hash": ...}}}``."""
    for db, tables in fingerprint.items():
        for table, fp in c.dict_(tables, f"fingerprint[{db!r}]").items():
            where = f"fingerprint[{db!r}][{table!r}]"
            prints = c.dict_(fp, where)
            if "rows" in prints:
                c.int_(prints["rows"], f"{where}.rows", 2**63)
