//! A region's PMO in a Swedish collation, with a case-sensitive code column
//! and alias types, carried to a caregiver's copy on a server whose own
//! collation is SQL Server's default: the copy's columns get the source
//! columns' collations (so a key that is unique at the source is unique in
//! the copy, and the copy sorts and compares as PMO does), and the temp
//! tables `apply` loads through never meet the copy's columns in a
//! collation conflict (468).

#[path = "support/world.rs"]
mod world;
use ctferry::mssql::client::{text_at, Db};
use world::World;

fn texts(db: &mut Db, sql: &str) -> Vec<String> {
    db.rows("reading", sql, &[])
        .unwrap()
        .iter()
        .map(|r| text_at(r, 0).unwrap_or_else(|| "NULL".into()))
        .collect()
}

#[test]
fn a_swedish_pmo_reaches_a_copy_with_its_collations_and_types() {
    let w = World::with_databases(
        &[
            "CREATE TYPE dbo.Personnummer FROM char(12) NOT NULL".into(),
            "CREATE TABLE dbo.Enhet (Kod varchar(10) COLLATE Finnish_Swedish_CS_AS NOT NULL PRIMARY KEY, \
             Namn nvarchar(40) NOT NULL, Pnr dbo.Personnummer, Region nvarchar(10) NOT NULL DEFAULT N'norr')"
                .into(),
            "ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING".into(),
            "INSERT INTO dbo.Enhet (Kod, Namn, Pnr) VALUES ('abc', N'Östra', '191212121212'), \
             ('ABC', N'Åsele', '191212121213'), ('Abc', N'Arjeplog', '191212121214'), ('x', N'Zinkgruvan', '191212121215')"
                .into(),
        ],
        [
            "CREATE DATABASE Pmo COLLATE Finnish_Swedish_CI_AS",
            "CREATE DATABASE Kopia COLLATE Finnish_Swedish_CI_AS",
        ],
    );
    // Every row belongs to SE-NORR, whose key matches the region column
    // as that column's collation (case-insensitive) says.
    w.configure(
        "[[table]]\nname = \"dbo.Enhet\"\nowner = { column = \"Region\" }",
        "[\"NORR\"]",
    );
    w.cycle();
    let mut copy = w.kopia();
    let order = "SELECT Kod FROM dbo.Enhet ORDER BY Kod";
    assert_eq!(texts(&mut copy, order), ["abc", "Abc", "ABC", "x"]);
    assert_eq!(
        texts(&mut copy, "SELECT Namn FROM dbo.Enhet ORDER BY Namn"),
        ["Arjeplog", "Zinkgruvan", "Åsele", "Östra"],
        "Å and Ö after Z, as in PMO"
    );
    assert_eq!(
        texts(
            &mut copy,
            "SELECT c.name + ' ' + ISNULL(c.collation_name, 'NULL') FROM sys.columns AS c \
             WHERE c.object_id = OBJECT_ID(N'dbo.Enhet') ORDER BY c.column_id"
        ),
        [
            "Kod Finnish_Swedish_CS_AS",
            "Namn Finnish_Swedish_CI_AS",
            "Pnr Finnish_Swedish_CI_AS",
            "Region Finnish_Swedish_CI_AS"
        ],
    );
    // A delta: an update and a delete of keys that differ only in case go
    // through the temp tables to exactly the right rows.
    let mut pmo = w.pmo();
    pmo.execute("UPDATE dbo.Enhet SET Namn = N'Övre' WHERE Kod = 'ABC'")
        .unwrap();
    pmo.execute("DELETE FROM dbo.Enhet WHERE Kod = 'abc'")
        .unwrap();
    w.cycle();
    assert_eq!(
        texts(
            &mut copy,
            "SELECT Kod + ':' + Namn FROM dbo.Enhet ORDER BY Kod"
        ),
        ["Abc:Arjeplog", "ABC:Övre", "x:Zinkgruvan"]
    );
    assert_eq!(
        texts(
            &mut copy,
            "SELECT c.name + ' ' + t.name FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id \
             WHERE c.object_id = OBJECT_ID(N'dbo.Enhet') AND c.name = N'Pnr'"
        ),
        ["Pnr char"],
        "an alias type arrives as its base type"
    );
}

