#!/usr/bin/env bash
# A Debian chroot that holds one PostgreSQL major, for the test matrix (issue 13).
#
#   scripts/pg-chroot.sh MAJOR                 build it once (cached), print its folder
#   scripts/pg-chroot.sh MAJOR run [CMD...]    run CMD inside it (a shell without CMD)
#
# Majors: 17 (Debian 13 trixie) and 18 (Debian testing, forky). The chroot is built
# with `debootstrap --variant=minbase` under $PGSAFE_MATRIX_CACHE (default
# /var/cache/pgsafe-matrix/pgMAJOR), from the mirror the host's apt sources name; the
# host's own apt sources are never touched. Debian's postgresql packages are installed
# with no cluster of their own and no service started, then scripts/system-deps.sh runs
# inside to confirm (or top up) what pgsafe's tests need.
#
# `run` mounts /proc, binds /dev (recursively: /dev/shm holds PostgreSQL's dynamic
# shared memory), binds the checkout this script lives in at its own path and, read-only,
# the shared/ folder beside it (tests/conftest.py finds pagila there), then unmounts all
# of it on exit. One `run` per chroot at a time (a lock); the environment inside is clean
# (root's HOME, PATH, LANG=C.UTF-8) plus any PGSAFE_* / PYTEST_* variables of the caller.
# Needs root.
set -euo pipefail

usage() {
  echo "usage: $0 MAJOR [run [CMD...]]   (MAJOR: 17 or 18)" >&2
  exit 2
}
(($# >= 1)) || usage
MAJOR=$1
shift
case $MAJOR in
  17) SUITE=trixie SCRIPT=trixie ;;
  18) SUITE=forky SCRIPT=sid ;; # Debian testing; older debootstraps have no forky script
  *) usage ;;
esac
[[ $(id -u) -eq 0 ]] || {
  echo "$0: needs root (debootstrap, chroot, mount)" >&2
  exit 1
}

HERE=$(cd "$(dirname "$0")/.." && pwd -P)
CACHE=${PGSAFE_MATRIX_CACHE:-/var/cache/pgsafe-matrix}
ROOT=$CACHE/pg$MAJOR
READY=$ROOT/.pgsafe-ready
PACKAGES=(
  "postgresql-$MAJOR" "postgresql-client-$MAJOR"
  python3 python3-venv make zstd lz4 gzip age util-linux procps time
  systemd # systemd-analyze, which the schedule tests verify unit files with
  ca-certificates git tar
)

# The Debian mirror the host already uses (its first non-security URI), else debootstrap's default.
host_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")
    [[ -n $uri ]] && grep -q "^Suites:.*\b\(bookworm\|trixie\|forky\|sid\|stable\|testing\)\b" "$f" && {
      echo "$uri"
      return
    }
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list | head -1
  fi
}

# retry N CMD...: run CMD up to N times, 10 s apart (a mirror that drops a connection, a
# package list caught mid-sync); the last failure's status is returned.
retry() {
  local n=$1 i rc=0
  shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    rc=$?
    ((i < n)) && {
      echo "$1 failed (exit $rc), attempt $i of $n; retrying in 10 s" >&2
      sleep 10
    }
  done
  return $rc
}

