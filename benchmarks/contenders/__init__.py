"""The programs the parts compare: pgsafe, pgBackRest, PostgreSQL's own tools
(pg_basebackup, pg_dump, pg_restore) and the floors (tar, cp, ``python3 -c pass``)."""
