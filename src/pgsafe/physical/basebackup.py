"""``pgsafe backup``: a physical base backup into the repository.

``pg_basebackup -F t -X fetch`` produces one tar (data files and the WAL from backup
start to stop under ``pg_wal/``, ``backup_label`` first) and PostgreSQL's
``backup_manifest``, both stored in the backup's folder: ``base.tar`` + the codec's
suffix (``base.tar.zst``, ``base.tar.lz4.age``...) and ``backup_manifest`` + suffix.
Every backup is self-contained: it restores to a consistent state with no archived
WAL at all.

Two ways to take it, chosen by :func:`server_compression`:

* **The server compresses** (PostgreSQL 15+, a compressing repository):
  ``--compress=server-zstd:level=1,workers=N`` (or ``server-lz4``/``server-gzip`` at
  the repository's level).  The walsender compresses with zstd's worker threads, so
  only the compressed bytes cross the connection and pgsafe's process does almost
  nothing; the stored object is the server's standard zstd (lz4, gzip) stream,
  age-encrypted on the way when the repository encrypts.  PostgreSQL refuses to put
  the manifest into a compressed stdout stream ("cannot inject manifest into a
  compressed tar file"), so pg_basebackup writes into a private staging folder
  (``$TMPDIR``; it needs room for the compressed backup) and :func:`follow` stores the
  archive while it grows.  On pgbench scale 100 (1.5 GiB, 2 cores) this took the
  backup from 5.1 s (``benchmarks/results/2026-11-25-after-fixes.md``) to 3.1 s, and
  with the later start-up and fsync changes to 2.6 s, alternating with pgBackRest
  (``benchmarks/results/2026-12-02-profiles.md``).
* **The stream goes through pgsafe's codec** (no compression, or a server before 15):
  ``-D -`` to stdout, through a tar tap (which keeps ``backup_label`` and
  ``backup_manifest``), a sha256, the codec and another sha256 straight into the
  object.  A thread drains pg_basebackup's stdout into a bounded queue of 1 MiB chunks
  (``QUEUE_CHUNKS``) while the calling thread encodes and stores: in a serial loop
  pg_basebackup stalled on the pipe.

Other choices:

* ``-X stream`` cannot write to stdout, so ``-X fetch`` it is.  Fetch mode needs the WAL
  to survive until the end of the backup: a *temporary* physical replication slot,
  reserved before the backup starts and held by our own session, pins it (and vanishes
  with the session if pgsafe dies, so it can never retain WAL forever).
* An idle server does not hang a backup: ``pg_backup_stop`` switches WAL segments itself
  and fetch mode does not wait for the archiver.
* zstd at level 1 for the data tar (and its backup_manifest) whatever the repository's
  level, as wal-push does for WAL: on pgbench's scale-10 tar (205 MB) level 1 gave
  10.78 MB against 10.68 MB at level 3 (+1 %) for half the CPU
  (``benchmarks/results/2026-11-25-profiles.md``).  The level is recorded in the
  catalog (``options.codec``); decoding does not need it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, cast

from psycopg.rows import TupleRow

from pgsafe import __version__
from pgsafe.errors import BadInput, ToolFailed, VerificationFailed
from pgsafe.models.backup import PhysicalDetails
from pgsafe.models.kinds import BackupKind
from pgsafe.pg.connect import connect
from pgsafe.pg.process import Exited, spawn
from pgsafe.pg.programs import find_program
from pgsafe.pg.runner import tool_env
from pgsafe.physical import catalogmap
from pgsafe.physical.follow import follow
from pgsafe.physical.server import ServerFacts, facts
from pgsafe.physical.tarscan import TarTap
from pgsafe.prefetch import Prefetch
from pgsafe.progress import NullProgress, Progress
from pgsafe.repo.catalog import Manifest, StoredObject
from pgsafe.repo.codec.hashing import Hasher
from pgsafe.repo.codec.pipeline import CodecSpec, Compression, Pipeline
from pgsafe.repo.repository import Repository
from pgsafe.wal import names, server_record

DATA_BASE = "base.tar"
PG_MANIFEST_BASE = "backup_manifest"
DATA_ZSTD_LEVEL = 1  # see the module docstring
READ_SIZE = 1 << 20
QUEUE_CHUNKS = 8  # chunks read ahead of the compressor: at most ~8 MiB in flight
SERVER_ZSTD_MAX_WORKERS = 4
PEEK_BYTES = 64 << 10  # decompressed bytes searched for backup_label
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux; Python 3.11's fcntl lacks the name)


class _Hashed:
    """A stream's chunks, hashed as they pass (in the :class:`Prefetch` thread, where
    hashing releases the GIL off the compressor's path)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._stream.read(READ_SIZE):
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk


