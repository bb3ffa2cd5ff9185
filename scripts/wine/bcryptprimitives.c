/*
 * A stand-in for Windows' bcryptprimitives.dll, for running ctferry.exe
 * under Wine in tests only (scripts/windows-check.sh copies it into the
 * Wine prefix; nothing ships it).
 *
 * Why: Rust's standard library (since 1.78) draws random numbers with
 * ProcessPrng from bcryptprimitives.dll, which every Windows since 10 has.
 * Wine 8.0 (Debian 13's) lacks that DLL, so any Rust program stops at load
 * with "Library bcryptprimitives.dll not found". This one exports
 * ProcessPrng over BCryptGenRandom, which Wine has.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
