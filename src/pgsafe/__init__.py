"""pgsafe: PostgreSQL backup, restore and point-in-time recovery that proves every restore."""

__version__ = "0.1.0"
