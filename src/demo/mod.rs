//! `ctferry demo`: the whole job on one machine, end to end, checked.
//!
//! What it is for: a new user's first command. It starts an embedded
//! mssql-sim holding a PMO-like source database generated deterministically
//! (caregivers, care units, patients, visits, journal notes, diagnoses with a
//! shared code list, users with a password column that is masked), sets up
//! three caregivers (keys, delivery areas, apply.toml, a copy database
//! each), onboards them with snapshots, applies them, then makes a stream of
//! changes (updates, inserts, deletes, a visit, a patient's last visit at
//! one caregiver and then a whole care unit moving between caregivers, a
//! code-list change), runs delta cycles, applies, and after every round
//! checks that each copy equals its filtered, masked source (a patient in
//! every copy where it has care: listed there or visited there), holds
//! nothing of the others, and has no dangling reference.
//!
//! It uses the library exactly as the commands do (Publisher, deliver,
//! apply); nothing here is a shortcut the real commands lack. What it must
//! never do: report success when a check failed (the exit code is 0 only
//! when every check passed), or touch a folder it did not create (an
//! existing non-empty DIR is refused unless a previous demo made it).
//!
//! The caregivers' copies live as separate databases on the same embedded
//! server as the source (a demo shortcut; in real life each caregiver has
//! its own SQL Server). Delivery goes over SFTP to a private OpenSSH sshd
//! when one is installed (one area per caregiver; the caregivers pick their
//! packages up over SFTP too), or to local folders otherwise.

mod data;
mod error;
mod files;
mod sshd;
mod verify;

pub use error::DemoError;

use data::{
    fill_source, last_care_visit, moving_visit, Caregiver, Table, BESOK_WITH_RUM, CAREGIVERS,
    RECEPT, TABLES, UNITS_PER_CAREGIVER, VISITS,
};
use files::{apply_text, config_text, conn, copy_db, prepare_dir, write, write_secret};
use sshd::{sshd_available, LocalSshd, SSHD};
use verify::{count_foreign, dangling, verify};

use crate::caregiver::{self, ApplyReport};
use crate::config::{self, Secret};
use crate::format::crypto;
use crate::mssql::client::Db;
use crate::publisher::Publisher;
use std::path::{Path, PathBuf};
use std::time::Instant;

const SQL_PASSWORD: &str = "Demo#Passw0rd-2026";

/// How the demo delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// SFTP when OpenSSH's sshd and ssh-keygen are installed, folders otherwise.
    Auto,
    Folder,
    Sftp,
}

/// Options of `ctferry demo`.
pub struct Options {
    pub dir: PathBuf,
    pub delivery: Delivery,
}

/// What the demo prints as it goes.
fn say(line: &str) {
    println!("{line}");
}

struct Step<'a> {
    cfg: config::Config,
    dir: &'a Path,
    /// The tables each copy is checked for (round 9 adds one and a column).
    tables: Vec<&'static Table>,
    /// Each subscribed caregiver's partition keys (round 9 gives Syd more).
    keys: Vec<Vec<String>>,
    addr: std::net::SocketAddr,
    secret: Secret,
    failures: usize,
    /// Snapshots made after onboarding (a change of shape must make none).
    snapshots: usize,
}

