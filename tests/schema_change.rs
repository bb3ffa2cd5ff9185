//! Changes of shape in a running setup (issue "change without starting
//! over"), each for the affected table alone, in band, with no new epoch:
//! a table added or removed, columns added, widened or dropped, a column
//! held until decided, a mask changed, a caregiver's keys changed, a
//! table's change history lost. Each against the copy a caregiver queries.

#[path = "support/world.rs"]
mod world;
use world::{count, World};

const BESOK: &str = "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }\n";
const REMISS: &str = "[[table]]\nname = \"dbo.Remiss\"\nowner = { column = \"HsaId\" }\n";

#[test]
fn a_table_added_to_the_configuration_reaches_the_copies() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1')".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1'), (2, N'E2')".into(),
    ]);
    w.configure(BESOK, "[\"E1\"]");
    w.cycle();
    w.configure(&format!("{BESOK}{REMISS}"), "[\"E1\"]");
    w.pmo()
        .execute(
            "INSERT INTO dbo.Remiss VALUES (3, N'E1'); INSERT INTO dbo.Besok VALUES (2, N'E1')",
        )
        .unwrap();
    let out = w.run(&["once"]);
    assert!(
        out.contains("dbo.Remiss: added to the configuration") && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("table dbo.Remiss: create and load: added to the configuration"),
        "{applied}"
    );
    let mut kopia = w.kopia();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Remiss"), 2);
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 2);
    // Then its changes flow as deltas.
    w.pmo()
        .execute("DELETE FROM dbo.Remiss WHERE Id = 1")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(!out.contains("snapshot for"), "{out}");
    w.run(&["apply"]);
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Remiss"), 1);
}

/// A caregiver's partition keys change (issue 19): a care unit gained
/// arrives and a care unit lost leaves as deltas, rows up an owner path
/// with them; no new epoch, no snapshot, nothing else re-sent.
#[test]
fn a_care_unit_gained_or_lost_moves_only_its_rows() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id))".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1'), (2, N'E2'), (3, N'E2'), (4, N'E3')".into(),
        "INSERT INTO dbo.Anteckning VALUES (10, 1), (20, 2), (30, 3), (40, 4)".into(),
    ]);
    let tables = format!("{BESOK}[[table]]\nname = \"dbo.Anteckning\"\nowner = {{ path = \"BesokId -> dbo.Besok(Id).HsaId\" }}\n");
    w.configure(&tables, "[\"E1\"]");
    w.cycle();
    let ids = |sql: &str| ids(&w, sql);
    let copy = || {
        (
            ids("SELECT Id FROM dbo.Besok ORDER BY Id"),
            ids("SELECT Id FROM dbo.Anteckning ORDER BY Id"),
        )
    };
    assert_eq!(copy(), (vec![1], vec![10]));
    let packages = |w: &World| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(w.path("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".ctf.pgp"))
            .collect();
        v.sort();
        v
    };
    // Gained E2: its visits and their notes arrive in a delta, with a
    // change made in the same cycle.
    w.configure(&tables, "[\"E1\", \"E2\"]");
    w.pmo()
        .execute("INSERT INTO dbo.Besok VALUES (5, N'E1')")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(!out.contains("snapshot for"), "{out}");
    assert!(
        out.contains("partition keys of SE-NORR changed (gained E2)"),
        "{out}"
    );
    assert!(
        packages(&w).last().unwrap().contains("-delta-"),
        "{:?}",
        packages(&w)
    );
    w.run(&["apply"]);
    assert_eq!(copy(), (vec![1, 2, 3, 5], vec![10, 20, 30]));
    // Lost E1, gained E3: deletes for exactly E1's rows, E3's arrive.
    w.configure(&tables, "[\"E2\", \"E3\"]");
    let out = w.run(&["once"]);
    assert!(!out.contains("snapshot for"), "{out}");
    assert!(out.contains("(gained E3; lost E1)"), "{out}");
    w.run(&["apply"]);
    assert_eq!(copy(), (vec![2, 3, 4], vec![20, 30, 40]));
    // One epoch throughout: the only snapshot is the first package.
    let all = packages(&w);
    assert_eq!(
        all.iter().filter(|n| n.contains("-snapshot-")).count(),
        1,
        "{all:?}"
    );
    let status = w.run(&["apply", "--status"]);
    assert!(status.contains("epoch 1"), "{status}");
}

