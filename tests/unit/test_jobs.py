"""The [[jobs]] config, validated at load; missed-run and due decisions as pure
functions; the daemon loop driven by a fake clock; the history in a repository."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pgsafe.config import Settings
from pgsafe.errors import BadInput
from pgsafe.repo import runs
from pgsafe.repo.repository import Repository
from pgsafe.repo.runs import Run
from pgsafe.repo.storage.memory import MemoryStorage
from pgsafe.schedule import jobs, plan
from pgsafe.schedule.daemon import Daemon
from pgsafe.schedule.runner import StopControl
from pgsafe.schedule.stats import DaemonStats, daemon_metrics

KNOWN = frozenset({"dump", "backup", "verify", "drill", "expire", "list", "daemon", "schedule"})


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def cfg(*job_tables: dict[str, Any], **top: Any) -> jobs.ScheduleConfig:
    return jobs.parse_config({"jobs": list(job_tables), **top}, known_commands=KNOWN)


def bad(raw: Mapping[str, Any]) -> str:
    with pytest.raises(BadInput) as ei:
        jobs.parse_config(raw, known_commands=KNOWN)
    assert ei.value.exit_code == 2
    return ei.value.message


# -- config -------------------------------------------------------------------
def test_a_full_config() -> None:
    c = cfg(
        {"name": "nightly", "schedule": "0 1 * * *", "command": "dump -d shop", "args": ["-j", 2]},
        {"schedule": "@daily", "command": "verify --latest", "timeout": "2h"},
        {"schedule": "0 3 * * *", "command": ["expire"], "on_failure": ["/bin/true"]},
        on_success="echo ok",
        on_failure="mail -s failed dba",
        hook_timeout="10s",
        daemon={"stop_grace": "5m"},
    )
    assert [j.name for j in c.jobs] == ["nightly", "verify-latest", "expire"]
    assert c.jobs[0].argv == ("dump", "-d", "shop", "-j", "2")
    assert c.jobs[1].timeout == 7200 and c.jobs[0].timeout is None
    assert c.hook_timeout == 10 and c.stop_grace == 300
    assert c.hook_for(c.jobs[0], True) == ("/bin/sh", "-c", "echo ok")
    assert c.hook_for(c.jobs[0], False) == ("/bin/sh", "-c", "mail -s failed dba")
    assert c.hook_for(c.jobs[2], False) == ("/bin/true",)  # per-job override
    assert c.job("nightly") is c.jobs[0]


def test_defaults_and_derived_names() -> None:
    c = cfg(
        {"schedule": "0 1 * * *", "command": "dump"},
        {"schedule": "0 2 * * *", "command": "dump"},
        {"schedule": "0 3 * * *", "command": "dump", "enabled": False},
    )
    assert [j.name for j in c.jobs] == ["dump", "dump-2"]
    assert c.hook_timeout == jobs.DEFAULT_HOOK_TIMEOUT
    assert c.stop_grace == jobs.DEFAULT_STOP_GRACE
    assert c.on_success is None and c.hook_for(c.jobs[0], True) is None
    assert jobs.parse_config({}).jobs == ()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"jobs": {"schedule": "x"}}, "[[jobs]] tables (an array)"),
        ({"jobs": [{"command": "dump"}]}, "[[jobs]] #1: schedule is missing"),
        ({"jobs": [{"name": "n", "command": "dump"}]}, "job 'n': schedule is missing"),
        ({"jobs": [{"schedule": "0 1 * *", "command": "dump"}]}, "[[jobs]] #1: schedule '0 1"),
        ({"jobs": [{"schedule": 5, "command": "dump"}]}, "schedule must be a string"),
        ({"jobs": [{"name": "a", "schedule": "0 1 * * 9", "command": "dump"}]}, "job 'a':"),
        ({"jobs": [{"schedule": "@daily"}]}, "[[jobs]] #1: command is missing"),
        ({"jobs": [{"schedule": "@daily", "command": ""}]}, "command is empty"),
        ({"jobs": [{"schedule": "@daily", "command": "dupm"}]}, "unknown pgsafe command 'dupm'"),
        ({"jobs": [{"schedule": "@daily", "command": "daemon"}]}, "'daemon' cannot run as a job"),
        ({"jobs": [{"schedule": "@daily", "command": "--json list"}]}, "must start with a pgsafe"),
        ({"jobs": [{"schedule": "@daily", "command": "dump --repo /x"}]}, "sets --repo"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "args": ["--server=b"]}]}, "--server"),
        ({"jobs": [{"schedule": "@daily", "command": "dump 'x"}]}, "cannot be split"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "args": "--x 'y"}]}, "args cannot"),
        ({"jobs": [{"schedule": "@daily", "command": {"a": 1}}]}, "command must be a string"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "schedul": "x"}]}, "'schedul'"),
        ({"jobs": [{"name": "a b", "schedule": "@daily", "command": "dump"}]}, "name 'a b'"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "timeout": "soon"}]}, "timeout"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "timeout": 0}]}, "more than 0"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "enabled": "no"}]}, "enabled"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "on_success": 3}]}, "on_success"),
        ({"jobs": [{"schedule": "@daily", "command": "dump", "on_failure": " "}]}, "is empty"),
        (
            {
                "jobs": [
                    {"name": "x", "schedule": "@daily", "command": "dump"},
                    {"name": "x", "schedule": "@daily", "command": "list"},
                ]
            },
            "job 'x': name is used by another job",
        ),
        ({"jobs": ["dump"]}, "[[jobs]] #1 must be a table"),
        ({"hook_timeout": "forever"}, "hook_timeout"),
        ({"hook_timeout": "0s"}, "hook_timeout must be more than 0"),
        ({"hooks": {"on_success": "x"}}, "top-level keys, not a [hooks] table"),
        ({"daemon": {"grace": "1m"}}, "[daemon]: unknown key 'grace'"),
        ({"daemon": {"stop_grace": "-1s"}}, "stop_grace"),
        ({"on_failure": ["a", 1]}, "on_failure must be a command"),
    ],
)
def test_mistakes_name_the_job_and_the_field(raw: dict[str, Any], words: str) -> None:
    assert words in bad(raw)


def test_command_lines_are_parsed_by_the_real_cli() -> None:
    """The CLI validates each job's options with click itself, at load."""
    from pgsafe.cli.commands_schedule import schedule_config

    raw = {"jobs": [{"name": "v", "schedule": "@daily", "command": "verify --lates"}]}
    with pytest.raises(BadInput) as ei:
        schedule_config(Settings(raw=raw))
    assert "job 'v'" in ei.value.message and "--lates" in ei.value.message
    raw = {"jobs": [{"schedule": "@daily", "command": "dump --format zip"}]}
    with pytest.raises(BadInput) as ei:
        schedule_config(Settings(raw=raw))
    assert "zip" in ei.value.message
    raw = {"jobs": [{"schedule": "@daily", "command": "archive"}]}
    with pytest.raises(BadInput, match="needs a subcommand"):
        schedule_config(Settings(raw=raw))
    ok = {
        "jobs": [
            {"schedule": "@daily", "command": "dump -d shop --format directory -j 2"},
            {"schedule": "@daily", "command": "verify --latest"},
            {"schedule": "@daily", "command": "archive enable"},
        ]
    }
    assert len(schedule_config(Settings(raw=ok)).jobs) == 3


