//! Bulk load (`INSERT BULK` + the bulk-load message, MS-TDS 2.2.6.1) through
//! tiberius's `bulk_insert`, as `ctferry apply` uses it.

mod common;
use common::*;
use tiberius::IntoRow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_insert_loads_rows_with_their_types() {
    let sim = start();
    let mut c = fresh_db(&sim, "Bulk").await;
    ok(
        &mut c,
        "ALTER DATABASE Bulk SET CHANGE_TRACKING = ON;
         CREATE TABLE dbo.T (id int NOT NULL PRIMARY KEY, name nvarchar(50) NULL, amount decimal(18,4) NULL, at datetime2(7) NULL, flag bit NULL);
         ALTER TABLE dbo.T ENABLE CHANGE_TRACKING",
    )
    .await;
    let mut req = c.bulk_insert("dbo.T").await.unwrap();
    let when = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_nano_opt(8, 1, 2, 123_456_700)
        .unwrap();
    for i in 0..1000i32 {
        let name: Option<String> = if i % 10 == 0 {
            None
        } else {
            Some(format!("rad {i} åäö"))
        };
        let amount = tiberius::numeric::Numeric::new_with_scale(i as i128 * 10_001, 4);
        req.send((i, name, amount, when, i % 2 == 0).into_row())
            .await
            .unwrap();
    }
    let res = req.finalize().await.unwrap();
    assert_eq!(res.total(), 1000);
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.T").await,
        Some(1000)
    );
    let rows = ok(
        &mut c,
        "SELECT name, amount, at, flag FROM dbo.T WHERE id = 7",
    )
    .await;
    let r = &rows[0][0];
    assert_eq!(r.get::<&str, _>(0), Some("rad 7 åäö"));
    assert_eq!(
        r.get::<tiberius::numeric::Numeric, _>(1)
            .unwrap()
            .to_string(),
        "7.0007"
    );
    assert_eq!(r.get::<chrono::NaiveDateTime, _>(2), Some(when));
    assert_eq!(r.get::<bool, _>(3), Some(false));
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.T WHERE name IS NULL").await,
        Some(100)
    );
    // One bulk load is one statement: one change tracking version for all rows.
    assert_eq!(
        scalar_i64(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()").await,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_bulk_load_inserts_nothing_and_rolls_back_with_its_transaction() {
    let sim = start();
    let mut c = fresh_db(&sim, "Bulk2").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.T (id int NOT NULL PRIMARY KEY, name nvarchar(5) NULL)",
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.T VALUES (3, N'x')").await;
    // A duplicate key in the middle: 2627, and none of the rows stay.
    let mut req = c.bulk_insert("dbo.T").await.unwrap();
    for i in [1i32, 2, 3, 4] {
        req.send((i, Some("a".to_string())).into_row())
            .await
            .unwrap();
    }
    match req.finalize().await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 2627),
        other => panic!("expected 2627, got {other:?}"),
    }
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.T").await,
        Some(1)
    );
    // A NULL into a NOT NULL column: 515, nothing inserted.
    ok(
        &mut c,
        "CREATE TABLE dbo.U (id int NOT NULL PRIMARY KEY, v int NOT NULL)",
    )
    .await;
    let mut req = c.bulk_insert("dbo.U").await.unwrap();
    req.send((1i32, Some(1i32)).into_row()).await.unwrap();
    req.send((2i32, None::<i32>).into_row()).await.unwrap();
    match req.finalize().await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 515),
        other => panic!("expected 515, got {other:?}"),
    }
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.U").await,
        Some(0)
    );
    // Inside a transaction that is rolled back, bulk-loaded rows go too.
    ok(&mut c, "BEGIN TRAN").await;
    let mut req = c.bulk_insert("dbo.T").await.unwrap();
    for i in 20..30i32 {
        req.send((i, None::<String>).into_row()).await.unwrap();
    }
    assert_eq!(req.finalize().await.unwrap().total(), 10);
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.T").await,
        Some(11)
    );
    ok(&mut c, "ROLLBACK").await;
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.T").await,
        Some(1)
    );
    // Into a temp table (ctferry stages deltas this way).
    ok(
        &mut c,
        "CREATE TABLE #stage (id int NOT NULL PRIMARY KEY, name nvarchar(5) NULL)",
    )
    .await;
    let mut req = c.bulk_insert("#stage").await.unwrap();
    req.send((1i32, Some("b".to_string())).into_row())
        .await
        .unwrap();
    assert_eq!(req.finalize().await.unwrap().total(), 1);
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM #stage").await,
        Some(1)
    );
}

/// tiberius declares an nvarchar(2500) column as `nvarchar(max)` in INSERT
/// BULK (its length in bytes is above 4000) but sends the values sized: SQL
/// Server refuses that with 4816 (tiberius issue #322), and so does the
/// simulator; an nvarchar(max) column, declared and sent as max, loads.
#[tokio::test]
async fn a_max_declaration_for_a_sized_column_is_refused_like_sql_server() {
    let sim = common::start();
    let mut c = common::fresh_db(&sim, "Bcp").await;
    common::ok(
        &mut c,
        "CREATE TABLE dbo.L (id int NOT NULL PRIMARY KEY, t nvarchar(2500) NULL); CREATE TABLE dbo.M (id int NOT NULL PRIMARY KEY, t nvarchar(max) NULL)",
    )
    .await;
    let load = |table: &'static str| {
        let mut row = tiberius::TokenRow::new();
        row.push(tiberius::ColumnData::I32(Some(1)));
        row.push(tiberius::ColumnData::String(Some("kort".into())));
        (table, row)
    };
    let (t, row) = load("dbo.L");
    let e = async {
        let mut req = c.bulk_insert(t).await?;
        req.send(row).await?;
        req.finalize().await
    }
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains("4816") || e.contains("bcp client"), "{e}");
    let (t, row) = load("dbo.M");
    let mut req = c.bulk_insert(t).await.unwrap();
    req.send(row).await.unwrap();
    req.finalize().await.unwrap();
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.M").await,
        Some(1)
    );
}