in_root() { # run a command inside the chroot (no mounts beyond what the caller made)
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

bootstrap() { # bootstrap MIRROR SCRIPT: a fresh minbase system in $ROOT (whatever was there goes)
  local m
  for m in "$ROOT/proc" "$ROOT/sys"; do # a failed attempt may leave debootstrap's mounts
    mountpoint -q "$m" && umount -l "$m"
  done
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$ROOT"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$1" "$2" \
    >"$CACHE/pg$MAJOR-debootstrap.log" 2>&1
}

build() {
  command -v debootstrap >/dev/null || {
    echo "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  local mirror script=/usr/share/debootstrap/scripts/$SCRIPT
  mirror=$(host_mirror)
  [[ -n $mirror ]] || mirror=$(sed -n 's/^default_mirror[[:space:]]*//p' /usr/sbin/debootstrap | head -1)
  echo "debootstrap $SUITE into $ROOT (PostgreSQL $MAJOR)"
  retry 3 bootstrap "$mirror" "$script" || {
    tail -20 "$CACHE/pg$MAJOR-debootstrap.log" >&2
    exit 1
  }
  # No service starts inside a chroot; Debian's postgresql makes no cluster of its own here.
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  mkdir -p "$ROOT/etc/postgresql-common"
  echo "create_main_cluster = false" >"$ROOT/etc/postgresql-common/createcluster.conf"
  # Debian testing's Release file carries a Valid-Until; a machine clock ahead of the
  # mirror's last publication must not stop the build (the host's apt is set the same way)
  echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99pgsafe-matrix"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mount -t proc proc "$ROOT/proc"
  trap 'umount "$ROOT/proc"' EXIT
  echo 'Acquire::Retries "5";' >>"$ROOT/etc/apt/apt.conf.d/99pgsafe-matrix"
  retry 3 in_root apt-get update -qq
  retry 3 in_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" \
    >"$CACHE/pg$MAJOR-apt.log" 2>&1 || {
    tail -20 "$CACHE/pg$MAJOR-apt.log" >&2
    exit 1
  }
  in_root apt-get clean
  cp "$HERE/scripts/system-deps.sh" "$ROOT/tmp/system-deps.sh"
  in_root bash /tmp/system-deps.sh /usr/bin/python3
  rm -f "$ROOT/tmp/system-deps.sh"
  umount "$ROOT/proc"
  trap - EXIT
  in_root "/usr/lib/postgresql/$MAJOR/bin/postgres" --version >"$READY"
  echo "ready: $(cat "$READY")"
}

# The host's own certificate authorities (/usr/local/share/ca-certificates), trusted inside
# too: pip reaches PyPI from the chroot through whatever the host's network requires.
sync_trust() {
  local src=/usr/local/share/ca-certificates dst=$ROOT/usr/local/share/ca-certificates
  [[ -d $src ]] || return 0
  diff -rq "$src" "$dst" >/dev/null 2>&1 && return 0
  rm -rf "$dst"
  cp -r "$src" "$dst"
  in_root update-ca-certificates >/dev/null 2>&1
}

mkdir -p "$CACHE"
exec 9>"$CACHE/pg$MAJOR.lock"
flock 9
[[ -f $READY ]] || build

if (($# == 0)); then
  echo "$ROOT"
  exit 0
fi
[[ $1 == run ]] || usage
shift

SHARED=$(dirname "$HERE")/shared
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" || true
  done
}
trap cleanup EXIT
trap "exit 130" INT TERM
bind() { # bind FROM at the same path inside the chroot; extra args: mount options
  local from=$1 to=$ROOT$1
  shift
  mkdir -p "$to"
  mount --bind "$from" "$to"
  MOUNTS+=("$to")
  (($# == 0)) || mount -o "remount,bind,$1" "$to"
}
# a run killed before its cleanup (a cut-off session, a SIGKILL) leaves its mounts; runs of
# one chroot never overlap (the lock above), so whatever is mounted under it now is stale
awk -v root="$ROOT/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r -u |
  while read -r m; do umount -l "$m" 2>/dev/null || true; done
mount -t proc proc "$ROOT/proc"
MOUNTS+=("$ROOT/proc")
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
MOUNTS+=("$ROOT/dev")
bind "$HERE"
[[ -d $SHARED ]] && bind "$SHARED" ro
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
sync_trust
chmod 1777 "$ROOT/tmp"

passthrough=()
while IFS='=' read -r name _; do
  [[ $name == PGSAFE_* || $name == PYTEST_* ]] && passthrough+=("$name=${!name}")
done < <(env)
(($# > 0)) || set -- bash -l
chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${passthrough[@]}" \
  bash -c 'cd "$0" && exec "$@"' "$HERE" "$@"
