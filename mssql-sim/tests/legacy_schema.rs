//! What a 25-year-old health-record schema has, through tiberius: alias
//! types, and the types the simulator refuses rather than guesses. Checked
//! with python-tds too, in tests/clients/pytds_legacy_schema.py.
//!
//! Documented behaviour cited: "CREATE TYPE (Transact-SQL)", "DROP TYPE",
//! "sys.types", "sys.columns" (learn.microsoft.com/sql/t-sql/...).

mod common;
use common::*;

#[tokio::test]
async fn alias_types_are_declared_used_listed_and_dropped() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    ok(
        &mut c,
        "CREATE TYPE dbo.Personnummer FROM char(12) NOT NULL; \
         CREATE TYPE Belopp FROM decimal(12, 2) NULL; \
         CREATE TYPE dbo.Anteckning FROM nvarchar(max)",
    )
    .await;
    // sys.types: user-defined, the base's system_type_id, its own user_type_id.
    let t = ok(
        &mut c,
        "SELECT name, system_type_id, user_type_id, max_length, precision, scale, is_nullable, \
         is_user_defined FROM sys.types WHERE is_user_defined = 1 ORDER BY user_type_id",
    )
    .await;
    type TypeRow = (String, u8, i32, i16, u8, u8, bool, bool);
    let rows: Vec<TypeRow> = t[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
                r.get(4).unwrap(),
                r.get(5).unwrap(),
                r.get(6).unwrap(),
                r.get(7).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("Personnummer".into(), 175, 257, 12, 0, 0, false, true),
            ("Belopp".into(), 106, 258, 9, 12, 2, true, true),
            ("Anteckning".into(), 231, 259, -1, 0, 0, true, true),
        ]
    );
    ok(
        &mut c,
        "CREATE TABLE dbo.Patient (Pnr dbo.Personnummer PRIMARY KEY, Namn nvarchar(40) NOT NULL, \
         Skuld Belopp, Noter [dbo].[Anteckning], Extra dbo.Personnummer NULL)",
    )
    .await;
    ok(
        &mut c,
        "ALTER TABLE dbo.Patient ADD Reserv dbo.Personnummer NULL",
    )
    .await;
    // sys.columns: the alias's user_type_id, the base's system_type_id; the
    // alias's nullability unless the column says otherwise.
    let cols = ok(
        &mut c,
        "SELECT c.name, c.system_type_id, c.user_type_id, t.name, c.is_nullable, c.max_length \
         FROM sys.columns c JOIN sys.types t ON t.user_type_id = c.user_type_id \
         WHERE c.object_id = OBJECT_ID('dbo.Patient') ORDER BY c.column_id",
    )
    .await;
    let got: Vec<(String, u8, i32, String, bool, i16)> = cols[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get::<&str, _>(3).unwrap().to_string(),
                r.get(4).unwrap(),
                r.get(5).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Pnr".into(), 175, 257, "Personnummer".into(), false, 12),
            ("Namn".into(), 231, 231, "nvarchar".into(), false, 80),
            ("Skuld".into(), 106, 258, "Belopp".into(), true, 9),
            ("Noter".into(), 231, 259, "Anteckning".into(), true, -1),
            ("Extra".into(), 175, 257, "Personnummer".into(), true, 12),
            ("Reserv".into(), 175, 257, "Personnummer".into(), true, 12),
        ]
    );
    // INFORMATION_SCHEMA.COLUMNS shows the base type.
    assert_eq!(
        ok(
            &mut c,
            "SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'Patient' AND COLUMN_NAME = 'Pnr'"
        )
        .await[0][0]
            .get::<&str, _>(0),
        Some("char")
    );
    // Values are the base type's: char(12) pads, decimal(12,2) rounds, the
    // length is enforced.
    ok(
        &mut c,
        "INSERT INTO dbo.Patient (Pnr, Namn, Skuld) VALUES ('19121212', N'Tolvan', 10.555)",
    )
    .await;
    let r = ok(&mut c, "SELECT Pnr, Skuld FROM dbo.Patient").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("19121212    "));
    assert_eq!(
        r[0][0]
            .get::<tiberius::numeric::Numeric, _>(1)
            .map(|n| n.to_string()),
        Some("10.56".to_string())
    );
    assert_eq!(
        err_code(
            &mut c,
            "INSERT INTO dbo.Patient (Pnr, Namn) VALUES ('1912121212121', N'För lång')"
        )
        .await,
        2628
    );
    assert_eq!(
        err_code(
            &mut c,
            "INSERT INTO dbo.Patient (Namn) VALUES (N'Utan nummer')"
        )
        .await,
        515
    );
    // DECLARE and CAST take alias types too.
    let v = ok(
        &mut c,
        "DECLARE @p dbo.Personnummer = '19121212'; \
         SELECT DATALENGTH(@p), CAST(1.005 AS Belopp), DATALENGTH(CAST('1' AS Personnummer))",
    )
    .await;
    assert_eq!(v[0][0].get::<i32, _>(0), Some(12));
    assert_eq!(
        v[0][0]
            .get::<tiberius::numeric::Numeric, _>(1)
            .map(|n| n.to_string()),
        Some("1.01".to_string())
    );
    assert_eq!(v[0][0].get::<i32, _>(2), Some(12));
    // Errors as SQL Server gives them.
    assert_eq!(
        err_code(&mut c, "CREATE TYPE dbo.Personnummer FROM char(13)").await,
        219
    );
    assert_eq!(err_code(&mut c, "CREATE TYPE nope.X FROM int").await, 2760);
    assert_eq!(
        err_code(&mut c, "CREATE TABLE dbo.X (a dbo.Saknas)").await,
        2715
    );
    assert_eq!(err_code(&mut c, "DROP TYPE dbo.Personnummer").await, 3732);
    assert_eq!(err_code(&mut c, "DROP TYPE dbo.Saknas").await, 218);
    ok(&mut c, "DROP TYPE IF EXISTS dbo.Saknas").await;
    ok(&mut c, "DROP TABLE dbo.Patient; DROP TYPE dbo.Personnummer").await;
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM sys.types WHERE name = 'Personnummer'"
        )
        .await,
        Some(0)
    );
}

