"""Collations, checked with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_collations.py HOST PORT PASSWORD

What SQL Server documents ("Collation and Unicode support", "Collation
precedence", MS-TDS 2.2.5.1.2 and 2.2.7.9):
- ENVCHANGE 7 at login carries the database's collation: python-tds reads
  its LCID (1035 for Finnish_Swedish, 1033 for Latin1_General) and flags;
- every character column's TYPE_INFO in COLMETADATA carries the column's
  own collation;
- Finnish_Swedish sorts Å, Ä, Ö after Z; Latin1_General next to A and O;
- a _CS_ key holds 'abc' and 'ABC'; a _CI_ key refuses the second (2627);
- comparing a #temp column (tempdb, the server collation) with a column
  of a database in another collation is error 468, and
  COLLATE DATABASE_DEFAULT resolves it.
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


def column_collation(cur, i):
    """The collation python-tds decoded from column i's TYPE_INFO."""
    return cur._session.res_info.columns[i].serializer._collation


with connect("master") as c:
    cur = c.cursor()
    cur.execute("CREATE DATABASE Sv COLLATE Finnish_Swedish_CI_AS")
    cur.execute("CREATE DATABASE En COLLATE Latin1_General_CI_AS")
    cur.execute("SELECT name, collation_name FROM sys.databases ORDER BY name")
    check("sys.databases lists every database with its collation", cur.fetchall(),
          [("En", "Latin1_General_CI_AS"), ("master", "SQL_Latin1_General_CP1_CI_AS"),
           ("Sv", "Finnish_Swedish_CI_AS")])
    check("the login's collation (master)", c._tds_socket.collation.sort_id, 52)

names = ["Zorn", "Östen", "Adam", "Åsa", "Ärla"]
for db, want in [("Sv", ["Adam", "Zorn", "Åsa", "Ärla", "Östen"]),
                 ("En", ["Adam", "Ärla", "Åsa", "Östen", "Zorn"])]:
    with connect(db) as c:
        cur = c.cursor()
        cur.execute("CREATE TABLE dbo.P (id int PRIMARY KEY, namn nvarchar(40) NOT NULL, "
                    "kod varchar(10) COLLATE Latin1_General_CS_AS NULL)")
        for i, n in enumerate(names):
            cur.execute("INSERT INTO dbo.P (id, namn, kod) VALUES (%s, %s, %s)", (i, n, n.lower()))
        cur.execute("SELECT namn, kod FROM dbo.P ORDER BY namn")
        check(f"ORDER BY in {db}", [r[0] for r in cur.fetchall()], want)
        namn, kod = column_collation(cur, 0), column_collation(cur, 1)
        check(f"{db}: namn's LCID in COLMETADATA", namn.lcid, 1035 if db == "Sv" else 1033)
        check(f"{db}: namn is case-insensitive in COLMETADATA", namn.ignore_case, True)
        check(f"{db}: kod's LCID in COLMETADATA", kod.lcid, 1033)
        check(f"{db}: kod is case-sensitive in COLMETADATA", kod.ignore_case, False)
        login = c._tds_socket.collation
        check(f"{db}: the login's collation (ENVCHANGE 7)", (login.lcid, login.sort_id, login.ignore_case),
              (1035 if db == "Sv" else 1033, 0, True))

with connect("Sv") as c:
    cur = c.cursor()
    cur.execute("CREATE TABLE dbo.K (kod varchar(10) COLLATE Finnish_Swedish_CS_AS PRIMARY KEY)")
    cur.execute("INSERT INTO dbo.K VALUES ('abc'), ('ABC')")
    cur.execute("SELECT COUNT(*) FROM dbo.K WHERE kod = 'ABC'")
    check("a case-sensitive comparison", cur.fetchone()[0], 1)
    cur.execute("SELECT COUNT(*) FROM dbo.K WHERE kod = 'ABC' COLLATE Finnish_Swedish_CI_AS")
    check("an explicit COLLATE wins over the column's", cur.fetchone()[0], 2)
    cur.execute("CREATE TABLE dbo.C (kod varchar(10) PRIMARY KEY)")
    cur.execute("INSERT INTO dbo.C VALUES ('abc')")
    try:
        cur.execute("INSERT INTO dbo.C VALUES ('ABC ')")
        check("a case-insensitive key refuses 'ABC '", "inserted", "error 2627")
    except pytds.IntegrityError as e:
        check("a case-insensitive key refuses 'ABC '", e.msg_no, 2627)

    cur.execute("CREATE TABLE #t (namn nvarchar(40))")
    cur.execute("INSERT INTO #t VALUES (N'Åsa')")
    try:
        cur.execute("SELECT COUNT(*) FROM dbo.P AS p JOIN #t AS t ON p.namn = t.namn")
        check("a #temp column against another collation", "a result", "error 468")
    except (pytds.OperationalError, pytds.ProgrammingError) as e:
        check("a #temp column against another collation", e.msg_no, 468)
        check("error 468 names both collations",
              "Finnish_Swedish_CI_AS" in str(e) and "SQL_Latin1_General_CP1_CI_AS" in str(e), True)
    cur.execute("SELECT COUNT(*) FROM dbo.P AS p JOIN #t AS t ON p.namn = t.namn COLLATE DATABASE_DEFAULT")
    check("COLLATE DATABASE_DEFAULT resolves the conflict", cur.fetchone()[0], 1)
    cur.execute("CREATE TABLE #u (namn nvarchar(40) COLLATE DATABASE_DEFAULT)")
    cur.execute("INSERT INTO #u VALUES (N'ÅSA')")
    cur.execute("SELECT COUNT(*) FROM dbo.P AS p JOIN #u AS u ON p.namn = u.namn")
    check("a #temp column declared COLLATE DATABASE_DEFAULT", cur.fetchone()[0], 1)

    cur.execute("SELECT COUNT(*) FROM dbo.P WHERE namn LIKE %s", ("ö%",))
    check("LIKE with a parameter, case-insensitively beyond ASCII", cur.fetchone()[0], 1)
    cur.execute("SELECT COUNT(*) FROM dbo.K WHERE kod LIKE 'a%'")
    check("LIKE on a case-sensitive column", cur.fetchone()[0], 1)

print("OK")
