"""Typed models shared across pgsafe's packages: the kinds and states that cross a module
boundary (:mod:`pgsafe.models.kinds`).

This package imports nothing else of pgsafe, so every layer — ``repo`` included — may
import it.  The JSON shape of each entity is made in one place, :mod:`pgsafe.jsonshape`.
"""
