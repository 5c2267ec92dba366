#!/usr/bin/env bash
# Install the Debian packages pgsafe's demo and tests need, when root and missing.
set -euo pipefail
PYTHON=${1:-/usr/bin/python3}
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql postgresql-contrib)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
# the stock CLIs that the codec tests check our objects against
command -v lz4 >/dev/null 2>&1 || need+=(lz4)
command -v gzip >/dev/null 2>&1 || need+=(gzip)
command -v age >/dev/null 2>&1 || need+=(age)
command -v setsid >/dev/null 2>&1 || need+=(util-linux)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian's postgresql package starts a cluster of its own; pgsafe never uses it.
  else
    echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
