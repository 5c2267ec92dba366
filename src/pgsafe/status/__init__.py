"""Health of a server's backups, for people (``status``) and monitoring (``metrics``)."""
