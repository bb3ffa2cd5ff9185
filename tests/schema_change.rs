//! Changes of shape in a running setup (issue "change without starting
//! over"). For now: a table added to the configuration reaches every copy
//! (by a new snapshot, until packages carry tables of their own); before,
//! its first change made a delta that no copy could apply, for good.

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
        out.contains("snapshot for SE-NORR: a table was added to the configuration: dbo.Remiss"),
        "{out}"
    );
    w.run(&["apply"]);
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
