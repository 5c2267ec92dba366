"""Destructive transactions found in the WAL (``pgsafe mistakes``).

Archived segments (decoded through the repository's codecs) and, when reachable, the
live server's ``pg_wal`` are read with PostgreSQL's own ``pg_waldump``; heap DELETE /
UPDATE / TRUNCATE records and the relfilenodes a DROP's commit lists are grouped per
transaction and named through the catalogs (the live server for tables that still
exist, the catalog map recorded with each base backup for dropped ones).
"""
