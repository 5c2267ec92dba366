"""PostgreSQL from pgsafe's side: connections (:mod:`.connect`, :mod:`.conninfo`), program
discovery by major version (:mod:`.programs`) and the one way to run those programs —
streaming their output (:mod:`.process`), feeding their input (:mod:`.pipe`) or to
completion (:mod:`.runner`), with passwords only in the environment."""