/// Change tracking begins again on one table (disabled and re-enabled,
/// changes in between unknown): that table, and the tables owned through
/// it, are re-sent as a delta that leaves each copy exact; no new epoch,
/// the other tables untouched (issue 19).
#[test]
fn a_table_whose_change_history_is_lost_is_re_sent_alone() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id))".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1'), (2, N'E1'), (3, N'E2')".into(),
        "INSERT INTO dbo.Anteckning VALUES (10, 1), (20, 2), (30, 3)".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1')".into(),
    ]);
    let tables = format!("{BESOK}{REMISS}[[table]]\nname = \"dbo.Anteckning\"\nowner = {{ path = \"BesokId -> dbo.Besok(Id).HsaId\" }}\n");
    w.configure(&tables, "[\"E1\"]");
    w.cycle();
    let ids = |sql: &str| ids(&w, sql);
    // Tracking off on dbo.Besok while its rows change, then on again.
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok DISABLE CHANGE_TRACKING;
             DELETE FROM dbo.Anteckning WHERE BesokId = 2; DELETE FROM dbo.Besok WHERE Id = 2;
             UPDATE dbo.Besok SET HsaId = N'E1' WHERE Id = 3; INSERT INTO dbo.Besok VALUES (4, N'E1'), (5, N'E2');
             ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING;
             INSERT INTO dbo.Remiss VALUES (2, N'E1')",
        )
        .unwrap();
    let out = w.run(&["once"]);
    assert!(!out.contains("snapshot for"), "{out}");
    assert!(out.contains("dbo.Besok re-sent"), "{out}");
    assert!(out.contains("dbo.Anteckning re-sent"), "{out}");
    assert!(!out.contains("dbo.Remiss re-sent"), "{out}");
    w.run(&["apply"]);
    assert_eq!(ids("SELECT Id FROM dbo.Besok ORDER BY Id"), vec![1, 3, 4]);
    assert_eq!(
        ids("SELECT Id FROM dbo.Anteckning ORDER BY Id"),
        vec![10, 30]
    );
    assert_eq!(ids("SELECT Id FROM dbo.Remiss ORDER BY Id"), vec![1, 2]);
    let status = w.run(&["apply", "--status"]);
    assert!(status.contains("epoch 1"), "{status}");
    // And the next changes flow as deltas again.
    w.pmo()
        .execute("UPDATE dbo.Besok SET HsaId = N'E2' WHERE Id = 1")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(!out.contains("re-sent"), "{out}");
    w.run(&["apply"]);
    assert_eq!(ids("SELECT Id FROM dbo.Besok ORDER BY Id"), vec![3, 4]);
    assert_eq!(ids("SELECT Id FROM dbo.Anteckning ORDER BY Id"), vec![30]);
}

/// The first column of every row of `sql` in the copy, as numbers.
fn ids(w: &World, sql: &str) -> Vec<i64> {
    let rows = w.kopia().rows("reading", sql, &[]).unwrap();
    rows.iter()
        .map(|r| ctferry::mssql::client::int_at(r, 0).unwrap())
        .collect()
}

/// The copy's columns of `table`: `Name type NULL|NOT NULL`, in order.
fn columns(w: &World, table: &str) -> Vec<String> {
    let sql = format!(
        "SELECT c.name, t.name, c.max_length, c.precision, c.scale, c.is_nullable FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(N'{table}') ORDER BY c.column_id"
    );
    w.kopia()
        .rows("reading the copy's columns", &sql, &[])
        .unwrap()
        .iter()
        .map(|r| {
            use ctferry::mssql::client::{int_at, text_at};
            let ty = text_at(r, 1).unwrap();
            let len = int_at(r, 2).unwrap();
            let ty = match ty.as_str() {
                "varchar" | "char" => format!("{ty}({len})"),
                "nvarchar" | "nchar" if len < 0 => format!("{ty}(max)"),
                "nvarchar" | "nchar" => format!("{ty}({})", len / 2),
                "decimal" => format!(
                    "decimal({},{})",
                    int_at(r, 3).unwrap(),
                    int_at(r, 4).unwrap()
                ),
                _ => ty,
            };
            let null = if int_at(r, 5) == Some(1) {
                "NULL"
            } else {
                "NOT NULL"
            };
            format!("{} {ty} {null}", text_at(r, 0).unwrap())
        })
        .collect()
}