def _reported(chunks: Iterable[bytes], progress: Progress) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        done += len(chunk)
        progress.update(done)
        yield chunk


def _grow_pipe(stream: IO[bytes]) -> None:
    """Ask for a 1 MiB pipe (the default 64 KiB fills while a chunk is hashed)."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, READ_SIZE)
    except (OSError, ValueError, ImportError):
        pass  # an optimisation only


def data_encoder(repo: Repository) -> Pipeline:
    """The repository's pipeline, with zstd at ``DATA_ZSTD_LEVEL`` (see the docstring)."""
    spec = repo.codec_spec()
    if spec.compression == "zstd":
        spec = replace(spec, level=DATA_ZSTD_LEVEL)
    return Pipeline(spec, repo.age_keys_if_any())


def parse_backup_label(text: str) -> dict[str, str]:
    """The ``KEY: value`` lines of a backup_label."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _label_lsn(value: str) -> int:
    m = re.match(r"([0-9A-F]+/[0-9A-F]+)", value)
    if not m:
        raise ValueError(f"no LSN in {value!r}")
    return names.parse_lsn(m.group(1))


def physical_details(label_text: str, manifest_json: bytes, segment_size: int) -> PhysicalDetails:
    """What the catalog records from backup_label and backup_manifest."""
    label = parse_backup_label(label_text)
    doc = json.loads(manifest_json)
    ranges = doc.get("WAL-Ranges", [])
    start = _label_lsn(label["START WAL LOCATION"])
    stop = max(names.parse_lsn(r["End-LSN"]) for r in ranges) if ranges else start
    tli = int(label.get("START TIMELINE", ranges[0]["Timeline"] if ranges else 1))
    stop_tli = int(ranges[-1]["Timeline"]) if ranges else tli
    return PhysicalDetails(
        start_lsn=names.format_lsn(start),
        stop_lsn=names.format_lsn(stop),
        timeline=tli,
        stop_timeline=stop_tli,
        start_wal=names.segment_name(tli, names.lsn_segment(start, segment_size), segment_size),
        stop_wal=names.segment_name(
            stop_tli, names.lsn_segment(max(stop - 1, start), segment_size), segment_size
        ),
        wal_segment_size=segment_size,
        wal_ranges=list(ranges),
        backup_label=label_text,
        checkpoint_lsn=label.get("CHECKPOINT LOCATION"),
        server_start_time=label.get("START TIME"),
    )


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def server_compression(repo: Repository, major: int) -> str | None:
    """The ``pg_basebackup --compress`` value that has the server compress the data tar
    the way the repository stores it, or None where the stream must go through pgsafe's
    own codec (no compression, or a server older than 15)."""
    spec = repo.codec_spec()
    if major < 15 or spec.compression == "none":
        return None
    if spec.compression == "zstd":
        return f"server-zstd:level={DATA_ZSTD_LEVEL},workers={server_zstd_workers()}"
    return f"server-{spec.compression}:{spec.effective_level}"


def server_zstd_workers() -> int:
    """zstd worker threads asked of the server: this host's cores, at most 4."""
    return max(1, min(os.cpu_count() or 1, SERVER_ZSTD_MAX_WORKERS))


@dataclass
class _Taken:
    """What one pg_basebackup run produced, however it was taken."""

    data: Hasher  # the stored data object, after iteration: its sha256 and size
    raw_size: int
    raw_sha256: str | None
    backup_label: bytes
    backup_manifest: bytes
    method: str


def _failed(exited: Exited, what: str = "") -> ToolFailed:
    detail = exited.first_error() if exited.returncode else what
    return ToolFailed(f"pg_basebackup failed (exit {exited.returncode}): {detail}")


