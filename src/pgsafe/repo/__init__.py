"""The repository: storage backends, codecs and the catalog of backups.

``repo`` knows the layout of a repository and nothing of PostgreSQL's semantics.
"""