impl Step<'_> {
    fn cycle(&mut self, title: &str) -> Result<(), DemoError> {
        let t = Instant::now();
        let mut db = Db::connect(&self.cfg.source.connection, &self.secret)?;
        let mut p = Publisher::open(&self.cfg)?;
        let r = p.once(&mut db, true)?;
        drop(p);
        let rows: u64 = r.packages.iter().map(|p| p.rows).sum();
        say(&format!(
            "{title}: versions {} → {}, {} changes read, {} package(s) with {rows} rows delivered in {:.1} s",
            r.previous.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            r.version,
            r.changes_read,
            r.packages.len(),
            t.elapsed().as_secs_f64()
        ));
        for (hsa, why) in &r.snapshots {
            say(&format!("  snapshot for {hsa}: {why}"));
        }
        for (table, cols) in &r.held {
            say(&format!(
                "  {table}: new column(s) {} held back, not published until decided",
                cols.join(", ")
            ));
        }
        for (table, why) in &r.reshaped {
            say(&format!("  {table}: {why}"));
        }
        for (hsa, how) in &r.rekeyed {
            say(&format!(
                "  partition keys of {hsa} changed ({how}): its rows moved in this delta"
            ));
        }
        self.snapshots += r.snapshots.len();
        if !r.delivery_failures.is_empty() {
            self.failures += r.delivery_failures.len();
            for (h, e) in &r.delivery_failures {
                say(&format!("  FAIL delivery to {h}: {e}"));
            }
        }
        Ok(())
    }

    fn apply_and_verify(&mut self, what: &str) -> Result<(), DemoError> {
        let mut src = Db::connect(&conn(self.addr, "Pmo"), &self.secret)?;
        for (ci, c) in CAREGIVERS.iter().filter(|c| c.subscribed).enumerate() {
            let acfg = crate::config::load_apply(
                &self.dir.join("caregivers").join(c.short).join("apply.toml"),
            )?;
            let (keys, publishers) = acfg.load_keys()?;
            let mut db = Db::connect(&acfg.connection, &acfg.password)?;
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(format!("{}: applying", c.short));
            let pb2 = pb.clone();
            let mut report = ApplyReport {
                progress: Some(Box::new(move |f: &str, n: u64| {
                    pb2.set_message(format!("{f}: {n} rows"));
                    pb2.tick();
                })),
                ..ApplyReport::default()
            };
            let t = Instant::now();
            caregiver::apply_all(&acfg, &mut db, &keys, &publishers, &mut report)?;
            let took = t.elapsed();
            pb.finish_and_clear();
            let rows: u64 = report.applied.iter().map(|a| a.1).sum();
            let mut problems = verify(&mut src, &mut db, c, &self.tables, &self.keys[ci])?;
            for (what, n) in dangling(&mut db)? {
                problems.push(format!("{}: {n} {what}", c.short));
            }
            let foreign = count_foreign(&mut db, &self.keys[ci])?;
            if problems.is_empty() && foreign == 0 {
                say(&format!(
                    "  {:<5} applied {} package(s), {rows} rows in {:.1} s; copy = filtered, masked source, no dangling reference ({what}): OK",
                    c.short,
                    report.applied.len(),
                    took.as_secs_f64()
                ));
            } else {
                for p in &problems {
                    say(&format!("  FAIL {p}"));
                }
                if foreign > 0 {
                    say(&format!(
                        "  FAIL {}: {foreign} care units of other caregivers in the copy",
                        c.short
                    ));
                }
                self.failures += problems.len() + usize::from(foreign > 0);
            }
        }
        Ok(())
    }
}

impl Step<'_> {
    /// Says whether patient `p` (with its address) is in `to`'s copy and no
    /// longer in `from`'s; a failure otherwise.
    fn patient_moved(&mut self, p: i64, from: &Caregiver, to: &Caregiver) -> Result<(), DemoError> {
        let count = |c: &Caregiver| -> Result<i64, DemoError> {
            let acfg = crate::config::load_apply(
                &self.dir.join("caregivers").join(c.short).join("apply.toml"),
            )?;
            let mut db = Db::connect(&acfg.connection, &acfg.password)?;
            let rows = db.rows(
                "looking for the moved patient",
                "SELECT (SELECT COUNT(*) FROM dbo.Patient WHERE Id = @P1) + (SELECT COUNT(*) FROM dbo.PatientAdress WHERE PatientId = @P1)",
                &[crate::mssql::client::Param::I64(p)],
            )?;
            Ok(rows
                .first()
                .and_then(|r| crate::mssql::client::int_at(r, 0))
                .unwrap_or(0))
        };
        let (at_from, at_to) = (count(from)?, count(to)?);
        if at_from == 0 && at_to >= 2 {
            say(&format!(
                "  patient {p} and its address: gone from {}, in {}: OK",
                from.short, to.short
            ));
        } else {
            say(&format!(
                "  FAIL patient {p}: {at_from} row(s) left in {}, {at_to} in {} (want 0 and 2)",
                from.short, to.short
            ));
            self.failures += 1;
        }
        Ok(())
    }
}

