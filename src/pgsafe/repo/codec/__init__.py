"""Codecs: compression and checksums applied to streams on their way to storage."""
