//! Collations through tiberius: the server collation, a database's, a
//! column's; what each compares equal and how each sorts; the catalog and
//! property functions that report them; and SQL Server's errors (468, 447).
//! The same behaviour is checked with python-tds, including the collation
//! bytes on the wire, in tests/clients/pytds_collations.py.
//!
//! Documented behaviour cited: "Collation and Unicode support" and
//! "Collation precedence" (learn.microsoft.com/sql/relational-databases/
//! collations, /sql/t-sql/statements/collation-precedence-transact-sql),
//! DATABASEPROPERTYEX, COLLATIONPROPERTY, sys.databases, sys.columns.

mod common;
use common::*;

async fn strings(c: &mut Conn, sql: &str) -> Vec<String> {
    ok(c, sql).await[0]
        .iter()
        .map(|r| r.get::<&str, _>(0).unwrap_or("NULL").to_string())
        .collect()
}

#[tokio::test]
async fn a_database_collation_is_the_default_of_its_columns_and_literals() {
    let sim = start();
    let mut m = connect_db(&sim, "master").await;
    ok(&mut m, "CREATE DATABASE sv COLLATE Finnish_Swedish_CI_AS").await;
    drop(m);
    let mut c = connect_db(&sim, "sv").await;
    assert_eq!(
        strings(
            &mut c,
            "SELECT CONVERT(nvarchar(128), DATABASEPROPERTYEX('sv', 'Collation')) \
             UNION ALL SELECT CONVERT(nvarchar(128), SERVERPROPERTY('Collation')) \
             UNION ALL SELECT CONVERT(nvarchar(128), DATABASEPROPERTYEX('master', 'Collation'))"
        )
        .await,
        [
            "Finnish_Swedish_CI_AS",
            "SQL_Latin1_General_CP1_CI_AS",
            "SQL_Latin1_General_CP1_CI_AS"
        ]
    );
    ok(
        &mut c,
        "CREATE TABLE dbo.P (id int PRIMARY KEY, namn nvarchar(40) NOT NULL, \
         kod varchar(10) COLLATE Latin1_General_CS_AS NULL, n int NULL)",
    )
    .await;
    ok(
        &mut c,
        "ALTER TABLE dbo.P ADD ort nvarchar(30) COLLATE SQL_Latin1_General_CP1_CS_AS NULL",
    )
    .await;
    assert_eq!(
        strings(
            &mut c,
            "SELECT ISNULL(collation_name, 'NULL') FROM sys.columns \
             WHERE object_id = OBJECT_ID('dbo.P') ORDER BY column_id"
        )
        .await,
        [
            "NULL",
            "Finnish_Swedish_CI_AS",
            "Latin1_General_CS_AS",
            "NULL",
            "SQL_Latin1_General_CP1_CS_AS"
        ]
    );
    assert_eq!(
        strings(
            &mut c,
            "SELECT COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS \
             WHERE TABLE_NAME = 'P' AND COLUMN_NAME = 'namn'"
        )
        .await,
        ["Finnish_Swedish_CI_AS"]
    );
    // Literals are coercible-default: they compare in the database's collation.
    let same = ok(
        &mut c,
        "SELECT CASE WHEN 'ÅSA' = 'åsa' THEN 1 ELSE 0 END, CASE WHEN 'Åsa' > 'Zorn' THEN 1 ELSE 0 END",
    )
    .await;
    assert_eq!(same[0][0].get::<i32, _>(0), Some(1));
    assert_eq!(
        same[0][0].get::<i32, _>(1),
        Some(1),
        "Å after Z in Finnish_Swedish"
    );
    // A CAST result is coercible-default too; compared with a column, the
    // column's collation wins.
    ok(
        &mut c,
        "INSERT INTO dbo.P (id, namn, kod) VALUES (1, N'Åsa', 'abc')",
    )
    .await;
    let n = scalar_i64(
        &mut c,
        "SELECT COUNT(*) FROM dbo.P WHERE CAST('ABC' AS varchar(10)) = kod",
    )
    .await;
    assert_eq!(n, Some(0), "kod is case-sensitive");
}

