"""Logins, users and permissions, checked with python-tds, a TDS client
nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_permissions.py HOST PORT PASSWORD

What SQL Server documents ("Permissions (Database Engine)", "Metadata
visibility configuration", "Manage change tracking" / Security,
CHANGE_TRACKING_MIN_VALID_VERSION, HAS_PERMS_BY_NAME):
- a login (CREATE LOGIN ... WITH PASSWORD) logs in with its password and
  is refused with 18456 otherwise; a login without a user in the database
  it asks for is refused (4060);
- without SELECT a read is error 229 and the table's metadata is invisible
  (sys.tables empty, OBJECT_ID NULL); HAS_PERMS_BY_NAME says 0;
- with SELECT only, CHANGETABLE is 229 for VIEW CHANGE TRACKING and the
  minimum valid version is NULL; with both, both work.
Prints "OK" and exits 0 when everything matched.
"""
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
PW = "Ctf#Reader0"


def connect(db, user="sa", pw=password):
    return pytds.connect(server=host, port=port, database=db, user=user, password=pw,
                         autocommit=True, timeout=30, login_timeout=30)


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


def error_number(cur, sql):
    try:
        cur.execute(sql)
        cur.fetchall()
    except pytds.ProgrammingError as e:
        return e.number
    except pytds.OperationalError as e:
        return e.number
    return None


def scalar(cur, sql):
    cur.execute(sql)
    return cur.fetchone()[0]


with connect("master") as c:
    cur = c.cursor()
    cur.execute("CREATE DATABASE pmo")
with connect("pmo") as c:
    cur = c.cursor()
    cur.execute("ALTER DATABASE pmo SET CHANGE_TRACKING = ON")
    cur.execute("CREATE TABLE dbo.Besok (Id int PRIMARY KEY, Enhet nvarchar(20))")
    cur.execute("ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING")
    cur.execute("INSERT INTO dbo.Besok VALUES (1, N'VC1')")
    cur.execute(f"CREATE LOGIN ctferry WITH PASSWORD = '{PW}'")
    cur.execute("CREATE LOGIN outsider WITH PASSWORD = 'Out#sider0'")
    cur.execute("CREATE USER ctferry FOR LOGIN ctferry")

try:
    connect("pmo", "ctferry", "wrong")
    check("wrong password refused", True, False)
except pytds.Error as e:
    check("wrong password error", getattr(e, "number", None), 18456)
try:
    connect("pmo", "outsider", "Out#sider0")
    check("login without a user refused", True, False)
except pytds.Error as e:
    # SQL Server sends 4060, then 18456 (which python-tds raises).
    check("login without a user error", getattr(e, "number", None), 18456)
    check("login without a user names the database", 'Cannot open database "pmo"' in str(e), True)

with connect("pmo", "ctferry", PW) as r, connect("pmo") as sa:
    rc, sc = r.cursor(), sa.cursor()
    check("SUSER_SNAME", scalar(rc, "SELECT SUSER_SNAME()"), "ctferry")
    check("no SELECT", error_number(rc, "SELECT * FROM dbo.Besok"), 229)
    check("invisible table", scalar(rc, "SELECT COUNT(*) FROM sys.tables"), 0)
    check("no OBJECT_ID", scalar(rc, "SELECT OBJECT_ID('dbo.Besok')"), None)
    check("HAS_PERMS_BY_NAME 0", scalar(rc, "SELECT HAS_PERMS_BY_NAME('dbo.Besok', 'OBJECT', 'SELECT')"), 0)
    sc.execute("GRANT SELECT ON dbo.Besok TO ctferry")
    check("SELECT granted", scalar(rc, "SELECT COUNT(*) FROM dbo.Besok"), 1)
    check("CHANGETABLE without VIEW CHANGE TRACKING",
          error_number(rc, "SELECT * FROM CHANGETABLE(CHANGES dbo.Besok, 0) AS c"), 229)
    check("min valid version without VIEW CHANGE TRACKING",
          scalar(rc, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.Besok'))"), None)
    sc.execute("GRANT VIEW CHANGE TRACKING ON OBJECT::dbo.Besok TO ctferry")
    check("CHANGETABLE granted",
          scalar(rc, "SELECT COUNT(*) FROM CHANGETABLE(CHANGES dbo.Besok, 0) AS c"), 1)
    check("min valid version granted",
          scalar(rc, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.Besok'))") is not None, True)
    check("no INSERT", error_number(rc, "INSERT INTO dbo.Besok VALUES (2, N'VC2')"), 229)

print("OK")
