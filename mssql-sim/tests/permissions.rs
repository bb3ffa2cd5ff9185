//! Logins, users, roles and permissions as SQL Server checks them: what a
//! least-privileged login may read, what it is refused with which error,
//! and which metadata it sees ("Permissions (Database Engine)", "Metadata
//! visibility configuration", "Manage change tracking" / Security,
//! CHANGE_TRACKING_MIN_VALID_VERSION, HAS_PERMS_BY_NAME).

mod common;
use common::*;

const READER_PW: &str = "Reader#Passw0rd1";

async fn login(sim: &Sim, user: &str, pw: &str, db: &str) -> tiberius::Result<Conn> {
    let ado = sim
        .server
        .ado_string(db)
        .replace("user id=sa", &format!("user id={user}"))
        .replace(&format!("password={PASSWORD}"), &format!("password={pw}"));
    try_connect(&ado).await
}

/// A database with two tracked tables and a login `reader` that has a
/// user in it and nothing else.
async fn setup(sim: &Sim) -> Conn {
    let mut sa = fresh_db(sim, "pmo").await;
    ok(
        &mut sa,
        "ALTER DATABASE pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS);
         CREATE TABLE dbo.Patient (Id int PRIMARY KEY, Namn nvarchar(50));
         CREATE TABLE dbo.Besok (Id int PRIMARY KEY, PatientId int REFERENCES dbo.Patient(Id), Enhet nvarchar(20));
         ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING;
         ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING;
         INSERT INTO dbo.Patient VALUES (1, N'Anna');
         INSERT INTO dbo.Besok VALUES (10, 1, N'VC1');",
    )
    .await;
    ok(
        &mut sa,
        &format!("CREATE LOGIN reader WITH PASSWORD = '{READER_PW}', CHECK_POLICY = OFF; CREATE USER reader FOR LOGIN reader;"),
    )
    .await;
    sa
}

#[tokio::test]
async fn logins_are_checked_and_need_a_user_in_the_database() {
    let sim = start();
    let mut sa = setup(&sim).await;
    // A wrong password: 18456.
    match login(&sim, "reader", "wrong", "pmo").await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 18456),
        other => panic!("expected 18456, got {:?}", other.map(|_| ())),
    }
    // A login without a user in the database: 4060 at login.
    ok(
        &mut sa,
        "CREATE LOGIN stranger WITH PASSWORD = 'Str#Passw0rd1'",
    )
    .await;
    match login(&sim, "stranger", "Str#Passw0rd1", "pmo").await {
        Err(tiberius::error::Error::Server(e)) => assert_eq!(e.code(), 4060, "{}", e.message()),
        other => panic!("expected 4060, got {:?}", other.map(|_| ())),
    }
    // master admits every login (guest); USE of a database without a user: 916.
    let mut s = login(&sim, "stranger", "Str#Passw0rd1", "master")
        .await
        .unwrap();
    assert_eq!(err_code(&mut s, "USE pmo").await, 916);
    let r = ok(&mut s, "SELECT SUSER_SNAME(), USER_NAME()").await;
    assert_eq!(r[0][0].get::<&str, _>(0), Some("stranger"));
    assert_eq!(r[0][0].get::<&str, _>(1), Some("guest"));
    // Duplicates: 15025 (login), 15023 (user); a user for no login: 15007.
    assert_eq!(
        err_code(&mut sa, "CREATE LOGIN reader WITH PASSWORD = 'x'").await,
        15025
    );
    assert_eq!(
        err_code(&mut sa, "CREATE USER reader FOR LOGIN reader").await,
        15023
    );
    assert_eq!(
        err_code(&mut sa, "CREATE USER ghost FOR LOGIN ghost").await,
        15007
    );
    // A login that is not sysadmin cannot create logins or grant: 15247.
    let mut r = login(&sim, "reader", READER_PW, "pmo").await.unwrap();
    assert_eq!(
        err_code(&mut r, "CREATE LOGIN x WITH PASSWORD = 'Xx#Passw0rd1'").await,
        15247
    );
    assert_eq!(
        err_code(&mut r, "GRANT SELECT ON dbo.Besok TO reader").await,
        15247
    );
    sim.server.shutdown();
}

