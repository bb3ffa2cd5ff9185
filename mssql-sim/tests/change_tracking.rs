//! Change tracking, checked against Microsoft's documentation.
//!
//! Every test cites what it checks. Pages (learn.microsoft.com, sql-docs):
//! - [CT]    CHANGETABLE (Transact-SQL)
//! - [CUR]   CHANGE_TRACKING_CURRENT_VERSION (Transact-SQL)
//! - [MIN]   CHANGE_TRACKING_MIN_VALID_VERSION (Transact-SQL)
//! - [MASK]  CHANGE_TRACKING_IS_COLUMN_IN_MASK (Transact-SQL)
//! - [CTX]   WITH CHANGE_TRACKING_CONTEXT (Transact-SQL)
//! - [WORK]  Work with change tracking
//! - [MANAGE] Manage change tracking
//! - [ENABLE] Enable and disable change tracking
//! - [CLEAN] Change tracking cleanup and troubleshooting
//! - [CTT]/[CTD] sys.change_tracking_tables / sys.change_tracking_databases
//! - [FLUSH] sys.sp_flush_CT_internal_table_on_demand
//! - [E4K]/[E22K] Database engine errors 4000-4999 / 22000-22999
//!
//! Where the documentation is silent, the expected behaviour is SQL Server
//! 2025's as probed by a third party ([SIM]: RyanLamansky/sql-server-simulator),
//! or inferred ([I]); see ../shared/reference/ct-semantics.md, whose scenario
//! numbers the tests carry.

mod common;
use common::*;

/// A database with CT on and `t(id PK, a, b, c)` (column ids 1-4) tracked
/// with TRACK_COLUMNS_UPDATED = ON.
async fn setup(sim: &Sim, db: &str) -> Conn {
    let mut c = fresh_db(sim, db).await;
    ok(
        &mut c,
        &format!("ALTER DATABASE {db} SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)"),
    )
    .await;
    ok(
        &mut c,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, a int NULL, b int NULL, c nvarchar(20) NULL);
         ALTER TABLE dbo.t ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON)",
    )
    .await;
    c
}

/// `CHANGES dbo.t, v` as "id op version/creation [mask columns]".
async fn changes(c: &mut Conn, table: &str, v: &str) -> Vec<String> {
    let names = ["", "id", "a", "b", "c"];
    let rows = ok(
        c,
        &format!(
            "SELECT ct.id, ct.SYS_CHANGE_OPERATION, ct.SYS_CHANGE_VERSION, ct.SYS_CHANGE_CREATION_VERSION, ct.SYS_CHANGE_COLUMNS
             FROM CHANGETABLE(CHANGES {table}, {v}) AS ct ORDER BY ct.id"
        ),
    )
    .await;
    rows[0]
        .iter()
        .map(|r| {
            let id: i32 = r.get(0).unwrap();
            let op: &str = r.get(1).unwrap();
            let ver: i64 = r.get(2).unwrap();
            let cre = r
                .get::<i64, _>(3)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let mut s = format!("{id} {op} {ver}/{cre}");
            if let Some(mask) = r.get::<&[u8], _>(4) {
                assert_eq!(&mask[..4], &[0, 0, 0, 0]);
                let cols: Vec<&str> = mask[4..]
                    .chunks(4)
                    .map(|ch| names[i32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) as usize])
                    .collect();
                s.push_str(&format!(" [{}]", cols.join(",")));
            }
            s
        })
        .collect()
}