/// The delta packages in the outbox, oldest first.
fn deltas(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".ctf.pgp"))
        .collect();
    v.sort();
    assert_eq!(
        v.iter().filter(|n| n.contains("-snapshot-")).count(),
        1,
        "one epoch throughout: {v:?}"
    );
    v
}

const KOD: &str =
    "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }\nnew_columns = \"publish\"\n";

fn besok_world() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Kod varchar(5) NULL, Antal int NULL, Gammal int NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1', 'A1', 1, 7), (2, N'E1', 'B2', 2, 8), (3, N'E2', 'C3', 3, 9)".into(),
    ]);
    w.configure(KOD, "[\"E1\"]");
    w.cycle();
    w
}

/// Columns added (holding only NULL), widened and dropped at the source:
/// the copy gets ALTER TABLE in its next delta's transaction, no row
/// travels again, and the rows that changed flow in the new shape.
#[test]
fn columns_added_widened_and_dropped_follow_in_place() {
    let w = besok_world();
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok ADD Kommentar nvarchar(200) NULL;
             ALTER TABLE dbo.Besok ALTER COLUMN Kod varchar(40) NULL;
             ALTER TABLE dbo.Besok ALTER COLUMN Antal bigint NULL;
             ALTER TABLE dbo.Besok DROP COLUMN Gammal",
        )
        .unwrap();
    // `check` tells what the next cycle will do, and does nothing.
    for _ in 0..2 {
        let out = w.run(&["check"]);
        assert!(
            out.contains("schema change: dbo.Besok: column Kod widened to varchar(40); column Antal widened to bigint; column Gammal dropped; column Kommentar added (the next cycle sends this change to every copy)"),
            "{out}"
        );
    }
    let out = w.run(&["once"]);
    assert!(
        out.contains("dbo.Besok: column Kod widened to varchar(40); column Antal widened to bigint; column Gammal dropped; column Kommentar added")
            && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(applied.contains("table dbo.Besok: alter (widen Kod to varchar(40); widen Antal to bigint; drop Gammal; add Kommentar nvarchar(200))"), "{applied}");
    assert!(
        applied.contains("applied (0 rows)"),
        "no row travels again: {applied}"
    );
    assert_eq!(
        columns(&w, "dbo.Besok"),
        vec![
            "Id int NOT NULL",
            "HsaId nvarchar(40) NOT NULL",
            "Kod varchar(40) NULL",
            "Antal bigint NULL",
            "Kommentar nvarchar(200) NULL"
        ]
    );
    // The new shape's values flow.
    w.pmo()
        .execute("UPDATE dbo.Besok SET Kod = 'EN-LANG-KOD-SOM-INTE-FANNS-PLATS', Antal = 9000000000, Kommentar = N'åäö' WHERE Id = 1")
        .unwrap();
    w.cycle();
    let row = w
        .kopia()
        .rows(
            "reading",
            "SELECT Kod, CAST(Antal AS varchar(20)), Kommentar FROM dbo.Besok WHERE Id = 1",
            &[],
        )
        .unwrap();
    use ctferry::mssql::client::text_at;
    assert_eq!(
        (0..3)
            .map(|i| text_at(&row[0], i).unwrap())
            .collect::<Vec<_>>(),
        vec!["EN-LANG-KOD-SOM-INTE-FANNS-PLATS", "9000000000", "åäö"]
    );
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![1, 2]);
    deltas(&w);
}

/// A column added that already holds values (a default, or filled in
/// before the cycle): added at the copy, and the table's rows travel again
/// in the same package, the copy's rows going first. Changes staged before
/// the column existed travel in the new shape.
#[test]
fn a_column_added_with_values_brings_the_rows_again() {
    let w = besok_world();
    w.pmo()
        .execute(
            "UPDATE dbo.Besok SET Kod = 'Z9' WHERE Id = 2;
             ALTER TABLE dbo.Besok ADD Prioritet int NOT NULL DEFAULT 3",
        )
        .unwrap();
    let out = w.run(&["once"]);
    // NOT NULL: the copy's table is re-created, its rows loaded.
    assert!(
        out.contains("dbo.Besok: columns changed") && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("table dbo.Besok: create and load"),
        "{applied}"
    );
    assert_eq!(
        columns(&w, "dbo.Besok").last().unwrap(),
        "Prioritet int NOT NULL"
    );
    let n = count(
        &mut w.kopia(),
        "SELECT COUNT(*) FROM dbo.Besok WHERE Prioritet = 3",
    );
    assert_eq!(n, 2);
    // A nullable one already filled in: added, then the rows again.
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok ADD Rum nvarchar(10) NULL;
             UPDATE dbo.Besok SET Rum = N'R' + CAST(Id AS nvarchar(5))",
        )
        .unwrap();
    let out = w.run(&["once"]);
    assert!(out.contains("Rum already holds values"), "{out}");
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("add Rum nvarchar(10)), then reload"),
        "{applied}"
    );
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Rum IS NOT NULL"
        ),
        2
    );
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![1, 2]);
    deltas(&w);
}

