"""Local PostgreSQL clusters: initdb, start, wait ready, stop, promote."""
