"""The benchmark's fixed numbers and names: sizes, the parts, the data sets."""

from __future__ import annotations

MB = 1 << 20
GB_PER_SCALE = 15.6 * MB  # pgbench: about 15.6 MB of data directory per scale unit
PARTS = ("backup", "restore", "walpush", "archiving", "logical", "scaling")
DATA_SETS = ("pgbench", "random")
# --data random: beside pgbench's (very compressible) tables, a table of incompressible
# bytes and hex text, about 7.7 MB of data directory per scale unit (half pgbench's):
# 128 random bytes (four sha256 digests) and a 32-character md5 text per row.
RANDOM_ROWS_PER_SCALE = 40_000
RANDOM_TABLE = (
    "CREATE TABLE bench_random AS SELECT g AS id,"
    " sha256(random()::text::bytea) || sha256(random()::text::bytea)"
    " || sha256(random()::text::bytea) || sha256(random()::text::bytea) AS payload,"
    " md5(random()::text) AS note FROM generate_series(1, {rows}) AS g;"
    " ALTER TABLE bench_random ADD PRIMARY KEY (id)"
)
STANZA = "bench"
DB = "bench"  # not "postgres": pgsafe verify recreates the dumped database by name
