//! Column types through the whole path into a caregiver's copy, by bulk load
//! as a real SQL Server takes it: long `nvarchar`/`nchar` columns (which
//! tiberius would declare as `nvarchar(max)` in INSERT BULK while sending
//! them sized, refused by SQL Server with 4816, tiberius issue #322, and by
//! mssql-sim alike) are staged as `nvarchar(max)` and cast back.

#[path = "support/world.rs"]
mod world;
use ctferry::mssql::client::{text_at, Db};
use world::World;

#[test]
fn long_nvarchar_and_nchar_columns_reach_the_copy_exactly() {
    let long = "å".repeat(2400);
    let w = World::new(&[
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(40) NOT NULL, Kort nvarchar(100) NULL, Lang nvarchar(2500) NULL, Fast nchar(2100) NULL, Kod nchar(4) NULL, Max nvarchar(max) NULL)".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        format!("INSERT INTO dbo.Anteckning VALUES (1, N'E1', N'kort', N'{long}', N'fast', N'J06', N'{long}{long}'), (2, N'E1', NULL, NULL, NULL, NULL, NULL)"),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Anteckning\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w.cycle();
    let mut pmo = w.pmo();
    // A delta through the same path.
    pmo.execute(&format!(
        "UPDATE dbo.Anteckning SET Lang = N'{long}x', Fast = N'ändrad' WHERE Id = 2"
    ))
    .unwrap();
    w.cycle();
    let text = |db: &mut Db| -> Vec<String> {
        let sql = "SELECT Id, Kort, Lang, Fast, Kod, Max FROM dbo.Anteckning ORDER BY Id";
        db.rows("reading", sql, &[])
            .unwrap()
            .iter()
            .map(|r| {
                (1..6)
                    .map(|i| text_at(r, i).unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    let want = text(&mut pmo);
    assert_eq!(text(&mut w.kopia()), want);
    // nchar keeps its padding and its declared type in the copy.
    let ty = w
        .kopia()
        .rows(
            "reading the copy's columns",
            "SELECT c.name, t.name, c.max_length FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(N'dbo.Anteckning') AND c.name IN (N'Lang', N'Fast') ORDER BY c.name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", text_at(r, 0).unwrap(), text_at(r, 1).unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(ty, vec!["Fast nchar", "Lang nvarchar"]);
}

/// `exclude = [...]` leaves columns out entirely: never selected, not in the
/// copy; the key cannot be excluded and a name must exist.
#[test]
fn excluded_columns_never_reach_the_copy() {
    let w = World::new(&[
        "CREATE TABLE dbo.Person (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL, Hemligt nvarchar(100) NULL)".into(),
        "ALTER TABLE dbo.Person ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Person VALUES (1, N'E1', N'Anna', N'skyddad uppgift')".into(),
    ]);
    let table = |exclude: &str| {
        format!("[[table]]\nname = \"dbo.Person\"\nowner = {{ column = \"Enhet\" }}\nexclude = {exclude}")
    };
    for (exclude, problem) in [
        ("[\"Id\"]", "part of the primary key"),
        ("[\"Nope\"]", "exclude names column Nope"),
    ] {
        w.configure(&table(exclude), "[\"E1\"]");
        let (ok, _, err) = w.ctferry(&["check"]);
        assert!(!ok && err.contains(problem), "{exclude}: {err}");
    }
    // The owner column itself may be left out: routing still reads it.
    w.configure(&table("[\"Hemligt\", \"Enhet\"]"), "[\"E1\"]");
    w.run(&["check"]);
    w.cycle();
    w.pmo()
        .execute("UPDATE dbo.Person SET Namn = N'Anna B', Hemligt = N'ändrad' WHERE Id = 1")
        .unwrap();
    w.cycle();
    let mut kopia = w.kopia();
    let cols = kopia
        .rows(
            "reading the copy's columns",
            "SELECT name FROM sys.columns WHERE object_id = OBJECT_ID(N'dbo.Person') ORDER BY column_id",
            &[],
        )
        .unwrap()
        .iter()
        .filter_map(|r| text_at(r, 0))
        .collect::<Vec<_>>();
    assert_eq!(cols, vec!["Id", "Namn"]);
    let rows = kopia
        .rows("reading the copy", "SELECT Namn FROM dbo.Person", &[])
        .unwrap();
    assert_eq!(text_at(&rows[0], 0).as_deref(), Some("Anna B"));
}
