"""Physical backups and continuous archiving: archive enable, base backups, restore points
and health checks (``pgsafe check``).  The commands the server runs are
:mod:`pgsafe.endpoint`'s; the recoverable window (``pgsafe info``) is :mod:`pgsafe.recovery`'s."""