#[tokio::test]
async fn select_and_change_tracking_need_their_grants() {
    let sim = start();
    let mut sa = setup(&sim).await;
    let mut r = login(&sim, "reader", READER_PW, "pmo").await.unwrap();
    // No permission: 229 naming SELECT, and no metadata at all.
    assert_eq!(err_code(&mut r, "SELECT * FROM dbo.Besok").await, 229);
    match exec(&mut r, "SELECT * FROM dbo.Besok").await {
        Err(e) => assert_eq!(
            e.message(),
            "The SELECT permission was denied on the object 'Besok', database 'pmo', schema 'dbo'."
        ),
        Ok(_) => unreachable!(),
    }
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM sys.tables").await,
        Some(0)
    );
    assert_eq!(
        scalar_i64(&mut r, "SELECT OBJECT_ID('dbo.Besok')").await,
        None
    );
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT HAS_PERMS_BY_NAME('dbo.Besok', 'OBJECT', 'SELECT')"
        )
        .await,
        Some(0)
    );
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT HAS_PERMS_BY_NAME('dbo.Nothing', 'OBJECT', 'SELECT')"
        )
        .await,
        None
    );

    // SELECT only: data and metadata (columns, keys, foreign keys) are
    // visible; change tracking is not: CHANGETABLE 229 for VIEW CHANGE
    // TRACKING, CHANGE_TRACKING_MIN_VALID_VERSION NULL.
    ok(
        &mut sa,
        "GRANT SELECT ON dbo.Besok TO reader; GRANT SELECT ON OBJECT::dbo.Patient TO reader",
    )
    .await;
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM dbo.Besok").await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM sys.tables").await,
        Some(2)
    );
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT COUNT(*) FROM sys.columns WHERE object_id = OBJECT_ID('dbo.Besok')"
        )
        .await,
        Some(3)
    );
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM sys.foreign_keys").await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.Besok'))"
        )
        .await,
        None
    );
    match exec(
        &mut r,
        "SELECT * FROM CHANGETABLE(CHANGES dbo.Besok, 0) AS c",
    )
    .await
    {
        Err(e) => {
            assert_eq!(e.code(), 229);
            assert!(
                e.message().contains("VIEW CHANGE TRACKING"),
                "{}",
                e.message()
            );
        }
        Ok(_) => panic!("CHANGETABLE without VIEW CHANGE TRACKING succeeded"),
    }
    assert!(
        scalar_i64(&mut r, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")
            .await
            .is_some(),
        "the current version needs no permission"
    );

    // VIEW CHANGE TRACKING: CHANGETABLE and the minimum valid version work.
    ok(&mut sa, "GRANT VIEW CHANGE TRACKING ON dbo.Besok TO reader").await;
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT COUNT(*) FROM CHANGETABLE(CHANGES dbo.Besok, 0) AS c"
        )
        .await,
        Some(1)
    );
    assert!(scalar_i64(
        &mut r,
        "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.Besok'))"
    )
    .await
    .is_some());
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT HAS_PERMS_BY_NAME('dbo.Besok', 'OBJECT', 'VIEW CHANGE TRACKING')"
        )
        .await,
        Some(1)
    );
    assert_eq!(
        scalar_i64(
            &mut r,
            "SELECT HAS_PERMS_BY_NAME('dbo.Patient', 'OBJECT', 'VIEW CHANGE TRACKING')"
        )
        .await,
        Some(0)
    );
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM sys.change_tracking_tables").await,
        Some(2)
    );

    // Writes and DDL stay refused: 229 INSERT, 262 CREATE TABLE, 1088 ALTER.
    assert_eq!(
        err_code(&mut r, "INSERT INTO dbo.Besok VALUES (11, 1, N'VC2')").await,
        229
    );
    assert_eq!(err_code(&mut r, "DELETE FROM dbo.Besok").await, 229);
    assert_eq!(err_code(&mut r, "CREATE TABLE dbo.X (a int)").await, 262);
    assert_eq!(
        err_code(&mut r, "ALTER TABLE dbo.Besok ADD x int").await,
        1088
    );
    assert_eq!(err_code(&mut r, "TRUNCATE TABLE dbo.Besok").await, 1088);
    // Its own temp tables are its own.
    ok(
        &mut r,
        "CREATE TABLE #t (a int); INSERT INTO #t VALUES (1); DROP TABLE #t",
    )
    .await;

    // DENY wins over a grant, also one on the schema; REVOKE removes.
    ok(
        &mut sa,
        "GRANT SELECT ON SCHEMA::dbo TO reader; DENY SELECT ON dbo.Patient TO reader",
    )
    .await;
    assert_eq!(err_code(&mut r, "SELECT * FROM dbo.Patient").await, 229);
    assert_eq!(
        err_code(
            &mut r,
            "SELECT b.Id FROM dbo.Besok b JOIN dbo.Patient p ON p.Id = b.PatientId"
        )
        .await,
        229
    );
    ok(&mut sa, "REVOKE SELECT ON dbo.Patient FROM reader").await;
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM dbo.Patient").await,
        Some(1)
    );
    // The user sees its own permissions.
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM sys.database_permissions WHERE permission_name = 'VIEW CHANGE TRACKING'").await,
        Some(1)
    );
    sim.server.shutdown();
}

