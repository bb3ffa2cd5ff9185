"""An old schema's features, checked with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_legacy_schema.py HOST PORT PASSWORD

As SQL Server documents them ("CREATE TYPE", "sys.types", "sys.columns"):
an alias type is listed in sys.types as user-defined with its base's
system_type_id and its own user_type_id from 257; a column declared with it
has that user_type_id in sys.columns, the alias's nullability, and holds
and returns values of the base type. Types the simulator lacks are refused
at CREATE TABLE with class 16. A timestamp column is set by the server on
every insert and update ("rowversion (Transact-SQL)"). Prints "OK" and exits 0 when all matched.
"""
import decimal
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


with pytds.connect(server=host, port=port, database="master", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("CREATE DATABASE Pmo")

with pytds.connect(server=host, port=port, database="Pmo", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("CREATE TYPE dbo.Personnummer FROM char(12) NOT NULL")
    cur.execute("CREATE TYPE dbo.Belopp FROM decimal(12, 2)")
    cur.execute("SELECT name, system_type_id, user_type_id, is_nullable, is_user_defined "
                "FROM sys.types WHERE is_user_defined = 1 ORDER BY name")
    check("sys.types", [tuple(r) for r in cur.fetchall()],
          [("Belopp", 106, 258, True, True), ("Personnummer", 175, 257, False, True)])
    cur.execute("CREATE TABLE dbo.Patient (Pnr dbo.Personnummer PRIMARY KEY, Skuld dbo.Belopp)")
    cur.execute("SELECT c.name, t.name, c.system_type_id, c.is_nullable FROM sys.columns c "
                "JOIN sys.types t ON t.user_type_id = c.user_type_id "
                "WHERE c.object_id = OBJECT_ID('dbo.Patient') ORDER BY c.column_id")
    check("sys.columns joined to sys.types", [tuple(r) for r in cur.fetchall()],
          [("Pnr", "Personnummer", 175, False), ("Skuld", "Belopp", 106, True)])
    cur.execute("INSERT INTO dbo.Patient VALUES (%s, %s)", ("19121212", decimal.Decimal("10.555")))
    cur.execute("SELECT Pnr, Skuld FROM dbo.Patient")
    check("values of the base types", tuple(cur.fetchone()), ("19121212    ", decimal.Decimal("10.56")))
    try:
        cur.execute("DROP TYPE dbo.Personnummer")
        check("DROP TYPE while in use", "dropped", "error 3732")
    except (pytds.OperationalError, pytds.ProgrammingError) as e:
        check("DROP TYPE while in use", e.msg_no, 3732)
    # timestamp: set by the server, 8 bytes big-endian, binary(8) with user type 80 on the wire.
    cur.execute("CREATE TABLE dbo.J (Id int PRIMARY KEY, Ver rowversion)")
    cur.execute("INSERT INTO dbo.J (Id) VALUES (%s)", (1,))
    cur.execute("UPDATE dbo.J SET Id = 2")
    cur.execute("SELECT Ver, @@DBTS FROM dbo.J")
    ver, dbts = cur.fetchone()
    check("a rowversion is 8 bytes", len(ver), 8)
    check("the row's rowversion is the last given (@@DBTS)", ver, dbts)
    check("an insert then an update drew two values", int.from_bytes(ver, "big"), 2002)
    check("timestamp's user type in COLMETADATA", cur._session.res_info.columns[0].column_usertype, 80)
    try:
        cur.execute("UPDATE dbo.J SET Ver = 0x01")
        check("UPDATE of a timestamp column", "updated", "error 272")
    except pytds.Error as e:
        check("UPDATE of a timestamp column", e.msg_no, 272)
    # A computed column: computed on read, listed as computed, never written.
    cur.execute("CREATE TABLE dbo.N (Id int PRIMARY KEY, F nvarchar(20), E nvarchar(20), Namn AS (F + N' ' + E) PERSISTED)")
    cur.execute("INSERT INTO dbo.N (Id, F, E) VALUES (%s, %s, %s)", (1, "Åsa", "Berg"))
    cur.execute("SELECT Namn FROM dbo.N")
    check("a computed column's value", cur.fetchone()[0], "Åsa Berg")
    cur.execute("SELECT c.is_computed, c.max_length, cc.is_persisted FROM sys.columns c "
                "JOIN sys.computed_columns cc ON cc.object_id = c.object_id AND cc.column_id = c.column_id "
                "WHERE c.object_id = OBJECT_ID('dbo.N')")
    check("sys.columns and sys.computed_columns", tuple(cur.fetchone()), (True, 82, True))
    try:
        cur.execute("UPDATE dbo.N SET Namn = N'x'")
        check("UPDATE of a computed column", "updated", "error 271")
    except pytds.Error as e:
        check("UPDATE of a computed column", e.msg_no, 271)
    # text, ntext, image: TDS types 0x23, 0x63, 0x22 with text pointers, read by python-tds.
    long = "å" * 5000
    cur.execute("CREATE TABLE dbo.L (Id int PRIMARY KEY, T text, N ntext, I image)")
    cur.execute("INSERT INTO dbo.L VALUES (%s, %s, %s, %s)", (1, "kort", long, b"\x01\x02"))
    cur.execute("INSERT INTO dbo.L (Id) VALUES (2)")
    cur.execute("SELECT T, N, I FROM dbo.L ORDER BY Id")
    rows = cur.fetchall()
    check("text, ntext and image values", tuple(rows[0]), ("kort", long, b"\x01\x02"))
    check("NULL text, ntext and image", tuple(rows[1]), (None, None, None))
    try:
        cur.execute("SELECT Id FROM dbo.L ORDER BY N")
        check("ORDER BY an ntext column", "sorted", "error 306")
    except pytds.Error as e:
        check("ORDER BY an ntext column", e.msg_no, 306)
    # xml: parsed and serialized as SQL Server does, sent as TDS type 0xF1.
    cur.execute("CREATE TABLE dbo.X (Id int PRIMARY KEY, D xml)")
    cur.execute("INSERT INTO dbo.X VALUES (%s, %s)", (1, "<?xml version='1.0'?><a b='1'>\n <c></c>\n</a>"))
    cur.execute("SELECT D FROM dbo.X")
    check("an xml value", cur.fetchone()[0], '<a b="1"><c/></a>')
    try:
        cur.execute("INSERT INTO dbo.X VALUES (2, N'<a>')")
        check("malformed xml", "inserted", "error 9400")
    except pytds.Error as e:
        check("malformed xml", e.msg_no, 9400)
    for ty in ["sql_variant", "hierarchyid", "geography", "geometry"]:
        try:
            cur.execute(f"CREATE TABLE dbo.V (id int PRIMARY KEY, v {ty})")
            check(f"CREATE TABLE with {ty}", "created", "refused")
        except pytds.Error as e:
            check(f"{ty} refused with class 16", (e.msg_no, e.severity), (40000, 16))

print("OK")
