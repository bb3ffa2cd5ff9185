//! Column types through the whole path into a caregiver's copy, by bulk load
//! as a real SQL Server takes it: long `nvarchar`/`nchar` columns (which
//! tiberius would declare as `nvarchar(max)` in INSERT BULK while sending
//! them sized, refused by SQL Server with 4816, tiberius issue #322, and by
//! mssql-sim alike) are staged as `nvarchar(max)` and cast back.

use ctferry::config::{ConnectionString, Secret};
use ctferry::mssql::client::{text_at, Db};
use mssql_sim::{Config, Server};
use std::path::Path;
use std::process::Command;

const PW: &str = "Types#Passw0rd";

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

#[test]
fn long_nvarchar_and_nchar_columns_reach_the_copy_exactly() {
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
    let long = "å".repeat(2400);
    let mut pmo = db(&source, "Pmo");
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON".to_string(),
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON".into(),
        "CREATE TABLE dbo.Anteckning (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(40) NOT NULL, Kort nvarchar(100) NULL, Lang nvarchar(2500) NULL, Fast nchar(2100) NULL, Kod nchar(4) NULL, Max nvarchar(max) NULL)".into(),
        "ALTER TABLE dbo.Anteckning ENABLE CHANGE_TRACKING".into(),
        format!("INSERT INTO dbo.Anteckning VALUES (1, N'E1', N'kort', N'{long}', N'fast', N'J06', N'{long}{long}'), (2, N'E1', NULL, NULL, NULL, NULL, NULL)"),
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
name = "dbo.Anteckning"
owner = {{ column = "Enhet" }}
[[subscriber]]
hsa_id = "SE-NORR"
keys = ["E1"]
public_key = "keys/norr.pub.asc"
deliver = {{ folder = "out" }}
"#,
            conn(&source, "Pmo")
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
    run(&["once", "-c", cfg.to_str().unwrap()]);
    run(&["apply", "-c", apply.to_str().unwrap()]);
    // A delta through the same path.
    pmo.execute(&format!(
        "UPDATE dbo.Anteckning SET Lang = N'{long}x', Fast = N'ändrad' WHERE Id = 2"
    ))
    .unwrap();
    run(&["once", "-c", cfg.to_str().unwrap()]);
    run(&["apply", "-c", apply.to_str().unwrap()]);
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
    assert_eq!(text(&mut db(&copy, "Kopia")), want);
    // nchar keeps its padding and its declared type in the copy.
    let ty = db(&copy, "Kopia")
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
