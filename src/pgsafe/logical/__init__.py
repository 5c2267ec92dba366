"""Logical backups: pg_dump / pg_dumpall into the repository, and back with pg_restore."""
