"""Point-in-time recovery: targets, the inventory of backups and WAL, the pure recovery plan,
the recoverable window (``pgsafe info``), and carrying a plan out."""
