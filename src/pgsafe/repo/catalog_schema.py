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
- ``physical``, ``fingerprint`` and each verification's ``checks`` are decoded here
  into their typed models (:mod:`pgsafe.models.backup`); the values other modules read
  out of ``options`` have their types checked too (a list of ``[schema, table]``
  pairs...).
"""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import datetime

from pgsafe.errors import VerificationFailed
from pgsafe.models.backup import (
    Fingerprints,
    JsonObject,
    PhysicalDetails,
    TableFingerprint,
    TablePrints,
    VerificationCheck,
)
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

    def dict_(self, value: object, field: str) -> JsonObject:
        if not isinstance(value, dict):
            raise self.fail(field, f"is {_what(value)}, not an object")
        return value

    def list_(self, value: object, field: str, limit: int = MAX_OBJECTS) -> list[object]:
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


def check_options(c: Checker, options: JsonObject) -> None:
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
    if "relations" in options:
        for i, rel in enumerate(c.list_(options["relations"], "options.relations")):
            where = f"options.relations[{i}]"
            r = c.dict_(rel, where)
            for key in ("schema", "name"):
                c.str_(r.get(key), f"{where}.{key}")
            if "kind" in r:
                c.str_(r["kind"], f"{where}.kind", 8)
            if "parents" in r:
                c.pairs(r["parents"], f"{where}.parents")
            if "partition" in r:
                c.bool_(r["partition"], f"{where}.partition")


def physical_from(c: Checker, raw: object) -> PhysicalDetails:
    """The base-backup facts that recovery plans with (``{}`` for a logical backup)."""
    p = c.dict_(raw, "physical")

    def lsn(key: str) -> str | None:
        return c.pattern(p[key], f"physical.{key}", _LSN_RE, "an LSN") if key in p else None

    def wal(key: str) -> str | None:
        if key not in p:
            return None
        return c.pattern(p[key], f"physical.{key}", _WAL_RE, "a WAL segment name")

    def num(key: str, limit: int, *, null: bool = False) -> int | None:
        if key not in p or (null and p[key] is None):
            return None
        return c.int_(p[key], f"physical.{key}", limit)

    def text(key: str) -> str | None:
        return c.opt_str(p.get(key), f"physical.{key}", 1 << 20)

    ranges = p.get("wal_ranges")
    return PhysicalDetails(
        start_lsn=lsn("start_lsn"),
        stop_lsn=lsn("stop_lsn"),
        timeline=num("timeline", 2**32),
        stop_timeline=num("stop_timeline", 2**32),
        start_wal=wal("start_wal"),
        stop_wal=wal("stop_wal"),
        wal_segment_size=num("wal_segment_size", 2**31),
        wal_ranges=None if ranges is None else c.list_(ranges, "physical.wal_ranges"),
        backup_label=text("backup_label"),
        checkpoint_lsn=text("checkpoint_lsn"),
        server_start_time=text("server_start_time"),
        next_xid=num("next_xid", 2**64, null=True),
        timezone=text("timezone"),
        compression=text("compression"),
        raw_sha256=text("raw_sha256"),
        extra=unknown(PhysicalDetails, p),
    )


def fingerprints_from(c: Checker, raw: object) -> Fingerprints:
    """``{database: {table: {"rows": n, "hash": ..., ...}}}``."""
    out: Fingerprints = {}
    for db, tables in c.dict_(raw, "fingerprint").items():
        prints: TablePrints = {}
        for table, fp in c.dict_(tables, f"fingerprint[{db!r}]").items():
            prints[table] = table_fingerprint_from(c, fp, f"fingerprint[{db!r}][{table!r}]")
        out[db] = prints
    return out


def table_fingerprint_from(c: Checker, raw: object, where: str) -> TableFingerprint:
    """One table's entry; a null value reads as an absent one."""
    d = c.dict_(raw, where)

    def text(key: str) -> str | None:
        return c.opt_str(d.get(key), f"{where}.{key}", 1024)

    def flag(key: str) -> bool | None:
        value = d.get(key)
        return None if value is None else c.bool_(value, f"{where}.{key}")

    rows = d.get("rows")
    return TableFingerprint(
        rows=None if rows is None else c.int_(rows, f"{where}.rows", 2**63),
        hash=text("hash"),
        method=text("method"),
        columns=text("columns"),
        kind=text("kind"),
        populated=flag("populated"),
        fresh=flag("fresh"),
        extra=unknown(TableFingerprint, d),
    )


def check_from(c: Checker, raw: object, where: str) -> VerificationCheck:
    """One check of a recorded verification: ``{"name", "ok", "detail"}``."""
    d = c.dict_(raw, where)
    for key in ("name", "ok"):
        if key not in d:
            raise c.fail(where, f"has no {key!r}")
    return VerificationCheck(
        name=c.str_(d["name"], f"{where}.name"),
        ok=c.bool_(d["ok"], f"{where}.ok"),
        detail=c.str_(d.get("detail", ""), f"{where}.detail", 1 << 16),
        extra=unknown(VerificationCheck, d),
    )


def unknown(cls: type, data: JsonObject) -> JsonObject:
    """The keys of ``data`` that are not fields of the dataclass ``cls`` (kept as read)."""
    known = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in data.items() if k not in known}