async fn current(c: &mut Conn) -> Option<i64> {
    scalar_i64(c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()").await
}

async fn min_valid(c: &mut Conn, table: &str) -> Option<i64> {
    scalar_i64(
        c,
        &format!("SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('{table}'))"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_start_at_zero_and_are_null_without_ct() {
    let sim = start();
    let mut c = fresh_db(&sim, "Ct1").await;
    // [CUR] "Returns NULL if change tracking is not enabled on the database."
    assert_eq!(current(&mut c).await, None);
    ok(
        &mut c,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, a int)",
    )
    .await;
    // [MIN] NULL when "change tracking is not enabled on the database".
    assert_eq!(min_valid(&mut c, "dbo.t").await, None);
    ok(&mut c, "ALTER DATABASE Ct1 SET CHANGE_TRACKING = ON").await;
    // [MIN] NULL for a table that is not tracked [SIM].
    assert_eq!(min_valid(&mut c, "dbo.t").await, None);
    ok(&mut c, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING").await;
    // Scenario 1 (P): nothing written: CURRENT = 0, MIN_VALID = 0, no changes.
    assert_eq!(current(&mut c).await, Some(0));
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(0));
    assert!(changes(&mut c, "dbo.t", "0").await.is_empty());
    // [CUR] the result type is bigint.
    let r = ok(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS v").await;
    assert_eq!(r[0][0].try_get::<i64, _>(0).unwrap(), Some(0));
    // [ADB] the default retention is 2 days, auto cleanup on; [CTD] units 3 = DAYS.
    let r = ok(&mut c, "SELECT database_id, is_auto_cleanup_on, retention_period, retention_period_units, retention_period_units_desc FROM sys.change_tracking_databases").await;
    let row = &r[0][0];
    assert_eq!(row.get::<i32, _>(0), Some(sim_db_id(&mut c).await));
    assert_eq!(row.get::<bool, _>(1), Some(true));
    assert_eq!(row.get::<i32, _>(2), Some(2));
    assert_eq!(row.get::<u8, _>(3), Some(3));
    assert_eq!(row.get::<&str, _>(4), Some("DAYS"));
}

async fn sim_db_id(c: &mut Conn) -> i32 {
    scalar_i64(c, "SELECT DB_ID()").await.unwrap() as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_version_per_committed_transaction() {
    let sim = start();
    let mut c = setup(&sim, "Ct2").await;
    // Scenario 2 (P): one statement, one transaction, one version for all its rows.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1), (2), (3)").await;
    assert_eq!(current(&mut c).await, Some(1));
    assert_eq!(
        changes(&mut c, "dbo.t", "0").await,
        ["1 I 1/1", "2 I 1/1", "3 I 1/1"]
    );
    assert!(changes(&mut c, "dbo.t", "1").await.is_empty());
    // Scenario 3 (D): [CT] "If NULL is specified, all tracked changes are returned."
    assert_eq!(
        changes(&mut c, "dbo.t", "NULL").await,
        changes(&mut c, "dbo.t", "0").await
    );
    // [MANAGE] "for each committed transaction, a row is added": a transaction of
    // several statements draws one version.
    ok(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.t (id) VALUES (4); UPDATE dbo.t SET a = 1 WHERE id = 1; COMMIT",
    )
    .await;
    assert_eq!(current(&mut c).await, Some(2));
    assert_eq!(
        changes(&mut c, "dbo.t", "1").await,
        ["1 U 2/ [a]", "4 I 2/2"]
    );
    // Scenario 18 (P): a version at or above the current one returns nothing, no error.
    assert!(changes(&mut c, "dbo.t", "99").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_changes_of_insert_update_delete() {
    let sim = start();
    let mut c = setup(&sim, "Ct3").await;
    // Scenario 4 (D+P): [CT] example: insert then update gives I for a version before
    // the insert and U after it; the mask is NULL for I.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1)").await;
    ok(&mut c, "UPDATE dbo.t SET a = 5 WHERE id = 1").await;
    assert_eq!(changes(&mut c, "dbo.t", "0").await, ["1 I 2/1"]);
    assert_eq!(changes(&mut c, "dbo.t", "1").await, ["1 U 2/ [a]"]);

    // Scenario 5 (P): a delete is D; creation is the in-range insert's version.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (2), (3)").await; // @3
    ok(&mut c, "DELETE FROM dbo.t WHERE id = 2").await; // @4
    assert_eq!(changes(&mut c, "dbo.t", "2").await, ["2 D 4/3", "3 I 3/3"]);
    assert_eq!(changes(&mut c, "dbo.t", "3").await, ["2 D 4/"]);

    // Scenario 6 (P): insert then delete, both in range: D (for a key the client
    // may never have seen), creation = the insert's version.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (4)").await; // @5
    ok(&mut c, "DELETE FROM dbo.t WHERE id = 4").await; // @6
    assert_eq!(changes(&mut c, "dbo.t", "4").await, ["4 D 6/5"]);

    // Scenario 7 (D+P): [CT] delete then re-insert is an update "to all columns":
    // U, mask NULL, creation = the re-insert's version.
    ok(&mut c, "DELETE FROM dbo.t WHERE id = 3").await; // @7
    ok(&mut c, "INSERT INTO dbo.t (id, a) VALUES (3, 9)").await; // @8
    assert_eq!(changes(&mut c, "dbo.t", "6").await, ["3 U 8/8"]);
    // Seen from before the first insert of 3 it is an insert.
    assert_eq!(
        changes(&mut c, "dbo.t", "2").await,
        ["2 D 4/3", "3 I 8/8", "4 D 6/5"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_key_updates_are_delete_plus_insert() {
    let sim = start();
    let mut c = setup(&sim, "Ct4").await;
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1), (2), (3)").await; // @1
                                                                     // Scenario 8 (D+P): [CT] "an update to a primary key column ... will be shown as
                                                                     // a delete and an insert".
    ok(&mut c, "UPDATE dbo.t SET id = id + 10 WHERE id < 3").await; // @2
    assert_eq!(
        changes(&mut c, "dbo.t", "1").await,
        ["1 D 2/", "2 D 2/", "11 I 2/2", "12 I 2/2"]
    );
    // Scenario 10 (P): SET id = id, the value unchanged, is still delete + insert,
    // which nets to U with a NULL mask.
    ok(&mut c, "UPDATE dbo.t SET id = id WHERE id = 3").await; // @3
    assert_eq!(changes(&mut c, "dbo.t", "2").await, ["3 U 3/3"]);
    // (P) one statement records all its deletes before its inserts: shifting
    // 11, 12 down by one gives 10 I, 11 U (deleted, then inserted), 12 D.
    // (Shifting up, `id + 1`, fails in mssql-sim with 2627: SQLite checks
    // uniqueness row by row, SQL Server at the end of the statement.)
    ok(&mut c, "UPDATE dbo.t SET id = id - 1 WHERE id > 10").await; // @4
    assert_eq!(
        changes(&mut c, "dbo.t", "3").await,
        ["10 I 4/4", "11 U 4/4", "12 D 4/"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_work_leaves_no_trace() {
    let sim = start();
    let mut c = setup(&sim, "Ct5").await;
    // Scenario 13 (P): a rollback, and a rollback to a savepoint, draw no version
    // and record no change.
    ok(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.t (id) VALUES (1); ROLLBACK",
    )
    .await;
    assert_eq!(current(&mut c).await, Some(0));
    ok(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.t (id) VALUES (4); SAVE TRAN s; INSERT INTO dbo.t (id) VALUES (5); ROLLBACK TRAN s; COMMIT",
    )
    .await;
    assert_eq!(current(&mut c).await, Some(1));
    assert_eq!(changes(&mut c, "dbo.t", "0").await, ["4 I 1/1"]);
    // A failed statement (duplicate key) inside a transaction records nothing.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (6)").await; // @2
    let _ = exec(&mut c, "INSERT INTO dbo.t (id) VALUES (7), (6)").await;
    assert_eq!(current(&mut c).await, Some(2));
    assert_eq!(changes(&mut c, "dbo.t", "1").await, ["6 I 2/2"]);
    // Scenario 14 (P): an UPDATE that matches no row draws no version; SET a = a
    // on an existing row does, and reports U.
    ok(&mut c, "UPDATE dbo.t SET a = 1 WHERE id = 99").await;
    assert_eq!(current(&mut c).await, Some(2));
    ok(&mut c, "UPDATE dbo.t SET a = a WHERE id = 4").await;
    assert_eq!(current(&mut c).await, Some(3));
    assert_eq!(changes(&mut c, "dbo.t", "2").await, ["4 U 3/ [a]"]);
    // Writes to untracked tables draw no version [SIM].
    ok(
        &mut c,
        "CREATE TABLE dbo.u (id int PRIMARY KEY); INSERT INTO dbo.u VALUES (1)",
    )
    .await;
    assert_eq!(current(&mut c).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_updated_mask() {
    let sim = start();
    let mut c = setup(&sim, "Ct6").await;
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1), (2), (3)").await; // @1
                                                                     // [CT] SYS_CHANGE_COLUMNS lists the updated columns; the union over the
                                                                     // updates in range, in the order first set [SIM].
    ok(&mut c, "UPDATE dbo.t SET c = N'x' WHERE id = 1").await; // @2
    ok(&mut c, "UPDATE dbo.t SET a = 1, c = N'y' WHERE id = 1").await; // @3
                                                                       // [CT] NULL when "all non-primary key columns were updated".
    ok(
        &mut c,
        "UPDATE dbo.t SET a = 1, b = 2, c = N'z' WHERE id = 2",
    )
    .await; // @4
    assert_eq!(
        changes(&mut c, "dbo.t", "1").await,
        ["1 U 3/ [c,a]", "2 U 4/"]
    );
    assert_eq!(
        changes(&mut c, "dbo.t", "2").await,
        ["1 U 3/ [a,c]", "2 U 4/"]
    );
    // [MASK] with COLUMNPROPERTY(..., 'ColumnId'), as [WORK] shows it.
    let r = ok(
        &mut c,
        "SELECT CHANGE_TRACKING_IS_COLUMN_IN_MASK(COLUMNPROPERTY(OBJECT_ID('dbo.t'), 'a', 'ColumnId'), ct.SYS_CHANGE_COLUMNS) AS a_changed,
                CHANGE_TRACKING_IS_COLUMN_IN_MASK(COLUMNPROPERTY(OBJECT_ID('dbo.t'), 'b', 'ColumnId'), ct.SYS_CHANGE_COLUMNS) AS b_changed
         FROM CHANGETABLE(CHANGES dbo.t, 1) AS ct WHERE ct.id = 1",
    )
    .await;
    assert_eq!(r[0][0].get::<i32, _>(0), Some(1));
    assert_eq!(r[0][0].get::<i32, _>(1), Some(0));
    // [MASK] a NULL mask means every column may have changed: 1.
    assert_eq!(
        scalar_i64(&mut c, "SELECT CHANGE_TRACKING_IS_COLUMN_IN_MASK(2, NULL)").await,
        Some(1)
    );
    // (P) a mask shorter than 8 bytes is error 22101.
    assert_eq!(
        err_code(
            &mut c,
            "SELECT CHANGE_TRACKING_IS_COLUMN_IN_MASK(2, 0x0000)"
        )
        .await,
        22101
    );
    // [CT] NULL "if column tracking is not enabled".
    ok(
        &mut c,
        "CREATE TABLE dbo.n (id int PRIMARY KEY, a int); ALTER TABLE dbo.n ENABLE CHANGE_TRACKING;
         INSERT INTO dbo.n VALUES (1, 1)",
    )
    .await;
    let v = current(&mut c).await.unwrap();
    ok(&mut c, "UPDATE dbo.n SET a = 2").await;
    let r = ok(
        &mut c,
        &format!("SELECT SYS_CHANGE_OPERATION, SYS_CHANGE_COLUMNS FROM CHANGETABLE(CHANGES dbo.n, {v}) AS x"),
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("U"));
    assert_eq!(r[0][0].get::<&[u8], _>(1), None);
    // [CTT] is_track_columns_updated_on reflects the option.
    let r = ok(&mut c, "SELECT OBJECT_NAME(object_id), is_track_columns_updated_on FROM sys.change_tracking_tables ORDER BY 1").await;
    assert_eq!(r[0].len(), 2);
    assert_eq!(r[0][0].get::<&str, _>(0), Some("n"));
    assert_eq!(r[0][0].get::<bool, _>(1), Some(false));
    assert_eq!(r[0][1].get::<bool, _>(1), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascaded_deletes_share_the_statements_version() {
    // [CT] 1.7 of the reference: FK cascades are tracked with the firing
    // statement's version [SIM].
    let sim = start();
    let mut c = setup(&sim, "Ct17").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.parent (id int NOT NULL PRIMARY KEY);
         CREATE TABLE dbo.child (id int NOT NULL PRIMARY KEY, parent_id int NOT NULL REFERENCES dbo.parent(id) ON DELETE CASCADE);
         ALTER TABLE dbo.parent ENABLE CHANGE_TRACKING; ALTER TABLE dbo.child ENABLE CHANGE_TRACKING;
         INSERT INTO dbo.parent VALUES (1); INSERT INTO dbo.child VALUES (10, 1), (11, 1);",
    )
    .await;
    ok(&mut c, "DELETE FROM dbo.parent WHERE id = 1").await; // @3
    assert_eq!(current(&mut c).await, Some(3));
    let r = ok(
        &mut c,
        "SELECT c.id, c.SYS_CHANGE_OPERATION, c.SYS_CHANGE_VERSION FROM CHANGETABLE(CHANGES dbo.child, 2) AS c ORDER BY c.id",
    )
    .await;
    let got: Vec<(i32, String, i64)> = r[0]
        .iter()
        .map(|x| {
            (
                x.get(0).unwrap(),
                x.get::<&str, _>(1).unwrap().to_string(),
                x.get(2).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(10, "D".to_string(), 3), (11, "D".to_string(), 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_tracking_context() {
    let sim = start();
    let mut c = setup(&sim, "Ct7").await;
    // [CTX] the context of the statement that last changed the row is returned in
    // SYS_CHANGE_CONTEXT; without the clause it is NULL.
    ok(
        &mut c,
        "DECLARE @ctx varbinary(128) = CAST('app-1' AS varbinary(128));
         WITH CHANGE_TRACKING_CONTEXT (@ctx) INSERT INTO dbo.t (id) VALUES (1), (2);",
    )
    .await;
    ok(&mut c, "UPDATE dbo.t SET a = 1 WHERE id = 2").await;
    let r = ok(
        &mut c,
        "SELECT ct.id, ct.SYS_CHANGE_CONTEXT FROM CHANGETABLE(CHANGES dbo.t, 0) AS ct ORDER BY ct.id",
    )
    .await;
    assert_eq!(r[0][0].get::<&[u8], _>(1), Some(&b"app-1"[..]));
    assert_eq!(r[0][1].get::<&[u8], _>(1), None);
    // [E22K] 22109: the context must be varbinary(128) at most.
    assert_eq!(
        err_code(
            &mut c,
            "DECLARE @ctx nvarchar(10) = N'x'; WITH CHANGE_TRACKING_CONTEXT (@ctx) UPDATE dbo.t SET a = 2"
        )
        .await,
        22109
    );
    assert_eq!(
        err_code(
            &mut c,
            "DECLARE @ctx varbinary(200) = 0x01; WITH CHANGE_TRACKING_CONTEXT (@ctx) UPDATE dbo.t SET a = 2"
        )
        .await,
        22109
    );
    // [E22K] 22108: not with a SELECT.
    assert_eq!(
        err_code(
            &mut c,
            "DECLARE @ctx varbinary(128) = 0x01; WITH CHANGE_TRACKING_CONTEXT (@ctx) SELECT 1"
        )
        .await,
        22108
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_disable_discard_history() {
    let sim = start();
    let mut c = setup(&sim, "Ct8").await;
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1), (2)").await; // @1
                                                                // Scenario 15 (D+P): [MANAGE] TRUNCATE "is the same as change tracking being
                                                                // disabled, and then reenabled": MIN_VALID = CURRENT, no version drawn, and
                                                                // the earlier changes are gone (a client at 0 must reinitialise).
    ok(&mut c, "BEGIN TRAN; TRUNCATE TABLE dbo.t; ROLLBACK").await;
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(0));
    assert_eq!(changes(&mut c, "dbo.t", "0").await.len(), 2);
    ok(&mut c, "TRUNCATE TABLE dbo.t").await;
    assert_eq!(current(&mut c).await, Some(1));
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(1));
    assert!(changes(&mut c, "dbo.t", "0").await.is_empty());
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (3)").await; // @2
    assert_eq!(changes(&mut c, "dbo.t", "0").await, ["3 I 2/2"]);
    // [CTT] begin_version is reset by TRUNCATE.
    let r = ok(
        &mut c,
        "SELECT begin_version, cleanup_version, min_valid_version FROM sys.change_tracking_tables",
    )
    .await;
    assert_eq!(r[0][0].get::<i64, _>(0), Some(1));
    assert_eq!(r[0][0].get::<i64, _>(2), Some(1));

    // Scenario 16 (D+P): DISABLE, database OFF then ON, ENABLE: the counter
    // survives, MIN_VALID = CURRENT, history is gone, and nothing drew a version.
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (4)").await; // @3
    ok(&mut c, "ALTER TABLE dbo.t DISABLE CHANGE_TRACKING").await;
    // [CT]/[E22K] 22105 for CHANGETABLE on a table no longer tracked.
    assert_eq!(
        err_code(&mut c, "SELECT * FROM CHANGETABLE(CHANGES dbo.t, 0) AS x").await,
        22105
    );
    ok(&mut c, "ALTER DATABASE Ct8 SET CHANGE_TRACKING = OFF").await;
    assert_eq!(current(&mut c).await, None);
    assert_eq!(
        ok(&mut c, "SELECT * FROM sys.change_tracking_databases").await[0].len(),
        0
    );
    ok(&mut c, "ALTER DATABASE Ct8 SET CHANGE_TRACKING = ON").await;
    ok(&mut c, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING").await;
    assert_eq!(current(&mut c).await, Some(3));
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(3));
    assert!(changes(&mut c, "dbo.t", "0").await.is_empty());
    // DROP TABLE removes the tracking with the table [MANAGE].
    ok(&mut c, "DROP TABLE dbo.t").await;
    assert_eq!(
        ok(&mut c, "SELECT * FROM sys.change_tracking_tables").await[0].len(),
        0
    );
    ok(&mut c, "ALTER DATABASE Ct8 SET CHANGE_TRACKING = OFF").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_cleanup_moves_min_valid_version() {
    let sim = start();
    let mut c = fresh_db(&sim, "Ct9").await;
    ok(
        &mut c,
        "ALTER DATABASE Ct9 SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 1 HOURS, AUTO_CLEANUP = OFF);
         CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, a int NULL, b int NULL, c nvarchar(20) NULL);
         ALTER TABLE dbo.t ENABLE CHANGE_TRACKING",
    )
    .await;
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1)").await; // @1
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (2)").await; // @2
    ok(&mut c, "EXEC mssql_sim.advance_clock @seconds = 7200").await;
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (3)").await; // @3, within retention
                                                           // [ADB] with AUTO_CLEANUP OFF nothing is removed, however old.
    ok(&mut c, "SELECT 1").await;
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(0));
    assert_eq!(changes(&mut c, "dbo.t", "0").await.len(), 3);
    // [FLUSH]/[CLEAN] the on-demand cleanup removes what retention no longer
    // covers: versions 1 and 2; MIN_VALID becomes 2 ([CTT] cleanup_version).
    ok(
        &mut c,
        "DECLARE @n bigint; EXEC sys.sp_flush_CT_internal_table_on_demand @DeletedRowCount = @n OUTPUT; SELECT @n",
    )
    .await;
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(2));
    // Scenario 25 (I): changes after the watermark are intact.
    assert_eq!(changes(&mut c, "dbo.t", "2").await, ["3 I 3/3"]);
    // Scenario 17 (D): [MIN] a client below MIN_VALID gets no error, only the
    // changes that survived; it must compare with MIN_VALID itself.
    assert_eq!(changes(&mut c, "dbo.t", "0").await, ["3 I 3/3"]);
    // [WORK] the documented check.
    let r = ok(
        &mut c,
        "DECLARE @last bigint = 0;
         IF @last < CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.t')) SELECT 'reinitialize' ELSE SELECT 'sync'",
    )
    .await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("reinitialize"));
    // [CTT] cleanup_version.
    let r = ok(
        &mut c,
        "SELECT cleanup_version FROM sys.change_tracking_tables",
    )
    .await;
    assert_eq!(r[0][0].get::<i64, _>(0), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_cleanup_honours_retention() {
    let sim = start();
    let mut c = setup(&sim, "Ct10").await; // 2 DAYS, AUTO_CLEANUP ON
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (1)").await; // @1
                                                           // [CLEAN] the cleanup task runs every 30 minutes and removes what is older
                                                           // than the retention: one day later nothing is gone.
    sim.server.advance_clock(86_400);
    ok(&mut c, "INSERT INTO dbo.t (id) VALUES (2)").await; // @2
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(0));
    // Two days and an hour after version 1 it is gone; version 2 (one day and an
    // hour old) stays.
    sim.server.advance_clock(86_400 + 3_600);
    ok(&mut c, "SELECT 1").await;
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(1));
    assert_eq!(changes(&mut c, "dbo.t", "0").await, ["2 I 2/2"]);
    // [ADB] the retention can be changed in place ([CLEAN] example).
    ok(
        &mut c,
        "ALTER DATABASE Ct10 SET CHANGE_TRACKING (CHANGE_RETENTION = 90 MINUTES)",
    )
    .await;
    let r = ok(
        &mut c,
        "SELECT retention_period, retention_period_units_desc FROM sys.change_tracking_databases",
    )
    .await;
    assert_eq!(r[0][0].get::<i32, _>(0), Some(90));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("MINUTES"));
    sim.server.advance_clock(1_800);
    ok(&mut c, "SELECT 1").await;
    assert_eq!(min_valid(&mut c, "dbo.t").await, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_form_and_composite_keys() {
    let sim = start();
    let mut c = fresh_db(&sim, "Ct11").await;
    // Scenario 20 (D+P).
    ok(
        &mut c,
        "ALTER DATABASE Ct11 SET CHANGE_TRACKING = ON;
         CREATE TABLE dbo.k (id int NOT NULL, s nvarchar(10) NOT NULL, a int NULL, CONSTRAINT PK_k PRIMARY KEY (s, id));
         INSERT INTO dbo.k VALUES (1, N'x', 0);
         ALTER TABLE dbo.k ENABLE CHANGE_TRACKING;
         INSERT INTO dbo.k VALUES (2, N'x', 0), (3, N'y', 0);
         UPDATE dbo.k SET a = 1 WHERE id = 2;
         DELETE FROM dbo.k WHERE id = 3;",
    )
    .await;
    // [CT] CHANGES columns: the five system columns, then the key columns in
    // key order [SIM].
    let r = ok(
        &mut c,
        "SELECT * FROM CHANGETABLE(CHANGES dbo.k, 0) AS c ORDER BY c.id",
    )
    .await;
    let names: Vec<&str> = r[0][0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "SYS_CHANGE_VERSION",
            "SYS_CHANGE_CREATION_VERSION",
            "SYS_CHANGE_OPERATION",
            "SYS_CHANGE_COLUMNS",
            "SYS_CHANGE_CONTEXT",
            "s",
            "id"
        ]
    );
    let types: Vec<tiberius::ColumnType> =
        r[0][0].columns().iter().map(|c| c.column_type()).collect();
    assert_eq!(types[0], tiberius::ColumnType::Int8);
    assert_eq!(types[2], tiberius::ColumnType::NChar);
    assert_eq!(types[3], tiberius::ColumnType::BigVarBin);
    assert_eq!(types[6], tiberius::ColumnType::Int4);
    assert_eq!(r[0].len(), 2);
    assert_eq!(r[0][0].get::<&str, _>(2), Some("I"));
    assert_eq!(r[0][1].get::<&str, _>(2), Some("D"));
    // [CT] VERSION: the last change's version, NULL for a row unchanged since
    // tracking began; a deleted row is not returned.
    let r = ok(
        &mut c,
        "SELECT k.id, v.SYS_CHANGE_VERSION FROM dbo.k AS k
         CROSS APPLY CHANGETABLE(VERSION dbo.k, (id, s), (k.id, k.s)) AS v ORDER BY k.id",
    )
    .await;
    let got: Vec<(i32, Option<i64>)> = r[0].iter().map(|x| (x.get(0).unwrap(), x.get(1))).collect();
    assert_eq!(got, [(1, None), (2, Some(2))]);
    // [CT] a key that does not exist returns no row.
    let r = ok(
        &mut c,
        "SELECT v.SYS_CHANGE_VERSION FROM CHANGETABLE(VERSION dbo.k, (id, s), (3, N'y')) AS v",
    )
    .await;
    assert!(r[0].is_empty());
    let r = ok(
        &mut c,
        "SELECT v.id, v.s, v.SYS_CHANGE_VERSION, v.SYS_CHANGE_CONTEXT FROM CHANGETABLE(VERSION dbo.k, (s, id), (N'X', 2)) AS v",
    )
    .await;
    assert_eq!(r[0][0].get::<i64, _>(2), Some(2));
    // [E22K] VERSION argument errors.
    for (sql, code) in [
        (
            "SELECT * FROM CHANGETABLE(VERSION dbo.k, (id), (1)) AS v",
            22110,
        ),
        (
            "SELECT * FROM CHANGETABLE(VERSION dbo.k, (id, a), (1, 1)) AS v",
            22111,
        ),
        (
            "SELECT * FROM CHANGETABLE(VERSION dbo.k, (id, id), (1, 1)) AS v",
            22112,
        ),
        (
            "SELECT * FROM CHANGETABLE(VERSION dbo.k, (id, s), (1)) AS v",
            22103,
        ),
    ] {
        assert_eq!(err_code(&mut c, sql).await, code, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_join_pattern() {
    let sim = start();
    let mut c = setup(&sim, "Ct12").await;
    ok(
        &mut c,
        "INSERT INTO dbo.t (id, a, c) VALUES (1, 10, N'one'), (2, 20, N'two')",
    )
    .await;
    ok(&mut c, "DELETE FROM dbo.t WHERE id = 2").await;
    ok(&mut c, "UPDATE dbo.t SET c = N'uno' WHERE id = 1").await;
    // [WORK] "Obtaining data for changed rows": CHANGETABLE LEFT OUTER JOIN the
    // table; the deleted row has NULL data columns.
    let r = ok(
        &mut c,
        "DECLARE @last_synchronization_version bigint = 0;
         SELECT CT.id, T.a, T.c, CT.SYS_CHANGE_OPERATION, CT.SYS_CHANGE_COLUMNS, CT.SYS_CHANGE_CONTEXT
         FROM dbo.t AS T
         RIGHT OUTER JOIN CHANGETABLE(CHANGES dbo.t, @last_synchronization_version) AS CT ON T.id = CT.id
         ORDER BY CT.id",
    );
    // SQLite before 3.39 had no RIGHT JOIN; the documented LEFT JOIN form is
    // what clients use, but both must work.
    let r = r.await;
    assert_eq!(r[0].len(), 2);
    let r = ok(
        &mut c,
        "DECLARE @last bigint = 1;
         SELECT CT.id, T.a, T.c, CT.SYS_CHANGE_OPERATION
         FROM CHANGETABLE(CHANGES dbo.t, @last) AS CT
         LEFT OUTER JOIN dbo.t AS T ON T.id = CT.id
         ORDER BY CT.id",
    )
    .await;
    assert_eq!(r[0].len(), 2);
    assert_eq!(r[0][0].get::<i32, _>(1), Some(10));
    assert_eq!(r[0][0].get::<&str, _>(2), Some("uno"));
    assert_eq!(r[0][0].get::<&str, _>(3), Some("U"));
    assert_eq!(r[0][1].get::<i32, _>(1), None);
    assert_eq!(r[0][1].get::<&str, _>(3), Some("D"));
    // A column alias list is allowed [CT].
    let r = ok(
        &mut c,
        "SELECT x.k, x.op FROM CHANGETABLE(CHANGES dbo.t, 0) AS x(v, cv, op, cols, ctx, k) ORDER BY x.k",
    )
    .await;
    assert_eq!(r[0][1].get::<&str, _>(1), Some("D"));
    // As an INSERT ... SELECT source.
    ok(
        &mut c,
        "CREATE TABLE dbo.log (id int PRIMARY KEY, op nchar(1));
         INSERT INTO dbo.log (id, op) SELECT ct.id, ct.SYS_CHANGE_OPERATION FROM CHANGETABLE(CHANGES dbo.t, 0) AS ct",
    )
    .await;
    assert_eq!(
        scalar_i64(&mut c, "SELECT COUNT(*) FROM dbo.log").await,
        Some(2)
    );
    // OBJECT_ID of a variable, as a client passing the table name would.
    assert_eq!(
        scalar_i64(&mut c, "DECLARE @t nvarchar(200) = N'[dbo].[t]'; SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@t))").await,
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_sql_servers() {
    let sim = start();
    let mut c = fresh_db(&sim, "Ct13").await;
    ok(
        &mut c,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, a int); CREATE TABLE dbo.heap (a int)",
    )
    .await;
    // [E4K] 1718 before the database is tracked; 5089 changing options of an
    // untracked database.
    assert_eq!(
        err_code(&mut c, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING").await,
        1718
    );
    assert_eq!(
        err_code(
            &mut c,
            "ALTER DATABASE Ct13 SET CHANGE_TRACKING (AUTO_CLEANUP = OFF)"
        )
        .await,
        5089
    );
    assert_eq!(
        err_code(&mut c, "ALTER DATABASE Ct13 SET CHANGE_TRACKING = OFF").await,
        5089
    );
    ok(&mut c, "ALTER DATABASE Ct13 SET CHANGE_TRACKING = ON").await;
    // [SIM] 5088 when already on; [E22K] 22114 combined with other options;
    // (P) 5092 retention out of range, 5091 repeated option.
    for (sql, code) in [
        ("ALTER DATABASE Ct13 SET CHANGE_TRACKING = ON", 5088),
        (
            "ALTER DATABASE Ct13 SET ALLOW_SNAPSHOT_ISOLATION ON, CHANGE_TRACKING = ON",
            22114,
        ),
        (
            "ALTER DATABASE Ct13 SET CHANGE_TRACKING (CHANGE_RETENTION = 0 MINUTES)",
            5092,
        ),
        (
            "ALTER DATABASE Ct13 SET CHANGE_TRACKING (AUTO_CLEANUP = ON, AUTO_CLEANUP = OFF)",
            5091,
        ),
        // [E4K] 4997 no primary key, 4998 disable untracked.
        ("ALTER TABLE dbo.heap ENABLE CHANGE_TRACKING", 4997),
        ("ALTER TABLE dbo.t DISABLE CHANGE_TRACKING", 4998),
        // [E22K] 22105 not tracked.
        ("SELECT * FROM CHANGETABLE(CHANGES dbo.t, 0) AS c", 22105),
    ] {
        assert_eq!(err_code(&mut c, sql).await, code, "{sql}");
    }
    ok(&mut c, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING").await;
    let e = exec(&mut c, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING")
        .await
        .unwrap_err();
    assert_eq!(e.code(), 4996);
    assert_eq!(
        e.message(),
        "Change tracking is already enabled for table 'dbo.t'."
    );
    ok(&mut c, "CREATE TABLE #tmp (id int PRIMARY KEY)").await;
    for (sql, code) in [
        // [E22K] 22104 alias required.
        ("SELECT * FROM CHANGETABLE(CHANGES dbo.t, 0)", 22104),
        // [E22K] 22107: not a user table (a catalog view, a temp table).
        (
            "SELECT * FROM CHANGETABLE(CHANGES sys.tables, 0) AS c",
            22107,
        ),
        ("SELECT * FROM CHANGETABLE(CHANGES #tmp, 0) AS c", 22107),
        // [CT] last_sync_version must be a literal, a variable or NULL: an
        // expression is a syntax error (P: 102).
        (
            "DECLARE @x bigint = 0; SELECT * FROM CHANGETABLE(CHANGES dbo.t, @x + 1) AS c",
            102,
        ),
        // [E22K] 22102: wrong arguments for CHANGES.
        ("SELECT * FROM CHANGETABLE(CHANGES dbo.t) AS c", 22102),
        // [E22K] 22115: database OFF while a table is tracked.
        ("ALTER DATABASE Ct13 SET CHANGE_TRACKING = OFF", 22115),
        // [E4K] 4900: SWITCH of a tracked table.
        ("ALTER TABLE dbo.t SWITCH TO dbo.heap", 4900),
        // [E22K] 22105 fires with the name as written.
        ("SELECT * FROM CHANGETABLE(CHANGES dbo.heap, 0) AS c", 22105),
    ] {
        assert_eq!(err_code(&mut c, sql).await, code, "{sql}");
    }
    let e = exec(&mut c, "SELECT * FROM CHANGETABLE(CHANGES heap, 0) AS c")
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "Change tracking is not enabled on table 'heap'."
    );
    // [MANAGE] the primary key of a tracked table cannot be dropped (3735).
    ok(&mut c, "CREATE TABLE dbo.p (id int NOT NULL, CONSTRAINT PK_p PRIMARY KEY (id)); ALTER TABLE dbo.p ENABLE CHANGE_TRACKING").await;
    assert_eq!(
        err_code(&mut c, "ALTER TABLE dbo.p DROP CONSTRAINT PK_p").await,
        3735
    );
    // ALTER DATABASE is not allowed in a user transaction (Msg 226).
    assert_eq!(
        err_code(
            &mut c,
            "BEGIN TRAN; ALTER DATABASE Ct13 SET CHANGE_TRACKING (AUTO_CLEANUP = OFF)"
        )
        .await,
        226
    );
    ok(&mut c, "IF @@TRANCOUNT > 0 ROLLBACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_changes_are_invisible_and_versions_follow_commit_order() {
    let sim = start();
    let mut a = setup(&sim, "Ct14").await;
    let mut b = connect_db(&sim, "Ct14").await;
    ok(&mut a, "INSERT INTO dbo.t (id) VALUES (1)").await; // @1
                                                           // Scenario 21 (P): inside A's open transaction its own change is not in
                                                           // CHANGES, VERSION is unchanged and CURRENT has not moved.
    ok(&mut a, "BEGIN TRAN; UPDATE dbo.t SET a = 1 WHERE id = 1").await;
    assert!(changes(&mut a, "dbo.t", "1").await.is_empty());
    assert_eq!(current(&mut a).await, Some(1));
    let v = scalar_i64(
        &mut a,
        "SELECT v.SYS_CHANGE_VERSION FROM CHANGETABLE(VERSION dbo.t, (id), (1)) AS v",
    )
    .await;
    assert_eq!(v, Some(1));
    ok(&mut a, "COMMIT").await;
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT v.SYS_CHANGE_VERSION FROM CHANGETABLE(VERSION dbo.t, (id), (1)) AS v"
        )
        .await,
        Some(2)
    );
    // [SYNC]/[MANAGE]: the version is drawn at commit, so a transaction that
    // began first but commits last gets the higher version.
    ok(&mut a, "BEGIN TRAN; SELECT COUNT(*) FROM dbo.t").await;
    ok(&mut b, "INSERT INTO dbo.t (id) VALUES (10)").await; // @3
    ok(&mut a, "INSERT INTO dbo.t (id) VALUES (11); COMMIT").await; // @4
    assert_eq!(
        changes(&mut b, "dbo.t", "2").await,
        ["10 I 3/3", "11 I 4/4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reads_agree_with_each_other() {
    let sim = start();
    let mut a = setup(&sim, "Ct15").await;
    let mut b = connect_db(&sim, "Ct15").await;
    ok(
        &mut a,
        "ALTER DATABASE Ct15 SET ALLOW_SNAPSHOT_ISOLATION ON",
    )
    .await;
    ok(&mut a, "INSERT INTO dbo.t (id) VALUES (1)").await; // @1
                                                           // Scenario 24 (D, partly I): [WORK] inside a snapshot transaction the current
                                                           // version, CHANGETABLE and the tables agree while others commit.
    ok(
        &mut a,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN; SELECT CHANGE_TRACKING_CURRENT_VERSION()",
    )
    .await;
    ok(&mut b, "INSERT INTO dbo.t (id) VALUES (7)").await; // @2
    assert_eq!(current(&mut a).await, Some(1));
    assert_eq!(changes(&mut a, "dbo.t", "0").await, ["1 I 1/1"]);
    assert_eq!(
        scalar_i64(&mut a, "SELECT COUNT(*) FROM dbo.t").await,
        Some(1)
    );
    ok(
        &mut a,
        "COMMIT; SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    )
    .await;
    // The next sync, from the version read in the snapshot, gets 7.
    assert_eq!(changes(&mut a, "dbo.t", "1").await, ["7 I 2/2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_become_visible_in_commit_order() {
    // [MANAGE] one version per committed transaction, drawn at commit; a reader
    // never sees version n+1 while n is missing (scenario 2.1 of the reference).
    let sim = std::sync::Arc::new(start());
    let mut c = setup(&sim, "Ct16").await;
    ok(
        &mut c,
        "ALTER DATABASE Ct16 SET ALLOW_SNAPSHOT_ISOLATION ON",
    )
    .await;
    let mut writers = Vec::new();
    for w in 0..2 {
        let sim = sim.clone();
        writers.push(tokio::spawn(async move {
            let mut c = connect_db(&sim, "Ct16").await;
            for i in 0..40 {
                let id = w * 1000 + i * 2;
                ok(
                    &mut c,
                    &format!(
                        "BEGIN TRAN; INSERT INTO dbo.t (id) VALUES ({id}); INSERT INTO dbo.t (id) VALUES ({}); COMMIT",
                        id + 1
                    ),
                )
                .await;
            }
        }));
    }
    let mut checks = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let r = ok(
            &mut c,
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRAN;
             SELECT CHANGE_TRACKING_CURRENT_VERSION();
             SELECT ct.SYS_CHANGE_VERSION, COUNT(*) FROM CHANGETABLE(CHANGES dbo.t, 0) AS ct GROUP BY ct.SYS_CHANGE_VERSION ORDER BY 1;
             COMMIT; SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        )
        .await;
        let cur: i64 = r[0][0].get(0).unwrap();
        let seen: Vec<(i64, i32)> = r[1]
            .iter()
            .map(|x| (x.get(0).unwrap(), x.get(1).unwrap()))
            .collect();
        let want: Vec<(i64, i32)> = (1..=cur).map(|v| (v, 2)).collect();
        assert_eq!(seen, want, "versions seen at current version {cur}");
        checks += 1;
        if done {
            assert_eq!(cur, 80);
            break;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(checks > 1);
}