#[tokio::test]
async fn types_the_simulator_lacks_are_refused_at_create_table() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    for ty in ["sql_variant", "hierarchyid", "geography", "geometry"] {
        let e = exec(
            &mut c,
            &format!("CREATE TABLE dbo.T (id int PRIMARY KEY, v {ty})"),
        )
        .await
        .unwrap_err();
        assert_eq!((e.code(), e.class()), (40000, 16), "{ty}: {}", e.message());
        assert!(
            e.message().contains("does not support") && e.message().contains(ty),
            "{ty}: {}",
            e.message()
        );
        assert_eq!(
            scalar_i64(&mut c, "SELECT COUNT(*) FROM sys.tables WHERE name = 'T'").await,
            Some(0),
            "{ty}: no table is left behind"
        );
    }
}

/// The 8 bytes of a rowversion as a number.
fn rv(r: &tiberius::Row, i: usize) -> u64 {
    let b: &[u8] = r.get(i).unwrap();
    u64::from_be_bytes(b.try_into().unwrap())
}

#[tokio::test]
async fn timestamp_columns_are_set_by_the_server_on_every_insert_and_update() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    let dbts = |rows: &Vec<Vec<tiberius::Row>>| rv(&rows[0][0], 0);
    let start_at = dbts(&ok(&mut c, "SELECT @@DBTS").await);
    assert_eq!(start_at, 2000, "a new database starts @@DBTS at 0x07D0");
    ok(
        &mut c,
        "CREATE TABLE dbo.Journal (Id int PRIMARY KEY, Text nvarchar(40), Ver rowversion); \
         CREATE TABLE dbo.Old (Id int PRIMARY KEY, Ts timestamp)",
    )
    .await;
    // Inserted rows get consecutive values after @@DBTS, across tables.
    ok(
        &mut c,
        "INSERT INTO dbo.Journal (Id, Text) VALUES (1, N'a'), (2, N'b'); \
         INSERT INTO dbo.Old VALUES (1)",
    )
    .await;
    let r = ok(&mut c, "SELECT Id, Ver FROM dbo.Journal ORDER BY Id").await;
    let (v1, v2) = (rv(&r[0][0], 1), rv(&r[0][1], 1));
    assert_eq!((v1, v2), (2001, 2002));
    let old = rv(&ok(&mut c, "SELECT Ts FROM dbo.Old").await[0][0], 0);
    assert_eq!(old, 2003);
    assert_eq!(dbts(&ok(&mut c, "SELECT @@DBTS").await), 2003);
    assert_eq!(
        rv(&ok(&mut c, "SELECT MIN_ACTIVE_ROWVERSION()").await[0][0], 0),
        2004
    );
    // An update gives the row a new, higher value; other rows keep theirs.
    ok(&mut c, "UPDATE dbo.Journal SET Text = N'A' WHERE Id = 1").await;
    let r = ok(&mut c, "SELECT Id, Ver FROM dbo.Journal ORDER BY Id").await;
    assert_eq!((rv(&r[0][0], 1), rv(&r[0][1], 1)), (2004, 2002));
    // Rows changed since a version: the reason applications keep one.
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Journal WHERE Ver > 0x00000000000007D2"
        )
        .await,
        Some(1)
    );
    // The catalog: timestamp, system_type_id 189, 8 bytes, not nullable.
    let t = ok(
        &mut c,
        "SELECT t.name, c.system_type_id, c.max_length, c.is_nullable FROM sys.columns c \
         JOIN sys.types t ON t.user_type_id = c.user_type_id \
         WHERE c.object_id = OBJECT_ID('dbo.Journal') AND c.name = 'Ver'",
    )
    .await;
    let row = &t[0][0];
    assert_eq!(row.get::<&str, _>(0), Some("timestamp"));
    assert_eq!(row.get::<u8, _>(1), Some(189));
    assert_eq!(row.get::<i16, _>(2), Some(8));
    assert_eq!(row.get::<bool, _>(3), Some(false));
    // SQL Server's errors.
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.Journal (Id, Ver) VALUES (3, 0x01)").await,
        273
    );
    assert_eq!(
        err_code(&mut c, "UPDATE dbo.Journal SET Ver = 0x01").await,
        272
    );
    assert_eq!(
        err_code(&mut c, "CREATE TABLE dbo.Two (a timestamp, b rowversion)").await,
        2738
    );
    // A rolled-back insert draws values that are not given again.
    ok(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.Old VALUES (2); ROLLBACK",
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.Old VALUES (3)").await;
    let three = rv(
        &ok(&mut c, "SELECT Ts FROM dbo.Old WHERE Id = 3").await[0][0],
        0,
    );
    assert_eq!(three, 2006, "2005 went to the rolled-back row");
    // Values survive a restart, and the counter goes on from @@DBTS.
    drop(c);
    let dir = sim.dir.path().to_path_buf();
    sim.server.shutdown();
    let server = mssql_sim::Server::start(mssql_sim::Config::new(&dir, PASSWORD)).unwrap();
    let sim2 = Sim {
        server,
        dir: tempfile::tempdir().unwrap(),
    };
    let mut c = connect_db(&sim2, "pmo").await;
    ok(&mut c, "INSERT INTO dbo.Old VALUES (4)").await;
    let four = rv(
        &ok(&mut c, "SELECT Ts FROM dbo.Old WHERE Id = 4").await[0][0],
        0,
    );
    assert_eq!(four, three + 1);
}

