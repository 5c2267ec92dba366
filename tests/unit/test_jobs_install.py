"""``pgsafe schedule install``: the cron file and systemd units it writes, that their
command really runs a job, and that it never overwrites silently."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_pgsafe

CONFIG = """
repo = "{repo}"
server = "{server}"

[[jobs]]
name = "nightly"
schedule = "0 1 * * *"
command = "list"

[[jobs]]
schedule = "0 0 13 * fri"
command = "verify --latest"
"""


def _config(tmp_path: Path, server: str = "main", extra: str = "") -> Path:
    cfg = tmp_path / "pgsafe.toml"
    cfg.write_text(CONFIG.format(repo=tmp_path / "repo", server=server) + extra)
    return cfg


def test_cron_file_runs_the_job_through_schedule_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, server="db.one")
    out = tmp_path / "cron.d"
    out.mkdir()
    r = run_pgsafe("--config", str(cfg), "schedule", "install", "--cron", "--output", str(out),
                   "--user", "backup")  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = out / "pgsafe-db_one"  # run-parts ignores names with dots
    assert r.stdout.strip().endswith(str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    text = path.read_text()
    assert "CRON_TZ=UTC" in text
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#") and "=" not in ln]
    assert len(lines) == 2
    fields = lines[0].split(None, 6)
    assert fields[:6] == ["0", "1", "*", "*", "*", "backup"]
    argv = shlex.split(fields[6])
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK)
    assert argv[argv.index("--config") + 1] == str(cfg.absolute())
    assert argv[argv.index("--repo") + 1] == str(tmp_path / "repo")
    assert argv[argv.index("--server") + 1] == "db.one"
    assert argv[-4:] == ["schedule", "run", "nightly", "--quiet"]
    assert lines[1].split(None, 6)[:6] == ["0", "0", "13", "*", "fri", "backup"]
    # the line's command runs the job, and the run lands in the history
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    st = run_pgsafe("--config", str(cfg), "schedule", "list", "--json")
    jobs = {j["name"]: j for j in json.loads(st.stdout)["jobs"]}
    assert jobs["nightly"]["last_run"]["outcome"] == "success"
    assert jobs["nightly"]["last_run"]["reason"] == "manual"
    assert jobs["verify-latest"]["last_run"] is None


def test_systemd_units(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "units"
    out.mkdir()
    r = run_pgsafe("--config", str(cfg), "--json", "schedule", "install", "--systemd",
                   "--output", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "systemd" and not doc["dry_run"]
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "pgsafe-main-nightly.service",
        "pgsafe-main-nightly.timer",
        "pgsafe-main-verify-latest.service",
        "pgsafe-main-verify-latest.timer",
    ]
    service = (out / "pgsafe-main-nightly.service").read_text()
    assert "Type=oneshot" in service
    exec_line = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(exec_line.removeprefix("ExecStart="))
    assert Path(argv[0]).is_absolute() and argv[-3:] == ["schedule", "run", "nightly"]
    timer = (out / "pgsafe-main-verify-latest.timer").read_text()
    cal = [ln.removeprefix("OnCalendar=") for ln in timer.splitlines() if "OnCalendar" in ln]
    assert cal == ["*-*-13 00:00:00 UTC", "Fri *-*-* 00:00:00 UTC"]
    assert "Persistent=true" in timer and "Unit=pgsafe-main-verify-latest.service" in timer
    if shutil.which("systemd-analyze"):  # systemd itself accepts the units
        units = [str(p) for p in sorted(out.iterdir())]
        v = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
        assert v.returncode == 0 and not v.stderr.strip(), v.stderr


def test_existing_files_are_refused_unless_forced(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "units"
    out.mkdir()
    mine = out / "pgsafe-main-nightly.timer"
    mine.write_text("# mine\n")
    args = ["--config", str(cfg), "schedule", "install", "--systemd", "--output", str(out)]
    r = run_pgsafe(*args)
    assert r.returncode == 2
    assert str(mine) in r.stderr and "--force" in r.stderr
    assert mine.read_text() == "# mine\n"
    assert sorted(p.name for p in out.iterdir()) == [mine.name]  # nothing else written
    r = run_pgsafe(*args, "--force")
    assert r.returncode == 0, r.stderr
    assert "OnCalendar=*-*-* 01:00:00 UTC" in mine.read_text()
    assert len(list(out.iterdir())) == 4


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "cron.d"
    out.mkdir()
    r = run_pgsafe("--config", str(cfg), "schedule", "install", "--cron", "--dry-run",
                   "--output", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert list(out.iterdir()) == []
    assert f"# --- {out / 'pgsafe-main'} ---" in r.stdout and "schedule run nightly" in r.stdout
    assert "dry run: nothing was written" in r.stdout


def test_seconds_cannot_go_to_cron_but_can_go_to_systemd(tmp_path: Path) -> None:
    extra = '\n[[jobs]]\nname = "fast"\nschedule = "*/10 * * * * *"\ncommand = "list"\n'
    cfg = _config(tmp_path, extra=extra)
    out = tmp_path / "out"
    out.mkdir()
    r = run_pgsafe("--config", str(cfg), "schedule", "install", "--cron", "--output", str(out))
    assert r.returncode == 2
    assert "job 'fast'" in r.stderr and "seconds field" in r.stderr
    assert list(out.iterdir()) == []
    r = run_pgsafe("--config", str(cfg), "schedule", "install", "--systemd", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "OnCalendar=*-*-* *:*:00/10 UTC" in (out / "pgsafe-main-fast.timer").read_text()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["schedule", "install", "--output", "/tmp"], "choose one of --cron and --systemd"),
        (["schedule", "install", "--cron", "--systemd"], "choose one of --cron and --systemd"),
    ],
)
def test_install_usage_errors(tmp_path: Path, args: list[str], words: str) -> None:
    cfg = _config(tmp_path)
    r = run_pgsafe("--config", str(cfg), *args)
    assert r.returncode == 2 and words in r.stderr


def test_install_needs_a_config_file(tmp_path: Path) -> None:
    r = run_pgsafe("--repo", str(tmp_path / "r"), "schedule", "install", "--cron",
                   env={"PGSAFE_CONFIG": "", "HOME": str(tmp_path)})  # fmt: skip
    assert r.returncode == 2 and "needs a config file" in r.stderr


def test_a_bad_job_fails_every_schedule_command_with_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('repo = "/x"\n[[jobs]]\nname = "n"\nschedule = "0 25 * * *"\ncommand = "dump"\n')
    for args in (["schedule", "list"], ["daemon", "--once"], ["schedule", "run", "n"]):
        r = run_pgsafe("--config", str(cfg), *args)
        assert r.returncode == 2, args
        assert "job 'n': schedule '0 25 * * *': hour 25 is out of range 0-23" in r.stderr