@pytest.mark.parametrize(
    ("arg", "shown"),
    [
        ("host=db password=s3cret dbname=shop", "host=db password=*** dbname=shop"),
        ("password = 'a b\\'c' dbname=x", "password = *** dbname=x"),
        ("PASSWORD=x", "PASSWORD=***"),
        ("postgresql://app:s3cret@db:5432/shop", "postgresql://app:***@db:5432/shop"),
        ("postgres://app@db/shop", "postgres://app@db/shop"),
        ("shop", "shop"),
    ],
)
def test_passwords_in_job_commands_are_never_shown(arg: str, shown: str) -> None:
    [j] = cfg({"schedule": "@daily", "command": ["dump", "-d", arg]}).jobs
    assert j.argv == ("dump", "-d", arg)  # what runs
    assert j.display_argv == ("dump", "-d", shown)  # what is logged and recorded
    assert "s3cret" not in j.command_line


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("4h", 14400), ("1d", 86400), ("1w", 604800), ("500ms", 0.5),
     ("1.5h", 5400), (45, 45), ("7", 7), (" 2 m ", 120)],
)  # fmt: skip
def test_durations(text: Any, seconds: float) -> None:
    assert jobs.parse_duration(text, "x") == seconds


# -- missed runs and due jobs (pure) -------------------------------------------
NIGHTLY = {"name": "nightly", "schedule": "0 1 * * *", "command": "dump"}
HOURLY = {"name": "hourly", "schedule": "@hourly", "command": "list"}
FAST = {"name": "fast", "schedule": "*/2 * * * * *", "command": "list"}


