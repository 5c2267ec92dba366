"""``pgsafe demo``: the whole backup-and-restore exercise on a sandbox, with a report."""
