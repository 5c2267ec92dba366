"""Point-in-time recovery: targets, the pure recovery plan, and carrying it out."""
