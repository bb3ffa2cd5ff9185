"""ALTER TABLE ... ALTER COLUMN, checked with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_alter_column.py HOST PORT PASSWORD

As SQL Server documents it ("ALTER TABLE (Transact-SQL)", ALTER COLUMN):
a column widened (varchar(5) -> varchar(40), int -> bigint, decimal(5,2) ->
decimal(9,2), char(3) -> char(6), which pads) keeps every value and shows its new type in sys.columns; a
narrowing that a value does not fit fails and changes nothing; a column
that does not exist is error 4924; a column the primary key or an index
uses is error 5074. Change tracking records DML, not DDL: altering a
tracked table's column adds no change. sp_rename of a column keeps its
column_id and values (15248 for an unknown column, 15335 for a name in
use) and is not a tracked change either. A change the simulator cannot make
in place (nullability, storage class) is refused saying so. Prints "OK"
and exits 0 when all matched.
"""
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


def refused(cur, sql, what, number=None, text=None):
    try:
        cur.execute(sql)
    except (pytds.OperationalError, pytds.ProgrammingError, pytds.IntegrityError,
            pytds.DataError) as e:
        if number is not None:
            check(what + ": error number", e.msg_no, number)
        if text is not None:
            check(what + ": says " + text, text in str(e), True)
        return
    check(what, "accepted", "refused")


with pytds.connect(server=host, port=port, database="master", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    c.cursor().execute("CREATE DATABASE Pmo")

with pytds.connect(server=host, port=port, database="Pmo", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("ALTER DATABASE Pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)")
    cur.execute("CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, Kod varchar(5) NULL, "
                "Antal int NULL, Pris decimal(5,2) NULL, Rum int NULL, Kort char(3) NULL)")
    cur.execute("CREATE INDEX IX_Besok_Rum ON dbo.Besok(Rum)")
    cur.execute("ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING")
    cur.execute("INSERT INTO dbo.Besok VALUES (1, 'ABCDE', 2147483647, 999.99, 1, 'ab'), (2, NULL, NULL, NULL, 2, NULL)")
    cur.execute("SELECT CHANGE_TRACKING_CURRENT_VERSION()")
    version = cur.fetchone()[0]

    cur.execute("ALTER TABLE dbo.Besok ALTER COLUMN Kod varchar(40) NULL")
    cur.execute("ALTER TABLE dbo.Besok ALTER COLUMN Antal bigint NULL")
    cur.execute("ALTER TABLE dbo.Besok ALTER COLUMN Pris decimal(9,2) NULL")
    # A wider char pads every stored value: the values change, untracked.
    cur.execute("ALTER TABLE dbo.Besok ALTER COLUMN Kort char(6) NULL")
    cur.execute("SELECT Kort, DATALENGTH(Kort) FROM dbo.Besok WHERE Id = 1")
    check("char padded to its new length", tuple(cur.fetchone()), ("ab    ", 6))
    cur.execute("SELECT c.name, t.name, c.max_length, c.precision, c.scale FROM sys.columns c "
                "JOIN sys.types t ON t.user_type_id = c.user_type_id "
                "WHERE c.object_id = OBJECT_ID('dbo.Besok') AND c.name IN ('Kod', 'Antal', 'Pris') ORDER BY c.column_id")
    check("sys.columns", [tuple(r) for r in cur.fetchall()],
          [("Kod", "varchar", 40, 0, 0), ("Antal", "bigint", 8, 19, 0), ("Pris", "decimal", 5, 9, 2)])
    cur.execute("UPDATE dbo.Besok SET Kod = '" + "x" * 40 + "', Antal = 9000000000, Pris = 9999999.99 WHERE Id = 2")
    cur.execute("SELECT Id, Kod, Antal, Pris FROM dbo.Besok ORDER BY Id")
    rows = [tuple(r) for r in cur.fetchall()]
    check("values kept", [(r[0], r[1], r[2], str(r[3])) for r in rows],
          [(1, "ABCDE", 2147483647, "999.99"), (2, "x" * 40, 9000000000, "9999999.99")])
    cur.execute("SELECT COUNT(*) FROM CHANGETABLE(CHANGES dbo.Besok, %d) ct" % version)
    check("changes tracked: only the UPDATE, not the ALTERs", cur.fetchone()[0], 1)

    refused(cur, "ALTER TABLE dbo.Besok ALTER COLUMN Kod varchar(3) NULL", "a narrowing a value does not fit")
    cur.execute("SELECT Kod FROM dbo.Besok WHERE Id = 1")
    check("after the refused narrowing", cur.fetchone()[0], "ABCDE")
    refused(cur, "ALTER TABLE dbo.Besok ALTER COLUMN Saknas int NULL", "a column that does not exist", 4924)
    refused(cur, "ALTER TABLE dbo.Besok ALTER COLUMN Id bigint NOT NULL", "a key column", 5074)
    refused(cur, "ALTER TABLE dbo.Besok ALTER COLUMN Rum bigint NULL", "an indexed column", 5074)
    refused(cur, "ALTER TABLE dbo.Besok ALTER COLUMN Kod varchar(40) NOT NULL",
            "a change of nullability", text="does not support")


    # sp_rename of a column: same column_id, same values, no tracked change.
    cur.execute("SELECT column_id FROM sys.columns WHERE object_id = OBJECT_ID('dbo.Besok') AND name = 'Kod'")
    kod_id = cur.fetchone()[0]
    cur.execute("SELECT CHANGE_TRACKING_CURRENT_VERSION()")
    before_rename = cur.fetchone()[0]
    cur.execute("EXEC sp_rename 'dbo.Besok.Kod', 'Kod2', 'COLUMN'")
    cur.execute("SELECT column_id FROM sys.columns WHERE object_id = OBJECT_ID('dbo.Besok') AND name = 'Kod2'")
    check("a renamed column keeps its column_id", cur.fetchone()[0], kod_id)
    cur.execute("SELECT Kod2 FROM dbo.Besok WHERE Id = 1")
    check("a renamed column keeps its values", cur.fetchone()[0], "ABCDE")
    refused(cur, "SELECT Kod FROM dbo.Besok", "the old name", 207)
    cur.execute("SELECT COUNT(*) FROM CHANGETABLE(CHANGES dbo.Besok, %d) ct" % before_rename)
    check("a rename is not a tracked change", cur.fetchone()[0], 0)
    cur.execute("UPDATE dbo.Besok SET Kod2 = 'Z' WHERE Id = 1")
    cur.execute("SELECT COUNT(*) FROM CHANGETABLE(CHANGES dbo.Besok, %d) ct" % before_rename)
    check("changes are tracked after a rename", cur.fetchone()[0], 1)
    refused(cur, "EXEC sp_rename 'dbo.Besok.Saknas', 'X', 'COLUMN'", "renaming a column that does not exist", 15248)
    refused(cur, "EXEC sp_rename 'dbo.Besok.Kod2', 'Antal', 'COLUMN'", "renaming to a name in use", 15335)

print("OK")
