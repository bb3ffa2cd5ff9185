//! TLS as SQL Server does it (MS-TDS 2.2.6.5: the PRELOGIN ENCRYPTION table;
//! the handshake inside PRELOGIN packets), checked with tiberius (rustls),
//! python-tds (pyOpenSSL) and tedious (Node's TLS). The certificates are made
//! here, for this run: a test CA and a server certificate it signs for
//! `localhost` and 127.0.0.1.

mod common;
#[path = "support/pki.rs"]
mod pki;
#[path = "support/relay.rs"]
mod relay;

use common::{try_connect, PASSWORD};
use mssql_sim::{Config, Server, TlsConfig};
use relay::recording_relay;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA and a server certificate signed by it; another, unrelated CA.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        pki::write(dir.path());
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self, force: bool) -> (Server, tempfile::TempDir) {
        let data = tempfile::tempdir().unwrap();
        let mut cfg = Config::new(data.path(), PASSWORD);
        cfg.tls = Some(TlsConfig {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            force_encryption: force,
        });
        (Server::start(cfg).unwrap(), data)
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// LOGIN7's password obfuscation (MS-TDS 2.2.6.4): what a plaintext
/// login shows of the password.
fn obfuscated(password: &str) -> Vec<u8> {
    utf16(password)
        .iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn ado(server: &Server, tail: &str) -> String {
    format!(
        "server=tcp:localhost,{};database=master;user id=sa;password={PASSWORD};{tail}",
        server.addr().port()
    )
}

async fn select_one(ado: &str) -> tiberius::Result<i32> {
    let mut c = try_connect(ado).await?;
    let row = c
        .simple_query("SELECT 1 AS one")
        .await?
        .into_row()
        .await?
        .expect("a row");
    Ok(row.get::<i32, _>(0).unwrap())
}

#[tokio::test]
async fn tiberius_over_tls_with_the_test_ca_with_trust_and_login_only() {
    let pki = Pki::new();
    let (server, _data) = pki.start(false);
    // Whole connection encrypted, the certificate checked against the test CA.
    let ca = pki.path("ca.pem");
    let with_ca = ado(
        &server,
        &format!("encrypt=true;TrustServerCertificateCA={}", ca.display()),
    );
    assert_eq!(select_one(&with_ca).await.unwrap(), 1);
    // Encrypted, any certificate trusted.
    let trusting = ado(&server, "encrypt=true;TrustServerCertificate=true");
    assert_eq!(select_one(&trusting).await.unwrap(), 1);
    // Login-only encryption (client ENCRYPT_OFF, server ENCRYPT_OFF): TLS
    // for LOGIN7, plaintext after it.
    let login_only = ado(&server, "encrypt=false;TrustServerCertificate=true");
    assert_eq!(select_one(&login_only).await.unwrap(), 1);
    // A long result through TLS (many records, packets across records).
    let mut c = try_connect(&with_ca).await.unwrap();
    let sql = format!(
        "SELECT N'{}' AS s UNION ALL SELECT N'{}'",
        "x".repeat(4000),
        "y".repeat(4000)
    );
    let rows = c
        .simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<&str, _>(0).unwrap().len(), 4000);
    // Plaintext still works when the client does not support encryption.
    let plain = ado(&server, "encrypt=DANGER_PLAINTEXT");
    assert_eq!(select_one(&plain).await.unwrap(), 1);
}

#[tokio::test]
async fn what_an_observer_sees_full_encryption_hides_everything_login_only_the_login() {
    let pki = Pki::new();
    let (server, _data) = pki.start(false);
    let query = "SELECT 1 AS one";
    for (tail, login_hidden, queries_hidden) in [
        ("encrypt=true;TrustServerCertificate=true", true, true),
        ("encrypt=false;TrustServerCertificate=true", true, false),
        ("encrypt=DANGER_PLAINTEXT", false, false),
    ] {
        let (port, seen) = recording_relay(server.addr());
        let ado = format!(
            "server=tcp:localhost,{port};database=master;user id=sa;password={PASSWORD};{tail}"
        );
        assert_eq!(select_one(&ado).await.unwrap(), 1, "{tail}");
        let bytes = seen.lock().unwrap().clone();
        assert_eq!(
            !contains(&bytes, &obfuscated(PASSWORD)),
            login_hidden,
            "{tail}: the password on the wire"
        );
        assert_eq!(
            !contains(&bytes, &utf16(query)),
            queries_hidden,
            "{tail}: the query on the wire"
        );
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_naming_the_certificate() {
    let pki = Pki::new();
    let (server, _data) = pki.start(false);
    let wrong = ado(
        &server,
        &format!(
            "encrypt=true;TrustServerCertificateCA={}",
            pki.path("other-ca.pem").display()
        ),
    );
    let e = select_one(&wrong).await.unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
}

#[tokio::test]
async fn force_encryption_refuses_plaintext_and_encrypts_login_only_clients() {
    let pki = Pki::new();
    let (server, _data) = pki.start(true);
    // A client that cannot encrypt (ENCRYPT_NOT_SUP) gets ENCRYPT_REQ and the
    // connection is closed.
    let plain = ado(&server, "encrypt=DANGER_PLAINTEXT");
    assert!(select_one(&plain).await.is_err());
    // A client that offered login-only encryption is told ENCRYPT_REQ.
    // tiberius treats a server answer other than OFF as "encrypt everything".
    let off = ado(&server, "encrypt=false;TrustServerCertificate=true");
    assert_eq!(select_one(&off).await.unwrap(), 1);
    let on = ado(
        &server,
        &format!(
            "encrypt=true;TrustServerCertificateCA={}",
            pki.path("ca.pem").display()
        ),
    );
    assert_eq!(select_one(&on).await.unwrap(), 1);
}

#[tokio::test]
async fn without_a_certificate_a_client_that_requires_tls_is_told_no() {
    let sim = common::start();
    let port = sim.server.addr().port();
    let ado = format!(
        "server=tcp:127.0.0.1,{port};user id=sa;password={PASSWORD};encrypt=true;TrustServerCertificate=true"
    );
    let e = select_one(&ado).await.unwrap_err().to_string();
    assert!(e.contains("encryption"), "{e}");
}

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_client(program: &str, script: &Path, args: &[String]) {
    let out = Command::new(program)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
}

#[test]
fn python_tds_logs_in_and_queries_over_tls() {
    assert!(
        have("python3", &["-c", "import pytds, OpenSSL"]),
        "python-tds and pyOpenSSL are not installed: run scripts/test.sh"
    );
    let pki = Pki::new();
    for force in [false, true] {
        let (server, _data) = pki.start(force);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pytds_tls.py");
        run_client(
            "python3",
            &script,
            &[
                "localhost".into(),
                server.addr().port().to_string(),
                PASSWORD.into(),
                pki.path("ca.pem").display().to_string(),
            ],
        );
        server.shutdown();
    }
}

#[test]
fn tedious_logs_in_and_queries_over_tls() {
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        clients.join("node_modules/tedious").is_dir() && have("node", &["--version"]),
        "Node.js and tedious are not installed: run scripts/test.sh (npm install in mssql-sim/tests/clients)"
    );
    let pki = Pki::new();
    let (server, _data) = pki.start(true);
    run_client(
        "node",
        &clients.join("tedious_tls.js"),
        &[
            "localhost".into(),
            server.addr().port().to_string(),
            PASSWORD.into(),
            pki.path("ca.pem").display().to_string(),
        ],
    );
}
