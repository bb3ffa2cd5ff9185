"""Cross-client check of mssql-sim with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_roundtrip.py HOST PORT PASSWORD

Checks: login, a typed round trip of every supported type through
parameters and back, an error with SQL Server's number, and a transaction
(python-tds opens one with a TM request right after login and commits with
TM commit).  Prints "OK" and exits 0 when everything matched.
"""
import datetime
import decimal
import sys
import uuid

import pytds
import pytds.tz

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect(db):
    return pytds.connect(server=host, port=port, database=db, user="sa", password=password, autocommit=False, timeout=30, login_timeout=30)


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


with connect("master") as c:
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT DB_ID('PyDb')")
    check("DB_ID of a database that does not exist", cur.fetchone()[0], None)
    cur.execute("IF DB_ID('PyDb') IS NULL CREATE DATABASE PyDb")
    cur.execute("SELECT DB_NAME(DB_ID(N'pydb'))")
    check("DB_NAME(DB_ID(...))", cur.fetchone()[0], "PyDb")
    c.autocommit = False

with connect("PyDb") as c:
    cur = c.cursor()
    cur.execute(
        """CREATE TABLE dbo.AllTypes (
            id int NOT NULL PRIMARY KEY,
            b bit, ti tinyint, si smallint, bi bigint,
            d decimal(38, 10), n numeric(9, 2), m money,
            f float, r real,
            vc varchar(20), nvc nvarchar(20), nvmax nvarchar(max), ch char(4), nch nchar(3),
            vb varbinary(10), vbmax varbinary(max),
            g uniqueidentifier,
            dt date, tm time(7), dtm datetime, dt2 datetime2(7), dto datetimeoffset(7)
        )"""
    )
    c.commit()
    g = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    row = (
        1,
        True, 255, -32768, 9223372036854775807,
        decimal.Decimal("-1234567890123456789012345678.0123456789"), decimal.Decimal("1234567.89"), decimal.Decimal("922337203685477.5807"),
        1.5e300, 0.5,
        "abc", "åäö€", "x" * 10000, "ab", "z",
        pytds.Binary(b"\x00\x01\xff"), pytds.Binary(b"\x07" * 70000),
        g,
        datetime.date(2024, 2, 29), datetime.time(23, 59, 59, 999999), datetime.datetime(2024, 1, 1, 10, 0, 0, 3000),
        datetime.datetime(1999, 12, 31, 23, 59, 59, 123456),
        datetime.datetime(2024, 6, 30, 1, 30, 0, 123456, tzinfo=pytds.tz.FixedOffsetTimezone(345)),
    )
    cur.execute("INSERT INTO dbo.AllTypes VALUES (" + ", ".join(["%s"] * len(row)) + ")", row)
    cur.execute("INSERT INTO dbo.AllTypes (id) VALUES (2)")
    c.commit()
    cur.execute("SELECT * FROM dbo.AllTypes ORDER BY id")
    rows = cur.fetchall()
    check("row count", len(rows), 2)
    got = rows[0]
    want = list(row)
    want[13] = "ab  "  # char(4) is blank-padded
    want[14] = "z  "  # nchar(3) too
    want[4 + 0] = 9223372036854775807
    for i, (a, b) in enumerate(zip(got, want)):
        if isinstance(b, float) and isinstance(a, float):
            ok = abs(a - b) <= abs(b) * 1e-7
        elif isinstance(b, datetime.datetime) and i == 20:
            ok = a == datetime.datetime(2024, 1, 1, 10, 0, 0, 3000)  # datetime keeps 1/300 s
        else:
            ok = a == b
        if not ok:
            print(f"MISMATCH column {i} ({cur.description[i][0]}): got {a!r}, want {b!r}")
            sys.exit(1)
    check("NULL row", [v for v in rows[1][1:]], [None] * (len(row) - 1))

    # An error with SQL Server's number and python-tds's exception class for it.
    try:
        cur.execute("INSERT INTO dbo.AllTypes (id) VALUES (1)")
        print("MISMATCH: duplicate key accepted")
        sys.exit(1)
    except pytds.IntegrityError as e:
        check("duplicate key error number", e.msg_no if hasattr(e, "msg_no") else e.number, 2627)
    c.rollback()
    # An explicit NULL into an int primary key (SQL Server: 515, "Cannot
    # insert the value NULL into column ..."), inserting and updating.
    for stmt in ("INSERT INTO dbo.AllTypes (id) VALUES (NULL)", "UPDATE dbo.AllTypes SET id = NULL WHERE id = 1"):
        try:
            cur.execute(stmt)
            print(f"MISMATCH: NULL key accepted: {stmt}")
            sys.exit(1)
        except pytds.IntegrityError as e:
            check("NULL key error number", e.number, 515)
        c.rollback()
    try:
        cur.execute("SELECT * FROM dbo.Nope")
        print("MISMATCH: missing table accepted")
        sys.exit(1)
    except pytds.ProgrammingError as e:
        check("invalid object error number", e.number, 208)
    c.rollback()

    # A transaction: rolled back work is gone, committed work stays.
    cur.execute("INSERT INTO dbo.AllTypes (id) VALUES (3)")
    cur.execute("SELECT @@TRANCOUNT")
    check("trancount inside the transaction", cur.fetchone()[0], 1)
    c.rollback()
    cur.execute("SELECT count(*) FROM dbo.AllTypes WHERE id = 3")
    check("rolled back row", cur.fetchone()[0], 0)
    cur.execute("INSERT INTO dbo.AllTypes (id) VALUES (4)")
    c.commit()

