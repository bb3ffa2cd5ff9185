#!/usr/bin/env bash
# Runs every test of ctferry and mssql-sim on a fresh machine.
#
# It first installs what the tests need that cargo does not bring:
#   - python-tds (with pyOpenSSL, for TLS) and tedious (Node.js), the
#     independent TDS clients that cross-check mssql-sim;
#   - GnuPG (gpg) and zstd, for the OpenPGP interop tests in both directions;
#   - cbor2, the one package docs/read_package.py needs (newest, and 5.x);
#   - OpenSSH's sshd (openssh-server) for the SFTP delivery tests, which start
#     their own servers on 127.0.0.1 and create two test accounts
#     (ctferry-t-a, ctferry-t-b), so the tests run as root, as CI does;
#   - libssl-dev and pkg-config, which building libssh2 (ssh2 crate) needs;
#   - for the Windows checks (scripts/windows-check.sh): mingw-w64, the Rust
#     target x86_64-pc-windows-gnu and Wine; skipped, and said so, where
#     they cannot be installed.
# Then it builds the benchmarks and a ctferry without the demo (checking that
# it links no simulator), and runs `cargo test --workspace`. Extra arguments
# go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
command -v gpg >/dev/null 2>&1 || need_apt+=(gnupg)
command -v gpgconf >/dev/null 2>&1 || need_apt+=(gnupg)
command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v sftp >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
[ -e /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    say "installing ${need_apt[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import pytds' >/dev/null 2>&1; then
    say "installing python-tds (pip)"
    python3 -m pip install --quiet --disable-pip-version-check 'python-tds==1.17.1' 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
    python3 -c 'import pytds' || { say "python-tds could not be installed; the cross-client test needs it"; exit 1; }
fi

if ! python3 -c 'import OpenSSL' >/dev/null 2>&1; then
    say "installing pyOpenSSL (pip), python-tds's TLS"
    python3 -m pip install --quiet --disable-pip-version-check pyOpenSSL 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
    python3 -c 'import OpenSSL' || { say "pyOpenSSL could not be installed; the python-tds TLS test needs it"; exit 1; }
fi

# tedious 19 (the newest that runs on Node.js 18-20; 20 needs Node 22).
if [ ! -d mssql-sim/tests/clients/node_modules/tedious ]; then
    say "installing tedious (npm install in mssql-sim/tests/clients)"
    (cd mssql-sim/tests/clients && npm install --no-audit --no-fund --silent) >&2
    [ -d mssql-sim/tests/clients/node_modules/tedious ] || { say "tedious could not be installed; the tedious TLS test needs it"; exit 1; }
fi

# cbor2 for docs/read_package.py: what `pip install cbor2` installs today
# (the newest release), and the 5.x line that distributions still ship, kept
# in target/py-cbor2-5; tests/gpg_interop.rs runs the script with both.
say "installing the newest cbor2 (pip) and cbor2 5.x (target/py-cbor2-5)"
python3 -m pip install --quiet --disable-pip-version-check --upgrade cbor2 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
python3 -c 'import cbor2' || { say "cbor2 could not be installed; docs/read_package.py needs it"; exit 1; }
if [ ! -d target/py-cbor2-5/cbor2 ]; then
    python3 -m pip install --quiet --disable-pip-version-check --target target/py-cbor2-5 'cbor2>=5,<6' 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
    [ -d target/py-cbor2-5/cbor2 ] || { say "cbor2 5.x could not be installed into target/py-cbor2-5"; exit 1; }
fi

# The benchmarks are not run here, but they must keep compiling (dev
# profile, so this reuses the test build).
say "building the benchmarks (cargo test --workspace --benches --no-run)"
cargo test --workspace --benches --no-run --quiet

# A production build leaves the demo out and must link no simulator
# (docs/ARCHITECTURE.md, "Layout").
say "building ctferry without the demo (cargo build --no-default-features) and checking it links no simulator"
cargo build --no-default-features --quiet
linked=$(cargo tree --no-default-features -e normal --prefix none --package ctferry | grep -E '^(mssql-sim|rusqlite|libsqlite3-sys|sqlparser) ' || true)
if [ -n "$linked" ]; then
    say "a build without the demo links: $linked"
    exit 1
fi

# The caregiver's ctferry.exe for Windows, cross-compiled, and its checks
# under Wine (tests/windows.rs). Where the Windows target, mingw-w64 or Wine
# cannot be installed, say so and go on: those tests then say "SKIPPED".
say "building ctferry.exe for Windows and preparing Wine (scripts/windows-check.sh)"
set +e
win=$(scripts/windows-check.sh)
rc=$?
set -e
case $rc in
    0) eval "$win" ;;
    3) echo "SKIPPED: Windows build (target not installable here): $win" ;;
    *) say "the Windows build or its Wine setup failed (see above)"; exit 1 ;;
esac

say "running cargo test --workspace $*"
exec cargo test --workspace "$@"
