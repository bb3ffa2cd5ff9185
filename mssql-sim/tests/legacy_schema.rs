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