with connect("PyDb") as c2:
    cur = c2.cursor()
    cur.execute("SELECT count(*) FROM dbo.AllTypes WHERE id IN (3, 4)")
    check("committed row visible to a new connection", cur.fetchone()[0], 1)
    # The catalog as SQL Server exposes it.
    cur.execute(
        "SELECT c.name, t.name, c.max_length, c.precision, c.scale, c.is_nullable FROM sys.columns c "
        "JOIN sys.types t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('dbo.AllTypes') ORDER BY c.column_id"
    )
    cols = cur.fetchall()
    check("catalog column count", len(cols), 23)
    check("catalog id column", tuple(cols[0]), ("id", "int", 4, 10, 0, False))
    check("catalog nvarchar(20)", tuple(cols[11]), ("nvc", "nvarchar", 40, 0, 0, True))
    check("catalog nvarchar(max)", tuple(cols[12]), ("nvmax", "nvarchar", -1, 0, 0, True))
    check("catalog decimal", tuple(cols[5]), ("d", "decimal", 17, 38, 10, True))
    # QUOTENAME and DATALENGTH as Microsoft documents them:
    # https://learn.microsoft.com/en-us/sql/t-sql/functions/quotename-transact-sql
    # (brackets by default, the closing delimiter doubled, NULL above 128
    # characters or for another delimiter) and
    # https://learn.microsoft.com/en-us/sql/t-sql/functions/datalength-transact-sql
    # (bytes stored, trailing blanks counted, NULL for NULL).
    long = "a" * 129
    for sql, want in [
        ("SELECT QUOTENAME('ab]c')", "[ab]]c]"),
        ("SELECT QUOTENAME('x', '''')", "'x'"),
        ("SELECT QUOTENAME('a\"b', '\"')", '"a""b"'),
        ("SELECT QUOTENAME('a)b', '(')", "(a))b)"),
        ("SELECT QUOTENAME('x', 'z')", None),
        (f"SELECT QUOTENAME('{long}')", None),
        ("SELECT DATALENGTH(N'abc ')", 8),
        ("SELECT DATALENGTH('abc ')", 4),
        ("SELECT DATALENGTH(N'\U0001F600')", 4),
        ("SELECT DATALENGTH(CAST(1 AS int))", 4),
        ("SELECT DATALENGTH(CAST(NULL AS int))", None),
        ("SELECT DATALENGTH(CAST('a' AS char(10)))", 10),
        ("SELECT DATALENGTH(CAST(1.5 AS decimal(18,2)))", 9),
        ("SELECT DATALENGTH(0x0102)", 2),
        ("SELECT DATALENGTH(CAST(N'xy' AS nvarchar(max)))", 4),
    ]:
        cur.execute(sql)
        check(sql, cur.fetchone()[0], want)
    # STRING_AGG (https://learn.microsoft.com/en-us/sql/t-sql/functions/string-agg-transact-sql):
    # NULLs skipped with their separator, NULL for a group of NULLs, WITHIN
    # GROUP ordering, 9829 above 8000 bytes for a non-max input; SUSER_SNAME()
    # (https://learn.microsoft.com/en-us/sql/t-sql/functions/suser-sname-transact-sql).
    cur.execute("CREATE TABLE dbo.Agg (Id int NOT NULL PRIMARY KEY, G int NOT NULL, S nvarchar(3000) NULL)")
    cur.execute("INSERT INTO dbo.Agg VALUES (1, 1, N'b'), (2, 1, N'a'), (3, 1, NULL), (4, 2, NULL)")
    cur.execute("SELECT G, STRING_AGG(S, N', ') WITHIN GROUP (ORDER BY S) FROM dbo.Agg GROUP BY G ORDER BY G")
    check("STRING_AGG per group", [tuple(r) for r in cur.fetchall()], [(1, "a, b"), (2, None)])
    cur.execute("INSERT INTO dbo.Agg VALUES (5, 3, N'" + "x" * 3000 + "'), (6, 3, N'" + "y" * 3000 + "')")
    try:
        cur.execute("SELECT STRING_AGG(S, N',') FROM dbo.Agg WHERE G = 3")
        cur.fetchall()
        check("STRING_AGG over 8000 bytes", "no error", "error 9829")
    except pytds.ProgrammingError as e:
        check("STRING_AGG over 8000 bytes", e.msg_no, 9829)
    except pytds.OperationalError as e:
        check("STRING_AGG over 8000 bytes", getattr(e, "msg_no", e), 9829)
    cur.execute("SELECT LEN(STRING_AGG(CAST(S AS nvarchar(max)), N',')) FROM dbo.Agg WHERE G = 3")
    check("STRING_AGG over nvarchar(max)", cur.fetchone()[0], 6001)
    cur.execute("SELECT SUSER_SNAME()")
    check("SUSER_SNAME()", cur.fetchone()[0], "sa")
    # INFORMATION_SCHEMA.TABLE_CONSTRAINTS
    # (https://learn.microsoft.com/en-us/sql/relational-databases/system-information-schema-views/table-constraints-transact-sql).
    cur.execute("CREATE TABLE dbo.Ref (Id int NOT NULL CONSTRAINT PK_Ref PRIMARY KEY, AggId int NULL CONSTRAINT FK_Ref_Agg REFERENCES dbo.Agg(Id), Kod int NULL CONSTRAINT UQ_Ref_Kod UNIQUE)")
    cur.execute(
        "SELECT CONSTRAINT_NAME, TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_TYPE, IS_DEFERRABLE, INITIALLY_DEFERRED "
        "FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS WHERE TABLE_NAME = 'Ref' ORDER BY CONSTRAINT_NAME"
    )
    check("TABLE_CONSTRAINTS", [tuple(r) for r in cur.fetchall()],
          [("FK_Ref_Agg", "dbo", "Ref", "FOREIGN KEY", "NO", "NO"), ("PK_Ref", "dbo", "Ref", "PRIMARY KEY", "NO", "NO"),
           ("UQ_Ref_Kod", "dbo", "Ref", "UNIQUE", "NO", "NO")])
    # Keys are checked at the end of the statement: shifting them by one works.
    cur.execute("CREATE TABLE dbo.Shift (Id int PRIMARY KEY)")
    cur.execute("INSERT INTO dbo.Shift VALUES (1), (2), (3)")
    cur.execute("UPDATE dbo.Shift SET Id = Id + 1")
    cur.execute("SELECT MIN(Id), MAX(Id) FROM dbo.Shift")
    check("keys shifted by one", tuple(cur.fetchone()), (2, 4))
    # HASHBYTES (https://learn.microsoft.com/en-us/sql/t-sql/functions/hashbytes-transact-sql):
    # the digest of the value's bytes: nvarchar as UTF-16LE, varchar in the
    # collation's code page (1252), binary as is, integers as they convert to
    # varbinary (big-endian); NULL for NULL input or an unknown algorithm.
    import hashlib
    for sql, want in [
        ("SELECT HASHBYTES('SHA2_256', N'åbc')", hashlib.sha256("åbc".encode("utf-16-le")).digest()),
        ("SELECT HASHBYTES('SHA2_256', 'åbc')", hashlib.sha256("åbc".encode("cp1252")).digest()),
        ("SELECT HASHBYTES('MD5', 0x0102)", hashlib.md5(b"\x01\x02").digest()),
        ("SELECT HASHBYTES('SHA1', CAST(1 AS int))", hashlib.sha1(b"\0\0\0\1").digest()),
        ("SELECT HASHBYTES('SHA2_512', CAST(-2 AS bigint))", hashlib.sha512((-2).to_bytes(8, "big", signed=True)).digest()),
        ("SELECT HASHBYTES('nope', 'x')", None),
        ("SELECT HASHBYTES('MD5', CAST(NULL AS nvarchar(5)))", None),
        ("SELECT HASHBYTES('SHA2_256', S) FROM dbo.Agg WHERE Id = 1", hashlib.sha256("b".encode("utf-16-le")).digest()),
    ]:
        cur.execute(sql)
        check(sql, cur.fetchone()[0], want)

    # A table variable, for the batch that declares it; CONVERT styles.
    cur.execute("SET NOCOUNT ON; DECLARE @t TABLE (Id int PRIMARY KEY, S nvarchar(10)); "
                "INSERT INTO @t VALUES (1, N'a'), (2, N'b'); SELECT COUNT(*) FROM @t")
    check("a table variable", cur.fetchone()[0], 2)
    cur.execute("SELECT CONVERT(varchar(30), CAST('2024-01-02 15:04:05.123' AS datetime), 121), "
                "CONVERT(varchar(10), 0x0A0B, 1)")
    check("CONVERT styles 121 and 1", tuple(cur.fetchone()), ("2024-01-02 15:04:05.123", "0x0A0B"))

print("OK")