#[test]
fn a_case_sensitive_owner_column_routes_by_case() {
    let w = World::with_databases(
        &[
            "CREATE TABLE dbo.Enhet (Kod varchar(10) COLLATE Finnish_Swedish_CS_AS NOT NULL PRIMARY KEY)".into(),
            "ALTER TABLE dbo.Enhet ENABLE CHANGE_TRACKING".into(),
            "INSERT INTO dbo.Enhet VALUES ('abc'), ('ABC'), ('Abc')".into(),
        ],
        [
            "CREATE DATABASE Pmo COLLATE Finnish_Swedish_CI_AS",
            "CREATE DATABASE Kopia",
        ],
    );
    w.configure(
        "[[table]]\nname = \"dbo.Enhet\"\nowner = { column = \"Kod\" }",
        "[\"abc\"]",
    );
    w.cycle();
    assert_eq!(
        texts(&mut w.kopia(), "SELECT Kod FROM dbo.Enhet ORDER BY Kod"),
        ["abc"],
        "'ABC' is not 'abc' in a _CS_ column"
    );
}

/// A snapshot read one row per step (`snapshot_step_rows = 1`) by a
/// composite key whose first column is case-sensitive Swedish varchar:
/// each step continues after the last key in the column's own order
/// (`sql::snapshot_step` compares in the column's type and collation),
/// so no row is skipped or read twice, whatever the case and the Å, Ä, Ö.
#[test]
fn a_snapshot_in_steps_pages_by_a_collated_composite_key() {
    let keys = [
        ("abc", 1),
        ("abc", 2),
        ("Abc", 1),
        ("ABC", 1),
        ("ABC", -5),
        ("Åsa", 1),
        ("Ära", 7),
        ("Zeta", 1),
        ("x", 1),
        ("ö", 3),
        ("o", 3),
        ("O", 3),
    ];
    let values: Vec<String> = keys
        .iter()
        .map(|(k, n)| format!("('{k}', {n}, N'{k}{n}', N'norr')"))
        .collect();
    let w = World::with_databases(
        &[
            "CREATE TABLE dbo.Kod (Kod varchar(10) COLLATE Finnish_Swedish_CS_AS NOT NULL, Nr int NOT NULL, \
             Namn nvarchar(40) NOT NULL, Region nvarchar(10) NOT NULL, PRIMARY KEY (Kod, Nr))"
                .into(),
            "ALTER TABLE dbo.Kod ENABLE CHANGE_TRACKING".into(),
            format!("INSERT INTO dbo.Kod VALUES {}", values.join(", ")),
        ],
        [
            "CREATE DATABASE Pmo COLLATE Finnish_Swedish_CI_AS",
            "CREATE DATABASE Kopia COLLATE Finnish_Swedish_CI_AS",
        ],
    );
    w.configure(
        "[[table]]\nname = \"dbo.Kod\"\nowner = { column = \"Region\" }",
        "[\"NORR\"]",
    );
    let path = w.path("ctferry.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("[publisher]\n", "[publisher]\nsnapshot_step_rows = 1\n", 1),
    )
    .unwrap();
    w.cycle();
    let parts = std::fs::read_dir(w.path("outbox/SE-NORR"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("snapshot")
        })
        .count();
    let mut copy = w.kopia();
    let mut got = texts(&mut copy, "SELECT Namn FROM dbo.Kod");
    got.sort();
    let mut want: Vec<String> = keys.iter().map(|(k, n)| format!("{k}{n}")).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(parts >= keys.len(), "{parts} parts for {} rows", keys.len());
}