def test_no_history_means_nothing_missed() -> None:
    c = cfg(NIGHTLY, HOURLY)
    assert plan.missed_runs(c.jobs, {}, t("2024-05-05 12:00:00")) == []


def test_missed_runs_counted_from_the_last_completed_slot() -> None:
    c = cfg(NIGHTLY, HOURLY)
    last = {"nightly": t("2024-05-01 01:00:00"), "hourly": t("2024-05-05 11:00:00")}
    got = plan.missed_runs(c.jobs, last, t("2024-05-05 11:30:00"))
    assert len(got) == 1
    m = got[0]
    assert (m.job, m.count, m.more) == ("nightly", 4, False)
    assert m.first == t("2024-05-02 01:00:00") and m.last == t("2024-05-05 01:00:00")


def test_a_slot_at_exactly_now_is_missed_one_just_after_is_not() -> None:
    c = cfg(NIGHTLY)
    last = {"nightly": t("2024-05-01 01:00:00")}
    assert plan.missed_runs(c.jobs, last, t("2024-05-02 00:59:59")) == []
    [m] = plan.missed_runs(c.jobs, last, t("2024-05-02 01:00:00"))
    assert m.count == 1 and m.last == t("2024-05-02 01:00:00")


def test_many_missed_slots_are_capped_but_the_newest_is_exact() -> None:
    c = cfg(FAST)
    last = {"fast": t("2024-05-01 00:00:00")}
    [m] = plan.missed_runs(c.jobs, last, t("2024-05-02 00:00:01"))
    assert m.more and m.count == plan.MAX_COUNTED
    assert m.first == t("2024-05-01 00:00:02") and m.last == t("2024-05-02 00:00:00")


def test_a_catch_up_run_covers_the_missed_slot() -> None:
    """After the catch-up (recorded with scheduled_for = the newest missed slot), a later
    restart before the next slot finds nothing missed."""
    c = cfg(NIGHTLY)
    [m] = plan.missed_runs(c.jobs, {"nightly": t("2024-05-01 01:00:00")}, t("2024-05-03 12:00"))
    assert plan.missed_runs(c.jobs, {"nightly": m.last}, t("2024-05-03 23:00:00")) == []


def test_due_order_and_once() -> None:
    c = cfg(NIGHTLY, HOURLY)
    nxt = {"nightly": t("2024-05-05 01:00:00"), "hourly": t("2024-05-05 01:00:00")}
    assert [j.name for j in plan.due(c.jobs, nxt, t("2024-05-05 00:59:59"))] == []
    assert [j.name for j in plan.due(c.jobs, nxt, t("2024-05-05 01:00:00"))] == [
        "nightly",
        "hourly",
    ]
    nxt["hourly"] = t("2024-05-05 00:00:00")  # the older slot goes first
    assert [j.name for j in plan.due(c.jobs, nxt, t("2024-05-05 01:00:00"))] == [
        "hourly",
        "nightly",
    ]
    once = plan.due_once(c.jobs, {"nightly": t("2024-05-05 01:00:00")}, t("2024-05-05 02:00"))
    assert [(j.name, slot, why) for j, slot, why in once] == [("hourly", None, "first")]
    once = plan.due_once(c.jobs, {"nightly": t("2024-05-04 01:00:00")}, t("2024-05-05 02:00"))
    assert [(j.name, why) for j, _, why in once] == [("nightly", "missed"), ("hourly", "first")]


def test_skipped_while_running() -> None:
    [j] = cfg(FAST).jobs
    assert plan.skipped_while_running(j, t("2024-01-01 00:00:00"), t("2024-01-01 00:00:01")) == 0
    assert plan.skipped_while_running(j, t("2024-01-01 00:00:00"), t("2024-01-01 00:00:07")) == 3


# -- the daemon loop with a fake clock ---------------------------------------------
class FakeClock:
    """Time moves only when the loop sleeps or a job runs."""

    def __init__(self, start: datetime) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float, stop: StopControl) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=max(seconds, 0.001))


