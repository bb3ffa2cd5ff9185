#!/usr/bin/env bash
# Cross-compiles the caregiver's ctferry.exe for Windows (x86_64-pc-windows-gnu)
# from Linux, with the production feature set (no demo, no simulator), and
# checks that it needs no DLL beside it: only Windows' own.
#
# Installs what it needs: mingw-w64 (Debian's gcc-mingw-w64-x86-64), perl
# and make (OpenSSL, built in for SFTP), and the Rust target (rustup target add x86_64-pc-windows-gnu). If either cannot be
# installed on this machine it says so in one line and exits 3, so that the
# caller can report the Windows checks as skipped rather than failed.
#
# Prints the path of ctferry.exe on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/build-windows.sh: %s\n' "$*" >&2; }
TARGET=x86_64-pc-windows-gnu

if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    say "installing mingw-w64 (apt-get install gcc-mingw-w64-x86-64)"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64) >/dev/null 2>&1; then
        echo "mingw-w64 (gcc-mingw-w64-x86-64) cannot be installed here"
        exit 3
    fi
fi
# OpenSSL (built into ctferry.exe for its SFTP) is configured with Perl
# (its Configure needs modules beyond perl-base) and built with make.
if ! perl -MIPC::Cmd -MFindBin -e1 >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    say "installing perl and make (apt-get install perl make), to build OpenSSL for ctferry.exe"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq perl make) >/dev/null 2>&1; then
        echo "perl and make (to build OpenSSL for Windows) cannot be installed here"
        exit 3
    fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "installing the Rust target $TARGET (rustup)"
    if ! rustup target add "$TARGET" >/dev/null 2>&1; then
        echo "the Rust target $TARGET cannot be installed here (rustup target add failed)"
        exit 3
    fi
fi

say "building ctferry.exe (cargo build --release --target $TARGET --no-default-features)"
cargo build --release --target "$TARGET" --no-default-features --quiet
exe="target/$TARGET/release/ctferry.exe"

# Only DLLs that every Windows has: nothing to ship beside the .exe.
allowed='^(advapi32|kernel32|user32|userenv|ws2_32|bcrypt|bcryptprimitives|crypt32|msvcrt|ntdll|secur32|ole32|oleaut32|shell32|api-ms-win-[a-z0-9-]+)\.dll$'
extra=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u | grep -Ev "$allowed" || true)
if [ -n "$extra" ]; then
    say "ctferry.exe needs DLLs that Windows does not have: $extra"
    exit 1
fi
echo "$exe"
