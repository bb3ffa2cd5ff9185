//! Cross-client: the simulator checked by python-tds, a TDS client that
//! nobody here wrote. `scripts/test.sh` installs python-tds; without it this
//! test fails and says how to get it.

use std::process::Command;

/// Runs one python-tds script (in tests/clients) against a fresh simulator.
fn run_script(name: &str) {
    let have = Command::new("python3")
        .args(["-c", "import pytds"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(have, "python-tds is not installed: run scripts/test.sh (it runs `python3 -m pip install python-tds`)");
    let dir = tempfile::tempdir().unwrap();
    let server =
        mssql_sim::Server::start(mssql_sim::Config::new(dir.path(), "Py#Passw0rd")).unwrap();
    let script = format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .args([
            &script,
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
        "python-tds {name} failed:\n{stdout}\n{stderr}"
    );
    server.shutdown();
}

#[test]
fn python_tds_round_trip_error_and_transaction() {
    run_script("pytds_roundtrip.py");
}

/// The documented change tracking sync pattern through an independent client.
#[test]
fn python_tds_change_tracking_sync() {
    run_script("pytds_ct_sync.py");
}

#[test]
fn python_tds_collations_on_the_wire_in_order_and_in_conflict() {
    run_script("pytds_collations.py");
}

#[test]
fn python_tds_alias_types_and_refused_types() {
    run_script("pytds_legacy_schema.py");
}

/// A column added with REFERENCES: NULL in existing rows, listed in
/// sys.foreign_keys, enforced (547).
#[test]
fn python_tds_a_column_added_with_a_foreign_key() {
    run_script("pytds_alter_fk.py");
}

#[test]
fn python_tds_logins_and_permissions() {
    run_script("pytds_permissions.py");
}

/// ALTER COLUMN: widening keeps values, narrowing that does not fit and
/// dependent columns are refused, and change tracking records nothing.
#[test]
fn python_tds_alter_column() {
    run_script("pytds_alter_column.py");
}

/// Keyset pagination by a composite key in a case-sensitive column of a
/// case-insensitive database: the column's collation decides `>` as it
/// decides ORDER BY (as a snapshot's steps read).
#[test]
fn python_tds_keyset_pages_in_the_columns_collation() {
    run_script("pytds_keyset.py");
}
