"""The command-line layer: parse flags, call an operation, render text or JSON, map
errors to exit codes.  It holds no logic."""
