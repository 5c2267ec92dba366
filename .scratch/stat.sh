set -e
B=/usr/lib/postgresql/18/bin
D=$(mktemp -d /tmp/st.XXXX); chown postgres $D
su postgres -c "$B/initdb -D $D/d >/dev/null && $B/pg_ctl -D $D/d -o '-p 5499 -k $D -c listen_addresses=' -l $D/log start >/dev/null"
P="-h $D -p 5499 -U postgres"
su postgres -c "$B/psql $P -qc 'create table t(a int primary key, b text); insert into t select g, md5(g::text) from generate_series(1,1000) g; analyze t;' postgres"
su postgres -c "$B/pg_dump $P -Fp --statistics postgres" | grep -c restore_ || true
su postgres -c "$B/pg_dump $P -Fp postgres" | grep -c restore_ || true
su postgres -c "$B/pg_dump $P -Fp --statistics --data-only postgres" | grep -c restore_ || echo "data-only rc $?"
su postgres -c "$B/pg_dump $P -Fp --statistics --schema-only postgres" | grep -c restore_ || echo "schema-only rc $?"
su postgres -c "$B/pg_dump $P -Fc --statistics -f $D/x.dump postgres"
su postgres -c "$B/pg_restore -f - $D/x.dump" | grep -c restore_ || true
su postgres -c "$B/pg_restore -l $D/x.dump" | grep -i stat
su postgres -c "$B/pg_dump $P -Fp --statistics -t t postgres" | grep -c restore_ || true
su postgres -c "$B/pg_ctl -D $D/d stop -m immediate" >/dev/null
rm -rf $D
