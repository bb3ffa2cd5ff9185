"""Keyset pagination, checked with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_keyset.py HOST PORT PASSWORD

What SQL Server documents ("Collation precedence", "Data type
precedence", "TOP", "ORDER BY"): a column compared with a CAST of a
parameter uses the column's collation (implicit beats coercible-default),
so paging a table by `(k1 > @a) OR (k1 = @a AND k2 > @b)` ORDER BY k1, k2
with TOP (1), starting after each page's last key, visits every row once,
in the ORDER BY's order, in a case-sensitive column of a database whose
own collation is case-insensitive. UPDATE STATISTICS is accepted.
Prints "OK" and exits 0 when everything matched.
"""
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect(db):
    return pytds.connect(server=host, port=port, database=db, user="sa", password=password,
                         autocommit=True, timeout=30, login_timeout=30)


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


with connect("master") as c:
    c.cursor().execute("CREATE DATABASE Sidor COLLATE Finnish_Swedish_CI_AS")

keys = [("abc", 1), ("abc", 2), ("Abc", 1), ("ABC", 1), ("ABC", -5), ("Åsa", 1),
        ("Ära", 7), ("Zeta", 1), ("x", 1), ("ö", 3), ("o", 3), ("O", 3)]
with connect("Sidor") as c:
    cur = c.cursor()
    cur.execute("CREATE TABLE dbo.Kod (Kod varchar(10) COLLATE Finnish_Swedish_CS_AS NOT NULL, "
                "Nr int NOT NULL, PRIMARY KEY (Kod, Nr))")
    for k, n in keys:
        cur.execute("INSERT INTO dbo.Kod VALUES (%s, %s)", (k, n))
    cur.execute("SELECT Kod, Nr FROM dbo.Kod ORDER BY Kod, Nr")
    ordered = [tuple(r) for r in cur.fetchall()]
    check("rows", sorted(ordered), sorted(keys))
    # Case-sensitive Swedish: lower case first, Å Ä Ö after Z.
    check("order", [k for k, _ in ordered],
          ["abc", "abc", "Abc", "ABC", "ABC", "o", "O", "x", "Zeta", "Åsa", "Ära", "ö"])
    # UPDATE STATISTICS (what SQL Server's automatic statistics do after a
    # load) is accepted, with or without options, and changes no answer.
    cur.execute("UPDATE STATISTICS dbo.Kod")
    cur.execute("UPDATE STATISTICS dbo.Kod WITH FULLSCAN")
    try:
        cur.execute("UPDATE STATISTICS dbo.Finnsinte")
        check("UPDATE STATISTICS of a missing table", "accepted", "an error")
    except pytds.ProgrammingError:
        pass
    paged = []
    cur.execute("SELECT TOP (1) t.Kod, t.Nr FROM dbo.Kod AS t ORDER BY t.Kod, t.Nr")
    row = cur.fetchone()
    while row is not None:
        paged.append(tuple(row))
        cur.execute(
            "SELECT TOP (1) t.Kod, t.Nr FROM dbo.Kod AS t "
            "WHERE ((t.Kod > CAST(%s AS varchar(10))) OR (t.Kod = CAST(%s AS varchar(10)) AND t.Nr > CAST(%s AS int))) "
            "ORDER BY t.Kod, t.Nr",
            (row[0], row[0], row[1]))
        row = cur.fetchone()
    check("paged", paged, ordered)
print("OK")
