"""Retention: which backups and WAL to keep, and removing the rest."""
