"""TLS with python-tds (pyOpenSSL), a TDS client nobody here wrote.

Run by mssql-sim/tests/tls.rs against a simulator started with a test
certificate:
    python3 pytds_tls.py HOST PORT PASSWORD CA_FILE

python-tds encrypts when given `cafile` (ENCRYPT_ON in PRELOGIN, the
handshake inside PRELOGIN packets, MS-TDS 2.2.6.5) and checks the server
certificate against that CA and the host name. Logs in, runs a query whose
answer spans several TLS records, and with `enc_login_only=True` logs in
with login-only encryption. Prints "OK" and exits 0 when everything worked.
"""
import sys

import pytds

host, port, password, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


with pytds.connect(server=host, port=port, database="master", user="sa", password=password,
                   cafile=ca, validate_host=True, autocommit=True, timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("SELECT 1 AS one, N'" + "x" * 20000 + "' AS big")
    one, big = cur.fetchone()
    check("one", one, 1)
    check("big", len(big), 20000)

with pytds.connect(server=host, port=port, database="master", user="sa", password=password,
                   cafile=ca, validate_host=True, enc_login_only=True, autocommit=True,
                   timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("SELECT 2")
    check("login-only", cur.fetchone()[0], 2)

print("OK")
