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