#[tokio::test]
async fn computed_columns_are_computed_listed_and_not_written() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.Person (Id int PRIMARY KEY, Fornamn nvarchar(40) NOT NULL, \
         Efternamn nvarchar(40) NOT NULL, Namn AS (Fornamn + N' ' + Efternamn), \
         Antal smallint NULL, Dubbelt AS (Antal * 2) PERSISTED, \
         Kod AS (CAST(Id AS varchar(10)) + 'X') PERSISTED NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "INSERT INTO dbo.Person (Id, Fornamn, Efternamn, Antal) VALUES (1, N'Åsa', N'Berg', 21); \
         INSERT INTO dbo.Person VALUES (2, N'Bo', N'Ek', NULL)",
    )
    .await;
    let r = ok(&mut c, "SELECT * FROM dbo.Person ORDER BY Id").await;
    let row = &r[0][0];
    assert_eq!(row.get::<&str, _>("Namn"), Some("Åsa Berg"));
    // smallint * 2 is int: the literal 2 is an int, which takes precedence.
    assert_eq!(row.get::<i32, _>("Dubbelt"), Some(42));
    assert_eq!(row.get::<&str, _>("Kod"), Some("1X"));
    assert_eq!(r[0][1].get::<i32, _>("Dubbelt"), None);
    ok(
        &mut c,
        "UPDATE dbo.Person SET Efternamn = N'Lind' WHERE Id = 1",
    )
    .await;
    assert_eq!(
        ok(&mut c, "SELECT Namn FROM dbo.Person WHERE Id = 1").await[0][0].get::<&str, _>(0),
        Some("Åsa Lind")
    );
    // The catalog: is_computed, the type SQL Server gives the expression,
    // and sys.computed_columns with the definition and PERSISTED.
    let cols = ok(
        &mut c,
        "SELECT c.name, t.name, c.max_length, c.is_computed, c.is_nullable FROM sys.columns c \
         JOIN sys.types t ON t.user_type_id = c.user_type_id \
         WHERE c.object_id = OBJECT_ID('dbo.Person') AND c.is_computed = 1 ORDER BY c.column_id",
    )
    .await;
    let got: Vec<(String, String, i16, bool, bool)> = cols[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().into(),
                r.get::<&str, _>(1).unwrap().into(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
                r.get(4).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Namn".into(), "nvarchar".into(), 162, true, true),
            ("Dubbelt".into(), "int".into(), 4, true, true),
            ("Kod".into(), "varchar".into(), 11, true, false),
        ]
    );
    let cc = ok(
        &mut c,
        "SELECT name, is_persisted, definition FROM sys.computed_columns \
         WHERE object_id = OBJECT_ID('dbo.Person') ORDER BY column_id",
    )
    .await;
    assert_eq!(cc[0].len(), 3);
    assert_eq!(cc[0][0].get::<bool, _>(1), Some(false));
    assert_eq!(cc[0][1].get::<bool, _>(1), Some(true));
    assert!(cc[0][0].get::<&str, _>(2).unwrap().contains("Fornamn"));
    // Writing one: 271. NOT NULL without PERSISTED: 8183. One computed
    // column in another's definition: 1759.
    assert_eq!(
        err_code(
            &mut c,
            "INSERT INTO dbo.Person (Id, Fornamn, Efternamn, Namn) VALUES (3, N'a', N'b', N'c')"
        )
        .await,
        271
    );
    assert_eq!(
        err_code(&mut c, "UPDATE dbo.Person SET Namn = N'x'").await,
        271
    );
    assert_eq!(
        err_code(
            &mut c,
            "CREATE TABLE dbo.B (a int PRIMARY KEY, b AS (a + 1) NOT NULL)"
        )
        .await,
        8183
    );
    assert_eq!(
        err_code(
            &mut c,
            "CREATE TABLE dbo.C (a int PRIMARY KEY, b AS (a + 1), d AS (b + 1))"
        )
        .await,
        1759
    );
    let e = exec(&mut c, "ALTER TABLE dbo.Person ADD Dubbel AS (Id * 2)")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 40000, "{}", e.message());
    assert!(e.message().contains("computed column"), "{}", e.message());
}