/// A mask added to a published column: the table's rows travel again with
/// the masked value (the copy's unmasked values go first), and the audit
/// log says so; removing it brings the real values back.
#[test]
fn a_mask_changed_sends_the_table_again_as_masked_now() {
    let w = besok_world();
    w.configure(&format!("{KOD}mask = {{ Kod = \"NULL\" }}\n"), "[\"E1\"]");
    let out = w.run(&["once"]);
    assert!(out.contains("the mask of Kod changed"), "{out}");
    let applied = w.run(&["apply"]);
    assert!(applied.contains("table dbo.Besok: reload"), "{applied}");
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Kod IS NULL"
        ),
        2
    );
    let audit = w.run(&["audit"]);
    assert!(audit.contains("the mask of Kod changed"), "{audit}");
    w.configure(KOD, "[\"E1\"]");
    w.cycle();
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Kod IS NOT NULL"
        ),
        2
    );
    deltas(&w);
}

/// A table removed from the configuration is dropped at the copies in
/// their next delta, and the audit log records it; the other tables go on.
#[test]
fn a_table_removed_from_the_configuration_is_dropped_at_the_copies() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1')".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1')".into(),
    ]);
    w.configure(&format!("{BESOK}{REMISS}"), "[\"E1\"]");
    w.cycle();
    // A change staged for the table before it is removed goes nowhere.
    w.pmo()
        .execute(
            "INSERT INTO dbo.Remiss VALUES (2, N'E1'); INSERT INTO dbo.Besok VALUES (2, N'E1')",
        )
        .unwrap();
    w.configure(BESOK, "[\"E1\"]");
    let out = w.run(&["once"]);
    assert!(
        out.contains("dbo.Remiss: removed from the configuration"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(applied.contains("table dbo.Remiss: drop"), "{applied}");
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM sys.tables WHERE name = N'Remiss'"
        ),
        0
    );
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![1, 2]);
    let audit = w.run(&["audit"]);
    assert!(
        audit.contains("dbo.Remiss: drop: removed from the configuration"),
        "{audit}"
    );
    deltas(&w);
}

/// `new_columns = "hold"` (the default): a column added at the source is
/// left out of every package, `status` lists it, the table's other columns
/// go on flowing; `ctferry schema accept` publishes it in the next cycle,
/// and the audit log records the decision. No new epoch.
#[test]
fn a_held_column_waits_for_schema_accept() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Kod varchar(5) NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1', 'A1')".into(),
    ]);
    w.configure(BESOK, "[\"E1\"]");
    w.cycle();
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok ADD Diagnos nvarchar(100) NULL;
             UPDATE dbo.Besok SET Diagnos = N'hemlig', Kod = 'B2' WHERE Id = 1",
        )
        .unwrap();
    let out = w.run(&["check"]);
    assert!(
        out.contains("schema change: dbo.Besok: new column(s) Diagnos held back"),
        "{out}"
    );
    let out = w.run(&["once"]);
    assert!(out.contains("new column(s) Diagnos held back"), "{out}");
    w.run(&["apply"]);
    assert_eq!(columns(&w, "dbo.Besok").len(), 3);
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Kod = 'B2'"
        ),
        1
    );
    let (_, status, _) = w.ctferry(&["status"]);
    assert!(
        status.contains("held back (not published): Diagnos of dbo.Besok"),
        "{status}"
    );
    // Naming a column that is not held, or a table without any: refused.
    let (ok, _, err) = w.ctferry(&[
        "schema",
        "accept",
        "--table",
        "dbo.Besok",
        "--column",
        "Kod",
    ]);
    assert!(
        !ok && err.contains("dbo.Besok.Kod is not held back; held back in dbo.Besok: Diagnos"),
        "{err}"
    );
    let (ok, _, err) = w.ctferry(&["schema", "accept", "--table", "dbo.Remiss"]);
    assert!(
        !ok && err.contains("no column of dbo.Remiss is held back"),
        "{err}"
    );
    let out = w.run(&[
        "schema",
        "accept",
        "--table",
        "dbo.besok",
        "--column",
        "diagnos",
    ]);
    assert!(out.contains("dbo.Besok: Diagnos accepted"), "{out}");
    let out = w.run(&["once"]);
    assert!(
        out.contains("column Diagnos added") && out.contains("Diagnos already holds values"),
        "{out}"
    );
    assert!(!out.contains("held back"), "{out}");
    w.run(&["apply"]);
    assert_eq!(
        columns(&w, "dbo.Besok").last().unwrap(),
        "Diagnos nvarchar(100) NULL"
    );
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Diagnos = N'hemlig'"
        ),
        1
    );
    let audit = w.run(&["audit"]);
    assert!(audit.contains("Diagnos accepted for publishing"), "{audit}");
    let (_, status, _) = w.ctferry(&["status"]);
    assert!(!status.contains("held back"), "{status}");
    deltas(&w);
}

