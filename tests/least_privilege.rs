//! ctferry with the least-privileged logins the README documents, on both
//! sides: the README's "Source prerequisites" lines and the caregiver's
//! login lines are read from README.md and run as written (the password
//! and the table names filled in), then check, once and apply log in as
//! those logins, not as sa. A grant missing from the README, or one more
//! than needed, fails here; each missing grant is named by `check` with
//! the GRANT that fixes it.

#[path = "support/world.rs"]
mod world;
use world::{count, World, PW};

const TABLES: &str = "[[table]]\nname = \"dbo.Vardenhet\"\nowner = { column = \"HsaId\" }\n\
[[table]]\nname = \"dbo.Besok\"\nowner = { path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" }\n";

/// The lines of the README's first ```sql block after `heading`.
fn readme_sql(heading: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("README: {heading}"));
    let block = after
        .split("```sql\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .map(|l| l.split("--").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn setup() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Datum date NOT NULL)".into(),
        "INSERT INTO dbo.Vardenhet VALUES (1, N'E1'), (2, N'E2')".into(),
        "INSERT INTO dbo.Besok VALUES (10, 1, '2026-11-01'), (11, 2, '2026-11-02')".into(),
    ]);
    w.configure(TABLES, "[\"E1\"]");
    for (file, user) in [("ctferry.toml", "ctferry"), ("apply.toml", "ctferry_apply")] {
        let p = w.path(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("user id=sa;"));
        std::fs::write(&p, text.replace("user id=sa;", &format!("user id={user};"))).unwrap();
    }
    // The caregiver's login, as the README creates it (the database exists).
    let lines: Vec<String> = readme_sql("## The caregiver's side")
        .into_iter()
        .filter(|l| !l.starts_with("CREATE DATABASE"))
        .map(|l| l.replace("'...'", &format!("'{PW}'")))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    world::connect(&w.copy, "master")
        .execute(&lines.join("\n"))
        .unwrap();
    w
}

/// Runs the README's source lines that `keep` keeps, as sa: the database
/// settings are World's already; each table line runs for every published
/// table.
fn source_prerequisites(w: &World, keep: impl Fn(&str) -> bool) {
    let lines = readme_sql("### Source prerequisites");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ALTER DATABASE PMO SET ALLOW_SNAPSHOT_ISOLATION ON")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ALTER DATABASE PMO SET CHANGE_TRACKING = ON")));
    let mut pmo = w.pmo();
    for line in lines.iter().filter(|l| !l.starts_with("ALTER DATABASE")) {
        let line = line.replace("'...'", &format!("'{PW}'"));
        if line.contains("dbo.Vardenhet") {
            for t in ["dbo.Vardenhet", "dbo.Besok"] {
                let l = line.replace("dbo.Vardenhet", t);
                if keep(&l) {
                    pmo.execute(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
                }
            }
        } else if keep(&line) {
            pmo.execute(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}

#[test]
fn the_readmes_grants_are_enough_for_check_once_and_apply() {
    let w = setup();
    source_prerequisites(&w, |_| true);
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(
        ok && out.contains("OK (2 tables, 1 subscribers)"),
        "{out}{err}"
    );
    w.cycle();
    let mut kopia = w.kopia();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 1);
    // A change travels too (CHANGETABLE, the minimum valid versions).
    w.pmo()
        .execute("INSERT INTO dbo.Besok VALUES (12, 1, '2026-11-03'); UPDATE dbo.Vardenhet SET HsaId = N'E1' WHERE Id = 2")
        .unwrap();
    w.cycle();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 3);
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Vardenhet"), 2);
}

#[test]
fn check_names_each_missing_grant_and_the_grant_that_fixes_it() {
    let w = setup();
    // No grant at all (SQL Server hides the tables' metadata).
    source_prerequisites(&w, |l| !l.starts_with("GRANT"));
    let (ok, out, err) = w.ctferry(&["check"]);
    let text = format!("{out}{err}");
    assert!(!ok, "{text}");
    for t in ["dbo.Vardenhet", "dbo.Besok"] {
        assert!(
            text.contains(&format!("[[table]] {t}: the login ctferry (user ctferry in the source database) lacks SELECT and VIEW CHANGE TRACKING: ctferry cannot read the table; run GRANT SELECT, VIEW CHANGE TRACKING ON {t} TO [ctferry]")),
            "{text}"
        );
    }
    // A misspelt table: HAS_PERMS_BY_NAME finds none.
    let cfg = w.path("ctferry.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("name = \"dbo.Besok\"", "name = \"dbo.Besk\""),
    )
    .unwrap();
    let (_, out, err) = w.ctferry(&["check"]);
    assert!(
        format!("{out}{err}").contains("[[table]] dbo.Besk: no such table, or the login ctferry holds no permission on it (SQL Server then hides it): check the name, then GRANT SELECT, VIEW CHANGE TRACKING ON dbo.Besk TO [ctferry]"),
        "{out}{err}"
    );
    std::fs::write(&cfg, good).unwrap();
    // SELECT only: change tracking would look off; check says it is the grant.
    let mut pmo = w.pmo();
    pmo.execute("GRANT SELECT ON dbo.Vardenhet TO ctferry; GRANT SELECT ON dbo.Besok TO ctferry")
        .unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    let text = format!("{out}{err}");
    assert!(!ok, "{text}");
    assert!(
        text.contains("[[table]] dbo.Besok: the login ctferry (user ctferry in the source database) lacks VIEW CHANGE TRACKING: without it change tracking looks off to ctferry (CHANGETABLE fails with error 229, the minimum valid version reads NULL); run GRANT VIEW CHANGE TRACKING ON dbo.Besok TO [ctferry]"),
        "{text}"
    );
    assert!(!text.contains("change tracking is off"), "{text}");
    // The hop table of Besok's owner path is named on its own account.
    assert!(
        text.contains("lacks VIEW CHANGE TRACKING")
            && text.matches("ON dbo.Vardenhet TO [ctferry]").count() >= 2,
        "{text}"
    );
    // The cycle refuses with a message that names the grant as one cause.
    let (ok, out, err) = w.ctferry(&["once"]);
    let text = format!("{out}{err}");
    assert!(
        !ok && text.contains("or the login lacks VIEW CHANGE TRACKING on it"),
        "{text}"
    );
    // A DENY wins over the README's grants; check names it as missing.
    source_prerequisites(&w, |l| l.starts_with("GRANT"));
    pmo.execute("DENY SELECT ON dbo.Besok TO ctferry").unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    let text = format!("{out}{err}");
    assert!(!ok && text.contains("[[table]] dbo.Besok: the login ctferry (user ctferry in the source database) lacks SELECT: ctferry cannot read the table; run GRANT SELECT ON dbo.Besok TO [ctferry]"), "{text}");
    pmo.execute("REVOKE SELECT ON dbo.Besok FROM ctferry; GRANT SELECT ON dbo.Besok TO ctferry")
        .unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
}

