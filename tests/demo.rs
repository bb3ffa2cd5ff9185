//! `ctferry demo` end to end (the README's first command), then the
//! commands the demo and the README suggest, on the folder it leaves.

use std::process::Command;

fn ctferry(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// CI installs OpenSSH's sshd (scripts/test.sh), so the default run delivers
/// over SFTP; the folder variant is the other test.
#[test]
fn the_demo_passes_every_check_and_leaves_a_working_setup() {
    demo(&[], "delivery: SFTP");
}

#[test]
fn the_demo_with_folders_passes_every_check() {
    demo(&["--delivery", "folder"], "delivery: local folders");
}

fn demo(extra: &[&str], delivery: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let mut args = vec!["demo", "--dir", d];
    args.extend_from_slice(extra);
    let (ok, out, err) = ctferry(&args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(delivery), "{out}");
    assert!(out.contains("every check passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // The restart line keeps the simulator's password off the command line.
    assert!(out.contains("--password-env MSSQL_SIM_PASSWORD"), "{out}");
    assert!(!out.contains("--password \""), "{out}");
    // Each step's check ran: a snapshot round and six delta rounds, three
    // caregivers each, every copy holding each patient wherever it has care
    // (listed or visited there) and no visit without its patient.
    assert_eq!(
        out.matches("copy = filtered, masked source, no dangling reference")
            .count(),
        21,
        "{out}"
    );
    // Changes of shape in band: a column held back, then accepted with
    // its values; a table added; a caregiver's keys gained; no snapshot.
    assert!(
        out.contains("dbo.Besok: new column(s) Rum held back"),
        "{out}"
    );
    assert!(
        out.contains("dbo.Besok: column Rum added; Rum already holds values"),
        "{out}"
    );
    assert!(
        out.contains("dbo.Recept: added to the configuration"),
        "{out}"
    );
    assert!(
        out.contains("partition keys of SE2321000016-C3D4 changed (gained SE2321000016-G7H8)"),
        "{out}"
    );
    assert!(
        out.contains("no snapshot: each change reached the copies as a delta"),
        "{out}"
    );
    assert!(out.contains("a whole care unit"), "{out}");
    // A patient's last visit at one caregiver moved to another: the
    // patient went with it.
    assert!(
        out.contains("and its address: gone from norr, in ost: OK"),
        "{out}"
    );
    let rows: u64 = out
        .lines()
        .find(|l| l.starts_with("1. source database"))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rows >= 100_000, "{rows} rows");

    // What the demo says to try next works on the folder it left.
    let cfg = format!("{d}/ctferry.toml");
    let (ok, out, err) = ctferry(&["status", "-c", &cfg]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.matches("  copy shows the source as of").count(),
        3,
        "{out}"
    );
    let (ok, out, err) = ctferry(&["audit", "-c", &cfg, "--subscriber", "SE2321000016-A1B2"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().filter(|l| l.contains(",delivered,")).count() >= 4,
        "{out}"
    );
    let first = std::fs::read_dir(dir.join("deliveries/norr"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("0000000001-snapshot"))
        .unwrap();
    let (ok, out, err) = ctferry(&[
        "inspect",
        first.to_str().unwrap(),
        "--key",
        &format!("{d}/keys/norr.sec.asc"),
        "--signer",
        &format!("{d}/keys/region.pub.asc"),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("SE2321000016-A1B2"), "{out}");
    // Another caregiver's key cannot open it.
    let (ok, _, _) = ctferry(&[
        "inspect",
        first.to_str().unwrap(),
        "--key",
        &format!("{d}/keys/syd.sec.asc"),
        "--signer",
        &format!("{d}/keys/region.pub.asc"),
    ]);
    assert!(!ok);

    // Running it again replaces its own folder; a folder it did not make is refused.
    let other = tmp.path().join("mine");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    let (ok, _, err) = ctferry(&["demo", "--dir", other.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("was not made by ctferry demo"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "keep me"
    );
}
