//! ctferry against SQL Servers that force encryption (mssql-sim with a test
//! certificate and `--force-encryption`, as a region's and a caregiver's
//! servers are configured when Microsoft's advice is followed): `check`,
//! `once` and `apply` over TLS on both sides with the certificate checked
//! against the DBA's CA file; a certificate from another CA refused naming
//! the certificate; weaker settings warned about; plaintext refused.

use ctferry::config::Secret;
use ctferry::mssql::client::Db;
use mssql_sim::{Config, Server, TlsConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

const PW: &str = "Tls#Passw0rd";

struct World {
    dir: tempfile::TempDir,
    source: Server,
    copy: Server,
    _data: (tempfile::TempDir, tempfile::TempDir),
}

impl World {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A connection string to `server` with `tls` appended (no `encrypt`:
    /// the default is to encrypt).
    fn conn(server: &Server, db: &str, tls: &str) -> String {
        format!(
            "server=tcp:localhost,{};database={db};user id=sa;{tls}",
            server.addr().port()
        )
    }

    fn ctferry(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(args)
            .env("CTFERRY_SOURCE_PASSWORD", PW)
            .env("CTFERRY_TARGET_PASSWORD", PW)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// ctferry.toml and apply.toml with `tls` in both connection strings.
    fn write_configs(&self, tls: &str) {
        let toml = format!(
            r#"
[source]
connection = "{conn}"
password_env = "CTFERRY_SOURCE_PASSWORD"

[publisher]
id = "region"
signing_key = "keys/region.sec.asc"

[[table]]
name = "dbo.Vardenhet"
owner = {{ column = "HsaId" }}

[[subscriber]]
hsa_id = "SE-NORR"
keys = ["SE-E001"]
public_key = "keys/norr.pub.asc"
deliver = {{ folder = "deliveries/norr" }}
"#,
            conn = Self::conn(&self.source, "Pmo", tls),
        );
        std::fs::write(self.path("ctferry.toml"), toml).unwrap();
        let apply = format!(
            r#"
[target]
connection = "{conn}"
password_env = "CTFERRY_TARGET_PASSWORD"

[keys]
secret_key = "keys/norr.sec.asc"
publisher_keys = ["keys/region.pub.asc"]

[source]
subscriber = "SE-NORR"
folder = "deliveries/norr"
"#,
            conn = Self::conn(&self.copy, "NorrKopia", tls),
        );
        std::fs::write(self.path("apply.toml"), apply).unwrap();
    }
}

/// A CA, a server certificate it signs for localhost and 127.0.0.1, and an
/// unrelated CA; written as PEM into `dir`.
fn pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Region test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["elsewhere".into()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

fn forced_server(pki: &Path) -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(data.path(), PW);
    cfg.tls = Some(TlsConfig {
        cert: pki.join("server.pem"),
        key: pki.join("server.key"),
        force_encryption: true,
    });
    (Server::start(cfg).unwrap(), data)
}

fn setup() -> World {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let (source, d1) = forced_server(dir.path());
    let (copy, d2) = forced_server(dir.path());
    let w = World {
        dir,
        source,
        copy,
        _data: (d1, d2),
    };
    let ca = format!("TrustServerCertificateCA={}", w.path("ca.pem").display());
    let db = |server: &Server, name: &str| {
        let conn =
            ctferry::config::ConnectionString::parse(&World::conn(server, name, &ca), w.dir.path())
                .unwrap();
        Db::connect(&conn, &Secret::new(PW.into())).unwrap()
    };
    db(&w.source, "master")
        .execute("CREATE DATABASE Pmo")
        .unwrap();
    db(&w.copy, "master")
        .execute("CREATE DATABASE NorrKopia")
        .unwrap();
    let mut pmo = db(&w.source, "Pmo");
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON",
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON",
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING",
        "INSERT INTO dbo.Vardenhet VALUES (1, N'SE-E001', N'VC Norr'), (2, N'SE-E002', N'VC Syd')",
    ] {
        pmo.execute(s).unwrap();
    }
    std::fs::create_dir_all(w.path("keys")).unwrap();
    for name in ["region", "norr"] {
        let (public, secret) =
            ctferry::format::crypto::generate(name, &format!("{name}@example.invalid"), None)
                .unwrap();
        std::fs::write(w.path(&format!("keys/{name}.pub.asc")), public).unwrap();
        std::fs::write(w.path(&format!("keys/{name}.sec.asc")), secret).unwrap();
    }
    w
}

#[test]
fn check_once_and_apply_over_tls_with_the_dbas_ca_file() {
    let w = setup();
    // A relative CA path: relative to the configuration file.
    w.write_configs("TrustServerCertificateCA=ca.pem");
    let cfg = w.path("ctferry.toml");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, err) = w.ctferry(&["check", "-c", cfg]);
    assert!(ok, "{out}{err}");
    assert!(!err.contains("warning"), "{err}");
    let (ok, out, err) = w.ctferry(&["once", "-c", cfg]);
    assert!(ok, "{out}{err}");
    let apply = w.path("apply.toml");
    let apply = apply.to_str().unwrap();
    let (ok, out, err) = w.ctferry(&["apply", "-c", apply]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("applied (1 rows)"), "{out}");
    // The copy holds Norr's unit only, read back over TLS.
    let conn = ctferry::config::ConnectionString::parse(
        &World::conn(&w.copy, "NorrKopia", "TrustServerCertificateCA=ca.pem"),
        w.dir.path(),
    )
    .unwrap();
    let mut copy = Db::connect(&conn, &Secret::new(PW.into())).unwrap();
    let rows = copy
        .rows("reading the copy", "SELECT HsaId FROM dbo.Vardenhet", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<&str, _>(0), Some("SE-E001"));
}

#[test]
fn another_ca_weaker_settings_and_plaintext() {
    let w = setup();
    let cfg = w.path("ctferry.toml");
    let cfg = cfg.to_str().unwrap();
    // A certificate the configured CA did not sign: refused, naming the
    // certificate and what to do.
    w.write_configs("TrustServerCertificateCA=other-ca.pem");
    let (ok, out, err) = w.ctferry(&["check", "-c", cfg]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("certificate") && err.contains("TrustServerCertificateCA"),
        "{err}"
    );
    let apply = w.path("apply.toml");
    let (ok, _, err) = w.ctferry(&["apply", "-c", apply.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("certificate"), "{err}");
    // Trusting any certificate, and login-only encryption: they work, and
    // check says what they give away.
    w.write_configs("TrustServerCertificate=true");
    let (ok, out, err) = w.ctferry(&["check", "-c", cfg]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("warning") && err.contains("any certificate"),
        "{err}"
    );
    w.write_configs("encrypt=false;TrustServerCertificate=true");
    let (ok, out, err) = w.ctferry(&["check", "-c", cfg]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("only the login"), "{err}");
    // No encryption at all: the server (Force Encryption) refuses it.
    w.write_configs("encrypt=DANGER_PLAINTEXT");
    let (ok, out, err) = w.ctferry(&["check", "-c", cfg]);
    assert!(!ok, "{out}{err}");
    assert!(err.contains("requires encryption"), "{err}");
    // ... and to another host it is refused before connecting.
    let toml = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("server=tcp:localhost", "server=tcp:db.region.example");
    std::fs::write(cfg, toml).unwrap();
    let (ok, _, err) = w.ctferry(&["check", "-c", cfg]);
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
    let real = Server::start(Config::new(data.path(), PW)).unwrap();
    let gw_data = tempfile::tempdir().unwrap();
    let mut gw = Config::new(gw_data.path(), PW);
    gw.redirect = Some(("127.0.0.1".into(), real.addr().port()));
    let gateway = Server::start(gw).unwrap();
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
    let looping = Server::start(lp).unwrap();
    let e = Db::connect(&conn(looping.addr().port()), &Secret::new(PW.into()))
        .err()
        .expect("a second redirect is refused")
        .to_string();
    assert!(e.contains("redirected the login a second time"), "{e}");
}