class FakeExecutor:
    """Runs take ``durations[job]`` seconds of fake time; stops the daemon after ``limit``."""

    def __init__(
        self, clock: FakeClock, stop: StopControl, durations: dict[str, float], limit: int
    ) -> None:
        self.clock, self.stop, self.durations, self.limit = clock, stop, durations, limit
        self.calls: list[tuple[str, datetime | None, str, datetime]] = []
        self.running = 0

    def __call__(self, job: jobs.Job, slot: datetime | None, reason: str) -> Run:
        self.running += 1
        assert self.running == 1, "two jobs ran at once"
        start = self.clock.now()
        self.calls.append((job.name, slot, reason, start))
        self.clock.t += timedelta(seconds=self.durations.get(job.name, 0.5))
        self.running -= 1
        if len(self.calls) >= self.limit:
            self.stop.request()
        return Run(job.name, list(job.argv), "success", 0, None, start.isoformat(),
                   self.clock.now().isoformat(), 0.5)  # fmt: skip


def drive(
    c: jobs.ScheduleConfig,
    start: str,
    durations: dict[str, float],
    limit: int,
    last: dict[str, datetime] | None = None,
) -> FakeExecutor:
    clock = FakeClock(t(start))
    stop = StopControl()
    ex = FakeExecutor(clock, stop, durations, limit)
    Daemon(c.jobs, ex, clock, stop, last_slots=last, stats=DaemonStats()).run()
    return ex


def test_daemon_runs_each_job_at_its_slots() -> None:
    c = cfg(
        {"name": "a", "schedule": "0 * * * *", "command": "list"},
        {"name": "b", "schedule": "30 * * * *", "command": "list"},
    )
    ex = drive(c, "2024-01-01 00:10:00", {}, limit=4)
    assert [(n, s, r) for n, s, r, _ in ex.calls] == [
        ("b", t("2024-01-01 00:30:00"), "schedule"),
        ("a", t("2024-01-01 01:00:00"), "schedule"),
        ("b", t("2024-01-01 01:30:00"), "schedule"),
        ("a", t("2024-01-01 02:00:00"), "schedule"),
    ]
    assert all(started >= slot for _, slot, _, started in ex.calls if slot)


def test_daemon_runs_one_job_at_a_time_and_skips_slots_passed_while_running() -> None:
    c = cfg(
        {"name": "slow", "schedule": "*/2 * * * * *", "command": "dump"},
        {"name": "quick", "schedule": "*/2 * * * * *", "command": "list"},
    )
    ex = drive(c, "2024-01-01 00:00:00", {"slow": 5.0, "quick": 0.5}, limit=6)
    names = [n for n, *_ in ex.calls]
    assert names == ["slow", "quick", "slow", "quick", "slow", "quick"]
    # slow ran 00:00:02-07: its slots 04 and 06 were skipped, its next slot is 08
    assert ex.calls[2][1] == t("2024-01-01 00:00:08")
    # quick's slot 02 came while slow ran: it runs right after, late, once
    assert ex.calls[1][1] == t("2024-01-01 00:00:02") and ex.calls[1][3] == t("2024-01-01 00:00:07")


def test_daemon_runs_missed_jobs_once_on_start_then_follows_the_schedule() -> None:
    c = cfg(NIGHTLY, HOURLY)
    last = {"nightly": t("2024-05-01 01:00:00"), "hourly": t("2024-05-05 11:00:00")}
    ex = drive(c, "2024-05-05 11:30:00", {}, limit=3, last=last)
    assert [(n, s, r) for n, s, r, _ in ex.calls] == [
        ("nightly", t("2024-05-05 01:00:00"), "missed"),
        ("hourly", t("2024-05-05 12:00:00"), "schedule"),
        ("hourly", t("2024-05-05 13:00:00"), "schedule"),
    ]


def test_daemon_starts_nothing_after_a_stop() -> None:
    c = cfg(FAST)
    clock = FakeClock(t("2024-01-01 00:00:00"))
    stop = StopControl()
    stop.request()
    ex = FakeExecutor(clock, stop, {}, limit=99)
    summary = Daemon(c.jobs, ex, clock, stop, stats=DaemonStats()).run()
    assert ex.calls == [] and summary.runs == []
    # --once also honours it
    assert Daemon(c.jobs, ex, clock, stop, stats=DaemonStats()).run_once().runs == []


def test_second_signal_is_urgent() -> None:
    s = StopControl()
    assert not s.requested
    s.request()
    assert s.requested and not s.urgent and s.requested_at is not None
    s.request()
    assert s.urgent


# -- history ----------------------------------------------------------------------
def _run(job: str, started: str, outcome: str = "success", slot: str | None = None) -> Run:
    return Run(
        job, ["list"], outcome, 0 if outcome == "success" else 1, slot, started, started, 1.0
    )


