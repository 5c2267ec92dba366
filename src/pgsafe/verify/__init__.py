"""Verification: checksums of what is stored, restore tests, fingerprint comparisons."""