#[tokio::test]
async fn keys_and_comparisons_follow_the_column_collation() {
    let sim = start();
    let mut c = fresh_db(&sim, "k").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.Cs (kod varchar(10) COLLATE Finnish_Swedish_CS_AS PRIMARY KEY); \
         CREATE TABLE dbo.Ci (kod varchar(10) COLLATE Finnish_Swedish_CI_AS PRIMARY KEY)",
    )
    .await;
    ok(
        &mut c,
        "INSERT INTO dbo.Cs VALUES ('abc'), ('ABC'), ('Abc')",
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.Ci VALUES ('abc')").await;
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.Ci VALUES ('ABC  ')").await,
        2627,
        "trailing blanks and case are ignored by a _CI_ key"
    );
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.Cs WHERE kod = 'ABC'").await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Cs WHERE kod = 'ABC' COLLATE Finnish_Swedish_CI_AS"
        )
        .await,
        Some(3),
        "an explicit COLLATE wins over the column's"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Cs AS s JOIN dbo.Ci AS i ON s.kod COLLATE Finnish_Swedish_CI_AS = i.kod"
        )
        .await,
        Some(3)
    );
    assert_eq!(
        strings(&mut c, "SELECT kod FROM dbo.Cs ORDER BY kod").await,
        ["abc", "Abc", "ABC"],
        "lower case first in a Windows _CS_ collation"
    );
    // A conversion between string types keeps the column's collation.
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.Cs WHERE CAST(kod AS nvarchar(20)) = N'ABC'"
        )
        .await,
        Some(1)
    );
    assert_eq!(
        strings(
            &mut c,
            "SELECT CONVERT(nvarchar(20), kod) FROM dbo.Cs ORDER BY CONVERT(nvarchar(20), kod)"
        )
        .await,
        ["abc", "Abc", "ABC"]
    );
    // Two columns of different collations, neither with COLLATE: 468.
    let e = exec(
        &mut c,
        "SELECT COUNT(*) FROM dbo.Cs AS s JOIN dbo.Ci AS i ON s.kod = i.kod",
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), 468);
    assert_eq!(
        e.message(),
        "Cannot resolve the collation conflict between \"Finnish_Swedish_CS_AS\" and \
         \"Finnish_Swedish_CI_AS\" in the equal to operation."
    );
    assert_eq!(
        err_code(
            &mut c,
            "SELECT 1 FROM dbo.Cs AS s, dbo.Ci AS i WHERE s.kod < i.kod"
        )
        .await,
        468
    );
    // COLLATE on a number: 447. A collation the simulator lacks: refused.
    assert_eq!(
        err_code(&mut c, "SELECT 1 COLLATE Latin1_General_CI_AS").await,
        447
    );
    let e = exec(
        &mut c,
        "CREATE TABLE dbo.J (s nvarchar(5) COLLATE Japanese_CI_AS)",
    )
    .await
    .unwrap_err();
    assert!(
        e.message().contains("Japanese_CI_AS") && e.message().contains("Finnish_Swedish_CS_AS"),
        "{}",
        e.message()
    );
    assert_eq!(
        err_code(&mut c, "CREATE DATABASE j COLLATE Japanese_CI_AS").await,
        40000
    );
}

#[tokio::test]
async fn temp_tables_take_the_server_collation_and_database_default_resolves_it() {
    let sim = start();
    let mut m = connect_db(&sim, "master").await;
    ok(&mut m, "CREATE DATABASE sv COLLATE Finnish_Swedish_CI_AS").await;
    drop(m);
    let mut c = connect_db(&sim, "sv").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.P (id int PRIMARY KEY, namn nvarchar(40)); \
         INSERT INTO dbo.P VALUES (1, N'Åsa'); \
         CREATE TABLE #t (namn nvarchar(40)); INSERT INTO #t VALUES (N'åsa'); \
         CREATE TABLE #u (namn nvarchar(40) COLLATE DATABASE_DEFAULT); INSERT INTO #u VALUES (N'ÅSA')",
    )
    .await;
    assert_eq!(
        err_code(
            &mut c,
            "SELECT COUNT(*) FROM dbo.P AS p JOIN #t AS t ON p.namn = t.namn"
        )
        .await,
        468
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.P AS p JOIN #t AS t ON p.namn = t.namn COLLATE DATABASE_DEFAULT"
        )
        .await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM dbo.P AS p JOIN #u AS u ON p.namn = u.namn"
        )
        .await,
        Some(1)
    );
    // A literal against the #temp column takes the column's collation.
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM #t WHERE namn = N'ÅSA'").await,
        Some(1)
    );
}