/// kill -9 at every commit boundary while a table is added and another
/// gains a column whose values re-send its rows: nothing is lost, nothing
/// duplicated, nothing half-applied; the copy ends exact, in one epoch.
#[test]
fn kill_9_at_every_commit_boundary_during_table_changes_loses_nothing() {
    for (cmd, point) in [
        ("once", "cycle-committed"),
        ("once", "delta-written"),
        ("once", "delivered-unrecorded"),
        ("once", "audit-queued"),
        ("apply", "apply-table-changed"),
        ("apply", "apply-mid-package"),
    ] {
        let w = World::new(&[
            "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Kod varchar(5) NULL)".into(),
            "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
            "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
            "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
            "INSERT INTO dbo.Besok VALUES (1, N'E1', 'A'), (2, N'E1', 'B'), (3, N'E2', 'C')".into(),
            "INSERT INTO dbo.Remiss VALUES (1, N'E1'), (2, N'E2'), (3, N'E1')".into(),
        ]);
        w.configure(KOD, "[\"E1\"]");
        w.cycle();
        w.pmo()
            .execute(
                "ALTER TABLE dbo.Besok ADD Rum nvarchar(10) NULL;
                 UPDATE dbo.Besok SET Rum = N'R' + CAST(Id AS nvarchar(5));
                 INSERT INTO dbo.Besok VALUES (4, N'E1', 'D', N'R4'); DELETE FROM dbo.Besok WHERE Id = 2",
            )
            .unwrap();
        w.configure(&format!("{KOD}{REMISS}"), "[\"E1\"]");
        if cmd == "apply" {
            w.run(&["once"]);
        }
        assert!(w.killed_at(&[cmd], point), "{point} not reached");
        w.cycle();
        w.cycle();
        assert_eq!(
            ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"),
            vec![1, 4],
            "{point}"
        );
        assert_eq!(
            count(
                &mut w.kopia(),
                "SELECT COUNT(*) FROM dbo.Besok WHERE Rum = N'R' + CAST(Id AS nvarchar(5))"
            ),
            2,
            "{point}"
        );
        assert_eq!(
            ids(&w, "SELECT Id FROM dbo.Remiss ORDER BY Id"),
            vec![1, 3],
            "{point}"
        );
        let (ok, out, err) = w.ctferry(&["audit", "--verify"]);
        assert!(ok, "{point}: {out}{err}");
        deltas(&w);
    }
}

/// A type narrowed at the source (every value still fits): the copy's
/// table cannot be altered in place, so it is re-created and its rows
/// travel again, alone. A column newly excluded in the configuration is
/// dropped at the copy; the rows do not travel again.
#[test]
fn a_narrowed_column_re_creates_the_table_and_an_excluded_one_is_dropped() {
    let w = besok_world();
    w.pmo()
        .execute("ALTER TABLE dbo.Besok ALTER COLUMN Kod varchar(3) NULL")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(
        out.contains("the table is re-created and its rows travel again")
            && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("table dbo.Besok: create and load"),
        "{applied}"
    );
    assert!(applied.contains("applied (2 rows)"), "{applied}");
    assert!(columns(&w, "dbo.Besok").contains(&"Kod varchar(3) NULL".to_string()));
    assert_eq!(
        ids(
            &w,
            "SELECT Id FROM dbo.Besok WHERE Kod IS NOT NULL ORDER BY Id"
        ),
        vec![1, 2]
    );
    w.configure(&format!("{KOD}exclude = [\"Gammal\"]\n"), "[\"E1\"]");
    let out = w.run(&["once"]);
    assert!(out.contains("dbo.Besok: column Gammal dropped"), "{out}");
    let applied = w.run(&["apply"]);
    assert!(applied.contains("applied (0 rows)"), "{applied}");
    assert!(!columns(&w, "dbo.Besok")
        .iter()
        .any(|c| c.starts_with("Gammal")));
    deltas(&w);
}

