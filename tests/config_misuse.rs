//! Configuration mistakes and tricks refused before anything is read
//! (issue: "Operable and hard to misuse", should-fix list): an hsa_id that
//! is a path or forges log lines; two caregivers sharing a delivery folder,
//! an SFTP area or a public key (each would receive the other's rows).

#[path = "support/world.rs"]
mod world;
use world::World;

fn world() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL)"
            .into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Patient\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w
}

/// Runs `check` with `edit` applied to ctferry.toml; its error output.
fn refused(w: &World, edit: impl Fn(String) -> String) -> String {
    let original = std::fs::read_to_string(w.path("ctferry.toml")).unwrap();
    std::fs::write(w.path("ctferry.toml"), edit(original.clone())).unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    std::fs::write(w.path("ctferry.toml"), original).unwrap();
    assert!(!ok, "check accepted it:\n{out}");
    err
}

#[test]
fn an_hsa_id_that_is_a_path_or_a_log_line_is_refused() {
    let w = world();
    for bad in ["..", ".", "SE\\nX", "SE/X", "SE X", ""] {
        let err = refused(&w, |t| {
            t.replace("hsa_id = \"SE-NORR\"", &format!("hsa_id = \"{bad}\""))
        });
        assert!(err.contains("is not an HSA id"), "{bad}: {err}");
    }
}

#[test]
fn two_caregivers_never_share_a_folder_or_a_key() {
    let w = world();
    std::fs::copy(w.path("keys/region.pub.asc"), w.path("keys/other.pub.asc")).unwrap();
    let second = |folder: &str, key: &str| {
        format!("\n[[subscriber]]\nhsa_id = \"SE-SYD\"\nkeys = [\"E2\"]\npublic_key = \"{key}\"\ndeliver = {{ folder = \"{folder}\" }}\n")
    };
    let err = refused(&w, |t| t + &second("out", "keys/other.pub.asc"));
    assert!(err.contains("delivers where SE-NORR does"), "{err}");
    let err = refused(&w, |t| t + &second("out/../out", "keys/other.pub.asc"));
    assert!(err.contains("delivers where SE-NORR does"), "{err}");
    let err = refused(&w, |t| t + &second("syd", "keys/norr.pub.asc"));
    assert!(err.contains("is also SE-NORR's"), "{err}");
    // Another name that links to the same folder or key file.
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::os::unix::fs::symlink(w.path("out"), w.path("alias")).unwrap();
    let err = refused(&w, |t| t + &second("alias", "keys/other.pub.asc"));
    assert!(err.contains("delivers where SE-NORR does"), "{err}");
    std::os::unix::fs::symlink(w.path("keys/norr.pub.asc"), w.path("keys/link.pub.asc")).unwrap();
    let err = refused(&w, |t| t + &second("syd", "keys/link.pub.asc"));
    assert!(err.contains("is also SE-NORR's"), "{err}");
    // The same key in another file: refused when the keys are loaded.
    std::fs::copy(w.path("keys/norr.pub.asc"), w.path("keys/copy.pub.asc")).unwrap();
    let original = std::fs::read_to_string(w.path("ctferry.toml")).unwrap();
    std::fs::write(
        w.path("ctferry.toml"),
        original.clone() + &second("syd", "keys/copy.pub.asc"),
    )
    .unwrap();
    let (ok, _, err) = w.ctferry(&["once"]);
    assert!(!ok);
    assert!(
        err.contains("SE-NORR and SE-SYD have the same public key"),
        "{err}"
    );
    std::fs::write(w.path("ctferry.toml"), original).unwrap();
    // Their own folder and key: accepted.
    let original = std::fs::read_to_string(w.path("ctferry.toml")).unwrap();
    std::fs::write(
        w.path("ctferry.toml"),
        original + &second("syd", "keys/other.pub.asc"),
    )
    .unwrap();
    w.run(&["check"]);
}

