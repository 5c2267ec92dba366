"""The one error family of pgsafe.

Every error carries a one-line message, an optional hint, and the exit code the CLI
maps it to: 1 the operation failed, 2 bad input (nothing was changed), 3 verification
found a mismatch or corruption.  Library code raises these; only ``cli`` exits.
"""

from __future__ import annotations


class PgsafeError(Exception):
    """Root of every error pgsafe reports to a user."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class OperationFailed(PgsafeError):
    """The operation was attempted and failed (exit 1)."""

    exit_code = 1


class BadInput(PgsafeError):
    """Bad input or usage; nothing was changed (exit 2)."""

    exit_code = 2


class NotFound(BadInput):
    """A named thing (backup, table, database, segment) does not exist."""


class ConnectionFailed(BadInput):
    """PostgreSQL could not be reached or refused the credentials."""


class RepositoryError(PgsafeError):
    """The repository cannot be used (missing, not writable, damaged layout)."""

    exit_code = 2


class LockHeld(RepositoryError):
    """A repository lock asked for without waiting is held by another process (exit 2).

    Raised by every storage backend's ``lock(name, wait=False)``; callers that wait
    their turn (the daemon, the job runner) catch this class, never a message."""


class RepositoryReadOnly(RepositoryError):
    """The repository cannot be written here (a read-only mount, a snapshot, no write
    permission) and the command must write to it (exit 2)."""


class ObjectExists(OperationFailed):
    """An object already exists in the repository with other content."""


class VerificationFailed(PgsafeError):
    """A checksum, fingerprint or restore check did not match (exit 3)."""

    exit_code = 3


class ToolFailed(OperationFailed):
    """A PostgreSQL program exited with an error."""
