"""Collect a server's health from its repository (and the server, when reachable).

Per kind (logical, physical): the last successful backup and its age, the last proof
(verify or drill) and its result; archiving: the newest archived WAL and its age, and
pg_stat_archiver's failures when the server answers; the repository's size and free
space.  Each item gets a level from the thresholds — over a threshold WARN, over twice
it (or a failed proof, or no backup at all) FAIL — and the worst level is the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from pgsafe.errors import PgsafeError
from pgsafe.models.kinds import BackupKind, BackupStatus, HealthLevel
from pgsafe.repo.catalog import Manifest
from pgsafe.repo.repository import Repository
from pgsafe.repo.runs import read_history
from pgsafe.status.durations import human, parse_duration
from pgsafe.wal import layout

OK, WARN, FAIL = HealthLevel.OK, HealthLevel.WARN, HealthLevel.FAIL


@dataclass(frozen=True)
class Thresholds:
    max_backup_age: timedelta = timedelta(hours=26)
    max_wal_age: timedelta = timedelta(minutes=15)
    max_unproven_age: timedelta = timedelta(days=8)


def thresholds_from(raw: Mapping[str, object]) -> Thresholds:
    """From top-level keys or a ``[status]`` table of the config."""
    section = raw.get("status")
    table: Mapping[str, object] = section if isinstance(section, Mapping) else {}
    out = Thresholds()
    values: dict[str, timedelta] = {}
    for key in ("max_backup_age", "max_wal_age", "max_unproven_age"):
        text = table.get(key, raw.get(key))
        if text is not None:
            values[key] = parse_duration(str(text), key)
    return Thresholds(**{**asdict(out), **values})


@dataclass
class Item:
    name: str
    level: HealthLevel
    detail: str


@dataclass
class KindHealth:
    kind: BackupKind
    count: int
    last_backup_id: str | None
    last_backup_at: str | None
    age_seconds: float | None
    size_bytes: int | None
    last_proof_at: str | None
    last_proof_ok: bool | None
    last_proof_kind: str | None


@dataclass
class Archiving:
    last_wal: str | None = None
    last_at: str | None = None
    age_seconds: float | None = None
    failed_count: int | None = None
    last_failed_wal: str | None = None
    last_failed_at: str | None = None


@dataclass(frozen=True)
class JobSummary:
    """The last run of one scheduled job (from the repository's run history)."""

    job: str
    outcome: str  # a RunOutcome
    ok: bool
    started_at: str
    finished_at: str
    duration_s: float
    error: str | None


@dataclass
class Health:
    server: str
    repo: str
    now: str
    kinds: list[KindHealth] = field(default_factory=list)
    archiving: Archiving | None = None
    repo_bytes: int = 0
    free_bytes: int | None = None
    items: list[Item] = field(default_factory=list)
    jobs: list[JobSummary] = field(default_factory=list)

    @property
    def level(self) -> HealthLevel:
        return max((i.level for i in self.items), key=lambda lvl: lvl.rank, default=FAIL)

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc["status"] = self.level
        return doc


def _age_level(age: timedelta, limit: timedelta) -> HealthLevel:
    if age > 2 * limit:
        return FAIL
    if age > limit:
        return WARN
    return OK


def _dt(text: str) -> datetime:
    d = datetime.fromisoformat(text)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _kind_health(kind: BackupKind, backups: list[Manifest], now: datetime) -> KindHealth:
    ok = [m for m in backups if m.status == BackupStatus.OK]
    last = ok[-1] if ok else None
    proofs = [(v, m) for m in backups for v in m.verifications]
    proofs.sort(key=lambda p: _dt(p[0].at))
    proof = proofs[-1][0] if proofs else None
    return KindHealth(
        kind=kind,
        count=len(backups),
        last_backup_id=last.id if last else None,
        last_backup_at=last.finished_at if last else None,
        age_seconds=(now - _dt(last.finished_at)).total_seconds() if last else None,
        size_bytes=last.size_bytes if last else None,
        last_proof_at=proof.at if proof else None,
        last_proof_ok=proof.ok if proof else None,
        last_proof_kind=proof.kind if proof else None,
    )


def _archiving(repo: Repository, now: datetime) -> Archiving | None:
    newest: tuple[float, str] | None = None
    for key in repo.storage.list(layout.wal_prefix(repo.server)):
        name = layout.name_of_key(key)
        if name is None or name.endswith(".history"):
            continue
        st = repo.storage.stat(key)
        if st is not None and (newest is None or (st.mtime, name) > newest):
            newest = (st.mtime, name)
    if newest is None:
        return None
    at = datetime.fromtimestamp(newest[0], UTC)
    return Archiving(newest[1], at.isoformat(timespec="seconds"), (now - at).total_seconds())


def _server_archiver(conninfo: str, arch: Archiving) -> str | None:
    """Fill pg_stat_archiver's failures; return an error text when unreachable."""
    from pgsafe.pg.connect import connect  # psycopg only when a server is asked

    try:
        with connect(conninfo) as conn:
            row = conn.execute(
                "SELECT failed_count, last_failed_wal, last_failed_time, last_archived_time"
                " FROM pg_stat_archiver"
            ).fetchone()
    except PgsafeError as exc:
        return exc.message
    if row is None:
        return None
    failed, wal, failed_at, archived_at = row
    arch.failed_count = int(failed)
    if failed_at is not None and (archived_at is None or failed_at > archived_at):
        arch.last_failed_wal = str(wal)
        arch.last_failed_at = failed_at.isoformat(timespec="seconds")
    return None


def _jobs(repo: Repository) -> list[JobSummary]:
    """The last run of each scheduled job, from the repository's run history."""
    last: dict[str, JobSummary] = {}
    for run in read_history(repo):
        last[run.job] = JobSummary(
            job=run.job,
            outcome=run.outcome,
            ok=run.ok,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_s=run.duration_s,
            error=run.error,
        )
    return list(last.values())


def collect(repo: Repository, th: Thresholds, now: datetime, conninfo: str | None = None) -> Health:
    h = Health(repo.server, repo.storage.url, now.isoformat(timespec="seconds"))
    entries = repo.entries()  # read once: the backups, and the damaged entries
    backups = [e for e in entries if isinstance(e, Manifest)]
    for kind in BackupKind:
        mine = [m for m in backups if m.kind == kind]
        if not mine:
            continue
        k = _kind_health(kind, mine, now)
        h.kinds.append(k)
        h.items += _kind_items(k, th, now)
    if not backups:
        h.items.append(Item("backups", FAIL, "the repository holds no backup for this server"))
    for bad in (e for e in entries if not isinstance(e, Manifest)):
        h.items.append(Item(f"catalog entry {bad.id}", FAIL, f"DAMAGED: {bad.reason}"))
    arch = _archiving(repo, now)
    if arch is not None:
        h.archiving = arch
        if conninfo:
            err = _server_archiver(conninfo, arch)
            if err:
                h.items.append(Item("server", WARN, f"not reachable: {err}"))
        assert arch.age_seconds is not None
        age = timedelta(seconds=arch.age_seconds)
        h.items.append(
            Item(
                "archiving",
                _age_level(age, th.max_wal_age),
                f"last {arch.last_wal}, {human(age)} ago (limit {human(th.max_wal_age)})",
            )
        )
        if arch.last_failed_wal:
            h.items.append(
                Item(
                    "archiver",
                    FAIL,
                    f"archiving {arch.last_failed_wal} failed at "
                    f"{arch.last_failed_at} and has not succeeded since",
                )
            )
    sizes = [repo.storage.stat(k) for k in repo.storage.list(repo.server)]
    h.repo_bytes = sum(s.size for s in sizes if s is not None)
    h.free_bytes = repo.storage.free_bytes()
    for job in _jobs(repo):
        h.jobs.append(job)
        if not job.ok:
            detail = f"last run {job.outcome} at {job.finished_at}"
            h.items.append(Item(f"job {job.job}", WARN, detail))
    return h


def _kind_items(k: KindHealth, th: Thresholds, now: datetime) -> list[Item]:
    """The checks of one kind of backup: the age of its last backup, and of its last
    proof (a verification or drill that passed)."""
    kind = k.kind
    items: list[Item] = []
    if k.age_seconds is None:
        items.append(Item(f"{kind} backups", FAIL, "no successful backup"))
    else:
        age = timedelta(seconds=k.age_seconds)
        lvl = _age_level(age, th.max_backup_age)
        items.append(
            Item(
                f"{kind} backups",
                lvl,
                f"last {k.last_backup_id}, {human(age)} ago (limit {human(th.max_backup_age)})",
            )
        )
    if k.last_proof_at is None:
        items.append(Item(f"{kind} proof", WARN, "no backup was ever verified"))
    elif not k.last_proof_ok:
        items.append(
            Item(
                f"{kind} proof",
                FAIL,
                f"the last {k.last_proof_kind} failed ({k.last_proof_at})",
            )
        )
    else:
        age = now - _dt(k.last_proof_at)
        lvl = _age_level(age, th.max_unproven_age)
        items.append(
            Item(
                f"{kind} proof",
                lvl,
                f"last {k.last_proof_kind} passed "
                f"{human(age)} ago (limit {human(th.max_unproven_age)})",
            )
        )
    return items
