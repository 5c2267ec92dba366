"""pg_waldump's lines, turned into the few WAL records a mistake is made of (pure).

Only what ``pgsafe mistakes`` needs is recognised; every other line gives None:

* ``Heap`` DELETE / UPDATE / HOT_UPDATE (a row gone or changed, ``rel T/D/R``), INSERT
  (only to tell a table rewrite from a TRUNCATE), TRUNCATE (written at
  ``wal_level=logical``: the OIDs of the truncated tables);
* ``Storage`` CREATE (a new relfilenode: TRUNCATE and table rewrites make one);
* ``XLOG`` FPI inside a transaction (a rewrite writes the new relfilenode's pages so);
* ``Database`` DROP (``DROP DATABASE``);
* ``MultiXact`` CREATE_ID whose members include an updater (``upd``, ``nokeyupd``): a
  row deleted or updated while another transaction (or a savepoint's parent) held a
  lock on it gets that multixact as its ``xmax``, not the updater's xid;
* ``Transaction`` COMMIT / ABORT (also of prepared transactions), with the commit
  time, the relfilenodes it drops (``rels: base/5/16385``) and its subtransactions.

The formats of PostgreSQL 13 to 18 are accepted (16 changed the heap descriptions to
``off: 3, infobits: [...]``; the parts read here did not move).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

_HEAD = re.compile(
    r"^rmgr: (\w+)\s+len \(rec/tot\):\s*\d+/\s*\d+, tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),"
    r" prev [0-9A-F]+/[0-9A-F]+, desc: (.*)$"
)
_REL = re.compile(r"rel (\d+)/(\d+)/(\d+)")
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC")
_PREPARED = re.compile(r"^(?:COMMIT|ABORT)_PREPARED (\d+):")
_RELS = re.compile(r"; rels: ([^;]*)")
_REL_PATH = re.compile(r"(?:base|pg_tblspc/\d+/[^/ ]+)/(\d+)/(\d+)")
_SUBXACTS = re.compile(r"; subxacts:([\d ]+)")
_RELIDS = re.compile(r"relids:?((?: \d+)+)")
_DB_DIR = re.compile(r"dir \d+/(\d+)")
_CREATE = re.compile(r"^CREATE (?:base|pg_tblspc/\d+/[^/ ]+)/(\d+)/(\d+)$")
_MULTI = re.compile(r"^CREATE_ID (\d+) offset \d+ nmembers \d+:(.*)$")
_UPDATER = re.compile(r"(\d+) \((?:upd|nokeyupd)\)")

# the lines that are most of a busy server's WAL, read without making a Record
_HEAP_ROW = re.compile(
    r"rmgr: Heap +len \(rec/tot\):[^,]*, tx: +(\d+), lsn: ([0-9A-F]+)/([0-9A-F]+),"
    r" prev [^,]*, desc: (DELETE|UPDATE|HOT_UPDATE|INSERT)[ +].*?rel (\d+)/(\d+)/(\d+)"
)
_WANTED = (
    "rmgr: Heap ", "rmgr: Transaction", "rmgr: Storage ", "rmgr: Database ", "rmgr: XLOG ",
    "rmgr: MultiXact ",
)  # fmt: skip
_HEAP_OPS = ("DELETE", "UPDATE", "HOT_UPDATE", "INSERT", "TRUNCATE")


class Op(StrEnum):
    DELETE = "delete"
    UPDATE = "update"
    INSERT = "insert"
    TRUNCATE = "truncate"  # the heap TRUNCATE record (wal_level=logical)
    CREATE = "create"  # Storage CREATE of a relfilenode
    PAGE = "page"  # an XLOG FPI written by a transaction
    DROP_DATABASE = "drop-database"
    MULTI = "multixact"  # a multixact whose updater is the record's xid
    COMMIT = "commit"
    ABORT = "abort"


@dataclass(frozen=True)
class Rel:
    """``TABLESPACE/DATABASE/RELFILENODE`` of a relation's storage."""

    tablespace: int
    database: int
    relfilenode: int


@dataclass(frozen=True)
class Record:
    """One WAL record that matters; ``xid`` is the (sub)transaction it belongs to (the
    prepared transaction's for COMMIT_PREPARED / ABORT_PREPARED)."""

    op: Op
    xid: int
    lsn: int
    rel: Rel | None = None  # DELETE, UPDATE, INSERT, CREATE (tablespace 0 when unknown), PAGE
    time: datetime | None = None  # COMMIT, ABORT
    dropped: tuple[Rel, ...] = ()  # COMMIT: relfilenodes it drops (tablespace 0)
    subxacts: tuple[int, ...] = ()  # COMMIT, ABORT
    relids: tuple[int, ...] = ()  # TRUNCATE: table OIDs
    database: int = 0  # DROP_DATABASE
    multixact: int = 0  # MULTI


