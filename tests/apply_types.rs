//! Column types through the whole path into a caregiver's copy, by bulk load
//! as a real SQL Server takes it: long `nvarchar`/`nchar` columns (which
//! tiberius would declare as `nvarchar(max)` in INSERT BULK while sending
//! them sized, refused by SQL Server with 4816, tiberius issue #322, and by
//! mssql-sim alike) are staged as `nvarchar(max)` and cast back.

#[path = "../mssql-sim/tests/support/relay.rs"]
mod relay;
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

/// The exact `INSERT BULK` statements ctferry causes (tiberius writes them
/// from the stage table's metadata) for every column type it carries, and
/// `nvarchar`/`nchar` at every length boundary: each declares a type that a
/// real SQL Server accepts for the values tiberius then sends (sized stays
/// sized, up to `nvarchar(4000)`; longer is staged and declared `max`), and
/// every load goes through (mssql-sim refuses a max/sized mismatch with 4816
/// as SQL Server does). Pinned so that a tiberius upgrade that changes them
/// is seen here, not at a caregiver.
#[test]
fn insert_bulk_declares_every_column_type_as_a_real_server_accepts_it() {
    let v = |n: usize| format!("N'{}'", "ö".repeat(n));
    let w = World::new(&[
        "CREATE TABLE dbo.Typer (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(40) NOT NULL, \
         B bit NULL, Ti tinyint NULL, Si smallint NULL, Bi bigint NULL, De decimal(18,4) NULL, Nu numeric(5,0) NULL, \
         Mo money NULL, Sm smallmoney NULL, Fl float NULL, Re real NULL, \
         C1 char(1) NULL, C8000 char(8000) NULL, V1 varchar(1) NULL, V8000 varchar(8000) NULL, Vm varchar(max) NULL, \
         N1 nvarchar(1) NULL, N2000 nvarchar(2000) NULL, N2001 nvarchar(2001) NULL, N4000 nvarchar(4000) NULL, Nm nvarchar(max) NULL, \
         Nc1 nchar(1) NULL, Nc2000 nchar(2000) NULL, Nc2001 nchar(2001) NULL, Nc4000 nchar(4000) NULL, \
         Bin binary(16) NULL, Vb varbinary(100) NULL, Vbm varbinary(max) NULL, G uniqueidentifier NULL, \
         D date NULL, T time(7) NULL, Dt datetime NULL, Sdt smalldatetime NULL, Dt2 datetime2(3) NULL, Dto datetimeoffset(7) NULL)"
            .into(),
        "ALTER TABLE dbo.Typer ENABLE CHANGE_TRACKING".into(),
        format!(
            "INSERT INTO dbo.Typer VALUES (1, N'E1', 1, 2, 3, 4, 5.25, 6, 7.5, 8.5, 9.5, 10.5, \
             'a', 'b', 'c', 'd', 'e', {}, {}, {}, {}, {}, {}, {}, {}, {}, \
             0x01, 0x02, 0x03, NEWID(), '2026-11-27', '12:00:00', '2026-11-27 12:00', '2026-11-27 12:00', \
             '2026-11-27 12:00:00.123', '2026-11-27 12:00:00 +01:00'), (2, N'E1', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            v(1), v(2000), v(2001), v(4000), v(5000), v(1), v(2000), v(2001), v(4000)
        ),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Typer\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    // The caregiver's side through a relay that records what ctferry sends.
    let (port, seen) = relay::recording_relay(w.copy.addr());
    let apply = std::fs::read_to_string(w.path("apply.toml"))
        .unwrap()
        .replace(
            &format!("localhost,{}", w.copy.addr().port()),
            &format!("localhost,{port}"),
        );
    std::fs::write(w.path("apply.toml"), apply).unwrap();
    w.cycle();
    // A delta with a changed row and a deleted one: the key stage as well.
    w.pmo()
        .execute(&format!(
            "UPDATE dbo.Typer SET N4000 = {} WHERE Id = 1; DELETE FROM dbo.Typer WHERE Id = 2",
            v(3999)
        ))
        .unwrap();
    w.cycle();
    let bytes = seen.lock().unwrap().clone();
    // The first batch after each login lifts SQL Server's 4096-byte default
    // TEXTSIZE, which would cut long values short.
    let batches = relay::sql_batches(&bytes);
    assert_eq!(
        batches.first().map(String::as_str),
        Some("SET TEXTSIZE 2147483647")
    );
    // Each statement's column list (the stage's name varies with the package).
    let bulk: Vec<String> = relay::sql_batches(&bytes)
        .into_iter()
        .filter_map(|b| {
            let rest = b.strip_prefix("INSERT BULK #ctf_")?;
            Some(rest[rest.find(" (")? + 1..].to_string())
        })
        .collect();
    let rows = "([Id] int, [Enhet] nvarchar(80), [B] bit, [Ti] tinyint, [Si] smallint, [Bi] bigint, \
        [De] decimal(18,4), [Nu] numeric(5,0), [Mo] decimal(19,4), [Sm] decimal(10,4), [Fl] float, [Re] real, \
        [C1] char(1), [C8000] char(8000), [V1] varchar(1), [V8000] varchar(8000), [Vm] varchar(max), \
        [N1] nvarchar(2), [N2000] nvarchar(4000), [N2001] nvarchar(max), [N4000] nvarchar(max), [Nm] nvarchar(max), \
        [Nc1] nchar(2), [Nc2000] nchar(4000), [Nc2001] nvarchar(max), [Nc4000] nvarchar(max), \
        [Bin] binary(16), [Vb] varbinary(100), [Vbm] varbinary(max), [G] uniqueidentifier, \
        [D] date, [T] time, [Dt] datetime2(7), [Sdt] datetime2(7), [Dt2] datetime2(7), [Dto] datetimeoffset)";
    // Snapshot: the rows; delta: the deleted keys, then the changed rows.
    assert_eq!(bulk, vec![rows, "([Id] int)", rows]);
    // And every value arrived exactly: each column, as text, as at the source.
    let cols = [
        "Id", "Enhet", "B", "Ti", "Si", "Bi", "De", "Nu", "Mo", "Sm", "Fl", "Re", "C1", "C8000",
        "V1", "V8000", "Vm", "N1", "N2000", "N2001", "N4000", "Nm", "Nc1", "Nc2000", "Nc2001",
        "Nc4000", "Bin", "Vb", "Vbm", "G", "D", "T", "Dt", "Sdt", "Dt2", "Dto",
    ];
    let select = |db: &mut Db| -> Vec<Option<String>> {
        let list: Vec<String> = cols
            .iter()
            .map(|c| format!("CAST({c} AS nvarchar(max))"))
            .collect();
        let sql = format!("SELECT {} FROM dbo.Typer ORDER BY Id", list.join(", "));
        let rows = db.rows("reading", &sql, &[]).unwrap();
        assert_eq!(rows.len(), 1);
        (0..cols.len()).map(|i| text_at(&rows[0], i)).collect()
    };
    let source = select(&mut w.pmo());
    assert!(source.iter().all(|v| v.is_some()));
    assert_eq!(select(&mut w.kopia()), source);
}

#[test]
fn a_timestamp_column_arrives_as_the_source_rows_version() {
    let w = World::new(&[
        "CREATE TABLE dbo.Journal (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, Text nvarchar(40) NULL, Ver rowversion)".into(),
        "ALTER TABLE dbo.Journal ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Journal (Id, Enhet, Text) VALUES (1, N'E1', N'a'), (2, N'E1', N'b')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Journal\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    let versions = |db: &mut Db| -> Vec<String> {
        db.rows(
            "reading",
            "SELECT CONVERT(varchar(20), Ver, 1) FROM dbo.Journal ORDER BY Id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| text_at(r, 0).unwrap())
        .collect()
    };
    w.cycle();
    let mut pmo = w.pmo();
    assert_eq!(versions(&mut w.kopia()), versions(&mut pmo));
    pmo.execute("UPDATE dbo.Journal SET Text = N'ändrad' WHERE Id = 2")
        .unwrap();
    w.cycle();
    let now = versions(&mut pmo);
    assert_eq!(versions(&mut w.kopia()), now);
    assert_ne!(now[0], now[1]);
    let ty = w
        .kopia()
        .rows(
            "reading the copy's column",
            "SELECT t.name, c.max_length FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(N'dbo.Journal') AND c.name = N'Ver'",
            &[],
        )
        .unwrap();
    assert_eq!(text_at(&ty[0], 0).as_deref(), Some("binary"));
}

#[test]
fn a_computed_column_arrives_as_its_value() {
    let w = World::new(&[
        "CREATE TABLE dbo.Person (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, Fornamn nvarchar(40) NOT NULL, Efternamn nvarchar(40) NOT NULL, Namn AS (Fornamn + N' ' + Efternamn))".into(),
        "ALTER TABLE dbo.Person ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Person (Id, Enhet, Fornamn, Efternamn) VALUES (1, N'E1', N'Åsa', N'Berg')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Person\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w.cycle();
    let name = |db: &mut Db| {
        text_at(
            &db.rows("reading", "SELECT Namn FROM dbo.Person WHERE Id = 1", &[])
                .unwrap()[0],
            0,
        )
    };
    assert_eq!(name(&mut w.kopia()).as_deref(), Some("Åsa Berg"));
    w.pmo()
        .execute("UPDATE dbo.Person SET Efternamn = N'Lind' WHERE Id = 1")
        .unwrap();
    w.cycle();
    assert_eq!(name(&mut w.kopia()).as_deref(), Some("Åsa Lind"));
    // In the copy it is a column of the expression's type holding the value.
    let ty = w
        .kopia()
        .rows(
            "reading the copy's column",
            "SELECT c.is_computed, c.max_length FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(N'dbo.Person') AND c.name = N'Namn'",
            &[],
        )
        .unwrap();
    assert_eq!(ctferry::mssql::client::int_at(&ty[0], 0), Some(0));
    assert_eq!(ctferry::mssql::client::int_at(&ty[0], 1), Some(162));
}

#[test]
fn text_ntext_and_image_columns_arrive_as_max_types_exactly() {
    let long = "å".repeat(9000);
    let w = World::new(&[
        "CREATE TABLE dbo.Journal (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, T text NULL, N ntext NULL, I image NULL)".into(),
        "ALTER TABLE dbo.Journal ENABLE CHANGE_TRACKING".into(),
        format!("INSERT INTO dbo.Journal VALUES (1, N'E1', 'kort text', N'{long}', 0x0102), (2, N'E1', NULL, NULL, NULL)"),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Journal\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w.cycle();
    w.pmo()
        .execute(&format!(
            "UPDATE dbo.Journal SET N = N'{long}x' WHERE Id = 2"
        ))
        .unwrap();
    w.cycle();
    let sql = "SELECT Id, CAST(T AS varchar(max)), CAST(N AS nvarchar(max)), CONVERT(varchar(20), CAST(I AS varbinary(max)), 1) FROM dbo.Journal ORDER BY Id";
    let read = |db: &mut Db| -> Vec<String> {
        db.rows("reading", sql, &[])
            .unwrap()
            .iter()
            .map(|r| {
                (1..4)
                    .map(|i| text_at(r, i).unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    let want = read(&mut w.pmo());
    assert_eq!(read(&mut w.kopia()), want);
    assert!(want[1].ends_with(&format!("{long}x|NULL")));
    let ty = w
        .kopia()
        .rows(
            "reading the copy's columns",
            "SELECT t.name + '(' + CAST(c.max_length AS varchar(5)) + ')' FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(N'dbo.Journal') AND c.column_id > 2 ORDER BY c.column_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| text_at(r, 0).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(ty, ["varchar(-1)", "nvarchar(-1)", "varbinary(-1)"]);
}

#[test]
fn an_xml_column_arrives_as_xml() {
    let w = World::new(&[
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, Dok xml NULL)".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Remiss VALUES (1, N'E1', N'<remiss><text>Ont i knä &amp; höft</text><tom></tom></remiss>'), (2, N'E1', NULL)".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Remiss\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w.cycle();
    let rows = w
        .kopia()
        .rows(
            "reading",
            "SELECT CAST(Dok AS nvarchar(max)) FROM dbo.Remiss ORDER BY Id",
            &[],
        )
        .unwrap();
    assert_eq!(
        text_at(&rows[0], 0).as_deref(),
        Some("<remiss><text>Ont i knä &amp; höft</text><tom/></remiss>")
    );
    assert_eq!(text_at(&rows[1], 0), None);
    // The copy's column is xml again.
    let ty = w
        .kopia()
        .rows(
            "reading the copy's column",
            "SELECT t.name FROM sys.columns AS c JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(N'dbo.Remiss') AND c.name = N'Dok'",
            &[],
        )
        .unwrap();
    assert_eq!(text_at(&ty[0], 0).as_deref(), Some("xml"));
}
