"""Undo a mistake without rolling the cluster back (``pgsafe undo``, ``restore-table``).

A throwaway cluster is recovered to just before the transaction (or to any moment of
the recoverable window); the rows it deleted or changed, or the table it truncated or
dropped, are brought back into the live database in one transaction, after a plan.
The throwaway cluster is always stopped and removed.
"""
