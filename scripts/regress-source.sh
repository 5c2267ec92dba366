#!/usr/bin/env bash
# PostgreSQL's regression suite, from Debian's postgresql-<major> source package, for
# tests/regress: prints the folder holding src/test/regress with regress.so built in it.
#
# The host's apt configuration is never changed: the deb-src lines live in a private
# sources list under $PGSAFE_REGRESS_CACHE, with its own package lists and archive
# cache.  Only postgresql-server-dev-<major> (regress.c's headers) is installed.
set -euo pipefail
MAJOR="${1:-15}"
CACHE="${PGSAFE_REGRESS_CACHE:-/var/cache/pgsafe-regress}"
mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial" "$CACHE/apt/parts" "$CACHE/src"
SRC_DIR=$(find "$CACHE/src" -maxdepth 1 -type d -name "postgresql-$MAJOR-*" 2>/dev/null | sort | tail -1)
if [[ -z "$SRC_DIR" || ! -f "$SRC_DIR/src/test/regress/parallel_schedule" ]]; then
  CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  cat > "$CACHE/apt/sources.list" <<LIST
deb-src http://deb.debian.org/debian $CODENAME main
deb-src http://deb.debian.org/debian $CODENAME-updates main
LIST
  APT=(apt-get -q -o "Dir::Etc::SourceList=$CACHE/apt/sources.list"
       -o "Dir::Etc::SourceParts=$CACHE/apt/parts" -o "Dir::State::Lists=$CACHE/apt/lists"
       -o "Dir::Cache=$CACHE/apt/cache" -o "APT::Sandbox::User=root")
  "${APT[@]}" update >&2
  (cd "$CACHE/src" && "${APT[@]}" source "postgresql-$MAJOR" >&2)
  SRC_DIR=$(find "$CACHE/src" -maxdepth 1 -type d -name "postgresql-$MAJOR-*" | sort | tail -1)
fi
PG_CONFIG=/usr/lib/postgresql/$MAJOR/bin/pg_config
INC="/usr/include/postgresql/$MAJOR/server"
if [[ ! -f "$INC/postgres.h" ]]; then
  # the headers of the installed server's version where the archive has it: a newer
  # postgresql-server-dev would upgrade the server packages along with it
  WANT=$(dpkg-query -W -f='${Version}' "postgresql-$MAJOR" 2>/dev/null || true)
  apt-get install -y -q --no-upgrade "postgresql-server-dev-$MAJOR${WANT:+=$WANT}" >&2 \
    || apt-get install -y -q --no-upgrade "postgresql-server-dev-$MAJOR" >&2
fi
REG="$SRC_DIR/src/test/regress"
if [[ ! -f "$REG/regress.so" || "$REG/regress.c" -nt "$REG/regress.so" ]]; then
  gcc -O1 -fPIC -shared -w -I"$INC" -I"$($PG_CONFIG --includedir)" -o "$REG/regress.so" "$REG/regress.c" >&2
fi
chmod -R a+rX "$CACHE/src"
echo "$REG"