/// Rounds 8 and 9: changes of shape in a running setup, each for its table
/// alone and in band (no snapshot): a column added at the source is held
/// back; then the region accepts it, publishes a table it had left out,
/// and gives Syd the care units of a caregiver that does not subscribe.
fn shape_rounds(step: &mut Step<'_>, src: &mut Db) -> Result<(), DemoError> {
    say("8. changes of shape: a column Rum added to dbo.Besok at the source, and filled in");
    src.execute("ALTER TABLE dbo.Besok ADD Rum nvarchar(20) NULL")?;
    src.execute(
        "UPDATE dbo.Besok SET Rum = N'Rum ' + CAST(Id % 40 AS nvarchar(5)) WHERE Id % 3 = 0",
    )?;
    step.cycle("   delta cycle")?;
    step.apply_and_verify("delta; Rum not sent")?;
    say(&format!(
        "9. the region accepts Rum (`ctferry schema accept`), publishes dbo.Recept, and gives Syd the care units of {} (its HSA id added to Syd's keys)",
        CAREGIVERS[3].name
    ));
    let state = crate::publisher::state::State::open(&step.cfg.publisher.state)
        .map_err(crate::publisher::PublishError::from)?;
    crate::publisher::accept::accept(
        &state,
        "dbo.Besok",
        &["Rum".into()],
        &crate::time::now_text(),
    )
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    drop(state);
    let path = step.dir.join("ctferry.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| DemoError::Setup(e.to_string()))?;
    let syd = CAREGIVERS[1].hsa;
    let vast = CAREGIVERS[3].hsa;
    let text = text.replace(
        &format!("keys = [\"{syd}\"]"),
        &format!("keys = [\"{syd}\", \"{vast}\"]"),
    ) + "[[table]]\nname = \"dbo.Recept\"\nowner = { path = \"BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }\n";
    write(&path, &text)?;
    step.cfg = config::load(&path)?;
    step.keys[1].push(vast.to_string());
    for t in step.tables.iter_mut() {
        if t.name == "dbo.Besok" {
            *t = &BESOK_WITH_RUM;
        }
    }
    step.tables.push(&RECEPT);
    step.cycle("   delta cycle")?;
    step.apply_and_verify("delta with table changes")?;
    if step.snapshots > 0 {
        say(&format!(
            "  FAIL {} snapshot(s): a change of shape must not start a new epoch",
            step.snapshots
        ));
        step.failures += 1;
    } else {
        say("  no snapshot: each change reached the copies as a delta (no new epoch)");
    }
    Ok(())
}

/// How to run this very binary again, as short as is still exact.
fn command_path() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(e), Some(c)) => match e.strip_prefix(&c) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => e.display().to_string(),
        },
        (Some(e), None) => e.display().to_string(),
        _ => "ctferry".into(),
    }
}

/// The simulator's command: the binary next to this one when it was built,
/// otherwise how to build and run it from the repository.
fn sim_command() -> String {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.join("mssql-sim")))
        .filter(|p| p.exists());
    match sibling {
        Some(p) => p.display().to_string(),
        None => "cargo run --release -p mssql-sim --".into(),
    }
}