#[tokio::test]
async fn text_ntext_and_image_are_stored_sent_and_restricted_as_sql_server_does() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    let long = "å".repeat(5000);
    ok(
        &mut c,
        &format!(
            "CREATE TABLE dbo.Anteckning (Id int PRIMARY KEY, T text NULL, N ntext NULL, I image NULL); \
             INSERT INTO dbo.Anteckning VALUES (1, 'kort', N'{long}', 0x0102), (2, NULL, NULL, NULL)"
        ),
    )
    .await;
    // tiberius reads the TDS text types (0x23, 0x63, 0x22) with their text pointers.
    let r = ok(
        &mut c,
        "SELECT T, N, I, DATALENGTH(N) FROM dbo.Anteckning ORDER BY Id",
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("kort"));
    assert_eq!(r[0][0].get::<&str, _>(1), Some(long.as_str()));
    assert_eq!(r[0][0].get::<&[u8], _>(2), Some(&[1u8, 2][..]));
    assert_eq!(r[0][0].get::<i32, _>(3), Some(10000));
    assert_eq!(r[0][1].get::<&str, _>(0), None);
    assert_eq!(r[0][1].get::<&[u8], _>(2), None);
    let types: Vec<String> = r[0][0]
        .columns()
        .iter()
        .take(3)
        .map(|c| format!("{:?}", c.column_type()))
        .collect();
    assert_eq!(types, ["Text", "NText", "Image"]);
    // The catalog.
    let cols = ok(
        &mut c,
        "SELECT t.name, c.system_type_id, c.max_length FROM sys.columns c JOIN sys.types t \
         ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('dbo.Anteckning') \
         AND c.column_id > 1 ORDER BY c.column_id",
    )
    .await;
    let got: Vec<(String, u8, i16)> = cols[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().into(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("text".into(), 35, 16),
            ("ntext".into(), 99, 16),
            ("image".into(), 34, 16)
        ]
    );
    // LIKE, IS NULL and CAST to a max type work; comparing and sorting do not.
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Anteckning WHERE T LIKE 'ko%'"
        )
        .await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Anteckning WHERE T IS NULL"
        )
        .await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Anteckning WHERE CAST(T AS varchar(max)) = 'kort'"
        )
        .await,
        Some(1)
    );
    let e = exec(&mut c, "SELECT Id FROM dbo.Anteckning WHERE T = 'kort'")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 402);
    assert_eq!(
        e.message(),
        "The data types text and varchar are incompatible in the equal to operator."
    );
    assert_eq!(
        err_code(&mut c, "SELECT Id FROM dbo.Anteckning ORDER BY N").await,
        306
    );
    assert_eq!(
        err_code(&mut c, "SELECT N, COUNT(*) FROM dbo.Anteckning GROUP BY N").await,
        306
    );
    assert_eq!(
        err_code(&mut c, "SELECT DISTINCT I FROM dbo.Anteckning").await,
        421
    );
}

