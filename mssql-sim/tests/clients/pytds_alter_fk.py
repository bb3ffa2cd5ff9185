"""A column added with a foreign key, checked with python-tds, a TDS client nobody here wrote.

Run by mssql-sim/tests/python_tds.rs against a fresh simulator:
    python3 pytds_alter_fk.py HOST PORT PASSWORD

As SQL Server documents it ("ALTER TABLE (Transact-SQL)", column_definition
with REFERENCES; "sys.foreign_keys", "sys.foreign_key_columns"): a nullable
column added to a table that has rows gets NULL in every row, its foreign
key is listed in sys.foreign_keys (named as given) with its columns in
sys.foreign_key_columns, and it is enforced: a value with no referenced row
fails with error 547 and changes nothing, and the message names the
constraint broken as SQL Server words it: "The UPDATE statement conflicted
with the FOREIGN KEY constraint "FK". The conflict occurred in database
"Pmo", table "dbo.Patient", column 'Id'." for the referencing row, "The
DELETE statement conflicted with the REFERENCE constraint "FK". ... table
"dbo.Besok", column 'PatientId'." for the referenced one (the table has a
second foreign key, declared first, which is not the one named). A NOT NULL column with a default
and REFERENCES is refused by the simulator with class 16 (SQL Server
allows it; the simulator says so rather than differ). Prints "OK" and exits
0 when all matched.
"""
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def check(what, got, want):
    if got != want:
        print(f"MISMATCH {what}: got {got!r}, want {want!r}")
        sys.exit(1)


with pytds.connect(server=host, port=port, database="master", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    c.cursor().execute("CREATE DATABASE Pmo")

with pytds.connect(server=host, port=port, database="Pmo", user="sa", password=password,
                   autocommit=True, timeout=30, login_timeout=30) as c:
    cur = c.cursor()
    cur.execute("CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(50) NOT NULL)")
    cur.execute("CREATE TABLE dbo.Enhet (Id int NOT NULL PRIMARY KEY)")
    cur.execute("INSERT INTO dbo.Enhet VALUES (7)")
    cur.execute("CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, Orsak nvarchar(50) NOT NULL, "
                "EnhetId int NULL CONSTRAINT FK_Besok_Enhet REFERENCES dbo.Enhet(Id))")
    cur.execute("INSERT INTO dbo.Patient VALUES (1, N'Ett')")
    cur.execute("INSERT INTO dbo.Besok (Id, Orsak) VALUES (10, N'Kontroll'), (11, N'Akut')")
    cur.execute("ALTER TABLE dbo.Besok ADD PatientId int NULL CONSTRAINT FK_Besok_Patient REFERENCES dbo.Patient(Id)")
    cur.execute("UPDATE dbo.Besok SET EnhetId = 7")
    cur.execute("SELECT Id, PatientId FROM dbo.Besok ORDER BY Id")
    check("existing rows", [tuple(r) for r in cur.fetchall()], [(10, None), (11, None)])
    cur.execute("SELECT fk.name, OBJECT_NAME(fk.parent_object_id), OBJECT_NAME(fk.referenced_object_id), "
                "pc.name, rc.name "
                "FROM sys.foreign_keys fk JOIN sys.foreign_key_columns fkc "
                "ON fkc.constraint_object_id = fk.object_id "
                "JOIN sys.columns pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id "
                "JOIN sys.columns rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id "
                "ORDER BY fk.name")
    check("sys.foreign_keys", [tuple(r) for r in cur.fetchall()],
          [("FK_Besok_Enhet", "Besok", "Enhet", "EnhetId", "Id"),
           ("FK_Besok_Patient", "Besok", "Patient", "PatientId", "Id")])
    cur.execute("UPDATE dbo.Besok SET PatientId = 1 WHERE Id = 10")
    try:
        cur.execute("UPDATE dbo.Besok SET PatientId = 2 WHERE Id = 11")
        check("a value with no referenced row", "accepted", "error 547")
    except (pytds.OperationalError, pytds.ProgrammingError, pytds.IntegrityError) as e:
        check("a value with no referenced row", e.msg_no, 547)
        check("a value with no referenced row: message", e.text,
              'The UPDATE statement conflicted with the FOREIGN KEY constraint "FK_Besok_Patient". '
              'The conflict occurred in database "Pmo", table "dbo.Patient", column \'Id\'.')
    cur.execute("SELECT Id, PatientId FROM dbo.Besok ORDER BY Id")
    check("after the refused update", [tuple(r) for r in cur.fetchall()], [(10, 1), (11, None)])
    try:
        cur.execute("DELETE FROM dbo.Patient WHERE Id = 1")
        check("deleting a referenced row", "accepted", "error 547")
    except (pytds.OperationalError, pytds.ProgrammingError, pytds.IntegrityError) as e:
        check("deleting a referenced row", e.msg_no, 547)
        check("deleting a referenced row: message", e.text,
              'The DELETE statement conflicted with the REFERENCE constraint "FK_Besok_Patient". '
              'The conflict occurred in database "Pmo", table "dbo.Besok", column \'PatientId\'.')
    cur.execute("SELECT COUNT(*) FROM dbo.Patient")
    check("after the refused delete", cur.fetchall()[0][0], 1)
    try:
        cur.execute("ALTER TABLE dbo.Besok ADD Annan int NOT NULL DEFAULT 1 REFERENCES dbo.Patient(Id)")
        check("NOT NULL with REFERENCES", "accepted", "refused")
    except (pytds.OperationalError, pytds.ProgrammingError) as e:
        check("NOT NULL with REFERENCES: said so", "does not support" in str(e), True)

print("OK")
