#!/usr/bin/env bash
# The test matrix: pgsafe's suite against each PostgreSQL major named, one after another.
#
#   scripts/pg-matrix.sh MAJOR...      e.g. scripts/pg-matrix.sh 15 17 18
#
# The host's own major runs on the host with the checkout's .venv; any other major runs in
# its Debian chroot (scripts/pg-chroot.sh, built once and cached) with a venv of its own,
# made from the chroot's /usr/bin/python3 and kept inside the chroot. Each run's output goes
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

rows=()
status=0
for major in "$@"; do
  log=$LOGS/pg$major.log
  echo "== PostgreSQL $major: $([[ $major == "$HOST_PG" ]] && echo host || echo chroot) run, log $log"
  start=$(date +%s)
  if [[ $major == "$HOST_PG" ]]; then
    # shellcheck disable=SC2086
    { make --no-print-directory setup && .venv/bin/python -m pytest $PYTEST; } >"$log" 2>&1
  else
    bash scripts/pg-chroot.sh "$major" >/dev/null && bash scripts/pg-chroot.sh "$major" run bash -c \
      "make --no-print-directory setup VENV=$VENV_IN_CHROOT PYTHON=/usr/bin/python3 && $VENV_IN_CHROOT/bin/python -m pytest $PYTEST" \
      >"$log" 2>&1
  fi
  rc=$?
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