def _take_streamed(
    argv: list[str], env: dict[str, str], repo: Repository, key: str, encoder: Pipeline,
    progress: Progress,
) -> _Taken:  # fmt: skip
    """``-D -``: pg_basebackup's stdout flows through pgsafe's codec into the object."""
    try:
        with spawn([*argv, "-D", "-"], env) as run:
            _grow_pipe(run.stdout)
            raw = _Hashed(run.stdout)  # the raw stream's sha256 and size
            ahead = Prefetch(raw, QUEUE_CHUNKS, "basebackup-reader")
            tap = TarTap(_reported(ahead, progress), {"backup_label", "backup_manifest"})
            stored = Hasher(encoder.encode(tap))
            try:
                repo.storage.put(key, stored)
            except BaseException:
                run.kill()  # before closing the reader: it may be blocked on the pipe
                raise
            finally:
                ahead.close()
                progress.close()
    except BaseException:
        repo.storage.delete(key)
        raise
    if not run.exited.ok or not {"backup_label", "backup_manifest"} <= tap.captured.keys():
        repo.storage.delete(key)
        raise _failed(run.exited, "no backup_label/backup_manifest")
    return _Taken(
        stored, raw.size, raw.sha256, tap.captured["backup_label"],
        tap.captured["backup_manifest"], "pg_basebackup -F t -X fetch",
    )  # fmt: skip


def _take_server_compressed(
    argv: list[str], env: dict[str, str], repo: Repository, key: str, compress: str,
    progress: Progress,
) -> _Taken:  # fmt: skip
    """``--compress=server-...``: the server compresses (zstd with worker threads) and
    pg_basebackup writes ``base.tar.zst`` and ``backup_manifest`` into a private staging
    folder; the archive is stored as it grows (only encrypted on the way, when the
    repository encrypts) and the folder is removed."""
    spec = repo.codec_spec()
    passthrough = Pipeline(CodecSpec("none", None, spec.encryption), repo.age_keys_if_any())
    suffix = CodecSpec(spec.compression).suffix
    stage = Path(tempfile.mkdtemp(prefix="pgsafe-backup-"))
    try:
        # --no-sync: the staged files are temporary; what must be durable is the
        # stored object, which the storage fsyncs itself
        cmd = [*argv, "-D", str(stage), f"--compress={compress}", "--no-sync"]
        try:
            with spawn(cmd, env, stdout=False) as run:
                archive = follow(stage / (DATA_BASE + suffix), run.proc)
                stored = Hasher(passthrough.encode(_reported(archive, progress)))
                try:
                    repo.storage.put(key, stored)
                finally:
                    progress.close()
        except BaseException:
            repo.storage.delete(key)
            raise
        rc = run.exited.returncode
        made = sorted(p.name for p in stage.iterdir())
        if rc != 0 or made != sorted([DATA_BASE + suffix, PG_MANIFEST_BASE]):
            repo.storage.delete(key)
            extra = [n for n in made if n.endswith(".tar" + suffix) and n != DATA_BASE + suffix]
            if rc == 0 and extra:
                raise BadInput(
                    "the cluster has tablespaces outside its data directory",
                    hint="pgsafe backup supports the data directory's own tablespaces only",
                )
            raise _failed(run.exited, f"unexpected files {made}")
        label = peek_member(stage / (DATA_BASE + suffix), spec.compression, "backup_label")
        pg_manifest = (stage / PG_MANIFEST_BASE).read_bytes()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if label is None:
        repo.storage.delete(key)
        raise ToolFailed("pg_basebackup's archive does not start with a backup_label")
    files = json.loads(pg_manifest).get("Files", [])
    raw_size = sum(int(f.get("Size", 0)) for f in files)
    return _Taken(
        stored,
        raw_size,
        None,
        label,
        pg_manifest,
        f"pg_basebackup -F t -X fetch --compress={compress}",
    )


def peek_member(path: Path, compression: str, member: str, head: int = 1 << 20) -> bytes | None:
    """``member`` of a compressed tar, found in its first ``head`` bytes only (PostgreSQL
    writes backup_label first), or None."""
    with open(path, "rb") as f:
        start = f.read(head)
    plain = bytearray()
    try:
        for piece in Pipeline(CodecSpec(cast(Compression, compression))).decode_chunks([start]):
            plain += piece
            if len(plain) >= PEEK_BYTES:
                break
    except VerificationFailed:
        pass  # the head ends mid-frame: what came out before that is enough
    tap = TarTap([bytes(plain[:PEEK_BYTES])], {member})
    for _ in tap:
        pass
    return tap.captured.get(member)