#[tokio::test]
async fn fixed_roles_give_what_they_document() {
    let sim = start();
    let mut sa = setup(&sim).await;
    ok(&mut sa, "ALTER ROLE db_datareader ADD MEMBER reader").await;
    let mut r = login(&sim, "reader", READER_PW, "pmo").await.unwrap();
    assert_eq!(
        scalar_i64(&mut r, "SELECT COUNT(*) FROM dbo.Patient").await,
        Some(1)
    );
    // db_datareader does not give VIEW CHANGE TRACKING.
    assert_eq!(
        err_code(
            &mut r,
            "SELECT * FROM CHANGETABLE(CHANGES dbo.Patient, 0) AS c"
        )
        .await,
        229
    );
    assert_eq!(
        err_code(&mut r, "INSERT INTO dbo.Patient VALUES (2, N'Bo')").await,
        229
    );
    // db_owner: everything in the database, DDL included; USER_NAME is its own.
    ok(&mut sa, "ALTER ROLE db_owner ADD MEMBER reader").await;
    ok(
        &mut r,
        "CREATE TABLE dbo.Kopia (Id int PRIMARY KEY); INSERT INTO dbo.Kopia VALUES (1); DROP TABLE dbo.Kopia;
         SELECT * FROM CHANGETABLE(CHANGES dbo.Patient, 0) AS c",
    )
    .await;
    let rows = ok(&mut r, "SELECT USER_NAME()").await;
    assert_eq!(rows[0][0].get::<&str, _>(0), Some("reader"));
    // Dropping the user ends its access at the next batch.
    ok(&mut sa, "DROP USER reader").await;
    assert_eq!(err_code(&mut r, "SELECT 1").await, 916);
    sim.server.shutdown();
}

/// A login (sa or not) gets in while another session holds an open write
/// transaction in the database, as on SQL Server: opening a session writes
/// nothing.
#[tokio::test]
async fn a_login_gets_in_while_another_session_writes() {
    let sim = start();
    let mut sa = setup(&sim).await;
    ok(
        &mut sa,
        "BEGIN TRANSACTION; INSERT INTO dbo.Patient VALUES (2, N'Bo')",
    )
    .await;
    let t = std::time::Instant::now();
    let mut other = connect_db(&sim, "pmo").await;
    let mut r = login(&sim, "reader", READER_PW, "pmo").await.unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(scalar_i64(&mut other, "SELECT 1").await, Some(1));
    assert_eq!(scalar_i64(&mut r, "SELECT 1").await, Some(1));
    ok(&mut sa, "COMMIT").await;
    sim.server.shutdown();
}
