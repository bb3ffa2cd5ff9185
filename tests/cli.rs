//! The `ctferry` binary's command-line contract as it stands today.

use std::process::Command;

#[test]
fn version_and_unknown_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ctferry {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn keys_generate_writes_a_pair_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("keys/region");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args([
                "keys",
                "generate",
                "--name",
                "Region",
                "--email",
                "r@example.invalid",
                "--out",
            ])
            .arg(&prefix)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sec = dir.path().join("keys/region.sec.asc");
    assert!(std::fs::read_to_string(&sec)
        .unwrap()
        .contains("PRIVATE KEY BLOCK"));
    assert!(
        std::fs::read_to_string(dir.path().join("keys/region.pub.asc"))
            .unwrap()
            .contains("PUBLIC KEY BLOCK")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = std::fs::read(&sec).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&sec).unwrap(), before);
}

#[test]
fn inspect_reports_missing_files_and_bad_keys_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("x.asc");
    std::fs::write(&not_a_key, "hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["inspect", "nope.ctf.pgp", "--key"])
        .arg(&not_a_key)
        .arg("--signer")
        .arg(&not_a_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ctferry: ")
            && err.contains("x.asc")
            && err.contains("not an armored OpenPGP secret key"),
        "{err}"
    );
    // Usage errors exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["inspect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