/// Runs the demo; Ok only when every check passed.
pub fn run(opts: &Options) -> Result<(), DemoError> {
    let started = Instant::now();
    let dir = &opts.dir;
    prepare_dir(dir)?;
    let dir = &dir
        .canonicalize()
        .map_err(|e| DemoError::Setup(format!("{}: {e}", dir.display())))?;
    say(&format!("ctferry demo in {}", dir.display()));

    // 1. The region's source: an embedded mssql-sim with a PMO-like database.
    let sim = mssql_sim::Server::start(mssql_sim::Config::new(dir.join("sql"), SQL_PASSWORD))
        .map_err(|e| DemoError::Setup(format!("cannot start the embedded simulator: {e}")))?;
    let addr = sim.addr();
    let secret = Secret::new(SQL_PASSWORD.to_string());
    write_secret(
        &dir.join("secrets/sql-password"),
        &format!("{SQL_PASSWORD}\n"),
    )?;
    let mut master = Db::connect(&conn(addr, "master"), &secret)?;
    master.execute("CREATE DATABASE Pmo")?;
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        master.execute(&format!("CREATE DATABASE {}", copy_db(c)))?;
    }
    let mut src = Db::connect(&conn(addr, "Pmo"), &secret)?;
    let t = Instant::now();
    let n = fill_source(&mut src)?;
    say(&format!(
        "1. source database Pmo on the embedded simulator at {addr}: {n} rows in {} tables, change tracking on ({:.1} s)",
        TABLES.len(),
        t.elapsed().as_secs_f64()
    ));

    // 2. Keys, delivery areas and configuration for the region and three caregivers.
    let subscribed: Vec<&Caregiver> = CAREGIVERS.iter().filter(|c| c.subscribed).collect();
    let use_sftp = match opts.delivery {
        Delivery::Folder => false,
        Delivery::Sftp => true,
        Delivery::Auto => sshd_available(),
    };
    let areas: Vec<PathBuf> = subscribed
        .iter()
        .map(|c| dir.join("deliveries").join(c.short))
        .collect();
    for a in &areas {
        std::fs::create_dir_all(a)
            .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", a.display())))?;
    }
    let sshd = match (use_sftp, opts.delivery) {
        (false, _) => None,
        (true, Delivery::Sftp) => Some(LocalSshd::start(dir, &areas)?),
        (true, _) => match LocalSshd::start(dir, &areas) {
            Ok(s) => Some(s),
            Err(e) => {
                say(&format!(
                    "   (cannot start a local sshd, delivering to folders instead: {e})"
                ));
                None
            }
        },
    };
    let (deliver, sources): (Vec<String>, Vec<String>) = match &sshd {
        None => subscribed
            .iter()
            .map(|c| {
                (
                    format!("folder = \"deliveries/{}\"", c.short),
                    format!("folder = \"../../deliveries/{}\"\n", c.short),
                )
            })
            .unzip(),
        Some(s) => subscribed
            .iter()
            .zip(&s.ports)
            .zip(&areas)
            .map(|((_, p), a)| {
                let url = format!("sftp://{}@127.0.0.1:{p}{}", s.user, a.display());
                (
                    format!("sftp = \"{url}\", identity = \"ssh/demo_key\", host_key = \"{}\"", s.fingerprint),
                    format!(
                        "sftp = \"{url}\"\nidentity = \"../../ssh/demo_key\"\nhost_key = \"{}\"\nfolder = \"incoming\"\n",
                        s.fingerprint
                    ),
                )
            })
            .unzip(),
    };
    let (public, secret_key) = crypto::generate("Region Demo", "region@demo.invalid", None)?;
    write(&dir.join("keys/region.pub.asc"), &public)?;
    write_secret(&dir.join("keys/region.sec.asc"), &secret_key)?;
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        let (public, secret_key) =
            crypto::generate(c.name, &format!("it@{}.demo.invalid", c.short), None)?;
        write(&dir.join(format!("keys/{}.pub.asc", c.short)), &public)?;
        write_secret(&dir.join(format!("keys/{}.sec.asc", c.short)), &secret_key)?;
        let cdir = dir.join("caregivers").join(c.short);
        std::fs::create_dir_all(&cdir).map_err(|e| DemoError::Setup(e.to_string()))?;
        let i = subscribed.iter().position(|x| x.hsa == c.hsa).unwrap_or(0);
        write(&cdir.join("apply.toml"), &apply_text(addr, c, &sources[i]))?;
    }
    write(&dir.join("ctferry.toml"), &config_text(addr, &deliver))?;
    let cfg = config::load(&dir.join("ctferry.toml"))?;
    let problems = crate::publisher::check::check(&cfg);
    if !problems.is_empty() {
        for p in &problems {
            say(&format!("  FAIL check: {p}"));
        }
        return Err(DemoError::ChecksFailed(problems.len()));
    }
    say("2. keys for the region and 3 caregivers, ctferry.toml and an apply.toml each; `ctferry check`: OK");
    match &sshd {
        Some(s) => say(&format!(
            "   delivery: SFTP, a private OpenSSH sshd on 127.0.0.1 ports {:?} (one per caregiver, host key {} pinned), caregivers pick up over SFTP",
            s.ports, s.fingerprint
        )),
        None => say("   delivery: local folders deliveries/<caregiver>/ (`--delivery sftp` uses a local OpenSSH sshd instead)"),
    }
    say(&format!(
        "   ({} is in the source too but subscribes to nothing: its rows must reach no one)",
        CAREGIVERS[3].name
    ));

    let mut step = Step {
        cfg,
        dir,
        tables: TABLES.iter().collect(),
        keys: subscribed.iter().map(|c| vec![c.hsa.to_string()]).collect(),
        snapshots: 0,
        addr,
        secret: secret.clone(),
        failures: 0,
    };
    // 3. Onboarding: one snapshot each, applied to each caregiver's copy.
    step.cycle("3. onboarding cycle")?;
    step.apply_and_verify("snapshot")?;

    // 4. A stream of changes, in rounds; a delta cycle and an apply after each.
    // A patient whose only care at Norr is one visit, with no care at Öst:
    // the visit moves to Öst's first unit (round 2).
    let (moved_visit, moved_patient) =
        last_care_visit(&mut src, CAREGIVERS[0].hsa, CAREGIVERS[2].hsa)?;
    let rounds: [(&str, Vec<String>); 4] = [
        (
            "updates, new visits and notes, deletes, one visit moving to another caregiver, a password change",
            vec![
                "UPDATE dbo.Journalanteckning SET Text = Text + N' Tillägg.' WHERE Id % 97 = 0".into(),
                format!("INSERT INTO dbo.Besok SELECT Id + {VISITS}, PatientId, VardenhetId, '2026-02-01T10:30:00', N'Återbesök', NULL FROM dbo.Besok WHERE Id % 150 = 0"),
                format!("INSERT INTO dbo.Journalanteckning SELECT Id + {VISITS}, Id + {VISITS}, '2026-01-01T09:00:00', N'Återbesök, ny anteckning.' FROM dbo.Besok WHERE Id % 150 = 0 AND Id <= {VISITS}"),
                "DELETE FROM dbo.Journalanteckning WHERE Id % 211 = 0".into(),
                // Visit 6 (at a unit of Norr, see `moving_visit`) moves to
                // Öst's first unit: it and its notes and diagnoses leave one
                // copy and enter another.
                format!("UPDATE dbo.Besok SET VardenhetId = {} WHERE Id = {}", 2 * UNITS_PER_CAREGIVER + 1, moving_visit(&mut src)?),
                "UPDATE dbo.Anvandare SET Losenord = 0xDEADBEEF WHERE Id % 10 = 1".into(),
            ],
        ),
        (
            "a patient's last visit at Norr moves to Öst, its first there: the patient and its address leave Norr's copy and arrive in Öst's",
            vec![format!("UPDATE dbo.Besok SET VardenhetId = {} WHERE Id = {moved_visit}", 2 * UNITS_PER_CAREGIVER + 1)],
        ),
        (
            "a whole care unit (unit 2) moves from Norr to Syd, with its patients, visits, notes, diagnoses and users",
            vec![format!("UPDATE dbo.Vardenhet SET VardgivareHsaId = N'{}' WHERE Id = 2", CAREGIVERS[1].hsa)],
        ),
        (
            "the shared diagnosis code list changes; visits are deleted with their notes and diagnoses",
            vec![
                "UPDATE dbo.Diagnoskod SET Text = Text + N' (reviderad)' WHERE Kod LIKE N'A%'".into(),
                "INSERT INTO dbo.Diagnoskod VALUES (N'Z99.9', N'Ny kod')".into(),
                "DELETE FROM dbo.Diagnos WHERE BesokId % 500 = 1".into(),
                "DELETE FROM dbo.Journalanteckning WHERE BesokId % 500 = 1".into(),
                // Prescriptions are not published yet (round 9), but they
                // reference the visits too.
                "DELETE FROM dbo.Recept WHERE BesokId % 500 = 1".into(),
                "DELETE FROM dbo.Besok WHERE Id % 500 = 1".into(),
            ],
        ),
    ];
    for (i, (what, stmts)) in rounds.iter().enumerate() {
        say(&format!("{}. changes: {what}", 4 + i));
        for s in stmts {
            src.execute(s)?;
        }
        step.cycle("   delta cycle")?;
        step.apply_and_verify("delta")?;
        if i == 1 {
            step.patient_moved(moved_patient, &CAREGIVERS[0], &CAREGIVERS[2])?;
        }
    }
    step.snapshots = 0;
    shape_rounds(&mut step, &mut src)?;
    let failures = step.failures;
    let cfg = step.cfg.clone();

    // Summary per caregiver.
    let state = crate::publisher::state::State::open(&cfg.publisher.state)
        .map_err(crate::publisher::PublishError::from)?;
    say("");
    say(&format!(
        "{:<24} {:>8} {:>10} {:>9}  {}",
        "caregiver", "packages", "bytes", "rows", "data as of"
    ));
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        let pk = state
            .packages(c.hsa)
            .map_err(crate::publisher::PublishError::from)?;
        let acfg =
            crate::config::load_apply(&dir.join("caregivers").join(c.short).join("apply.toml"))?;
        let mut db = Db::connect(&acfg.connection, &acfg.password)?;
        let asof = caregiver::last_applied(&mut db)?
            .and_then(|a| a.data_as_of)
            .unwrap_or_else(|| "-".into());
        say(&format!(
            "{:<24} {:>8} {:>10} {:>9}  {asof}",
            format!("{} ({})", c.short, c.hsa),
            pk.len(),
            pk.iter().map(|p| p.bytes).sum::<u64>(),
            pk.iter().map(|p| p.rows).sum::<u64>(),
        ));
    }
    drop(state);
    drop(src);
    drop(master);
    sim.shutdown();
    let sshd_config = sshd.as_ref().map(|s| s.config.display().to_string());
    drop(sshd);
    let d = dir.display();
    let me = command_path();
    say("");
    say(&format!("Everything is in {d}:"));
    say("  ctferry.toml                  the region's configuration (docs/CONFIG.md)");
    say("  state/  outbox/               the publisher's state and its packages");
    say("  deliveries/<caregiver>/       each caregiver's delivery area (folder or SFTP)");
    if sshd_config.is_some() {
        say("  ssh/                          the demo's sshd config, host key and login key");
    }
    say("  caregivers/<caregiver>/apply.toml   each caregiver's side");
    say("  keys/  secrets/               generated keys and the simulator's password");
    say("  sql/                          the simulator's databases (Pmo and one copy per caregiver)");
    say("Now try:");
    say(&format!("  {me} status -c {d}/ctferry.toml"));
    say(&format!(
        "  {me} audit -c {d}/ctferry.toml --subscriber {}",
        CAREGIVERS[0].hsa
    ));
    say(&format!(
        "  {me} inspect {d}/deliveries/norr/0000000001-*.ctf.pgp --key {d}/keys/norr.sec.asc --signer {d}/keys/region.pub.asc"
    ));
    // The password in the environment, never on the command line (which
    // every account on the machine can list).
    say("To run more cycles, start the simulator again on the same data and port:");
    say(&format!(
        "  MSSQL_SIM_PASSWORD=\"$(cat {d}/secrets/sql-password)\" {} --listen {addr} --data {d}/sql --password-env MSSQL_SIM_PASSWORD &",
        sim_command()
    ));
    if let Some(c) = &sshd_config {
        say(&format!("  {SSHD} -D -f {c} &   (the SFTP areas)"));
    }
    say(&format!(
        "  then: {me} once -c {d}/ctferry.toml; {me} apply -c {d}/caregivers/norr/apply.toml; {me} apply -c {d}/caregivers/norr/apply.toml --status"
    ));
    say(&format!(
        "demo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if failures > 0 {
        return Err(DemoError::ChecksFailed(failures));
    }
    say("every check passed");
    Ok(())
}
