"""What PostgreSQL's archive_command and restore_command run, and the probes that prove it.

``archive_command`` / ``restore_command`` run ``pgsafe wal-push`` / ``wal-get`` as the
server's OS user.  This package holds that wiring, for :mod:`pgsafe.physical`
(``archive enable``, ``check``) and :mod:`pgsafe.recovery` (``recover``) alike:

* :mod:`~pgsafe.endpoint.runtime` — an argv that user can run (the lean ``python -I -S
  -c ...`` launcher, ``-I -m pgsafe``, or a self-contained copy);
* :mod:`~pgsafe.endpoint.command` — the repository part (``--repo``/``--config``,
  ``--server``, file-name environment assignments) and the quoted command line;
* :mod:`~pgsafe.endpoint.probe` — ``wal-push --probe`` / ``wal-get --probe`` as that user;
* :mod:`~pgsafe.endpoint.proven` — the two commands, each proven by its probe.

The endpoints themselves (what the command runs) are :mod:`pgsafe.wal`; nothing here is
on their import path.
"""
