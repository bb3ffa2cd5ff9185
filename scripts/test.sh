#!/usr/bin/env bash
# Runs every test of ctferry and mssql-sim on a fresh machine.
#
# It first installs what the tests need that cargo does not bring:
#   - python-tds, the independent TDS client that cross-checks mssql-sim.
# Then it runs `cargo test --workspace`. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

if ! command -v python3 >/dev/null 2>&1; then
    say "installing python3 (apt-get)"
    apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
fi
if ! python3 -c 'import pytds' >/dev/null 2>&1; then
    say "installing python-tds (pip)"
    python3 -m pip install --quiet --disable-pip-version-check 'python-tds==1.17.1' 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
    python3 -c 'import pytds' || { say "python-tds could not be installed; the cross-client test needs it"; exit 1; }
fi

say "running cargo test --workspace $*"
exec cargo test --workspace "$@"