def test_history_is_append_only_and_read_back_in_order() -> None:
    repo = Repository(MemoryStorage(), "main")
    other = Repository(repo.storage, "other")
    k1 = runs.record(repo, _run("b", "2024-01-01T00:00:02.000+00:00"))
    k2 = runs.record(repo, _run("a", "2024-01-01T00:00:01.000+00:00", "failed"))
    k3 = runs.record(repo, _run("a", "2024-01-01T00:00:01.000+00:00", "interrupted"))
    runs.record(other, _run("z", "2024-01-01T00:00:00.000+00:00"))
    assert len({k1, k2, k3}) == 3 and all(k.startswith("main/history/") for k in (k1, k2, k3))
    got = runs.read_history(repo)
    assert [(r.job, r.outcome) for r in got] == [
        ("a", "failed"),
        ("a", "interrupted"),
        ("b", "success"),
    ]
    assert runs.last_runs(got)["a"].outcome == "interrupted"
    assert runs.last_runs(got, completed_only=True)["a"].outcome == "failed"
    assert [r.job for r in runs.read_history(other)] == ["z"]


def test_damaged_history_records_are_skipped() -> None:
    repo = Repository(MemoryStorage(), "main")
    runs.record(repo, _run("a", "2024-01-01T00:00:01.000+00:00"))
    repo.storage.put("main/history/20240101T000000000000Z-x.json", [b"{not json"])
    assert [r.job for r in runs.read_history(repo)] == ["a"]


@pytest.mark.parametrize(
    "change",
    [
        {"started_at": 12},
        {"started_at": "yesterday"},
        {"job": ["a"]},
        {"outcome": "pwned"},
        {"command": "rm -rf /"},
        {"duration_s": "1"},
        {"duration_s": float("inf")},
        {"scheduled_for": 5},
        {"result": "x"},
    ],
)
def test_history_records_of_the_wrong_shape_are_skipped(change: dict[str, object]) -> None:
    """A record that parses as JSON but has a field of the wrong type or value is
    damaged like one that does not parse: skipped, the others still read and sorted."""
    repo = Repository(MemoryStorage(), "main")
    runs.record(repo, _run("a", "2024-01-01T00:00:01.000+00:00"))
    bad = {**_run("b", "2024-01-01T00:00:02.000+00:00").to_json(), **change}
    repo.storage.put("main/history/20240101T000002000000Z-b.json", [json.dumps(bad).encode()])
    assert [r.job for r in runs.read_history(repo)] == ["a"]


def test_slot_of_a_run() -> None:
    r = _run("a", "2024-01-01T01:00:03.000+00:00", slot="2024-01-01T01:00:00.000+00:00")
    assert r.slot() == t("2024-01-01 01:00:00")
    assert _run("a", "2024-01-01T01:00:03.000+00:00").slot() == t("2024-01-01 01:00:03")


# -- daemon metrics ------------------------------------------------------------------
def test_daemon_metrics_parse_as_prometheus_text() -> None:
    s = DaemonStats(started=1700000000.5)
    s.ran('we"ird', t("2024-01-01 00:00:00"), True, 1.25)
    s.ran("dump", t("2024-01-01 00:00:00"), False, 3.0)
    s.ran("dump", t("2024-01-01 01:00:00"), True, 2.0)
    s.scheduled("dump", t("2024-01-01 02:00:00"))
    s.hook_failed()
    fams = {f.name: f for f in text_string_to_metric_families(daemon_metrics(s))}
    val = {
        (sm.name, tuple(sorted(sm.labels.items()))): sm.value
        for f in fams.values()
        for sm in f.samples
    }
    assert val[("pgsafe_daemon_job_runs_total", (("job", "dump"),))] == 2
    assert val[("pgsafe_daemon_job_failures_total", (("job", "dump"),))] == 1
    assert val[("pgsafe_daemon_job_last_success", (("job", "dump"),))] == 1
    assert (
        val[("pgsafe_daemon_job_last_run_timestamp_seconds", (("job", "dump"),))]
        == t("2024-01-01 01:00:00").timestamp()
    )
    assert val[("pgsafe_daemon_job_runs_total", (("job", 'we"ird'),))] == 1
    assert val[("pgsafe_daemon_hook_failures_total", ())] == 1
    assert val[("pgsafe_daemon_start_time_seconds", ())] == 1700000000.5
