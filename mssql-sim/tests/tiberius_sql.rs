//! The T-SQL subset and the catalog through tiberius: every supported type
//! stored and returned exactly, DDL, DML forms, temp tables, catalog views,
//! and cancel.

mod common;
use common::*;
use tiberius::numeric::Numeric;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_exactly() {
    let sim = start();
    let mut c = fresh_db(&sim, "Types").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.T (id int NOT NULL PRIMARY KEY, b bit, ti tinyint, si smallint, bi bigint,
            d38 decimal(38,10), n9 numeric(9,2), m money, sm smallmoney, f float, r real,
            c char(4), vc varchar(10), vcm varchar(max), nc nchar(3), nvc nvarchar(10), nvm nvarchar(max),
            bin binary(3), vb varbinary(5), vbm varbinary(max), g uniqueidentifier,
            dt date, t0 time(0), t7 time(7), dtm datetime, sdt smalldatetime, d2 datetime2(7), d3 datetime2(3), dto datetimeoffset(7))",
    )
    .await;
    ok(
        &mut c,
        "INSERT INTO dbo.T VALUES (1, 1, 255, -32768, -9223372036854775808,
            12345678901234567890123456.1234567891, -1234567.89, -922337203685477.5808, 214748.3647, 1.5E300, 0.5,
            'ab', 'hello', REPLICATE_NOT_USED, N'z', N'åäö€', N'long',
            0x010203, 0xFF00, 0x00, '00112233-4455-6677-8899-AABBCCDDEEFF',
            '0001-01-01', '23:59:59', '12:34:56.1234567', '2024-01-01 10:00:00.003', '2024-01-01 10:01:29', '9999-12-31 23:59:59.9999999',
            '2024-02-29 12:00:00.1235', '2024-06-30 01:30:00.1234567 +05:45')"
            .replace("REPLICATE_NOT_USED", "'vcmax'")
            .as_str(),
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.T (id) VALUES (2)").await;
    let rows = ok(&mut c, "SELECT * FROM dbo.T ORDER BY id").await;
    let r = &rows[0][0];
    assert_eq!(r.get::<bool, _>("b"), Some(true));
    assert_eq!(r.get::<u8, _>("ti"), Some(255));
    assert_eq!(r.get::<i16, _>("si"), Some(-32768));
    assert_eq!(r.get::<i64, _>("bi"), Some(i64::MIN));
    let d38: Numeric = r.get("d38").unwrap();
    assert_eq!(d38.to_string(), "12345678901234567890123456.1234567891");
    assert_eq!(
        r.get::<Numeric, _>("n9").unwrap().to_string(),
        "-1234567.89"
    );
    assert_eq!(r.get::<f64, _>("m"), Some(-922337203685477.5808));
    assert_eq!(r.get::<f64, _>("f"), Some(1.5e300));
    assert_eq!(r.get::<f32, _>("r"), Some(0.5));
    assert_eq!(r.get::<&str, _>("c"), Some("ab  "));
    assert_eq!(r.get::<&str, _>("vc"), Some("hello"));
    assert_eq!(r.get::<&str, _>("vcm"), Some("vcmax"));
    assert_eq!(r.get::<&str, _>("nc"), Some("z  "));
    assert_eq!(r.get::<&str, _>("nvc"), Some("åäö€"));
    assert_eq!(r.get::<&[u8], _>("bin"), Some(&[1u8, 2, 3][..]));
    assert_eq!(r.get::<&[u8], _>("vb"), Some(&[0xFFu8, 0][..]));
    assert_eq!(r.get::<&[u8], _>("vbm"), Some(&[0u8][..]));
    assert_eq!(
        r.get::<uuid::Uuid, _>("g").unwrap().to_string(),
        "00112233-4455-6677-8899-aabbccddeeff"
    );
    assert_eq!(
        r.get::<chrono::NaiveDate, _>("dt"),
        chrono::NaiveDate::from_ymd_opt(1, 1, 1)
    );
    assert_eq!(
        r.get::<chrono::NaiveTime, _>("t7"),
        chrono::NaiveTime::from_hms_nano_opt(12, 34, 56, 123_456_700)
    );
    assert_eq!(
        r.get::<chrono::NaiveDateTime, _>("d2"),
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 999_999_900)
    );
    assert_eq!(
        r.get::<chrono::NaiveDateTime, _>("d3"),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_milli_opt(12, 0, 0, 124),
        "rounded to scale 3"
    );
    assert_eq!(
        r.get::<chrono::NaiveDateTime, _>("sdt"),
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(10, 1, 0)
    );
    let dto: chrono::DateTime<chrono::FixedOffset> = r.get("dto").unwrap();
    assert_eq!(dto.to_rfc3339(), "2024-06-30T01:30:00.123456700+05:45");
    // The NULL row: every column NULL.
    let n = &rows[0][1];
    for (col, data) in n.cells().skip(1) {
        assert!(
            format!("{data:?}").ends_with("(None)"),
            "{} is NULL, got {data:?}",
            col.name()
        );
    }
    // Declared lengths, precision and NOT NULL are enforced.
    assert_eq!(
        err_code(
            &mut c,
            "INSERT INTO dbo.T (id, nvc) VALUES (3, N'elevenchars')"
        )
        .await,
        2628
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.T (id, n9) VALUES (3, 12345678.5)").await,
        8115
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.T (id, ti) VALUES (3, 256)").await,
        220
    );
    assert_eq!(
        err_code(
            &mut c,
            "INSERT INTO dbo.T (id, dt) VALUES (3, 'not a date')"
        )
        .await,
        241
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.T (id, g) VALUES (3, 'not a guid')").await,
        8169
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_dml_and_queries() {
    let sim = start();
    let mut c = fresh_db(&sim, "Pmo").await;
    ok(&mut c, "CREATE SCHEMA vard").await;
    ok(
        &mut c,
        "CREATE TABLE vard.Vardenhet (Id int NOT NULL, HsaId nvarchar(64) NOT NULL, Namn nvarchar(100) NULL, CONSTRAINT PK_Vardenhet PRIMARY KEY (Id));
         CREATE TABLE vard.Besok (Id bigint NOT NULL PRIMARY KEY, VardenhetId int NOT NULL, Datum date NOT NULL,
             CONSTRAINT FK_Besok_Vardenhet FOREIGN KEY (VardenhetId) REFERENCES vard.Vardenhet(Id));
         CREATE INDEX IX_Besok_Vardenhet ON vard.Besok (VardenhetId);",
    )
    .await;
    ok(&mut c, "INSERT INTO vard.Vardenhet (Id, HsaId, Namn) VALUES (1, 'SE-E001', N'Norr'), (2, 'SE-E002', N'Syd')").await;
    ok(&mut c, "INSERT INTO vard.Besok SELECT 10 + Id, Id, '2024-01-0' + CAST(Id AS varchar(1)) FROM vard.Vardenhet").await;
    let r = ok(&mut c, "SELECT TOP 1 b.Id, v.HsaId FROM vard.Besok b JOIN vard.Vardenhet v ON v.Id = b.VardenhetId WHERE b.Datum >= '2024-01-02' ORDER BY b.Id").await;
    assert_eq!(r[0][0].get::<i64, _>(0), Some(12));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("SE-E002"));
    let r = ok(&mut c, "SELECT v.HsaId, COUNT(*) AS n FROM vard.Vardenhet v LEFT JOIN vard.Besok b ON b.VardenhetId = v.Id GROUP BY v.HsaId ORDER BY v.HsaId").await;
    assert_eq!(r[0].len(), 2);
    // T-SQL DELETE ... FROM ... JOIN and UPDATE ... FROM.
    ok(&mut c, "UPDATE b SET Datum = '2025-05-05' FROM vard.Besok b JOIN vard.Vardenhet v ON v.Id = b.VardenhetId WHERE v.HsaId = 'se-e001'").await;
    let r = ok(&mut c, "SELECT Datum FROM vard.Besok WHERE Id = 11").await;
    assert_eq!(
        r[0][0].get::<chrono::NaiveDate, _>(0),
        chrono::NaiveDate::from_ymd_opt(2025, 5, 5)
    );
    let res = c.execute("DELETE b FROM vard.Besok b JOIN vard.Vardenhet v ON v.Id = b.VardenhetId WHERE v.Namn = N'Syd'", &[]).await.unwrap();
    assert_eq!(res.total(), 1);
    // Foreign keys hold; ALTER TABLE ADD/DROP COLUMN; DROP TABLE order.
    assert_eq!(
        err_code(&mut c, "DELETE FROM vard.Vardenhet WHERE Id = 1").await,
        547
    );
    ok(
        &mut c,
        "ALTER TABLE vard.Vardenhet ADD Aktiv bit NOT NULL DEFAULT 1",
    )
    .await;
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM vard.Vardenhet WHERE Aktiv = 1"
        )
        .await,
        Some(2)
    );
    ok(&mut c, "ALTER TABLE vard.Vardenhet DROP COLUMN Namn").await;
    assert_eq!(
        err_code(&mut c, "SELECT Namn FROM vard.Vardenhet").await,
        207
    );
    assert_eq!(err_code(&mut c, "DROP TABLE vard.Vardenhet").await, 3726);
    // Catalog views describe what exists, with SQL Server's column names.
    let r = ok(
        &mut c,
        "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id ORDER BY t.name",
    )
    .await;
    let names: Vec<(String, String)> = r[0]
        .iter()
        .map(|row| {
            (
                row.get::<&str, _>(0).unwrap().into(),
                row.get::<&str, _>(1).unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("vard".into(), "Besok".into()),
            ("vard".into(), "Vardenhet".into())
        ]
    );
    let r = ok(
        &mut c,
        "SELECT c.name, ty.name, c.max_length, ic.key_ordinal FROM sys.indexes i
         JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
         JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
         JOIN sys.types ty ON ty.user_type_id = c.user_type_id
         WHERE i.object_id = OBJECT_ID('vard.Vardenhet') AND i.is_primary_key = 1 ORDER BY ic.key_ordinal",
    )
    .await;
    assert_eq!(r[0].len(), 1);
    assert_eq!(r[0][0].get::<&str, _>(0), Some("Id"));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("int"));
    let r = ok(
        &mut c,
        "SELECT fk.name, OBJECT_NAME(fk.parent_object_id), pc.name, OBJECT_NAME(fk.referenced_object_id), rc.name
         FROM sys.foreign_keys fk JOIN sys.foreign_key_columns k ON k.constraint_object_id = fk.object_id
         JOIN sys.columns pc ON pc.object_id = k.parent_object_id AND pc.column_id = k.parent_column_id
         JOIN sys.columns rc ON rc.object_id = k.referenced_object_id AND rc.column_id = k.referenced_column_id",
    )
    .await;
    let row = &r[0][0];
    assert_eq!(
        (
            row.get::<&str, _>(0),
            row.get::<&str, _>(1),
            row.get::<&str, _>(2),
            row.get::<&str, _>(3),
            row.get::<&str, _>(4)
        ),
        (
            Some("FK_Besok_Vardenhet"),
            Some("Besok"),
            Some("VardenhetId"),
            Some("Vardenhet"),
            Some("Id")
        )
    );
    let r = ok(&mut c, "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'vard' AND TABLE_NAME = 'Vardenhet' ORDER BY ORDINAL_POSITION").await;
    let cols: Vec<String> = r[0]
        .iter()
        .map(|row| row.get::<&str, _>(0).unwrap().to_string())
        .collect();
    assert_eq!(cols, vec!["Id", "HsaId", "Aktiv"]);
    assert_eq!(r[0][1].get::<i32, _>(2), Some(64));
    assert_eq!(r[0][1].get::<&str, _>(3), Some("NO"));
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES").await,
        Some(2)
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT CASE WHEN OBJECT_ID('vard.Nope') IS NULL THEN 1 ELSE 0 END"
        )
        .await,
        Some(1)
    );
    let r = ok(
        &mut c,
        "SELECT SCHEMA_NAME(schema_id) FROM sys.tables WHERE name = 'besok'",
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("vard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_tables_are_per_connection() {
    let sim = start();
    let mut a = fresh_db(&sim, "Db1").await;
    let mut b = connect_db(&sim, "Db1").await;
    ok(&mut a, "CREATE TABLE #stage (id int PRIMARY KEY, v nvarchar(5)); INSERT INTO #stage VALUES (1, N'a')").await;
    assert_eq!(
        scalar_i64(&mut a, "SELECT COUNT(*) FROM #stage").await,
        Some(1)
    );
    assert_eq!(err_code(&mut b, "SELECT * FROM #stage").await, 208);
    ok(&mut b, "CREATE TABLE #stage (other int)").await;
    assert_eq!(
        err_code(&mut a, "INSERT INTO #stage VALUES (2, N'toolong')").await,
        2628
    );
    ok(&mut a, "DROP TABLE #stage").await;
    assert_eq!(err_code(&mut a, "SELECT * FROM #stage").await, 208);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_scope_identity() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(
        &mut c,
        "CREATE TABLE t (id int IDENTITY(1,1) PRIMARY KEY, v int)",
    )
    .await;
    ok(
        &mut c,
        "INSERT INTO t (v) VALUES (5); INSERT INTO t (v) VALUES (6)",
    )
    .await;
    assert_eq!(scalar_i64(&mut c, "SELECT SCOPE_IDENTITY()").await, Some(2));
    assert_eq!(
        err_code(&mut c, "INSERT INTO t (id, v) VALUES (10, 1)").await,
        544
    );
    ok(
        &mut c,
        "SET IDENTITY_INSERT t ON; INSERT INTO t (id, v) VALUES (10, 1); SET IDENTITY_INSERT t OFF",
    )
    .await;
    assert_eq!(scalar_i64(&mut c, "SELECT MAX(id) FROM t").await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_and_functions() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    let r = ok(
        &mut c,
        "DECLARE @n int = 40; SET @n = @n + 2; SELECT @n, LEN(N'abc  '), UPPER('x') + LOWER('Y'), ISNULL(NULL, 7), COALESCE(NULL, N'c'),
             SUBSTRING('abcdef', 2, 3), LEFT('abcdef', 2), RIGHT('abcdef', 2), CHARINDEX('C', 'abcdef'), CONCAT('a', NULL, 1)",
    )
    .await;
    let row = &r.last().unwrap()[0];
    assert_eq!(row.get::<i32, _>(0), Some(42));
    assert_eq!(row.get::<i32, _>(1), Some(3));
    assert_eq!(row.get::<&str, _>(2), Some("Xy"));
    assert_eq!(row.get::<i32, _>(3), Some(7));
    assert_eq!(row.get::<&str, _>(4), Some("c"));
    assert_eq!(row.get::<&str, _>(5), Some("bcd"));
    assert_eq!(row.get::<&str, _>(6), Some("ab"));
    assert_eq!(row.get::<&str, _>(7), Some("ef"));
    assert_eq!(row.get::<i32, _>(8), Some(3));
    assert_eq!(row.get::<&str, _>(9), Some("a1"));
    let r = ok(
        &mut c,
        "SELECT CAST(SYSUTCDATETIME() AS date), CAST(NEWID() AS nvarchar(36))",
    )
    .await;
    assert!(r[0][0].get::<chrono::NaiveDate, _>(0).is_some());
    assert_eq!(r[0][0].get::<&str, _>(1).map(str::len), Some(36));
}

/// QUOTENAME and DATALENGTH as Microsoft documents them (learn.microsoft.com
/// .../t-sql/functions/quotename-transact-sql: brackets by default, the
/// closing delimiter doubled, nvarchar(258), NULL above 128 characters;
/// .../datalength-transact-sql: bytes stored, trailing blanks counted, int,
/// bigint for the max types, NULL for NULL), over literals and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotename_and_datalength() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.L (Id int NOT NULL PRIMARY KEY, N nvarchar(10) NULL, C char(4) NULL, V varchar(10) NULL, B varbinary(max) NULL, D datetime2(3) NULL)",
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.L VALUES (1, N'åäö ', 'a', 'ab ', 0x010203, '2026-11-27'), (2, NULL, NULL, NULL, NULL, NULL)").await;
    let r = ok(
        &mut c,
        "SELECT QUOTENAME(N'Vård]enhet'), QUOTENAME('x', '{'), QUOTENAME('x', 'z'), DATALENGTH(N), DATALENGTH(C), DATALENGTH(V), DATALENGTH(B), DATALENGTH(D), DATALENGTH(Id) FROM dbo.L ORDER BY Id",
    )
    .await;
    let row = &r[0][0];
    assert_eq!(row.get::<&str, _>(0), Some("[Vård]]enhet]"));
    assert_eq!(row.get::<&str, _>(1), Some("{x}"));
    assert_eq!(row.get::<&str, _>(2), None);
    assert_eq!(row.get::<i32, _>(3), Some(8));
    assert_eq!(row.get::<i32, _>(4), Some(4));
    assert_eq!(row.get::<i32, _>(5), Some(3));
    assert_eq!(row.get::<i64, _>(6), Some(3));
    assert_eq!(row.get::<i32, _>(7), Some(7));
    assert_eq!(row.get::<i32, _>(8), Some(4));
    let nulls = &r[0][1];
    for i in [3, 4, 5, 7] {
        assert_eq!(nulls.get::<i32, _>(i), None, "column {i}");
    }
    assert_eq!(nulls.get::<i64, _>(6), None);
    // HASHBYTES over a column: the UTF-16LE bytes of the nvarchar value
    // (learn.microsoft.com .../t-sql/functions/hashbytes-transact-sql).
    use sha2::Digest;
    let r = ok(&mut c, "SELECT HASHBYTES('SHA2_256', N), HASHBYTES('SHA2_256', CAST(Id AS int)) FROM dbo.L WHERE Id = 1").await;
    let utf16: Vec<u8> = "åäö ".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(
        r[0][0].get::<&[u8], _>(0),
        Some(&sha2::Sha256::digest(&utf16)[..])
    );
    assert_eq!(
        r[0][0].get::<&[u8], _>(1),
        Some(&sha2::Sha256::digest([0, 0, 0, 1])[..])
    );
}

/// STRING_AGG as Microsoft documents it (learn.microsoft.com .../t-sql/
/// functions/string-agg-transact-sql): NULLs skipped, NULL for a group of
/// NULLs, WITHIN GROUP ordering, nvarchar(4000) for nvarchar input, 9829 over
/// 8000 bytes; a non-string input refused (the simulator does not convert
/// it); SUSER_SNAME() is the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_agg_and_suser_sname() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.A (Id int NOT NULL PRIMARY KEY, G int NOT NULL, S nvarchar(3000) NULL)",
    )
    .await;
    let long = |ch: &str| ch.repeat(3000);
    ok(
        &mut c,
        &format!("INSERT INTO dbo.A VALUES (1, 1, N'ö'), (2, 1, N'å'), (3, 1, NULL), (4, 2, NULL), (5, 3, N'{}'), (6, 3, N'{}')", long("x"), long("y")),
    )
    .await;
    let r = ok(
        &mut c,
        "SELECT G, STRING_AGG(S, N'|') WITHIN GROUP (ORDER BY Id DESC), SUSER_SNAME() FROM dbo.A WHERE G < 3 GROUP BY G ORDER BY G",
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(1), Some("å|ö"));
    assert_eq!(r[0][0].get::<&str, _>(2), Some("sa"));
    assert_eq!(r[0][1].get::<&str, _>(1), None);
    let sql = "SELECT STRING_AGG(S, N',') FROM dbo.A WHERE G = 3";
    assert_eq!(err_code(&mut c, sql).await, 9829);
    // CHECKSUM's hash is undocumented: refused as unsupported, not as an
    // unknown function (195).
    assert_eq!(
        err_code(&mut c, "SELECT CHECKSUM(S) FROM dbo.A").await,
        40000
    );
    let r = ok(
        &mut c,
        "SELECT LEN(STRING_AGG(CAST(S AS nvarchar(max)), N',')) FROM dbo.A WHERE G = 3",
    )
    .await;
    assert_eq!(r[0][0].get::<i32, _>(0), Some(6001));
    // INFORMATION_SCHEMA.TABLE_CONSTRAINTS: the key, the foreign key and
    // the UNIQUE constraint.
    ok(&mut c, "CREATE TABLE dbo.R (Id int NOT NULL CONSTRAINT PK_R PRIMARY KEY, AId int NULL CONSTRAINT FK_R_A REFERENCES dbo.A(Id), Kod nvarchar(10) NULL CONSTRAINT UQ_R_Kod UNIQUE)").await;
    let r = ok(
        &mut c,
        "SELECT CONSTRAINT_NAME, CONSTRAINT_TYPE, TABLE_CATALOG FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS WHERE TABLE_NAME = 'R' ORDER BY CONSTRAINT_NAME",
    )
    .await;
    let got: Vec<(String, String, String)> = r[0]
        .iter()
        .map(|row| {
            let s = |i| row.get::<&str, _>(i).unwrap().to_string();
            (s(0), s(1), s(2))
        })
        .collect();
    let want = |n: &str, t: &str| (n.to_string(), t.to_string(), "Db1".to_string());
    assert_eq!(
        got,
        vec![
            want("FK_R_A", "FOREIGN KEY"),
            want("PK_R", "PRIMARY KEY"),
            want("UQ_R_Kod", "UNIQUE")
        ]
    );
    // The UNIQUE constraint in sys.key_constraints, sys.objects and
    // sys.indexes, and a system-generated name when none is given.
    let r = ok(
        &mut c,
        "SELECT k.name, k.type_desc, i.is_unique, i.is_unique_constraint, o.type_desc FROM sys.key_constraints k \
         JOIN sys.indexes i ON i.object_id = k.parent_object_id AND i.index_id = k.unique_index_id \
         JOIN sys.objects o ON o.object_id = k.object_id \
         WHERE k.parent_object_id = OBJECT_ID('dbo.R') AND k.type = 'UQ'",
    )
    .await;
    let row = &r[0][0];
    assert_eq!(row.get::<&str, _>(0), Some("UQ_R_Kod"));
    assert_eq!(row.get::<&str, _>(1), Some("UNIQUE_CONSTRAINT"));
    assert_eq!(row.get::<bool, _>(2), Some(true));
    assert_eq!(row.get::<bool, _>(3), Some(true));
    assert_eq!(row.get::<&str, _>(4), Some("UNIQUE_CONSTRAINT"));
    ok(
        &mut c,
        "CREATE TABLE dbo.U (Id int PRIMARY KEY, Kod int UNIQUE)",
    )
    .await;
    let n = ok(
        &mut c,
        "SELECT name FROM sys.key_constraints WHERE parent_object_id = OBJECT_ID('dbo.U') AND type = 'UQ'",
    )
    .await;
    assert!(n[0][0].get::<&str, _>(0).unwrap().starts_with("UQ__U__"));
    assert_eq!(
        err_code(&mut c, "INSERT INTO dbo.U VALUES (1, 5), (2, 5)").await,
        2627
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_query_and_the_connection_stays_usable() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    // A query that would run for hours.
    let endless = "WITH n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000000) SELECT COUNT(*) FROM n";
    let finished = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        c.simple_query(endless),
    )
    .await
    .is_ok();
    assert!(!finished, "the endless query cannot have finished");
    // ATTENTION: the server interrupts the statement and acknowledges; the
    // connection then answers again. Without a working cancel this hangs.
    tokio::time::timeout(std::time::Duration::from_secs(60), c.cancel_query())
        .await
        .expect("attention acknowledged")
        .unwrap();
    assert_eq!(scalar_i64(&mut c, "SELECT 5").await, Some(5));
}