#[test]
fn the_caregivers_login_needs_to_own_its_copy() {
    let w = setup();
    source_prerequisites(&w, |_| true);
    w.run(&["once"]);
    // Without db_owner apply cannot create the copy's tables: it says so
    // and applies nothing.
    world::connect(&w.copy, "Kopia")
        .execute("ALTER ROLE db_owner DROP MEMBER ctferry_apply")
        .unwrap();
    let (ok, out, err) = w.ctferry(&["apply"]);
    let text = format!("{out}{err}");
    assert!(!ok && text.contains("permission denied"), "{text}");
    world::connect(&w.copy, "Kopia")
        .execute("ALTER ROLE db_owner ADD MEMBER ctferry_apply")
        .unwrap();
    w.run(&["apply"]);
    assert_eq!(count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"), 1);
}

/// A snapshot step that the source refuses (here SELECT denied on the
/// table the later steps read, while the thread that reads the steps ahead
/// is still on the first table) fails the run with the server's error and
/// commits nothing of that step: the steps before it are kept, and once the
/// grant is back the next run continues where it stopped and the copy gets
/// every row, including those of the refused table. (A reading failure
/// taken as the end of a step would finish the snapshot without them.)
#[test]
fn a_snapshot_step_the_source_refuses_fails_the_run_and_resumes_after_the_fix() {
    use std::io::{BufRead, BufReader};
    let w = setup();
    source_prerequisites(&w, |_| true);
    // More care units of the caregiver's than the reading thread can read
    // ahead (a step of one row is two messages, `CHUNKS` wait at most):
    // one step each (snapshot_step_rows = 1), then dbo.Besok's row.
    let n = ctferry::publisher::snapshot::CHUNKS + 10;
    let units: Vec<String> = (3..3 + n).map(|i| format!("({i}, N'E1')")).collect();
    w.pmo()
        .execute(&format!(
            "INSERT INTO dbo.Vardenhet VALUES {}",
            units.join(", ")
        ))
        .unwrap();
    let text = std::fs::read_to_string(w.path("ctferry.toml")).unwrap();
    std::fs::write(
        w.path("ctferry.toml"),
        text.replacen("[[table]]", "snapshot_step_rows = 1\n[[table]]", 1),
    )
    .unwrap();
    // Paused after the first step's commit, the source denies dbo.Besok.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["once", "-c"])
        .arg(w.path("ctferry.toml"))
        .env("PW", PW)
        .env("CTFERRY_FAILPOINT", "snapshot-step-committed")
        .env("CTFERRY_FAILPOINT_PAUSE_MS", "3000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("failpoint snapshot-step-committed reached") {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    w.pmo()
        .execute("DENY SELECT ON dbo.Besok TO ctferry")
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let status = child.wait().unwrap();
    let said = format!("{out}{seen}{rest}");
    assert!(!status.success(), "{said}");
    assert!(
        said.contains("dbo.Besok") && said.contains("SELECT permission was denied"),
        "{said}"
    );
    let before = w.packages("outbox/SE-NORR");
    assert!(before.len() >= 2, "{:?}", before.keys());
    assert!(
        w.packages("out").is_empty(),
        "an unfinished snapshot was delivered"
    );
    // The grant back: the next run continues, the steps before are kept.
    w.pmo()
        .execute("REVOKE SELECT ON dbo.Besok FROM ctferry; GRANT SELECT ON dbo.Besok TO ctferry")
        .unwrap();
    w.run(&["once"]);
    let delivered = w.packages("out");
    for (name, bytes) in &before {
        assert_eq!(delivered.get(name), Some(bytes), "{name}: not kept");
    }
    w.run(&["apply"]);
    let mut kopia = w.kopia();
    assert_eq!(
        count(&mut kopia, "SELECT COUNT(*) FROM dbo.Vardenhet"),
        1 + n as i64
    );
    assert_eq!(
        count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok WHERE Id = 10"),
        1
    );
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 1);
}
