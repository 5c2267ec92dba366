"""Scheduled jobs: ``[[jobs]]`` in the config, ``pgsafe daemon``, ``pgsafe schedule``.

Modules, one idea each:

* :mod:`~pgsafe.schedule.cron` — cron expressions and their next instant (UTC);
* :mod:`~pgsafe.schedule.jobs` — the config sections, validated once at load;
* :mod:`~pgsafe.schedule.plan` — pure decisions: missed runs, what is due;
* :mod:`~pgsafe.schedule.runner` — one run as a child ``pgsafe`` process;
* :mod:`~pgsafe.schedule.hooks` — ``on_success`` / ``on_failure`` commands;
* :mod:`~pgsafe.schedule.daemon` — the loop, its clock and stop handling;
* :mod:`~pgsafe.schedule.serve` — the daemon assembled (lock, signals, metrics, loop):
  ``serve(...)`` is what ``pgsafe daemon`` calls;
* :mod:`~pgsafe.schedule.stats`, :mod:`~pgsafe.schedule.metrics_http` — daemon metrics;
* :mod:`~pgsafe.schedule.install` — crontab and systemd timer files.

Each run is recorded in the repository by :mod:`pgsafe.repo.runs`, where
``pgsafe status`` reads it too.
"""