/// A single-column int or bigint primary key takes no NULL (515), whether
/// inserted or updated: SQLite's rowid alias would assign a value instead.
#[tokio::test]
async fn a_null_int_primary_key_is_515() {
    let sim = common::start();
    let mut c = common::fresh_db(&sim, "Keys").await;
    common::ok(
        &mut c,
        "CREATE TABLE dbo.A (id int NOT NULL PRIMARY KEY, v int NULL); CREATE TABLE dbo.B (id bigint PRIMARY KEY, v int NULL); INSERT INTO dbo.A VALUES (1, 1); INSERT INTO dbo.B VALUES (1, 1)",
    )
    .await;
    for sql in [
        "INSERT INTO dbo.A (id, v) VALUES (NULL, 2)",
        "INSERT INTO dbo.B (id, v) VALUES (NULL, 2)",
        "UPDATE dbo.A SET id = NULL WHERE id = 1",
        "UPDATE dbo.B SET id = NULL",
    ] {
        assert_eq!(common::err_code(&mut c, sql).await, 515, "{sql}");
    }
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.A WHERE id = 1").await,
        Some(1)
    );
}

/// `DB_ID('name')` and `DB_NAME(id)` for any database on the server, NULL
/// for one that does not exist: `IF DB_ID('x') IS NULL CREATE DATABASE x`,
/// the first line of most setup scripts.
#[tokio::test]
async fn db_id_and_db_name_of_any_database() {
    let sim = common::start();
    let mut c = common::connect_db(&sim, "master").await;
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT DB_ID('Setup')").await,
        None
    );
    common::ok(&mut c, "IF DB_ID('Setup') IS NULL CREATE DATABASE Setup").await;
    common::ok(&mut c, "IF DB_ID(N'setup') IS NULL CREATE DATABASE Setup").await;
    let id = common::scalar_i64(&mut c, "SELECT DB_ID(N'Setup')")
        .await
        .unwrap();
    assert!(id > 4, "{id}");
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT DB_ID('master')").await,
        Some(1)
    );
    let r = common::ok(
        &mut c,
        &format!("SELECT DB_NAME({id}), DB_NAME(DB_ID('master')), DB_NAME(32767)"),
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("Setup"));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("master"));
    assert_eq!(r[0][0].get::<&str, _>(2), None);
}