#[tokio::test]
async fn xml_is_parsed_serialized_sent_and_restricted_as_sql_server_does() {
    let sim = start();
    let mut c = fresh_db(&sim, "pmo").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.Dok (Id int PRIMARY KEY, X xml NULL); \
         INSERT INTO dbo.Dok VALUES (1, N'<?xml version=\"1.0\"?><remiss id=''7''>\n  <text>Ont i &lt;knä&gt;</text>\n  <tom></tom>\n</remiss>'), (2, NULL)",
    )
    .await;
    let r = ok(
        &mut c,
        "SELECT X, CAST(X AS nvarchar(max)) FROM dbo.Dok ORDER BY Id",
    )
    .await;
    let want = "<remiss id=\"7\"><text>Ont i &lt;knä&gt;</text><tom/></remiss>";
    assert_eq!(
        format!("{:?}", r[0][0].columns()[0].column_type()),
        "Xml",
        "sent as TDS type 0xF1"
    );
    assert_eq!(
        r[0][0]
            .get::<&tiberius::xml::XmlData, _>(0)
            .map(|x| x.to_string()),
        Some(want.to_string())
    );
    assert_eq!(r[0][0].get::<&str, _>(1), Some(want));
    assert!(r[0][1].get::<&tiberius::xml::XmlData, _>(0).is_none());
    // CONVERT style 1 keeps whitespace, the last character of it entitized.
    let r = ok(&mut c, "SELECT CAST(CONVERT(xml, N'<a>   </a>', 1) AS nvarchar(100)), CAST(CAST(N'<a>   </a>' AS xml) AS nvarchar(100))").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("<a>  &#x20;</a>"));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("<a/>"));
    // The catalog.
    let t = ok(
        &mut c,
        "SELECT t.name, c.system_type_id, c.max_length FROM sys.columns c JOIN sys.types t \
         ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID('dbo.Dok') AND c.name = 'X'",
    )
    .await;
    assert_eq!(t[0][0].get::<&str, _>(0), Some("xml"));
    assert_eq!(t[0][0].get::<u8, _>(1), Some(241));
    assert_eq!(t[0][0].get::<i16, _>(2), Some(-1));
    // Malformed XML, comparing and sorting: SQL Server's errors.
    let e = exec(&mut c, "INSERT INTO dbo.Dok VALUES (3, N'<a><b></a>')")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 9436, "{}", e.message());
    assert!(
        e.message().starts_with("XML parsing: line 1, character"),
        "{}",
        e.message()
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.Dok VALUES (3, N'<a>')").await,
        9400
    );
    assert_eq!(
        err_code(&mut c, "SELECT Id FROM dbo.Dok WHERE X = N'<a/>'").await,
        305
    );
    assert_eq!(
        err_code(&mut c, "SELECT Id FROM dbo.Dok ORDER BY X").await,
        305
    );
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.Dok WHERE X IS NULL").await,
        Some(1)
    );
}
