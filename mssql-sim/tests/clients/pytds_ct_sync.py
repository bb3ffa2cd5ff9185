"""The documented change tracking sync pattern, run by python-tds against mssql-sim.

From "Work with change tracking" (learn.microsoft.com): initial load of the
rows and CHANGE_TRACKING_CURRENT_VERSION() in one snapshot; then, each time,
check the last synchronised version against CHANGE_TRACKING_MIN_VALID_VERSION,
read CHANGETABLE(CHANGES ...) LEFT OUTER JOIN the table, and store the new
version; reinitialise when the last version is no longer valid.

Run by mssql-sim/tests/python_tds.rs:
    python3 pytds_ct_sync.py HOST PORT PASSWORD
Prints "OK" and exits 0 when two clients, one syncing often and one falling
behind the retention, both end with exact copies.
"""
import sys

import pytds

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect(db):
    return pytds.connect(server=host, port=port, database=db, user="sa", password=password,
                         autocommit=True, timeout=30, login_timeout=30)


def fail(msg):
    print("MISMATCH " + msg)
    sys.exit(1)


admin = connect("master")
admin.cursor().execute("CREATE DATABASE PySync")
admin.close()

src = connect("PySync")


def run(sql):
    src.cursor().execute(sql)


for sql in [
    "ALTER DATABASE PySync SET ALLOW_SNAPSHOT_ISOLATION ON",
    "ALTER DATABASE PySync SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 1 HOURS, AUTO_CLEANUP = OFF)",
    "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(50) NOT NULL, Enhet nvarchar(20) NULL)",
    "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON)",
    "INSERT INTO dbo.Patient VALUES (1, N'Anna', N'E001'), (2, N'Bo', N'E001'), (3, N'Cecilia', N'E002')",
]:
    run(sql)


class Client:
    """A replica that keeps a copy of dbo.Patient and its last version."""

    def __init__(self, name):
        self.name = name
        self.conn = connect("PySync")
        self.copy = {}
        self.last = None
        self.reinits = 0

    def _snapshot(self):
        cur = self.conn.cursor()
        cur.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
        cur.execute("BEGIN TRAN")
        return cur

    def initial(self):
        cur = self._snapshot()
        cur.execute("SELECT CHANGE_TRACKING_CURRENT_VERSION()")
        version = cur.fetchone()[0]
        cur.execute("SELECT Id, Namn, Enhet FROM dbo.Patient")
        self.copy = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        cur.execute("COMMIT")
        self.last = version
        self.reinits += 1

    def sync(self):
        cur = self._snapshot()
        cur.execute("SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.Patient'))")
        min_valid = cur.fetchone()[0]
        if self.last < min_valid:
            cur.execute("COMMIT")
            self.initial()
            return "reinitialized"
        cur.execute("SELECT CHANGE_TRACKING_CURRENT_VERSION()")
        next_version = cur.fetchone()[0]
        cur.execute(
            """SELECT CT.Id, CT.SYS_CHANGE_OPERATION, CT.SYS_CHANGE_VERSION, P.Namn, P.Enhet
               FROM CHANGETABLE(CHANGES dbo.Patient, %s) AS CT
               LEFT OUTER JOIN dbo.Patient AS P ON P.Id = CT.Id
               ORDER BY CT.Id""",
            (self.last,),
        )
        rows = cur.fetchall()
        cur.execute("COMMIT")
        for key, op, version, namn, enhet in rows:
            if version > next_version:
                fail(f"{self.name}: change version {version} above the snapshot's {next_version}")
            if op == "D" or namn is None:
                self.copy.pop(key, None)
            else:
                self.copy[key] = (namn, enhet)
        self.last = next_version
        return "delta"

    def check(self):
        cur = src.cursor()
        cur.execute("SELECT Id, Namn, Enhet FROM dbo.Patient")
        want = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        if self.copy != want:
            fail(f"{self.name}: copy {self.copy} != source {want}")


often = Client("often")
behind = Client("behind")
often.initial()
behind.initial()
often.check()

run("INSERT INTO dbo.Patient VALUES (4, N'David', N'E002')")
run("UPDATE dbo.Patient SET Enhet = N'E002' WHERE Id = 1")
run("DELETE FROM dbo.Patient WHERE Id = 2")
if often.sync() != "delta":
    fail("often: expected a delta")
often.check()

# Two hours pass (simulator-only clock); the next change is inside retention.
run("EXEC mssql_sim.advance_clock @seconds = 7200")
run("UPDATE dbo.Patient SET Namn = N'Cissi' WHERE Id = 3")
run("EXEC sys.sp_flush_CT_internal_table_on_demand")
if often.sync() != "delta":
    fail("often: expected a delta after cleanup (its version is still valid)")
often.check()

# The client that fell behind the retention must notice and start over.
if behind.sync() != "reinitialized":
    fail("behind: expected a reinitialisation")
behind.check()
if behind.reinits != 2:
    fail("behind: reinitialised %d times" % behind.reinits)
run("INSERT INTO dbo.Patient VALUES (5, N'Eva', NULL)")
for c in (often, behind):
    c.sync()
    c.check()
print("OK")