/// "CAST and CONVERT (Transact-SQL)": date and time styles, binary styles,
/// and the default text of a datetime; a style the simulator does not do
/// is refused, never ignored.
#[tokio::test]
async fn convert_styles_are_sql_servers_or_refused() {
    let sim = start();
    let mut c = fresh_db(&sim, "styles").await;
    let r = ok(
        &mut c,
        "DECLARE @d datetime = '2024-01-02 15:04:05.123'; \
         SELECT CONVERT(varchar(30), @d, 120), CONVERT(varchar(30), @d, 121), CONVERT(varchar(30), @d, 126), \
         CONVERT(varchar(8), @d, 112), CONVERT(varchar(10), @d, 23), CAST(@d AS varchar(30)), \
         CONVERT(varchar(30), CAST('2024-01-02 03:04:05.1234567' AS datetime2(7)), 121), \
         CONVERT(varchar(30), CAST('2024-01-02T03:04:05+01:00' AS datetimeoffset(0)), 127), \
         CONVERT(varchar(20), 0x0007D1AB, 1), CONVERT(varchar(20), 0x0007D1AB, 2)",
    )
    .await;
    let row = &r[0][0];
    let got: Vec<&str> = (0..10).map(|i| row.get::<&str, _>(i).unwrap()).collect();
    assert_eq!(
        got,
        [
            "2024-01-02 15:04:05",
            "2024-01-02 15:04:05.123",
            "2024-01-02T15:04:05.123",
            "20240102",
            "2024-01-02",
            "Jan  2 2024  3:04PM",
            "2024-01-02 03:04:05.1234567",
            "2024-01-02T02:04:05Z",
            "0x0007D1AB",
            "0007D1AB"
        ]
    );
    let b = ok(
        &mut c,
        "SELECT CONVERT(varbinary(4), '0x0007D1AB', 1), CONVERT(varbinary(4), '0007d1ab', 2)",
    )
    .await;
    assert_eq!(b[0][0].get::<&[u8], _>(0), Some(&[0, 7, 0xD1, 0xAB][..]));
    assert_eq!(b[0][0].get::<&[u8], _>(1), Some(&[0, 7, 0xD1, 0xAB][..]));
    assert_eq!(
        err_code(&mut c, "SELECT CONVERT(varbinary(4), '0x0G', 1)").await,
        8114
    );
    // dd/mm/yyyy and friends are not done: refused, not ignored.
    let e = exec(&mut c, "SELECT CONVERT(varchar(30), GETDATE(), 103)")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 40000);
    assert!(e.message().contains("style 103"), "{}", e.message());
}