HeapRow = tuple[Op, int, int, int, int, int]  # op, xid, lsn, tablespace, database, relfilenode
_ROW_OPS = {"DELETE": Op.DELETE, "UPDATE": Op.UPDATE, "HOT_UPDATE": Op.UPDATE, "INSERT": Op.INSERT}


def heap_row(line: str) -> HeapRow | None:
    """A heap DELETE / UPDATE / HOT_UPDATE / INSERT line, fast (None for any other)."""
    m = _HEAP_ROW.match(line)
    if m is None:
        return None
    xid, hi, lo, op, ts, db, rfn = m.groups()
    return (_ROW_OPS[op], int(xid), (int(hi, 16) << 32) | int(lo, 16),
            int(ts), int(db), int(rfn))  # fmt: skip


def parse_line(line: str) -> Record | None:
    """The record of one line of pg_waldump's output, or None when it does not matter."""
    if not line.startswith(_WANTED):
        return None
    m = _HEAD.match(line.rstrip("\n"))
    if m is None:
        return None
    rmgr, xid, desc = m.group(1), int(m.group(2)), m.group(4)
    hi, _, lo = m.group(3).partition("/")
    lsn = (int(hi, 16) << 32) | int(lo, 16)
    if rmgr == "Heap":
        return _heap(xid, lsn, desc)
    if rmgr == "Transaction":
        return _xact(xid, lsn, desc)
    if rmgr == "Storage":
        c = _CREATE.match(desc.strip())
        if c is None or xid == 0:
            return None
        return Record(Op.CREATE, xid, lsn, rel=Rel(0, int(c.group(1)), int(c.group(2))))
    if rmgr == "XLOG":
        r = _REL.search(desc)
        if xid == 0 or not desc.startswith("FPI ") or r is None:
            return None
        return Record(Op.PAGE, xid, lsn, rel=_rel(r))
    if rmgr == "MultiXact":
        return _multi(lsn, desc)
    if rmgr == "Database" and desc.startswith("DROP"):
        d = _DB_DIR.search(desc)
        return Record(Op.DROP_DATABASE, xid, lsn, database=int(d.group(1))) if d else None
    return None


def _rel(m: re.Match[str]) -> Rel:
    return Rel(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _multi(lsn: int, desc: str) -> Record | None:
    """A multixact with an updater: the updater's (sub)transaction id and the multixact."""
    m = _MULTI.match(desc.strip())
    u = _UPDATER.search(m.group(2)) if m else None
    if m is None or u is None:
        return None
    return Record(Op.MULTI, int(u.group(1)), lsn, multixact=int(m.group(1)))


def _heap(xid: int, lsn: int, desc: str) -> Record | None:
    if not desc.startswith(_HEAP_OPS):
        return None
    op_name = desc.split(" ", 1)[0].removesuffix("+INIT")
    if op_name == "TRUNCATE":
        ids = _RELIDS.search(desc)
        relids = tuple(int(x) for x in ids.group(1).split()) if ids else ()
        return Record(Op.TRUNCATE, xid, lsn, relids=relids)
    r = _REL.search(desc)
    if r is None:
        return None
    op = {"DELETE": Op.DELETE, "UPDATE": Op.UPDATE, "HOT_UPDATE": Op.UPDATE,
          "INSERT": Op.INSERT}.get(op_name)  # fmt: skip
    return Record(op, xid, lsn, rel=_rel(r)) if op is not None else None


def _xact(xid: int, lsn: int, desc: str) -> Record | None:
    if desc.startswith(("COMMIT", "ABORT")):
        op = Op.COMMIT if desc.startswith("COMMIT") else Op.ABORT
        prepared = _PREPARED.match(desc)
        if prepared:
            xid = int(prepared.group(1))
        t = _TIME.search(desc)
        if t is None:
            return None
        when = datetime.fromisoformat(t.group(1)).replace(tzinfo=UTC)
        rels = _RELS.search(desc)
        dropped = (
            tuple(Rel(0, int(a), int(b)) for a, b in _REL_PATH.findall(rels.group(1)))
            if rels
            else ()
        )
        subs = _SUBXACTS.search(desc)
        subxacts = tuple(int(x) for x in subs.group(1).split()) if subs else ()
        return Record(op, xid, lsn, time=when, dropped=dropped, subxacts=subxacts)
    return None