def backup(
    conninfo: str,
    repo: Repository,
    *,
    label: str | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Take a base backup into ``repo``; returns its (saved) catalog entry.

    Objects go through the repository's codec; a missing encryption key is refused
    (BadInput) before PostgreSQL is asked for anything.  The session that holds the
    temporary replication slot stays open from before pg_basebackup starts until after
    it ends; the taking itself is :func:`_take_streamed` /
    :func:`_take_server_compressed`, the catalog entry :func:`_entry`.
    """
    progress = progress or NullProgress()
    encoder = data_encoder(repo)
    encoder.check_encode()
    data_object = DATA_BASE + encoder.suffix
    pm_object = PG_MANIFEST_BASE + encoder.suffix
    with connect(conninfo) as conn:
        f = facts(conn)
        row = conn.execute(
            "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not row or not row[0]:
            raise BadInput(
                "a base backup needs a role with the REPLICATION attribute (or a superuser)",
                hint="connect as a superuser, or ALTER ROLE ... REPLICATION",
            )
        server_record.ensure(repo, f.record())
        slot = f"pgsafe_bb_{os.getpid()}_{secrets.token_hex(3)}"
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (slot,))
        started = conn.execute("SELECT clock_timestamp()").fetchone()
        assert started is not None
        started_at: datetime = started[0]
        backup_id = repo.new_id(started_at, "physical", *([label] if label else []))
        clean, env = tool_env(conninfo)
        argv = [
            find_program("pg_basebackup", f.major), "-d", clean or "", "-F", "t",
            "-X", "fetch", "-c", "fast", "--manifest-checksums=CRC32C",
            "-l", label or f"pgsafe {backup_id}",
        ]  # fmt: skip
        key = repo.object_key(backup_id, data_object)
        compress = server_compression(repo, f.major)
        taken = None
        if compress is not None:
            try:
                taken = _take_server_compressed(argv, env, repo, key, compress, progress)
            except ToolFailed as exc:
                if "does not support compression" not in exc.message:
                    raise
                compress = None  # a server built without this codec: pgsafe's own compresses
        if taken is None:
            taken = _take_streamed(argv, env, repo, key, encoder, progress)
        end = conn.execute(
            "SELECT clock_timestamp(), pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            " current_setting('TimeZone')"
        ).fetchone()
        assert end is not None
        cmap = catalogmap.take(conninfo, conn)  # names for `pgsafe mistakes`
    pm_stored = Hasher(encoder.encode([taken.backup_manifest]))
    repo.storage.put(repo.object_key(backup_id, pm_object), pm_stored)
    extra = [catalogmap.store(repo, backup_id, encoder, cmap)] if cmap is not None else []
    manifest = _entry(
        repo, backup_id, f, taken, pm_stored, encoder, label=label, compress=compress,
        started_at=started_at, end=end, extra=extra,
    )  # fmt: skip
    repo.save(manifest)
    return manifest


def _entry(
    repo: Repository,
    backup_id: str,
    f: ServerFacts,
    taken: _Taken,
    pm_stored: Hasher,
    encoder: Pipeline,
    *,
    label: str | None,
    compress: str | None,
    started_at: datetime,
    end: TupleRow,
    extra: list[StoredObject],
) -> Manifest:
    """The catalog entry of a base backup just taken (``end``: the clock, next xid and
    TimeZone read as pg_basebackup ended; ``extra``: objects stored beside the data,
    such as the catalog map)."""
    label_codec = repo.codec_spec().label
    data_object = DATA_BASE + encoder.suffix
    pm_object = PG_MANIFEST_BASE + encoder.suffix
    details = physical_details(
        taken.backup_label.decode(), taken.backup_manifest, f.wal_segment_size
    )
    details = replace(
        details,
        next_xid=int(end[1]),
        timezone=str(end[2]),
        compression=("client-" if compress is None else "server-") + label_codec,
        raw_sha256=taken.raw_sha256,
    )
    stored = taken.data
    return Manifest(
        id=backup_id,
        kind=BackupKind.PHYSICAL,
        server=repo.server,
        status="ok",
        started_at=_iso(started_at),
        finished_at=_iso(end[0]),
        format="tar",
        label=label,
        options={"method": taken.method, "codec": encoder.spec.to_dict()},
        pg_version=f.version,
        pg_major=f.major,
        system_identifier=f.system_identifier,
        objects=[
            StoredObject(
                data_object, stored.size, stored.sha256, taken.raw_size, label_codec, "data"
            ),
            StoredObject(
                pm_object, pm_stored.size, pm_stored.sha256,
                len(taken.backup_manifest), label_codec, "pg_manifest",
            ),
            *extra,
        ],
        physical=details,
        pgsafe_version=__version__,
    )  # fmt: skip