/// "table (Transact-SQL)": a table variable is declared with its columns
/// and constraints, used like a table in the batch, and gone after it.
#[tokio::test]
async fn table_variables_live_for_their_batch() {
    let sim = start();
    let mut c = fresh_db(&sim, "tv").await;
    ok(&mut c, "CREATE TABLE dbo.Patient (Id int PRIMARY KEY, Enhet nvarchar(10)); INSERT INTO dbo.Patient VALUES (1, N'E1'), (2, N'E2'), (3, N'E1')").await;
    let r = ok(
        &mut c,
        "DECLARE @ids TABLE (Id int NOT NULL PRIMARY KEY, Note nvarchar(20) NULL); \
         INSERT INTO @ids (Id) SELECT Id FROM dbo.Patient WHERE Enhet = N'E1'; \
         UPDATE @ids SET Note = N'sedd' WHERE Id = 3; \
         DELETE FROM @ids WHERE Id = 1; \
         SELECT i.Id, i.Note, p.Enhet FROM @ids AS i JOIN dbo.Patient AS p ON p.Id = i.Id",
    )
    .await;
    let last = r.last().unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].get::<i32, _>(0), Some(3));
    assert_eq!(last[0].get::<&str, _>(1), Some("sedd"));
    // Its key is enforced; the next batch does not know it.
    assert_eq!(
        err_code(
            &mut c,
            "DECLARE @k TABLE (Id int PRIMARY KEY); INSERT INTO @k VALUES (1), (1)"
        )
        .await,
        2627
    );
    assert_eq!(err_code(&mut c, "SELECT * FROM @ids").await, 1087);
    assert_eq!(
        err_code(&mut c, "DECLARE @d TABLE (a int); DECLARE @d TABLE (b int)").await,
        134
    );
    // The same name in a new batch is a new, empty table.
    assert_eq!(
        scalar_i64(
            &mut c,
            "DECLARE @ids TABLE (Id int); SELECT COUNT(*) FROM @ids"
        )
        .await,
        Some(0)
    );
}

