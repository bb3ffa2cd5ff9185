#![cfg(unix)]
//! What ctferry writes holds health data or keys: the state, the outbox,
//! the delivery folder and the packages in them are readable by the
//! service account only (folders 0700, files 0600), whatever the umask it
//! was started with, and a state folder left readable by others is
//! tightened when it is opened (issue: "The state holds health data,
//! readable by everyone").

#[path = "support/world.rs"]
mod world;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use world::World;

/// Runs ctferry under `umask 000`, as a careless service definition would.
fn run_with_open_umask(w: &World, args: &str, config: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{}' {args} -c '{}'",
            env!("CARGO_BIN_EXE_ctferry"),
            w.path(config).display()
        ))
        .env("PW", world::PW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every folder under `root` (itself included) is 0700 and every file 0600.
fn assert_private(root: &Path) {
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(root), 0o700, "{}", root.display());
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            assert_private(&p);
        } else {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

#[test]
fn state_outbox_and_deliveries_are_readable_by_the_service_account_only() {
    let w = World::new(&[
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, Namn nvarchar(40) NULL)".into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Patient VALUES (1, N'E1', N'Tolvan Tolvansson')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Patient\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    // A state folder an older version left open to everyone.
    std::fs::create_dir_all(w.path("state")).unwrap();
    std::fs::set_permissions(w.path("state"), std::fs::Permissions::from_mode(0o755)).unwrap();
    run_with_open_umask(&w, "once", "ctferry.toml");
    run_with_open_umask(&w, "apply", "apply.toml");
    for folder in ["state", "outbox", "out"] {
        let p = w.path(folder);
        assert!(p.is_dir(), "{folder} was not made");
        assert_private(&p);
    }
    let delivered = std::fs::read_dir(w.path("out")).unwrap().count();
    assert!(delivered > 0, "nothing was delivered");
}

/// A file the test owns, which a planted link points at.
fn bait(w: &World) -> std::path::PathBuf {
    let p = w.path("precious.txt");
    std::fs::write(&p, "do not touch").unwrap();
    p
}

fn configured() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL)"
            .into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Patient VALUES (1, N'E1')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Patient\"\nowner = { column = \"Enhet\" }",
        "[\"E1\"]",
    );
    w
}

#[test]
fn links_planted_in_a_delivery_folder_are_never_followed() {
    let w = configured();
    let precious = bait(&w);
    std::fs::create_dir_all(w.path("out")).unwrap();
    std::os::unix::fs::symlink(&precious, w.path("out/.ctferry-check.part")).unwrap();
    std::os::unix::fs::symlink(
        &precious,
        w.path("out/0000000001-snapshot-0-1.ctf.pgp.part"),
    )
    .unwrap();
    w.run(&["check"]);
    w.run(&["once"]);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "do not touch");
    let delivered = w.path("out/0000000001-snapshot-0-1.ctf.pgp");
    let m = std::fs::symlink_metadata(&delivered).unwrap();
    assert!(m.file_type().is_file(), "the package is a file of its own");
    w.run(&["apply"]);
}

#[test]
fn a_pipe_or_link_named_like_a_package_is_refused_not_waited_on() {
    let w = configured();
    std::fs::create_dir_all(w.path("out")).unwrap();
    let fifo = w.path("out/0000000001-snapshot-0-1.ctf.pgp");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    let (ok, out, err) = w.ctferry(&["apply"]);
    assert!(!ok, "apply accepted a pipe:\n{out}");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // A link to a file elsewhere is refused the same way.
    std::fs::remove_file(&fifo).unwrap();
    let precious = bait(&w);
    std::os::unix::fs::symlink(&precious, &fifo).unwrap();
    let (ok, _, err) = w.ctferry(&["apply"]);
    assert!(!ok);
    assert!(err.contains("not a regular file"), "{err}");
}
