//! The `mssql-sim` binary as README.md shows it: flags, the one "listening"
//! line, a client round trip, clean shutdown on SIGTERM, data kept across a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

mod common;
#[path = "support/pki.rs"]
mod pki;

/// The simulator's process; killed if a test fails before stopping it (a
/// left-over process would keep the test's output open and hang the run).
struct Sim(Child);

impl std::ops::Deref for Sim {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(data: &std::path::Path) -> (Sim, String) {
    spawn_with(data, &[])
}

fn spawn_with(data: &std::path::Path, extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--password", common::PASSWORD])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("mssql-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Sim(child), addr)
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_stops_on_sigterm_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path());
    let (host, port) = addr.rsplit_once(':').unwrap();
    let ado = |db: &str| {
        format!("server=tcp:{host},{port};database={db};user id=sa;password={};encrypt=DANGER_PLAINTEXT", common::PASSWORD)
    };
    let mut c = common::try_connect(&ado("master")).await.unwrap();
    common::ok(&mut c, "CREATE DATABASE Keep").await;
    common::ok(
        &mut c,
        "USE Keep; ALTER DATABASE Keep SET CHANGE_TRACKING = ON; CREATE TABLE t (id int PRIMARY KEY);
         ALTER TABLE t ENABLE CHANGE_TRACKING; INSERT INTO t VALUES (1), (2)",
    )
    .await;
    drop(c);
    let status = sigterm(&mut child);
    assert!(
        status.success(),
        "mssql-sim exits 0 on SIGTERM, got {status}"
    );

    let (mut child, addr) = spawn(dir.path());
    let (host, port) = addr.rsplit_once(':').unwrap();
    let ado = format!(
        "server=tcp:{host},{port};database=Keep;user id=sa;password={};encrypt=DANGER_PLAINTEXT",
        common::PASSWORD
    );
    let mut c = common::try_connect(&ado).await.unwrap();
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT count(*) FROM t").await,
        Some(2)
    );
    // Change tracking survives the restart and keeps counting.
    common::ok(&mut c, "INSERT INTO t VALUES (3)").await;
    assert_eq!(
        common::scalar_i64(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()").await,
        Some(2)
    );
    assert_eq!(
        common::scalar_i64(
            &mut c,
            "SELECT COUNT(*) FROM CHANGETABLE(CHANGES t, 0) AS c"
        )
        .await,
        Some(3)
    );
    drop(c);
    assert!(sigterm(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_offset_moves_the_simulated_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_with(dir.path(), &["--clock-offset", "86400"]);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let ado = format!(
        "server=tcp:{host},{port};database=master;user id=sa;password={};encrypt=DANGER_PLAINTEXT",
        common::PASSWORD
    );
    let mut c = common::try_connect(&ado).await.unwrap();
    let r = common::ok(&mut c, "SELECT SYSUTCDATETIME()").await;
    let t: chrono::NaiveDateTime = r[0][0].get(0).unwrap();
    let ahead = t - chrono::Utc::now().naive_utc();
    assert!(
        (86_300..86_500).contains(&ahead.num_seconds()),
        "clock is {ahead} ahead"
    );
    drop(c);
    assert!(sigterm(&mut child).success());
}

#[test]
fn help_documents_the_flags_and_bad_flags_fail() {
    let out = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data",
        "--password",
        "--tls-cert",
        "--tls-key",
        "--force-encryption",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let out = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .args(["--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_serve_encrypted_and_force_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    pki::write(certs.path());
    let (cert, key, ca) = (
        certs.path().join("server.pem"),
        certs.path().join("server.key"),
        certs.path().join("ca.pem"),
    );
    let (cert, key, ca) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        ca.to_str().unwrap(),
    );
    let (mut child, addr) = spawn_with(
        dir.path(),
        &["--tls-cert", cert, "--tls-key", key, "--force-encryption"],
    );
    let port = addr.rsplit_once(':').unwrap().1;
    let ado = |tail: &str| {
        format!(
            "server=tcp:localhost,{port};database=master;user id=sa;password={};{tail}",
            common::PASSWORD
        )
    };
    let mut c = common::try_connect(&ado(&format!("encrypt=true;TrustServerCertificateCA={ca}")))
        .await
        .unwrap();
    assert_eq!(common::scalar_i64(&mut c, "SELECT 7").await, Some(7));
    drop(c);
    assert!(common::try_connect(&ado("encrypt=DANGER_PLAINTEXT"))
        .await
        .is_err());
    assert!(sigterm(&mut child).success());
    // Half a TLS configuration, or forcing without a certificate: usage errors.
    for args in [vec!["--tls-cert", cert], vec!["--force-encryption"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
            .args(["--data", dir.path().to_str().unwrap(), "--password", "x"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--tls-"),
            "{args:?}"
        );
    }
    // A key that is not a key: the server does not start, and says which file.
    let out = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .args(["--data", dir.path().to_str().unwrap(), "--password", "x"])
        .args(["--tls-cert", cert, "--tls-key", cert])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.pem"));
}
