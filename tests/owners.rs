//! Owner values as SQL Server compares them. Routing (deltas) and the
//! snapshot filter must put a row in the same copy: a `char(n)` owner
//! arrives blank-padded, an owner may differ in case from the configured key
//! under a case-insensitive collation, and `int` and `uniqueidentifier`
//! owners must work. A row that snapshots to a caregiver and whose delta
//! then routed to nobody would be deleted from its copy.

use ctferry::config::{ConnectionString, Secret};
use ctferry::mssql::client::{int_at, Db};
use mssql_sim::{Config, Server};
use std::path::Path;
use std::process::Command;

const PW: &str = "Owner#Passw0rd";
const GUID: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

fn db(server: &Server, name: &str) -> Db {
    let conn = ConnectionString::parse(
        &format!(
            "server=tcp:127.0.0.1,{};database={name};user id=sa;encrypt=DANGER_PLAINTEXT",
            server.addr().port()
        ),
        Path::new("."),
    )
    .unwrap();
    Db::connect(&conn, &Secret::new(PW.into())).unwrap()
}

fn count(db: &mut Db, sql: &str) -> i64 {
    int_at(&db.rows("counting", sql, &[]).unwrap()[0], 0).unwrap()
}

#[test]
fn padded_differently_cased_int_and_guid_owners_route_like_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (src_data, copy_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = Server::start(Config::new(src_data.path(), PW)).unwrap();
    let copy = Server::start(Config::new(copy_data.path(), PW)).unwrap();
    db(&source, "master")
        .execute("CREATE DATABASE Pmo")
        .unwrap();
    db(&copy, "master")
        .execute("CREATE DATABASE Kopia")
        .unwrap();
    let mut pmo = db(&source, "Pmo");
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON".to_string(),
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON".into(),
        "CREATE TABLE dbo.Padded (Id int NOT NULL PRIMARY KEY, Enhet char(10) NOT NULL, V int NOT NULL)".into(),
        "CREATE TABLE dbo.Numbered (Id int NOT NULL PRIMARY KEY, EnhetNr int NOT NULL, V int NOT NULL)".into(),
        "CREATE TABLE dbo.Guided (Id int NOT NULL PRIMARY KEY, EnhetId uniqueidentifier NOT NULL, V int NOT NULL)".into(),
        "ALTER TABLE dbo.Padded ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Numbered ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Guided ENABLE CHANGE_TRACKING".into(),
        // 'e1' in a char(10): blank-padded, and in lower case.
        "INSERT INTO dbo.Padded VALUES (1, 'e1', 0), (2, 'E2', 0)".into(),
        "INSERT INTO dbo.Numbered VALUES (1, 7, 0), (2, 8, 0)".into(),
        format!("INSERT INTO dbo.Guided VALUES (1, '{GUID}', 0), (2, NEWID(), 0)"),
    ] {
        pmo.execute(&s).unwrap();
    }
    std::fs::create_dir_all(d.join("keys")).unwrap();
    for name in ["region", "norr"] {
        let (public, secret) =
            ctferry::format::crypto::generate(name, &format!("{name}@example.invalid"), None)
                .unwrap();
        std::fs::write(d.join(format!("keys/{name}.pub.asc")), public).unwrap();
        std::fs::write(d.join(format!("keys/{name}.sec.asc")), secret).unwrap();
    }
    let conn = |s: &Server, db: &str| {
        format!(
            "server=tcp:127.0.0.1,{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
            s.addr().port()
        )
    };
    std::fs::write(
        d.join("ctferry.toml"),
        format!(
            r#"
[source]
connection = "{}"
password_env = "PW"
[publisher]
id = "region"
signing_key = "keys/region.sec.asc"
[[table]]
name = "dbo.Padded"
owner = {{ column = "Enhet" }}
[[table]]
name = "dbo.Numbered"
owner = {{ column = "EnhetNr" }}
[[table]]
name = "dbo.Guided"
owner = {{ column = "EnhetId" }}
[[subscriber]]
hsa_id = "SE-NORR"
keys = ["E1", "7", "{}"]
public_key = "keys/norr.pub.asc"
deliver = {{ folder = "out" }}
"#,
            conn(&source, "Pmo"),
            GUID.to_uppercase()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("apply.toml"),
        format!(
            r#"
[target]
connection = "{}"
password_env = "PW"
[keys]
secret_key = "keys/norr.sec.asc"
publisher_keys = ["keys/region.pub.asc"]
[source]
subscriber = "SE-NORR"
folder = "out"
"#,
            conn(&copy, "Kopia")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(args)
            .env("PW", PW)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cfg = d.join("ctferry.toml");
    let apply = d.join("apply.toml");
    let cycle = || {
        run(&["once", "-c", cfg.to_str().unwrap()]);
        run(&["apply", "-c", apply.to_str().unwrap()]);
    };
    cycle();
    let tables = ["dbo.Padded", "dbo.Numbered", "dbo.Guided"];
    let mut kopia = db(&copy, "Kopia");
    for t in tables {
        assert_eq!(
            count(
                &mut kopia,
                &format!("SELECT COUNT(*) FROM {t} WHERE Id = 1")
            ),
            1,
            "{t}: the snapshot gave the caregiver its row"
        );
    }
    // Each row changes (not its owner): the change must reach the copy, and
    // the row must stay there.
    for t in tables {
        pmo.execute(&format!("UPDATE {t} SET V = 5 WHERE Id = 1"))
            .unwrap();
    }
    cycle();
    for t in tables {
        assert_eq!(
            count(
                &mut kopia,
                &format!("SELECT COUNT(*) FROM {t} WHERE Id = 1 AND V = 5")
            ),
            1,
            "{t}: the delta reached the caregiver's row"
        );
        assert_eq!(
            count(&mut kopia, &format!("SELECT COUNT(*) FROM {t}")),
            1,
            "{t}: nothing of the other unit"
        );
    }
    // A row moving in, written in another case and padding.
    pmo.execute("UPDATE dbo.Padded SET Enhet = 'E1 ' WHERE Id = 2")
        .unwrap();
    cycle();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Padded"), 2);
}