/// SQL Server checks a key at the end of the statement: shifting
/// consecutive keys by one succeeds, a real duplicate is still 2627.
#[tokio::test]
async fn keys_are_checked_at_the_end_of_the_statement() {
    let sim = start();
    let mut c = fresh_db(&sim, "keys").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.T (Id int PRIMARY KEY, Namn nvarchar(10) NOT NULL, Ver rowversion); \
         INSERT INTO dbo.T (Id, Namn) VALUES (1, N'a'), (2, N'b'), (3, N'c')",
    )
    .await;
    let r = ok(
        &mut c,
        "UPDATE dbo.T SET Id = Id + 1; SELECT Id, Namn FROM dbo.T ORDER BY Id",
    )
    .await;
    let got: Vec<(i32, String)> = r
        .last()
        .unwrap()
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get::<&str, _>(1).unwrap().to_string()))
        .collect();
    assert_eq!(got, [(2, "a".into()), (3, "b".into()), (4, "c".into())]);
    assert_eq!(err_code(&mut c, "UPDATE dbo.T SET Id = 7").await, 2627);
    assert_eq!(
        scalar_i64(&mut c, "SELECT SUM(Id) FROM dbo.T").await,
        Some(9),
        "the failed statement changed nothing"
    );
    // Inside a transaction that rolls back, nothing stays either.
    ok(&mut c, "BEGIN TRAN; UPDATE dbo.T SET Id = Id - 1; ROLLBACK").await;
    assert_eq!(
        scalar_i64(&mut c, "SELECT SUM(Id) FROM dbo.T").await,
        Some(9)
    );
    // Change tracking sees the key update as SQL Server reports one: the
    // old key deleted, the new one inserted.
    ok(
        &mut c,
        "ALTER DATABASE keys SET CHANGE_TRACKING = ON; ALTER TABLE dbo.T ENABLE CHANGE_TRACKING",
    )
    .await;
    let v = scalar_i64(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")
        .await
        .unwrap_or(0);
    ok(&mut c, "UPDATE dbo.T SET Id = Id + 1").await;
    let r = ok(
        &mut c,
        &format!(
            "SELECT Id, SYS_CHANGE_OPERATION FROM CHANGETABLE(CHANGES dbo.T, {v}) AS c ORDER BY Id"
        ),
    )
    .await;
    let ops: Vec<(i32, String)> = r[0]
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get::<&str, _>(1).unwrap().to_string()))
        .collect();
    assert_eq!(ops.first(), Some(&(2, "D".to_string())), "{ops:?}");
    assert_eq!(ops.last(), Some(&(5, "I".to_string())), "{ops:?}");
}
