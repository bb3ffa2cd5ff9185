//! mssql-sim through tiberius: login, batches, RPC parameters, result sets,
//! row counts, transactions (T-SQL and TM), cancel, packet size, many
//! connections and SQL Server's errors.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_server_identity() {
    let sim = start();
    let mut c = connect_db(&sim, "master").await;
    let r = ok(
        &mut c,
        "SELECT @@VERSION, SERVERPROPERTY('ProductVersion'), DB_NAME()",
    )
    .await;
    let row = &r[0][0];
    assert!(row
        .get::<&str, _>(0)
        .unwrap()
        .starts_with("Microsoft SQL Server"));
    assert_eq!(row.get::<&str, _>(1).unwrap(), "16.0.1000.6");
    assert_eq!(row.get::<&str, _>(2).unwrap(), "master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_18456_and_missing_database_is_4060() {
    let sim = start();
    let bad = sim.server.ado_string("master").replace(PASSWORD, "nope");
    match try_connect(&bad).await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 18456),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("login with a wrong password succeeded"),
    }
    match try_connect(&sim.server.ado_string("NoSuchDb")).await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 4060),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("login to a missing database succeeded"),
    }
    // The server is still up.
    let mut c = connect_db(&sim, "master").await;
    assert_eq!(scalar_i64(&mut c, "SELECT 1").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_database_use_and_persistence() {
    let sim = start();
    let mut c = connect_db(&sim, "master").await;
    ok(&mut c, "CREATE DATABASE Pmo").await;
    assert_eq!(err_code(&mut c, "CREATE DATABASE pmo").await, 1801);
    assert_eq!(err_code(&mut c, "USE Nope").await, 911);
    ok(
        &mut c,
        "USE pmo; CREATE TABLE dbo.T (Id int PRIMARY KEY, Name nvarchar(20))",
    )
    .await;
    ok(&mut c, "INSERT INTO T (Id, Name) VALUES (1, N'ett')").await;
    let r = ok(&mut c, "SELECT DB_NAME()").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("Pmo"));
    drop(c);
    // Restart on the same folder: the data is still there.
    let dir = sim.dir;
    sim.server.shutdown();
    let server = mssql_sim::Server::start(mssql_sim::Config::new(dir.path(), PASSWORD)).unwrap();
    let sim2 = Sim { server, dir };
    let mut c = connect_db(&sim2, "PMO").await;
    let r = ok(&mut c, "SELECT Name FROM dbo.T WHERE Id = 1").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("ett"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_result_sets_and_row_counts() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(
        &mut c,
        "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v nvarchar(10) NULL)",
    )
    .await;
    let res = c
        .execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL)", &[])
        .await
        .unwrap();
    assert_eq!(res.total(), 3);
    let res = c
        .execute(
            "UPDATE t SET v = N'x' WHERE id >= 2; DELETE FROM t WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(res.rows_affected(), &[2, 1]);
    let sets = ok(
        &mut c,
        "SELECT id FROM t ORDER BY id; SELECT count(*) FROM t; SELECT v FROM t WHERE id = 99",
    )
    .await;
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[0].len(), 2);
    assert_eq!(sets[1][0].get::<i32, _>(0), Some(2));
    assert!(sets[2].is_empty());
    let r = ok(
        &mut c,
        "SET NOCOUNT ON; UPDATE t SET v = 'y'; SELECT @@ROWCOUNT",
    )
    .await;
    assert_eq!(r.last().unwrap()[0].get::<i32, _>(0), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_as_tiberius_sends_them() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(&mut c, "CREATE TABLE p (id int PRIMARY KEY, name nvarchar(50), amount decimal(12,2), at datetime2(3), g uniqueidentifier)").await;
    let g = uuid::Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
    let amount = rust_decimal::Decimal::new(12345, 2);
    let at = chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_milli_opt(13, 14, 15, 678)
        .unwrap();
    c.execute(
        "INSERT INTO p VALUES (@P1, @P2, @P3, @P4, @P5)",
        &[&7i32, &"Åsa", &amount, &at, &g],
    )
    .await
    .unwrap();
    let rows = c
        .query(
            "SELECT id, name, amount, at, g FROM p WHERE name = @P1 AND at = @P2 AND g = @P3",
            &[&"åsa", &at, &g],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "case-insensitive match on name, typed match on datetime2 and GUID"
    );
    let r = &rows[0];
    assert_eq!(r.get::<i32, _>(0), Some(7));
    assert_eq!(r.get::<&str, _>(1), Some("Åsa"));
    assert_eq!(r.get::<rust_decimal::Decimal, _>(2), Some(amount));
    assert_eq!(r.get::<chrono::NaiveDateTime, _>(3), Some(at));
    assert_eq!(r.get::<uuid::Uuid, _>(4), Some(g));
    // NULL parameter and a long string parameter (PLP).
    let long = "x".repeat(9000);
    let rows = c
        .query(
            "SELECT @P1, @P2, LEN(@P2)",
            &[&Option::<i32>::None, &long.as_str()],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows[0].get::<i32, _>(0), None);
    assert_eq!(rows[0].get::<&str, _>(1).map(str::len), Some(9000));
    assert_eq!(rows[0].get::<i32, _>(2), Some(9000));
    // A missing variable is error 137.
    assert_eq!(err_code(&mut c, "SELECT @nope").await, 137);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_in_tsql() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(&mut c, "CREATE TABLE t (id int PRIMARY KEY)").await;
    ok(&mut c, "BEGIN TRAN; INSERT INTO t VALUES (1); SAVE TRAN s1; INSERT INTO t VALUES (2); ROLLBACK TRAN s1; COMMIT").await;
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM t").await, Some(1));
    ok(&mut c, "BEGIN TRANSACTION; INSERT INTO t VALUES (3)").await;
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(1));
    ok(&mut c, "BEGIN TRAN").await;
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(2));
    ok(&mut c, "ROLLBACK").await;
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(0));
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM t").await, Some(1));
    assert_eq!(err_code(&mut c, "COMMIT").await, 3902);
    assert_eq!(err_code(&mut c, "ROLLBACK").await, 3903);
    assert_eq!(err_code(&mut c, "SAVE TRAN x").await, 628);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_via_transaction_manager() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(&mut c, "CREATE TABLE t (id int PRIMARY KEY)").await;
    c.begin_transaction().await.unwrap();
    c.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(1));
    c.rollback_transaction().await.unwrap();
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM t").await, Some(0));
    c.begin_transaction().await.unwrap();
    c.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
    c.commit_transaction().await.unwrap();
    let mut other = connect_db(&sim, "Db1").await;
    assert_eq!(
        scalar_i64(&mut other, "SELECT count(*) FROM t").await,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_writes_are_invisible_to_others_and_rolled_back_on_disconnect() {
    let sim = start();
    let mut a = fresh_db(&sim, "Db1").await;
    ok(&mut a, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut b = connect_db(&sim, "Db1").await;
    ok(&mut a, "BEGIN TRAN; INSERT INTO t VALUES (1)").await;
    assert_eq!(scalar_i64(&mut b, "SELECT count(*) FROM t").await, Some(0));
    drop(a);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(scalar_i64(&mut b, "SELECT count(*) FROM t").await, Some(0));
    ok(&mut b, "INSERT INTO t VALUES (2)").await;
    assert_eq!(scalar_i64(&mut b, "SELECT count(*) FROM t").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_isolation_sees_one_state() {
    let sim = start();
    let mut a = fresh_db(&sim, "Db1").await;
    ok(&mut a, "CREATE TABLE t (id int PRIMARY KEY)").await;
    ok(&mut a, "INSERT INTO t VALUES (1)").await;
    assert_eq!(
        err_code(
            &mut a,
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN"
        )
        .await,
        3952
    );
    ok(&mut a, "ALTER DATABASE Db1 SET ALLOW_SNAPSHOT_ISOLATION ON").await;
    let mut b = connect_db(&sim, "Db1").await;
    ok(
        &mut a,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN",
    )
    .await;
    assert_eq!(scalar_i64(&mut a, "SELECT count(*) FROM t").await, Some(1));
    ok(&mut b, "INSERT INTO t VALUES (2)").await;
    assert_eq!(scalar_i64(&mut b, "SELECT count(*) FROM t").await, Some(2));
    assert_eq!(
        scalar_i64(&mut a, "SELECT count(*) FROM t").await,
        Some(1),
        "the snapshot does not see b's commit"
    );
    // Writing in the snapshot after another commit is an update conflict.
    assert_eq!(err_code(&mut a, "INSERT INTO t VALUES (3)").await, 3960);
    assert_eq!(scalar_i64(&mut a, "SELECT @@TRANCOUNT").await, Some(0));
    assert_eq!(scalar_i64(&mut a, "SELECT count(*) FROM t").await, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sql_server_numbers() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(
        &mut c,
        "CREATE TABLE p (id int PRIMARY KEY, code nvarchar(5) NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "CREATE TABLE ch (id int PRIMARY KEY, pid int NOT NULL REFERENCES p(id))",
    )
    .await;
    ok(&mut c, "INSERT INTO p VALUES (1, 'a')").await;
    assert_eq!(err_code(&mut c, "SELECT * FROM nope").await, 208);
    assert_eq!(err_code(&mut c, "SELECT nope FROM p").await, 207);
    assert_eq!(err_code(&mut c, "SELEC 1").await, 102);
    assert_eq!(err_code(&mut c, "SELECT * FROM WHERE").await, 156);
    assert_eq!(
        err_code(&mut c, "INSERT INTO p VALUES (1, 'b')").await,
        2627
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO p VALUES (2, NULL)").await,
        515
    );
    assert_eq!(err_code(&mut c, "INSERT INTO p (id) VALUES (3)").await, 515);
    assert_eq!(err_code(&mut c, "INSERT INTO ch VALUES (1, 42)").await, 547);
    assert_eq!(
        err_code(&mut c, "INSERT INTO p VALUES (4, 'toolong')").await,
        2628
    );
    assert_eq!(
        err_code(&mut c, "INSERT INTO p VALUES ('x', 'a')").await,
        245
    );
    assert_eq!(
        err_code(&mut c, "SELECT CAST('x' AS decimal(5,2))").await,
        8114
    );
    assert_eq!(err_code(&mut c, "SELECT NOSUCHFUNC(1)").await, 195);
    assert_eq!(
        err_code(&mut c, "WAITFOR DELAY '00:00:01'").await,
        40000,
        "unsupported statements say so"
    );
    // Statement-level errors do not end the batch; the rest runs.
    let r = exec(
        &mut c,
        "INSERT INTO p VALUES (1, 'dup'); INSERT INTO p VALUES (5, 'ok')",
    )
    .await;
    assert!(r.is_err());
    assert_eq!(scalar_i64(&mut c, "SELECT count(*) FROM p").await, Some(2));
    // A conversion error aborts the batch.
    assert!(exec(
        &mut c,
        "SELECT CAST('x' AS int); INSERT INTO p VALUES (6, 'no')"
    )
    .await
    .is_err());
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM p WHERE id = 6").await,
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(&mut c, "CREATE TABLE t (id int PRIMARY KEY, who int)").await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let ado = sim.server.ado_string("Db1");
        tasks.push(tokio::spawn(async move {
            let mut c = try_connect(&ado).await.unwrap();
            for i in 0..20 {
                c.execute("INSERT INTO t VALUES (@P1, @P2)", &[&(w * 1000 + i), &w])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM t").await,
        Some(320)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn larger_packet_size_and_big_results() {
    let sim = start();
    let mut config = tiberius::Config::from_ado_string(&sim.server.ado_string("master")).unwrap();
    config.packet_size(16384);
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .unwrap();
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let mut c = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap();
    ok(&mut c, "CREATE DATABASE Big").await;
    ok(
        &mut c,
        "USE Big; CREATE TABLE t (id int PRIMARY KEY, body nvarchar(max))",
    )
    .await;
    let body = "åäö".repeat(50_000);
    c.execute("INSERT INTO t VALUES (1, @P1)", &[&body.as_str()])
        .await
        .unwrap();
    let r = ok(&mut c, "SELECT body FROM t").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some(body.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_packet_closes_only_that_connection() {
    let sim = start();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = tokio::net::TcpStream::connect(sim.server.addr())
        .await
        .unwrap();
    raw.write_all(&[0x12, 0x01, 0x00, 0x03, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = raw.read(&mut buf).await.unwrap_or(0);
    assert_eq!(
        n, 0,
        "the server closes a connection that sends a malformed packet"
    );
    let mut c = connect_db(&sim, "master").await;
    assert_eq!(scalar_i64(&mut c, "SELECT 42").await, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xact_abort_rolls_back_and_composite_keys_are_enforced() {
    let sim = start();
    let mut c = fresh_db(&sim, "Db1").await;
    ok(&mut c, "CREATE TABLE k (s nvarchar(10) NOT NULL, id int NOT NULL, v int, CONSTRAINT PK_k PRIMARY KEY (s, id))").await;
    ok(
        &mut c,
        "INSERT INTO k VALUES (N'a', 1, 0), (N'a', 2, 0), (N'b', 1, 0)",
    )
    .await;
    // The key is (s, id), compared with the case-insensitive collation.
    assert_eq!(
        err_code(&mut c, "INSERT INTO k VALUES (N'A', 1, 9)").await,
        2627
    );
    // Without XACT_ABORT a constraint error ends only its statement.
    let _ = exec(
        &mut c,
        "BEGIN TRAN; INSERT INTO k VALUES (N'c', 1, 0); INSERT INTO k VALUES (N'a', 1, 0); COMMIT",
    )
    .await;
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(0));
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM k WHERE s = 'c'").await,
        Some(1)
    );
    // With XACT_ABORT ON the whole transaction is rolled back and the batch ends.
    let _ = exec(&mut c, "SET XACT_ABORT ON; BEGIN TRAN; INSERT INTO k VALUES (N'd', 1, 0); INSERT INTO k VALUES (N'a', 1, 0); COMMIT").await;
    assert_eq!(scalar_i64(&mut c, "SELECT @@TRANCOUNT").await, Some(0));
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM k WHERE s = 'd'").await,
        Some(0)
    );
}

/// A gateway (Azure SQL) or failover partner answers the login with a
/// routing ENVCHANGE (MS-TDS 2.2.7.9): tiberius reports where to go.
#[tokio::test]
async fn a_redirecting_server_sends_the_client_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = mssql_sim::Config::new(dir.path(), common::PASSWORD);
    cfg.redirect = Some(("db-2.example.invalid".into(), 11433));
    let gateway = mssql_sim::Server::start(cfg).unwrap();
    match common::try_connect(&gateway.ado_string("master")).await {
        Err(tiberius::error::Error::Routing { host, port }) => {
            assert_eq!((host.as_str(), port), ("db-2.example.invalid", 11433));
        }
        Err(e) => panic!("expected a routing answer, got {e}"),
        Ok(_) => panic!("expected a routing answer, got a session"),
    }
}
