//! ctferry against SQL Servers that force encryption (mssql-sim with a test
//! certificate and `--force-encryption`, as a region's and a caregiver's
//! servers are configured when Microsoft's advice is followed): `check`,
//! `once` and `apply` over TLS on both sides with the certificate checked
//! against the DBA's CA file; a certificate from another CA refused naming
//! the certificate; weaker settings warned about; plaintext refused.

#[path = "support/world.rs"]
mod world;
use ctferry::config::Secret;
use ctferry::mssql::client::Db;
use mssql_sim::Config;
use std::path::Path;
use world::{count, World, PW};

/// Source and copy servers forcing encryption with the test certificate;
/// the configuration files trust the test CA (`ca.pem`, relative to them).
fn setup() -> World {
    World::tls_forced(
        &[
            "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)".into(),
            "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING".into(),
            "INSERT INTO dbo.Vardenhet VALUES (1, N'SE-E001', N'VC Norr'), (2, N'SE-E002', N'VC Syd')".into(),
        ],
    )
}

const TABLE: &str = "[[table]]\nname = \"dbo.Vardenhet\"\nowner = { column = \"HsaId\" }";

/// ctferry.toml and apply.toml whose connection strings end in `tls`.
fn configure(w: &World, tls: &str) {
    *w.tls.borrow_mut() = tls.to_string();
    w.configure(TABLE, "[\"SE-E001\"]");
}

#[test]
fn check_once_and_apply_over_tls_with_the_dbas_ca_file() {
    let w = setup();
    // A relative CA path: relative to the configuration file.
    configure(&w, "TrustServerCertificateCA=ca.pem");
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    assert!(!err.contains("warning"), "{err}");
    w.run(&["once"]);
    let out = w.run(&["apply"]);
    assert!(out.contains("applied (1 rows)"), "{out}");
    // The copy holds Norr's unit only, read back over TLS.
    let mut copy = w.kopia();
    assert_eq!(count(&mut copy, "SELECT COUNT(*) FROM dbo.Vardenhet"), 1);
    let sql = "SELECT COUNT(*) FROM dbo.Vardenhet WHERE HsaId = N'SE-E001'";
    assert_eq!(count(&mut copy, sql), 1);
}

#[test]
fn another_ca_weaker_settings_and_plaintext() {
    let w = setup();
    // A certificate the configured CA did not sign: refused, naming the
    // certificate and what to do.
    configure(&w, "TrustServerCertificateCA=other-ca.pem");
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("certificate") && err.contains("TrustServerCertificateCA"),
        "{err}"
    );
    let (ok, _, err) = w.ctferry(&["apply"]);
    assert!(!ok);
    assert!(err.contains("certificate"), "{err}");
    // Trusting any certificate, and login-only encryption: they work, and
    // check says what they give away.
    configure(&w, "TrustServerCertificate=true");
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("warning") && err.contains("any certificate"),
        "{err}"
    );
    configure(&w, "encrypt=false;TrustServerCertificate=true");
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("only the login"), "{err}");
    // No encryption at all: the server (Force Encryption) refuses it.
    configure(&w, "encrypt=DANGER_PLAINTEXT");
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("requires encryption"), "{err}");
    // ... and to another host it is refused before connecting.
    let cfg = w.path("ctferry.toml");
    let toml = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("server=tcp:localhost", "server=tcp:db.region.example");
    std::fs::write(&cfg, toml).unwrap();
    let (ok, _, err) = w.ctferry(&["check"]);
    assert!(!ok);
    assert!(
        err.contains("[source] connection") && err.contains("DANGER_PLAINTEXT"),
        "{err}"
    );
}

/// Azure SQL's gateway (or a failover partner) answers the login with a
/// routing ENVCHANGE: ctferry logs in again at the address it names, once.
#[test]
fn a_login_redirect_is_followed_once() {
    let data = tempfile::tempdir().unwrap();
    let real = mssql_sim::Server::start(Config::new(data.path(), PW)).unwrap();
    let gw_data = tempfile::tempdir().unwrap();
    let mut gw = Config::new(gw_data.path(), PW);
    gw.redirect = Some(("127.0.0.1".into(), real.addr().port()));
    let gateway = mssql_sim::Server::start(gw).unwrap();
    let conn = |port: u16| {
        ctferry::config::ConnectionString::parse(
            &format!(
                "server=tcp:127.0.0.1,{port};database=master;user id=sa;encrypt=DANGER_PLAINTEXT"
            ),
            Path::new("."),
        )
        .unwrap()
    };
    let mut db = Db::connect(&conn(gateway.addr().port()), &Secret::new(PW.into())).unwrap();
    let rows = db.rows("asking", "SELECT @@SERVERNAME", &[]).unwrap();
    assert_eq!(rows.len(), 1);
    // A gateway that sends the client to another gateway: not followed again.
    let loop_data = tempfile::tempdir().unwrap();
    let mut lp = Config::new(loop_data.path(), PW);
    lp.redirect = Some(("127.0.0.1".into(), gateway.addr().port()));
    let looping = mssql_sim::Server::start(lp).unwrap();
    let e = Db::connect(&conn(looping.addr().port()), &Secret::new(PW.into()))
        .err()
        .expect("a second redirect is refused")
        .to_string();
    assert!(e.contains("redirected the login a second time"), "{e}");
}
