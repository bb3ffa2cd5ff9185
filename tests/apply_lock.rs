//! Two `ctferry apply` runs with one configuration never apply at once
//! (scheduled runs overlap when one apply takes longer than the interval):
//! the second says so and exits 75 having done nothing; once the first has
//! ended, however it ended (here kill -9 inside its transaction), the next
//! run applies.

#[path = "support/world.rs"]
mod world;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use world::{count, World, PW};

#[test]
fn a_second_apply_waits_its_turn_and_says_so() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1'), (2, N'E1')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }",
        "[\"E1\"]",
    );
    w.run(&["once"]);
    let mut first = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["apply", "-c"])
        .arg(w.path("apply.toml"))
        .env("PW", PW)
        .env("CTFERRY_FAILPOINT", "apply-mid-package")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("failpoint apply-mid-package reached")),
        "the first apply did not reach its failpoint"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["apply", "-c"])
        .arg(w.path("apply.toml"))
        .env("PW", PW)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("another `ctferry apply` with") && err.contains("this run did nothing"),
        "{err}"
    );
    // --status only reads: it runs meanwhile.
    let (ok, status, err) = w.ctferry(&["apply", "--status"]);
    assert!(
        ok && status.contains("no package applied yet"),
        "{status}{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    w.run(&["apply"]);
    assert_eq!(count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"), 2);
}
