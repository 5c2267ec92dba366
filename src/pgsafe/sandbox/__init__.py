"""The sandbox: a throwaway local PostgreSQL cluster under pgsafe's state folder
(``pgsafe sandbox start|stop|status``, and what ``pgsafe demo`` runs on).

:mod:`~pgsafe.sandbox.lifecycle` holds it; its functions are re-exported here.
"""

from pgsafe.sandbox.lifecycle import SandboxStatus, prepare_home, sandbox_root, start, status, stop

__all__ = ["SandboxStatus", "prepare_home", "sandbox_root", "start", "status", "stop"]
