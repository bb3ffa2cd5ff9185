//! Cross-client: the simulator checked by python-tds, a TDS client that
//! nobody here wrote. `scripts/test.sh` installs python-tds; without it this
//! test fails and says how to get it.

use std::process::Command;

#[test]
fn python_tds_round_trip_error_and_transaction() {
    let have = Command::new("python3")
        .args(["-c", "import pytds"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(have, "python-tds is not installed: run scripts/test.sh (it runs `python3 -m pip install python-tds`)");
    let dir = tempfile::tempdir().unwrap();
    let server =
        mssql_sim::Server::start(mssql_sim::Config::new(dir.path(), "Py#Passw0rd")).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pytds_roundtrip.py"
    );
    let out = Command::new("python3")
        .args([
            script,
            "127.0.0.1",
            &server.addr().port().to_string(),
            "Py#Passw0rd",
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "python-tds check failed:\n{stdout}\n{stderr}"
    );
    server.shutdown();
}