/// A column renamed at the source (`sp_rename`, same column_id): not a
/// new column to hold back, but the same data under another name; the
/// copy's table is re-created under the new names and its rows travel
/// again, alone, with no new epoch.
#[test]
fn a_renamed_column_re_creates_the_table() {
    let w = besok_world();
    // new_columns = "hold": a renamed column is still not held.
    w.configure(BESOK, "[\"E1\"]");
    w.pmo()
        .execute("EXEC sp_rename 'dbo.Besok.Kod', 'Atgardskod', 'COLUMN'")
        .unwrap();
    let out = w.run(&["check"]);
    assert!(
        out.contains("schema change: dbo.Besok: column Kod renamed to Atgardskod"),
        "{out}"
    );
    let out = w.run(&["once"]);
    assert!(
        out.contains("dbo.Besok: column Kod renamed to Atgardskod: the table is re-created and its rows travel again")
            && !out.contains("held back")
            && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("table dbo.Besok: create and load"),
        "{applied}"
    );
    let cols = columns(&w, "dbo.Besok");
    assert!(
        cols.contains(&"Atgardskod varchar(5) NULL".to_string()),
        "{cols:?}"
    );
    assert!(!cols.iter().any(|c| c.starts_with("Kod ")), "{cols:?}");
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Atgardskod IN ('A1', 'B2')"
        ),
        2
    );
    // Changes flow under the new name.
    w.pmo()
        .execute("UPDATE dbo.Besok SET Atgardskod = 'X9' WHERE Id = 1")
        .unwrap();
    w.cycle();
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Atgardskod = 'X9'"
        ),
        1
    );
    deltas(&w);
}

/// A table's owner rule changed in the configuration: its index was built
/// by the old rule, so the table is re-sent (each copy gets exactly the
/// rows the new rule gives it), with the tables owned through it; no new
/// epoch, nothing else re-sent.
#[test]
fn an_owner_rule_changed_in_the_configuration_re_routes_that_table() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Ansvarig nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id))".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1', N'E2'), (2, N'E1', N'E1'), (3, N'E2', N'E1')".into(),
        "INSERT INTO dbo.Anteckning VALUES (10, 1), (20, 2), (30, 3)".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1')".into(),
    ]);
    let tables = |owner: &str| {
        format!("[[table]]\nname = \"dbo.Besok\"\nowner = {{ column = \"{owner}\" }}\n{REMISS}[[table]]\nname = \"dbo.Anteckning\"\nowner = {{ path = \"BesokId -> dbo.Besok(Id)\" }}\n")
    };
    w.configure(&tables("HsaId"), "[\"E1\"]");
    w.cycle();
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![1, 2]);
    w.configure(&tables("Ansvarig"), "[\"E1\"]");
    let out = w.run(&["once"]);
    assert!(
        out.contains("dbo.Besok re-sent") && out.contains("its owner rule changed in the configuration (was column = \"HsaId\"; now column = \"Ansvarig\")"),
        "{out}"
    );
    assert!(
        out.contains("dbo.Anteckning re-sent") && !out.contains("dbo.Remiss re-sent"),
        "{out}"
    );
    assert!(out.contains("0 snapshot(s)"), "{out}");
    w.run(&["apply"]);
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![2, 3]);
    assert_eq!(
        ids(&w, "SELECT Id FROM dbo.Anteckning ORDER BY Id"),
        vec![20, 30]
    );
    // Then its changes route by the new rule.
    w.pmo()
        .execute("UPDATE dbo.Besok SET Ansvarig = N'E2' WHERE Id = 2")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(!out.contains("re-sent"), "{out}");
    w.run(&["apply"]);
    assert_eq!(ids(&w, "SELECT Id FROM dbo.Besok ORDER BY Id"), vec![3]);
    deltas(&w);
}

