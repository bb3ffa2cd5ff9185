//! Owner values as SQL Server compares them, and owner paths as change
//! tracking needs them. Routing (deltas) and the snapshot filter must put a
//! row in the same copy: a `char(n)` owner arrives blank-padded, an owner
//! may differ in case from the configured key under a case-insensitive
//! collation, and `int` and `uniqueidentifier` owners must work. A row that
//! snapshots to a caregiver and whose delta then routed to nobody would be
//! deleted from its copy.

#[path = "support/world.rs"]
mod world;
use world::{count, World};

const GUID: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

#[test]
fn padded_differently_cased_int_and_guid_owners_route_like_the_snapshot() {
    let w = World::new(&[
        "CREATE TABLE dbo.Padded (Id int NOT NULL PRIMARY KEY, Enhet char(10) NOT NULL, V int NOT NULL)".into(),
        "CREATE TABLE dbo.Numbered (Id int NOT NULL PRIMARY KEY, EnhetNr int NOT NULL, V int NOT NULL)".into(),
        "CREATE TABLE dbo.Guided (Id int NOT NULL PRIMARY KEY, EnhetId uniqueidentifier NOT NULL, V int NOT NULL)".into(),
        "ALTER TABLE dbo.Padded ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Numbered ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Guided ENABLE CHANGE_TRACKING".into(),
        // 'e1' in a char(10): blank-padded, and in lower case.
        "INSERT INTO dbo.Padded VALUES (1, 'e1', 0), (2, 'E2', 0)".into(),
        "INSERT INTO dbo.Numbered VALUES (1, 7, 0), (2, 8, 0)".into(),
        format!("INSERT INTO dbo.Guided VALUES (1, '{GUID}', 0), (2, NEWID(), 0)"),
    ]);
    let tables_cfg = "[[table]]\nname = \"dbo.Padded\"\nowner = { column = \"Enhet\" }\n[[table]]\nname = \"dbo.Numbered\"\nowner = { column = \"EnhetNr\" }\n[[table]]\nname = \"dbo.Guided\"\nowner = { column = \"EnhetId\" }";
    let keys = format!("[\"E1\", \"7\", \"{}\"]", GUID.to_uppercase());
    w.configure(tables_cfg, &keys);
    // `check` advises an index on the string owner a snapshot step filters
    // on as it is, once the table holds more than a step's rows (a smaller
    // one is read whole by one step: a scan is the cheap way); the int and
    // uniqueidentifier owners are compared as text, which no index serves,
    // so none is advised for them.
    let advice = |w: &World| -> Vec<String> {
        let (ok, out, err) = w.ctferry(&["check", "--json"]);
        assert!(ok, "{out}{err}");
        world::index_warnings(&out)
    };
    assert!(advice(&w).is_empty(), "{:?}", advice(&w));
    w.configure(&format!("snapshot_step_rows = 1\n{tables_cfg}"), &keys);
    let a = advice(&w);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        a[0].starts_with("dbo.Padded.Enhet leads no index")
            && a[0].ends_with("CREATE INDEX IX_Padded_Enhet ON dbo.Padded (Enhet)"),
        "{a:?}"
    );
    w.configure(tables_cfg, &keys);
    w.cycle();
    let tables = ["dbo.Padded", "dbo.Numbered", "dbo.Guided"];
    let mut kopia = w.kopia();
    for t in tables {
        let n = count(
            &mut kopia,
            &format!("SELECT COUNT(*) FROM {t} WHERE Id = 1"),
        );
        assert_eq!(n, 1, "{t}: the snapshot gave the caregiver its row");
    }
    // Each row changes (not its owner): the change must reach the copy, and
    // the row must stay there.
    let mut pmo = w.pmo();
    for t in tables {
        pmo.execute(&format!("UPDATE {t} SET V = 5 WHERE Id = 1"))
            .unwrap();
    }
    w.cycle();
    for t in tables {
        let sql = format!("SELECT COUNT(*) FROM {t} WHERE Id = 1 AND V = 5");
        assert_eq!(count(&mut kopia, &sql), 1, "{t}: the delta reached the row");
        let all = format!("SELECT COUNT(*) FROM {t}");
        assert_eq!(count(&mut kopia, &all), 1, "{t}: nothing of the other unit");
    }
    // A row moving in, written in another case and padding.
    pmo.execute("UPDATE dbo.Padded SET Enhet = 'E1 ' WHERE Id = 2")
        .unwrap();
    w.cycle();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Padded"), 2);
}

