"""Physical backups and continuous archiving: archive enable, base backups, restore points,
the archive's catalog (info) and health checks."""
