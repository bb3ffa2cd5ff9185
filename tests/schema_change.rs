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
