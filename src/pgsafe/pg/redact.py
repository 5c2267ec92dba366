"""Passwords blanked out of any text that may hold a connection string.

Kept apart from :mod:`pgsafe.pg.conninfo` so that the CLI's logging filter can use it
without importing psycopg (about 0.15 s of every command's start-up).
"""

from __future__ import annotations

import re

_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/?#@\s]*:)[^@/?#\s]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every password of a URI or a ``password=`` pair replaced by ``***``."""
    text = _URI_PASSWORD.sub(r"\1***@", text)
    return _KV_PASSWORD.sub(r"\1***", text)
