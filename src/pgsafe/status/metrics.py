"""The Prometheus text exposition of a server's health (``pgsafe metrics``)."""

from __future__ import annotations

from datetime import datetime

from pgsafe import clock
from pgsafe.repo.repository import Repository
from pgsafe.status.health import FAIL, OK, WARN, Health, Thresholds, collect

_LEVEL = {OK: 0, WARN: 1, FAIL: 2}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.declared: set[str] = set()

    def add(self, name: str, kind: str, help_: str, value: float, labels: dict[str, str]) -> None:
        if name not in self.declared:
            self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            self.declared.add(name)
        lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
        v = str(int(value)) if float(value).is_integer() else repr(float(value))
        self.lines.append(f"{name}{{{lab}}} {v}" if lab else f"{name} {v}")


def _ts(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def render_health(h: Health) -> str:
    """The health as Prometheus text exposition.

    Long because it is the table of the exported metrics: one ``add`` per metric with
    its name, type and help, in the order a scrape shows them."""
    o = _Out()
    srv = {"server": h.server}
    o.add("pgsafe_up", "gauge", "pgsafe could read the repository", 1, srv)
    o.add("pgsafe_status", "gauge", "overall health: 0 OK, 1 WARN, 2 FAIL", _LEVEL[h.level], srv)
    for k in h.kinds:
        lab = {**srv, "kind": k.kind}
        o.add("pgsafe_backups", "gauge", "backups in the repository", k.count, lab)
        ts = _ts(k.last_backup_at)
        if ts is not None:
            o.add(
                "pgsafe_backup_last_success_timestamp_seconds",
                "gauge",
                "end of the last successful backup",
                ts,
                lab,
            )
            o.add(
                "pgsafe_backup_age_seconds",
                "gauge",
                "age of the last successful backup",
                k.age_seconds or 0,
                lab,
            )
            o.add(
                "pgsafe_backup_last_size_bytes",
                "gauge",
                "stored size of the last backup",
                k.size_bytes or 0,
                lab,
            )
        pts = _ts(k.last_proof_at)
        if pts is not None:
            o.add(
                "pgsafe_proof_last_timestamp_seconds",
                "gauge",
                "time of the last verification or drill",
                pts,
                lab,
            )
            o.add(
                "pgsafe_proof_last_ok",
                "gauge",
                "1 if the last verification or drill passed",
                1 if k.last_proof_ok else 0,
                lab,
            )
    a = h.archiving
    if a is not None:
        ts = _ts(a.last_at)
        if ts is not None:
            o.add(
                "pgsafe_wal_last_archived_timestamp_seconds",
                "gauge",
                "time the newest WAL file reached the repository",
                ts,
                srv,
            )
            o.add(
                "pgsafe_wal_age_seconds",
                "gauge",
                "age of the newest archived WAL file",
                a.age_seconds or 0,
                srv,
            )
        if a.failed_count is not None:
            o.add(
                "pgsafe_archiver_failed_total",
                "counter",
                "pg_stat_archiver.failed_count",
                a.failed_count,
                srv,
            )
    o.add(
        "pgsafe_repository_size_bytes", "gauge", "bytes stored for this server", h.repo_bytes, srv
    )
    if h.free_bytes is not None:
        o.add(
            "pgsafe_repository_free_bytes",
            "gauge",
            "free space where the repository lives",
            h.free_bytes,
            srv,
        )
    return "\n".join(o.lines) + "\n"


def render(
    repo: Repository,
    thresholds: Thresholds | None = None,
    now: datetime | None = None,
    conninfo: str | None = None,
) -> str:
    """Metrics of ``repo``'s server now; what ``pgsafe metrics`` prints and the daemon serves."""
    return render_health(collect(repo, thresholds or Thresholds(), now or clock.now(), conninfo))