#[tokio::test]
async fn the_server_collation_is_set_once_per_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = mssql_sim::Config::new(dir.path(), PASSWORD);
    config.collation = mssql_sim::collation::Collation::parse("Latin1_General_CS_AS").unwrap();
    let server = mssql_sim::Server::start(config).unwrap();
    let sim = Sim {
        server,
        dir: tempfile::tempdir().unwrap(),
    };
    let mut c = connect_db(&sim, "master").await;
    assert_eq!(
        strings(
            &mut c,
            "SELECT CONVERT(nvarchar(128), SERVERPROPERTY('Collation'))"
        )
        .await,
        ["Latin1_General_CS_AS"]
    );
    assert_eq!(
        scalar_i64(&mut c, "SELECT CASE WHEN 'a' = 'A' THEN 1 ELSE 0 END").await,
        Some(0),
        "literals compare in master's collation, the server's"
    );
    ok(&mut c, "CREATE DATABASE d").await;
    assert_eq!(
        strings(
            &mut c,
            "SELECT collation_name FROM sys.databases WHERE name = 'd'"
        )
        .await,
        ["Latin1_General_CS_AS"],
        "a new database takes the server collation"
    );
    let cp = ok(
        &mut c,
        "SELECT COLLATIONPROPERTY('Finnish_Swedish_CI_AS', 'LCID'), \
         COLLATIONPROPERTY('Finnish_Swedish_CI_AS', 'CodePage'), \
         COLLATIONPROPERTY('Latin1_General_CS_AS', 'ComparisonStyle'), \
         COLLATIONPROPERTY('No_Such_Collation', 'LCID')",
    )
    .await;
    assert_eq!(cp[0][0].get::<i32, _>(0), Some(1035));
    assert_eq!(cp[0][0].get::<i32, _>(1), Some(1252));
    assert_eq!(cp[0][0].get::<i32, _>(2), Some(196608));
    assert_eq!(cp[0][0].get::<i32, _>(3), None);
    drop(c);
    sim.server.shutdown();
    // The same folder under another server collation is refused, clearly.
    let again = mssql_sim::Server::start(mssql_sim::Config::new(dir.path(), PASSWORD));
    let msg = again
        .err()
        .expect("a changed server collation is refused")
        .to_string();
    assert!(
        msg.contains("Latin1_General_CS_AS") && msg.contains("--collation"),
        "{msg}"
    );
}

#[tokio::test]
async fn like_matches_as_the_collation_compares() {
    let sim = start();
    let mut m = connect_db(&sim, "master").await;
    ok(&mut m, "CREATE DATABASE sv COLLATE Finnish_Swedish_CI_AS").await;
    drop(m);
    let mut c = connect_db(&sim, "sv").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.P (id int PRIMARY KEY, namn nvarchar(40), \
         kod varchar(10) COLLATE Finnish_Swedish_CS_AS); \
         INSERT INTO dbo.P VALUES (1, N'Åsa Berg', 'Ab-1'), (2, N'Bengt Ek', 'ab-2'), \
         (3, N'Östen Zorn', 'AB_3'), (4, N'50% rabatt', 'x')",
    )
    .await;
    async fn list(c: &mut Conn, sql: &str) -> Vec<i32> {
        ok(c, sql).await[0]
            .iter()
            .map(|r| r.get::<i32, _>(0).unwrap())
            .collect()
    }
    // Case-insensitive column: å matches Å, beyond ASCII.
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE namn LIKE N'å%' ORDER BY id"
        )
        .await,
        [1]
    );
    // Case-sensitive column: 'ab%' is not 'Ab' or 'AB'.
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE kod LIKE 'ab%' ORDER BY id"
        )
        .await,
        [2]
    );
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE kod NOT LIKE 'ab%' ORDER BY id"
        )
        .await,
        [1, 3, 4]
    );
    // Sets and ranges by the collation's order: Å..Ö are the last letters.
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE namn LIKE N'[å-ö]%' ORDER BY id"
        )
        .await,
        [1, 3]
    );
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE kod LIKE '[A-Z][b]_[0-9]' ORDER BY id"
        )
        .await,
        [1]
    );
    // ESCAPE, and `[_]` for a literal underscore.
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE namn LIKE N'50!%%' ESCAPE '!' ORDER BY id"
        )
        .await,
        [4]
    );
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE kod LIKE '%[_]%' ORDER BY id"
        )
        .await,
        [3]
    );
    assert_eq!(
        err_code(
            &mut c,
            "SELECT id FROM dbo.P WHERE namn LIKE N'a%' ESCAPE 'ab'"
        )
        .await,
        506
    );
    // An explicit COLLATE on the pattern wins over the column's.
    assert_eq!(
        list(
            &mut c,
            "SELECT id FROM dbo.P WHERE kod LIKE 'ab%' COLLATE Finnish_Swedish_CI_AS ORDER BY id"
        )
        .await,
        [1, 2, 3]
    );
}