/// The schema of the owner-path tests: visits owned through their care
/// unit, which is not published itself.
fn path_world(unit_ddl: &str) -> World {
    let w = World::new(&[
        unit_ddl.to_string(),
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, EnhetId int NOT NULL REFERENCES dbo.Enhet(Id), V int NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Enhet (Id, Kod, Hsa) VALUES (1, 10, N'E1'), (2, 20, N'E2')".into(),
        "INSERT INTO dbo.Besok VALUES (100, 1, 0), (200, 2, 0)".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { path = \"EnhetId -> dbo.Enhet(Id).Hsa\" }",
        "[\"E1\"]",
    );
    w
}

#[test]
fn check_names_what_an_owner_path_table_lacks() {
    // No change tracking on the hop table.
    let w = path_world("CREATE TABLE dbo.Enhet (Id int NOT NULL PRIMARY KEY, Kod int NOT NULL UNIQUE, Hsa nvarchar(40) NOT NULL)");
    let (ok, _, err) = w.ctferry(&["check"]);
    assert!(!ok);
    assert!(
        err.contains("owner path hop table dbo.Enhet")
            && err.contains("ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING"),
        "{err}"
    );
    w.pmo()
        .execute("ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING")
        .unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    // A hop that joins on a unique column that is not the primary key.
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { path = \"EnhetId -> dbo.Enhet(Kod).Hsa\" }",
        "[\"E1\"]",
    );
    let (ok, _, err) = w.ctferry(&["check"]);
    assert!(!ok);
    assert!(err.contains("not its primary key (Id)"), "{err}");
}

#[test]
fn tracking_restarted_on_an_owner_path_table_re_sends_the_tables_owned_through_it() {
    let w = path_world("CREATE TABLE dbo.Enhet (Id int NOT NULL PRIMARY KEY, Kod int NOT NULL, Hsa nvarchar(40) NOT NULL)");
    w.pmo()
        .execute("ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING")
        .unwrap();
    w.cycle();
    assert_eq!(count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"), 1);
    // Tracking of the unpublished hop table restarts: a unit that moved in
    // between would be unknown, so the tables owned through it are re-sent
    // (a delta that leaves the copy exact; no new epoch).
    let mut pmo = w.pmo();
    pmo.execute("ALTER TABLE dbo.Enhet DISABLE CHANGE_TRACKING")
        .unwrap();
    pmo.execute("UPDATE dbo.Enhet SET Hsa = N'E1' WHERE Id = 2")
        .unwrap();
    // (Other work goes on meanwhile; the database version moves on.)
    pmo.execute("UPDATE dbo.Besok SET V = 1 WHERE Id = 200")
        .unwrap();
    pmo.execute("ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING")
        .unwrap();
    let out = w.run(&["once"]);
    assert!(
        !out.contains("snapshot for SE-NORR")
            && out.contains("dbo.Besok re-sent")
            && out.contains("dbo.Enhet"),
        "{out}"
    );
    w.run(&["apply"]);
    assert_eq!(count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"), 2);
}

/// Referential completeness (issue "rows owned by several caregivers"): for
/// every foreign key between published tables, `check` says whether the
/// owner rules keep the referenced row in every copy that holds the
/// referencing row. The PMO shape of today's single-owner rules: a visit
/// owned through its care unit, a patient owned by where it is listed (so
/// a visit may point at a patient missing from the copy), a note owned
/// through its visit, a shared code table.
#[test]
fn check_says_which_references_between_published_tables_may_dangle() {
    let w = World::new(&[
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Kod (Kod nvarchar(10) NOT NULL PRIMARY KEY, Text nvarchar(50) NOT NULL)".into(),
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, ListadHsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), PatientId int NOT NULL REFERENCES dbo.Patient(Id), Kod nvarchar(10) NULL REFERENCES dbo.Kod(Kod))".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id))".into(),
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Kod ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Vardenhet\"\nowner = { column = \"HsaId\" }\n\
         [[table]]\nname = \"dbo.Kod\"\nowner = \"shared\"\n\
         [[table]]\nname = \"dbo.Patient\"\nowner = { column = \"ListadHsaId\" }\n\
         [[table]]\nname = \"dbo.Besok\"\nowner = { path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" }\n\
         [[table]]\nname = \"dbo.Anteckning\"\nowner = { path = \"BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId\" }",
        "[\"E1\"]",
    );
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(
        ok,
        "a reference that may dangle is a warning, not a failure: {out}{err}"
    );
    for line in [
        "reference dbo.Besok.VardenhetId -> dbo.Vardenhet: complete: dbo.Besok is owned through this key, as dbo.Vardenhet is",
        "reference dbo.Besok.Kod -> dbo.Kod: complete: dbo.Kod is shared",
        "reference dbo.Anteckning.BesokId -> dbo.Besok: complete: dbo.Anteckning is owned through this key, as dbo.Besok is",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(
        err.contains("warning: reference dbo.Besok.PatientId -> dbo.Patient: may dangle: dbo.Besok is owned by path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" and dbo.Patient by column = \"ListadHsaId\""),
        "{err}"
    );
    let (ok, out, _) = w.ctferry(&["check", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let refs = v["references"].as_array().unwrap();
    assert_eq!(refs.len(), 4, "{out}");
    assert_eq!(
        refs.iter().filter(|r| r["complete"] == false).count(),
        1,
        "{out}"
    );
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

/// A path that ends at a table: the row's owners are that row's owners
/// (patient-level child tables follow the patient). The address moves with
/// its patient; a note two tables down follows its visit's care unit; check
/// calls both references complete.
#[test]
fn a_path_that_ends_at_a_table_follows_that_tables_owner() {
    let w = World::new(&[
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, ListadHsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.PatientAdress (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), Gata nvarchar(50) NOT NULL)".into(),
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id))".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id))".into(),
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.PatientAdress ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Vardenhet VALUES (1, N'E1'), (2, N'E2')".into(),
        "INSERT INTO dbo.Patient VALUES (1, N'E1'), (2, N'E2')".into(),
        "INSERT INTO dbo.PatientAdress VALUES (10, 1, N'Storgatan 1'), (20, 2, N'Lillgatan 2')".into(),
        "INSERT INTO dbo.Besok VALUES (100, 1), (200, 2)".into(),
        "INSERT INTO dbo.Anteckning VALUES (1000, 100), (2000, 200)".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Vardenhet\"\nowner = { column = \"HsaId\" }\n\
         [[table]]\nname = \"dbo.Patient\"\nowner = { column = \"ListadHsaId\" }\n\
         [[table]]\nname = \"dbo.PatientAdress\"\nowner = { path = \"PatientId -> dbo.Patient(Id)\" }\n\
         [[table]]\nname = \"dbo.Anteckning\"\nowner = { path = \"BesokId -> dbo.Besok(Id)\" }\n\
         [[table]]\nname = \"dbo.Besok\"\nowner = { path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" }",
        "[\"E1\"]",
    );
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    for line in [
        "reference dbo.PatientAdress.PatientId -> dbo.Patient: complete",
        "reference dbo.Anteckning.BesokId -> dbo.Besok: complete",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(!err.contains("may dangle"), "{err}");
    w.cycle();
    let mut kopia = w.kopia();
    let ids = |k: &mut ctferry::mssql::client::Db, t: &str| {
        count(k, &format!("SELECT COALESCE(SUM(Id), 0) FROM {t}"))
    };
    assert_eq!(ids(&mut kopia, "dbo.PatientAdress"), 10);
    assert_eq!(ids(&mut kopia, "dbo.Anteckning"), 1000);
    // Patient 2 is listed at E1 now: its address arrives; visit 100 moves to
    // E2's unit: its note leaves.
    w.pmo()
        .execute("UPDATE dbo.Patient SET ListadHsaId = N'E1' WHERE Id = 2; UPDATE dbo.Besok SET VardenhetId = 2 WHERE Id = 100")
        .unwrap();
    w.cycle();
    assert_eq!(ids(&mut kopia, "dbo.PatientAdress"), 30);
    assert_eq!(ids(&mut kopia, "dbo.Anteckning"), 0);
}

#[test]
fn paths_that_end_at_tables_must_reach_an_owner() {
    let w = World::new(&[]);
    for (tables, want) in [
        (
            "[[table]]\nname = \"dbo.A\"\nowner = { path = \"BId -> dbo.B(Id)\" }\n[[table]]\nname = \"dbo.B\"\nowner = { path = \"AId -> dbo.A(Id)\" }",
            "owner paths that end at tables form a loop (dbo.A -> dbo.B -> dbo.A): one of them must end at an owner column",
        ),
        (
            "[[table]]\nname = \"dbo.A\"\nowner = { path = \"BId -> dbo.B(Id)\" }",
            "owner path ends at dbo.B, which is not published, so it has no owner to follow",
        ),
    ] {
        w.configure(tables, "[\"E1\"]");
        let (ok, out, err) = w.ctferry(&["check"]);
        assert!(!ok && err.contains(want), "{want}\n{out}{err}");
    }
}