/// An authentic package under another name (same sequence, another kind or
/// versions) is refused: the copy's log would record it under a false name.
#[test]
fn a_package_under_another_name_is_refused() {
    let w = world();
    w.pmo()
        .execute("INSERT INTO dbo.Patient VALUES (1, N'E1')")
        .unwrap();
    w.run(&["once"]);
    let real = w.path("out/0000000001-snapshot-0-1.ctf.pgp");
    assert!(real.exists());
    let false_name = w.path("out/0000000001-delta-0-1.ctf.pgp");
    std::fs::rename(&real, &false_name).unwrap();
    let (ok, out, err) = w.ctferry(&["apply"]);
    assert!(!ok, "apply accepted a renamed package:\n{out}");
    assert!(
        err.contains("0000000001-delta-0-1.ctf.pgp")
            && err.contains("makes it 0000000001-snapshot-0-1.ctf.pgp"),
        "{err}"
    );
    std::fs::rename(&false_name, &real).unwrap();
    w.run(&["apply"]);
}

/// A device or a huge file named as a key is refused at once, not read
/// until memory runs out.
#[test]
fn a_key_file_that_is_a_device_or_huge_is_refused() {
    let w = world();
    let err = refused(&w, |t| {
        t.replace(
            "public_key = \"keys/norr.pub.asc\"",
            "public_key = \"/dev/zero\"",
        )
    });
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::write(w.path("keys/huge.pub.asc"), vec![b'A'; 2 << 20]).unwrap();
    let err = refused(&w, |t| {
        t.replace(
            "public_key = \"keys/norr.pub.asc\"",
            "public_key = \"keys/huge.pub.asc\"",
        )
    });
    assert!(err.contains("larger than"), "{err}");
}

/// A public key given where the secret one belongs: the hint never says to
/// write the secret key into the file that is sent to caregivers.
#[test]
fn the_hint_never_puts_a_secret_key_under_a_public_name() {
    let w = world();
    let err = refused(&w, |t| {
        t.replace(
            "signing_key = \"keys/region.sec.asc\"",
            "signing_key = \"keys/region.pub.asc\"",
        )
    });
    assert!(err.contains("looks like a public key file"), "{err}");
    assert!(
        !err.contains("> keys/region.pub.asc") && !err.contains("region.pub.asc`"),
        "{err}"
    );
}

/// `status` and `audit` never create a state; `audit` names an unknown
/// caregiver; `--every` takes the configuration's units.
#[test]
fn small_command_line_mistakes_say_what_is_wrong() {
    let w = world();
    let (ok, _, err) = w.ctferry(&["status"]);
    assert!(!ok);
    assert!(err.contains("no publisher state at"), "{err}");
    assert!(!w.path("state").exists(), "status created a state folder");
    w.run(&["once"]);
    let (ok, _, err) = w.ctferry(&["audit", "--subscriber", "SE-NOPE"]);
    assert!(!ok);
    assert!(
        err.contains("--subscriber SE-NOPE: no such caregiver") && err.contains("SE-NORR"),
        "{err}"
    );
    // `run --every 5s` runs (a cycle, then stopped by SIGTERM as a service
    // manager stops it).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["run", "--every", "5s", "-c"])
        .arg(w.path("ctferry.toml"))
        .env("PW", world::PW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "run --every 5s exited at once"
    );
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("invalid value"), "{err}");
    let (ok, _, err) = w.ctferry(&["run", "--every", "5x"]);
    assert!(!ok);
    assert!(
        err.contains("write seconds (60) or a number and s, m, h or d"),
        "{err}"
    );
}

/// An owner column the table lacks is named as such by every command, not
/// reported as a SQL error about change tracking columns.
#[test]
fn a_missing_owner_column_is_named() {
    let w = world();
    w.configure(
        "[[table]]\nname = \"dbo.Patient\"\nowner = { column = \"Vardenhet\" }",
        "[\"E1\"]",
    );
    for cmd in ["once", "check"] {
        let (ok, _, err) = w.ctferry(&[cmd]);
        assert!(!ok);
        assert!(
            err.contains("the owner column Vardenhet does not exist in the table"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("SYS_CHANGE_VERSION"), "{cmd}: {err}");
    }
}
