"""pgsafe's benchmarks: ``run.py`` is the entry point (``make bench``); the harness
(clusters, timing, alternation), the contenders (pgsafe, pgBackRest, pg_basebackup, the
floors), one module per part, the targets table and the report writer are the packages
and modules beside it.  The other scripts here are stand-alone measurements."""