/// A caregiver whose interval has not come yet: the table change waits in
/// the state for its next package, and `status` shows it (a re-send in
/// progress when the rows travel again); the package then carries it.
#[test]
fn status_shows_a_table_change_waiting_for_the_next_package() {
    let w = besok_world();
    let cfg = w.path("ctferry.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "hsa_id = \"SE-NORR\"",
            "hsa_id = \"SE-NORR\"\ninterval = \"1h\"",
        ),
    )
    .unwrap();
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok ADD Rum nvarchar(10) NULL; UPDATE dbo.Besok SET Rum = N'R1'",
        )
        .unwrap();
    // One scheduled cycle: the change is staged, the caregiver is not due.
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["run", "-c", cfg.to_str().unwrap(), "--every", "1s"])
        .env("PW", world::PW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = w.path("state/status.json");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&status_file)
        .map(|s| s.contains("\"ok\": true"))
        .unwrap_or(false)
    {
        assert!(t.elapsed().as_secs() < 30, "no cycle from ctferry run");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = run.kill();
    let _ = run.wait();
    let (_, out, _) = w.ctferry(&["status"]);
    assert!(
        out.contains("SE-NORR: table change waiting for its next package: dbo.Besok: column Rum added; Rum already holds values: the rows travel again (re-send in progress)"),
        "{out}"
    );
    let (_, json, _) = w.ctferry(&["status", "--json"]);
    assert!(
        json.contains("\"table_changes\":[\"dbo.Besok: column Rum added"),
        "{json}"
    );
    // `once` packages it; nothing waits any more.
    w.cycle();
    let (_, out, _) = w.ctferry(&["status"]);
    assert!(!out.contains("table change waiting"), "{out}");
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Rum = N'R1'"
        ),
        2
    );
}

/// The primary key changed at the source. SQL Server will not drop the key
/// of a tracked table (3735), so a DBA disables tracking (or re-creates the
/// table) to do it, and its change history is lost with the old key: the
/// table is re-created at the copy with the new key and its rows re-sent,
/// alone, with no new epoch; then changes flow by the new key.
#[test]
fn a_primary_key_changed_re_creates_the_table() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, Nr int NOT NULL, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, 1, N'E1'), (2, 1, N'E1'), (3, 1, N'E2')".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1')".into(),
    ]);
    w.configure(&format!("{BESOK}{REMISS}"), "[\"E1\"]");
    w.cycle();
    // The table re-created with a composite key (Id, Nr), its rows copied
    // back, one more added.
    w.pmo()
        .execute(
            "ALTER TABLE dbo.Besok DISABLE CHANGE_TRACKING;
             CREATE TABLE dbo.BesokGammal (Id int NOT NULL PRIMARY KEY, Nr int NOT NULL, HsaId nvarchar(40) NOT NULL);
             INSERT INTO dbo.BesokGammal SELECT Id, Nr, HsaId FROM dbo.Besok;
             DROP TABLE dbo.Besok;
             CREATE TABLE dbo.Besok (Id int NOT NULL, Nr int NOT NULL, HsaId nvarchar(40) NOT NULL, PRIMARY KEY (Id, Nr));
             INSERT INTO dbo.Besok SELECT Id, Nr, HsaId FROM dbo.BesokGammal;
             INSERT INTO dbo.Besok VALUES (1, 2, N'E1');
             DROP TABLE dbo.BesokGammal;
             ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING",
        )
        .unwrap();
    let out = w.run(&["once"]);
    assert!(
        out.contains("key Id,Nr): the table is re-created and its rows travel again")
            && out.contains("0 snapshot(s)")
            && !out.contains("dbo.Remiss"),
        "{out}"
    );
    let applied = w.run(&["apply"]);
    assert!(
        applied.contains("table dbo.Besok: create and load"),
        "{applied}"
    );
    assert_eq!(
        count(&mut w.kopia(), "SELECT COUNT(*) FROM sys.index_columns AS ic JOIN sys.indexes AS i ON i.object_id = ic.object_id AND i.index_id = ic.index_id WHERE i.is_primary_key = 1 AND ic.object_id = OBJECT_ID(N'dbo.Besok')"),
        2
    );
    assert_eq!(count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"), 3);
    // Changes flow by the new key.
    w.pmo()
        .execute("DELETE FROM dbo.Besok WHERE Id = 1 AND Nr = 1")
        .unwrap();
    w.cycle();
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM dbo.Besok WHERE Id = 1"
        ),
        1
    );
    deltas(&w);
}
