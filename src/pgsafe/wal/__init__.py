"""Continuous WAL archiving: the archive_command / restore_command endpoints.

Modules here import only the standard library and the codec libraries: they run once per WAL
segment, started by PostgreSQL.
"""
