#!/usr/bin/env bash
# Prepares the Windows checks: builds ctferry.exe (scripts/build-windows.sh),
# installs Wine (Debian's wine64) and makes a Wine prefix in
# target/wineprefix with the bcryptprimitives.dll stand-in
# (scripts/wine/bcryptprimitives.c says why). tests/windows.rs then runs
# ctferry.exe under Wine.
#
# Prints `export` lines for the test run: CTFERRY_WINDOWS_EXE and
# WINEPREFIX. Exits 3 (after one line saying why) when the Windows build or
# Wine cannot be had on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/windows-check.sh: %s\n' "$*" >&2; }

set +e
exe=$(scripts/build-windows.sh | tail -n 1)
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 3 ]; then
    echo "$exe"
    exit 3
elif [ "$rc" != 0 ]; then
    say "the Windows build failed"
    exit "$rc"
fi

if ! command -v wine >/dev/null 2>&1; then
    say "installing Wine (apt-get install wine64)"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wine64) >/dev/null 2>&1; then
        echo "Wine (wine64) cannot be installed here"
        exit 3
    fi
fi

prefix="$PWD/target/wineprefix"
export WINEPREFIX="$prefix" WINEDEBUG=-all
if [ ! -d "$prefix/drive_c/windows/system32" ]; then
    say "making the Wine prefix $prefix"
    wineboot --init >/dev/null 2>&1 || wine cmd /c exit >/dev/null 2>&1 || true
fi
x86_64-w64-mingw32-gcc -shared -O2 -o "$prefix/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c -lbcrypt
echo "export CTFERRY_WINDOWS_EXE=$PWD/$exe"
echo "export WINEPREFIX=$prefix"
