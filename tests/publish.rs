//! The publisher end to end against mssql-sim: `ctferry check`, `ctferry once`
//! (onboarding snapshots, then deltas), then reading every package back and
//! folding it into each caregiver's copy, which must equal the filtered,
//! masked source, and hold nothing of the others (docs/ARCHITECTURE.md, invariants 1-6).

use ctferry::format::crypto::{self, PublicKey, SecretKey};
use ctferry::format::package::{PackageReader, SectionKind};
use ctferry::format::value::{ColumnType, Value};
use ctferry::mssql::client::{self, Db};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::Rng;

const PW: &str = "Sim#Passw0rd";

struct Env {
    sim_dir: tempfile::TempDir,
    sim: Option<mssql_sim::Server>,
    dir: tempfile::TempDir,
    /// The partition keys of (norr, syd) as the configuration says now.
    keys: std::cell::RefCell<(Vec<String>, Vec<String>)>,
}

impl Env {
    fn sim(&self) -> &mssql_sim::Server {
        self.sim.as_ref().unwrap()
    }
    fn conn(&self) -> String {
        format!(
            "server=tcp:{},{};database=Pmo;user id=sa;encrypt=DANGER_PLAINTEXT;TrustServerCertificate=true",
            self.sim().addr().ip(),
            self.sim().addr().port()
        )
    }
    /// Stops the simulator, lets `f` change its data folder, starts it again
    /// (on a new port) and points ctferry.toml at it.
    fn restart_sim(&mut self, f: impl FnOnce(&Path)) {
        self.sim.take().unwrap().shutdown();
        // Connection threads close their SQLite files just after shutdown;
        // the last close checkpoints and removes the WAL. Wait for that.
        for _ in 0..100 {
            let wal = std::fs::read_dir(self.sim_dir.path())
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().ends_with("-wal"));
            if !wal {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        f(self.sim_dir.path());
        self.sim = Some(
            mssql_sim::Server::start(mssql_sim::Config::new(self.sim_dir.path(), PW)).unwrap(),
        );
        write_config(self);
    }
    fn db(&self) -> Db {
        Db::connect(&self.conn(), &ctferry::config::Secret::new(PW.into())).unwrap()
    }
    fn keys_of(&self, who: &str) -> Vec<String> {
        let k = self.keys.borrow();
        if who == "norr" {
            k.0.clone()
        } else {
            k.1.clone()
        }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn ctferry(&self, args: &[&str]) -> (bool, String, String) {
        fixtures::run_ctferry(
            args,
            &self.path("ctferry.toml"),
            &[("CTFERRY_SOURCE_PASSWORD", PW)],
        )
    }
}

fn exec(db: &mut Db, sql: &str) {
    db.execute(sql).unwrap_or_else(|e| panic!("{sql}\n{e}"));
}

fn setup() -> Env {
    let sim_dir = tempfile::tempdir().unwrap();
    let sim = mssql_sim::Server::start(mssql_sim::Config::new(sim_dir.path(), PW)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        sim_dir,
        sim: Some(sim),
        dir,
        keys: std::cell::RefCell::new((
            vec!["SE-E001".into(), "SE-E002".into()],
            vec!["SE-E003".into()],
        )),
    };
    let mut master = Db::connect(
        &env.conn().replace("database=Pmo", "database=master"),
        &ctferry::config::Secret::new(PW.into()),
    )
    .unwrap();
    exec(&mut master, "CREATE DATABASE Pmo");
    let mut db = env.db();
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON",
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Patient nvarchar(100) NOT NULL, Tid datetime2(7) NOT NULL, Avgift decimal(9,2) NULL)",
        "CREATE TABLE dbo.Journalanteckning (Id bigint NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id), Text nvarchar(max) NULL)",
        "CREATE TABLE dbo.Diagnoskod (Kod nvarchar(10) NOT NULL PRIMARY KEY, Text nvarchar(200) NOT NULL)",
        "CREATE TABLE dbo.Anvandare (Id int NOT NULL PRIMARY KEY, VardenhetHsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL, Losenord varbinary(64) NULL, Epost nvarchar(200) NOT NULL)",
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Journalanteckning ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Diagnoskod ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Anvandare ENABLE CHANGE_TRACKING",
        "INSERT INTO dbo.Vardenhet VALUES (1, N'SE-E001', N'VC Norr 1'), (2, N'SE-E002', N'VC Norr 2'), (3, N'SE-E003', N'VC Syd')",
        "INSERT INTO dbo.Besok VALUES (10, 1, N'Anna', '2026-01-01 08:00:00.1234567', 100.50), (11, 2, N'Bo', '2026-01-02 09:00:00', NULL), (12, 3, N'Cecilia', '2026-01-03 10:00:00', 250.00)",
        "INSERT INTO dbo.Journalanteckning VALUES (100, 10, N'Anteckning A'), (101, 11, N'Anteckning B'), (102, 12, N'Anteckning C'), (103, 12, NULL)",
        "INSERT INTO dbo.Diagnoskod VALUES (N'J06', N'Övre luftvägsinfektion'), (N'I10', N'Hypertoni')",
        "INSERT INTO dbo.Anvandare VALUES (1, N'SE-E001', N'Läkare Norr', 0x0102, N'norr@example.org'), (2, N'SE-E003', N'Läkare Syd', 0x0304, N'syd@example.org')",
    ] {
        exec(&mut db, s);
    }
    std::fs::create_dir_all(env.path("keys")).unwrap();
    for name in ["region", "norr", "syd"] {
        let (public, secret) =
            crypto::generate(name, &format!("{name}@example.invalid"), None).unwrap();
        std::fs::write(env.path(&format!("keys/{name}.pub.asc")), public).unwrap();
        std::fs::write(env.path(&format!("keys/{name}.sec.asc")), secret).unwrap();
    }
    write_config(&env);
    env
}

fn write_config(env: &Env) {
    let toml = format!(
        r#"
[source]
connection = "{conn}"
password_env = "CTFERRY_SOURCE_PASSWORD"

[publisher]
id = "region-pmo"
signing_key = "keys/region.sec.asc"

[[table]]
name = "dbo.Vardenhet"
owner = {{ column = "HsaId" }}

[[table]]
name = "dbo.Besok"
owner = {{ path = "VardenhetId -> dbo.Vardenhet(Id).HsaId" }}

[[table]]
name = "dbo.Journalanteckning"
owner = {{ path = "BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId" }}

[[table]]
name = "dbo.Diagnoskod"
owner = "shared"

[[table]]
name = "dbo.Anvandare"
owner = {{ column = "VardenhetHsaId" }}
mask = {{ Losenord = "NULL", Epost = "N'maskerad@example.invalid'" }}

[[subscriber]]
hsa_id = "SE-NORR"
name = "Vårdcentralen Norr AB"
keys = {norr_keys:?}
public_key = "keys/norr.pub.asc"
interval = "15m"
deliver = {{ folder = "deliveries/norr" }}

[[subscriber]]
hsa_id = "SE-SYD"
name = "Vårdcentralen Syd AB"
keys = {syd_keys:?}
public_key = "keys/syd.pub.asc"
interval = "15m"
deliver = {{ folder = "deliveries/syd" }}
"#,
        conn = env.conn(),
        norr_keys = env.keys_of("norr"),
        syd_keys = env.keys_of("syd"),
    );
    std::fs::write(env.path("ctferry.toml"), toml).unwrap();
}

type Copy = BTreeMap<String, BTreeMap<String, Vec<Value>>>;

/// Applies every delivered package of a subscriber, in order, to `copy`.
fn fold(env: &Env, who: &str, folder: &str, copy: &mut Copy, applied: &mut u64) -> Vec<String> {
    let key = SecretKey::load(&env.path(&format!("keys/{who}.sec.asc")), None).unwrap();
    let region = PublicKey::load(&env.path("keys/region.pub.asc")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(env.path(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|e| e == "pgp").unwrap_or(false))
        .collect();
    files.sort();
    let mut names = Vec::new();
    for f in files {
        let seq: u64 = f.file_name().unwrap().to_str().unwrap()[..10]
            .parse()
            .unwrap();
        if seq <= *applied {
            continue;
        }
        assert_eq!(seq, *applied + 1, "sequence gap before {}", f.display());
        let mut r = PackageReader::open(&f, &key, &[region.clone()]).unwrap();
        let m = r.manifest().clone();
        let want = if who == "norr" { "SE-NORR" } else { "SE-SYD" };
        assert!(
            m.subscriber == want || m.subscriber == "SE2321000016-A1B2",
            "package for {} in {who}'s folder",
            m.subscriber
        );
        if m.kind == ctferry::format::package::Kind::Snapshot && m.part == 1 {
            copy.retain(|k, _| k == "~ever");
        }
        // Table changes (format 2), before the rows, as `apply` makes them.
        for t in &m.tables {
            use ctferry::format::change::{AlterStep, TableAction};
            let Some(c) = &t.change else { continue };
            if c.reloads() || c.action == TableAction::Drop {
                copy.remove(&t.schema.name);
            } else if let TableAction::Alter { steps, .. } = &c.action {
                for s in steps {
                    match s {
                        AlterStep::Add(_) => {
                            for row in copy.entry(t.schema.name.clone()).or_default().values_mut() {
                                row.push(Value::Null);
                            }
                        }
                        AlterStep::Alter(_) => {}
                        AlterStep::Drop(n) => panic!("this model cannot drop column {n}"),
                    }
                }
            }
        }
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push(row);
        }
        r.finish().unwrap();
        let mine = expected(
            env,
            &env.keys_of(who)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        for row in rows {
            let t = &m.tables[row.table].schema;
            let kp = t.key_positions().unwrap();
            match row.kind {
                SectionKind::Upserts => {
                    let k = format!(
                        "{:?}",
                        kp.iter()
                            .map(|p| row.values[*p].clone())
                            .collect::<Vec<_>>()
                    );
                    // Isolation: every row sent belongs to this caregiver now.
                    assert!(
                        mine.get(&t.name)
                            .map(|m| m.contains_key(&k))
                            .unwrap_or(false),
                        "{who} received {} {k}, which it does not own ({})",
                        t.name,
                        f.display()
                    );
                    copy.entry("~ever".into())
                        .or_default()
                        .insert(format!("{} {k}", t.name), vec![]);
                    copy.entry(t.name.clone())
                        .or_default()
                        .insert(k, row.values);
                }
                SectionKind::Deletes => {
                    let k = format!("{:?}", row.values);
                    // Deletes go only to caregivers that had the row.
                    assert!(
                        copy.get("~ever")
                            .map(|e| e.contains_key(&format!("{} {k}", t.name)))
                            .unwrap_or(false),
                        "{who} received a delete of {} {k}, which it never had ({})",
                        t.name,
                        f.display()
                    );
                    copy.entry(t.name.clone()).or_default().remove(&k);
                }
            }
        }
        *applied = seq;
        names.push(f.file_name().unwrap().to_string_lossy().to_string());
    }
    names
}

/// The filtered, masked source for a set of partition keys, read with the
/// test's own SQL.
fn expected(env: &Env, keys: &[&str]) -> Copy {
    let mut db = env.db();
    let inlist = keys
        .iter()
        .map(|k| format!("N'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let queries: Vec<(&str, String, Vec<ColumnType>, Vec<usize>)> = vec![
        ("dbo.Vardenhet", format!("SELECT v.Id, v.HsaId, v.Namn FROM dbo.Vardenhet v WHERE v.HsaId IN ({inlist})"), vec![ColumnType::Int, ColumnType::parse("nvarchar(40)").unwrap(), ColumnType::parse("nvarchar(100)").unwrap()], vec![0]),
        ("dbo.Besok", format!("SELECT b.Id, b.VardenhetId, b.Patient, b.Tid, b.Avgift FROM dbo.Besok b JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE v.HsaId IN ({inlist})"), vec![ColumnType::Int, ColumnType::Int, ColumnType::parse("nvarchar(100)").unwrap(), ColumnType::parse("datetime2(7)").unwrap(), ColumnType::parse("decimal(9,2)").unwrap()], vec![0]),
        ("dbo.Journalanteckning", format!("SELECT j.Id, j.BesokId, j.Text FROM dbo.Journalanteckning j JOIN dbo.Besok b ON b.Id = j.BesokId JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE v.HsaId IN ({inlist})"), vec![ColumnType::BigInt, ColumnType::Int, ColumnType::parse("nvarchar(max)").unwrap()], vec![0]),
        ("dbo.Diagnoskod", "SELECT d.Kod, d.Text FROM dbo.Diagnoskod d".into(), vec![ColumnType::parse("nvarchar(10)").unwrap(), ColumnType::parse("nvarchar(200)").unwrap()], vec![0]),
        ("dbo.Anvandare", format!("SELECT a.Id, a.VardenhetHsaId, a.Namn, CAST(NULL AS varbinary(64)), N'maskerad@example.invalid' FROM dbo.Anvandare a WHERE a.VardenhetHsaId IN ({inlist})"), vec![ColumnType::Int, ColumnType::parse("nvarchar(40)").unwrap(), ColumnType::parse("nvarchar(100)").unwrap(), ColumnType::parse("varbinary(64)").unwrap(), ColumnType::parse("nvarchar(200)").unwrap()], vec![0]),
    ];
    let mut out = Copy::new();
    for (name, q, types, kp) in queries {
        let t = out.entry(name.to_string()).or_default();
        db.query("expected", &q, &[], |r| {
            let vals: Vec<Value> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| client::value(r, i, "c", ty).unwrap())
                .collect();
            let k = format!(
                "{:?}",
                kp.iter().map(|p| vals[*p].clone()).collect::<Vec<_>>()
            );
            t.insert(k, vals);
            Ok(())
        })
        .unwrap();
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn assert_copy(copy: &Copy, want: &Copy, who: &str) {
    let mut got = copy.clone();
    got.retain(|k, v| !v.is_empty() && k != "~ever");
    assert_eq!(
        &got, want,
        "{who}'s copy differs from its filtered, masked source"
    );
}

#[test]
fn check_once_and_converge_through_moves_and_deletes() {
    let env = setup();
    let (ok, out, err) = env.ctferry(&["check"]);
    assert!(ok, "check failed:\n{out}\n{err}");

    // Onboarding: a snapshot each.
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "once failed:\n{out}\n{err}");
    assert!(out.contains("2 snapshot(s)"), "{out}");
    let (mut norr, mut syd) = (Copy::new(), Copy::new());
    let (mut an, mut asy) = (0, 0);
    let files = fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
    assert_eq!(
        files,
        ["0000000001-snapshot-0-"[..].to_string() + &files[0][22..]]
    );
    fold(&env, "syd", "deliveries/syd", &mut syd, &mut asy);
    assert_copy(&norr, &expected(&env, &["SE-E001", "SE-E002"]), "norr");
    assert_copy(&syd, &expected(&env, &["SE-E003"]), "syd");
    // Masking happened at the source: the password never left.
    assert!(!format!("{norr:?}").contains("norr@example.org"));

    // Changes: an update, an insert, a delete, a shared-table change, a visit
    // moving from Syd's unit to Norr's (its notes follow though they did not
    // change), and a user row moving.
    let mut db = env.db();
    for s in [
        "UPDATE dbo.Besok SET Patient = N'Anna A' WHERE Id = 10",
        "INSERT INTO dbo.Journalanteckning VALUES (104, 10, N'Ny anteckning')",
        "DELETE FROM dbo.Journalanteckning WHERE Id = 101",
        "INSERT INTO dbo.Diagnoskod VALUES (N'E11', N'Diabetes typ 2')",
        "UPDATE dbo.Besok SET VardenhetId = 1 WHERE Id = 12",
        "UPDATE dbo.Anvandare SET VardenhetHsaId = N'SE-E002' WHERE Id = 2",
    ] {
        exec(&mut db, s);
    }
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "once failed:\n{out}\n{err}");
    fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
    fold(&env, "syd", "deliveries/syd", &mut syd, &mut asy);
    assert_copy(&norr, &expected(&env, &["SE-E001", "SE-E002"]), "norr");
    assert_copy(&syd, &expected(&env, &["SE-E003"]), "syd");
    assert!(
        norr["dbo.Journalanteckning"].len() == 4,
        "{:?}",
        norr["dbo.Journalanteckning"]
    );

    // A whole care unit moves to the other caregiver (its HSA id changes).
    exec(
        &mut db,
        "UPDATE dbo.Vardenhet SET HsaId = N'SE-E003' WHERE Id = 2",
    );
    exec(&mut db, "DELETE FROM dbo.Diagnoskod WHERE Kod = N'I10'");
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "once failed:\n{out}\n{err}");
    fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
    fold(&env, "syd", "deliveries/syd", &mut syd, &mut asy);
    assert_copy(&norr, &expected(&env, &["SE-E001", "SE-E002"]), "norr");
    assert_copy(&syd, &expected(&env, &["SE-E003"]), "syd");

    // Nothing changed: no new packages.
    let before = (an, asy);
    let (ok, out, _) = env.ctferry(&["once"]);
    assert!(ok);
    assert!(out.contains("0 package(s)"), "{out}");
    fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
    fold(&env, "syd", "deliveries/syd", &mut syd, &mut asy);
    assert_eq!((an, asy), before);

    // The audit log lists every disclosure.
    let (ok, out, err) = env.ctferry(&["audit", "--subscriber", "SE-SYD"]);
    assert!(ok, "{err}");
    let all_lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        all_lines[0],
        "time,subscriber,event,sequence,file,sha256,tables,rows,detail"
    );
    // Each package appears twice: made (snapshot/delta), then delivered.
    let lines: Vec<&str> = all_lines
        .iter()
        .copied()
        .filter(|l| !l.contains(",delivered,"))
        .collect();
    assert_eq!(lines.len() - 1, asy as usize, "{out}");
    assert_eq!(all_lines.len() - 1, 2 * asy as usize, "{out}");
    assert!(
        lines[1].contains(",SE-SYD,snapshot,1,0000000001-snapshot-0-")
            && lines[1].contains("onboarding"),
        "{out}"
    );
    assert!(!out.contains("SE-NORR"));
    let (ok, out, _) = env.ctferry(&[
        "audit",
        "--format",
        "json",
        "--since",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(ok);
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().unwrap().len() as u64, 2 * (an + asy));

    // Status shows both caregivers up to date.
    let (ok, out, err) = env.ctferry(&["status", "--json"]);
    assert!(ok, "{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    for sub in s["subscribers"].as_array().unwrap() {
        assert_eq!(sub["staged"], 0);
        assert_eq!(sub["undelivered"], 0);
        assert_eq!(sub["epoch"], 1);
    }
    let _ = Path::new("");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_restore_starts_a_new_epoch_and_lost_table_histories_re_send_those_tables() {
    let mut env = setup();
    let (mut norr, mut syd) = (Copy::new(), Copy::new());
    let (mut an, mut asy) = (0, 0);
    let converge = |env: &Env, norr: &mut Copy, syd: &mut Copy, an: &mut u64, asy: &mut u64| {
        let (ok, out, err) = env.ctferry(&["once"]);
        assert!(ok, "once failed:\n{out}\n{err}");
        fold(env, "norr", "deliveries/norr", norr, an);
        fold(env, "syd", "deliveries/syd", syd, asy);
        assert_copy(norr, &expected(env, &["SE-E001", "SE-E002"]), "norr");
        assert_copy(syd, &expected(env, &["SE-E003"]), "syd");
        out
    };
    converge(&env, &mut norr, &mut syd, &mut an, &mut asy);
    let backup = tempfile::tempdir().unwrap();
    env.restart_sim(|d| copy_dir(d, backup.path()));

    // Deltas move the copies past the backup's versions.
    exec(
        &mut env.db(),
        "INSERT INTO dbo.Journalanteckning VALUES (200, 10, N'efter backup')",
    );
    exec(
        &mut env.db(),
        "UPDATE dbo.Vardenhet SET Namn = N'VC Syd (ny)' WHERE Id = 3",
    );
    let out = converge(&env, &mut norr, &mut syd, &mut an, &mut asy);
    assert!(out.contains("0 snapshot(s)"), "{out}");

    // The database is restored from the backup: its version is below the
    // watermark. Both caregivers get a new epoch, and converge (note 200 is gone).
    env.restart_sim(|d| {
        for e in std::fs::read_dir(d).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        copy_dir(backup.path(), d);
    });
    exec(
        &mut env.db(),
        "INSERT INTO dbo.Diagnoskod VALUES (N'Z00', N'Hälsokontroll')",
    );
    let out = converge(&env, &mut norr, &mut syd, &mut an, &mut asy);
    assert!(
        out.contains("2 snapshot(s)") && out.contains("restored"),
        "{out}"
    );
    assert!(!norr["dbo.Journalanteckning"].contains_key("[Int(200)]"));

    // Change tracking history expires (clock moved past retention, cleanup ran).
    exec(
        &mut env.db(),
        "UPDATE dbo.Besok SET Avgift = 1.00 WHERE Id = 10",
    );
    env.sim().advance_clock(3 * 86_400);
    exec(
        &mut env.db(),
        "UPDATE dbo.Besok SET Avgift = 2.00 WHERE Id = 11",
    );
    exec(
        &mut env.db(),
        "EXEC sys.sp_flush_CT_internal_table_on_demand",
    );
    // Every table's history before the last version read is gone: each is
    // re-sent alone (the shared one with its copies emptied first), no
    // new epoch.
    let out = converge(&env, &mut norr, &mut syd, &mut an, &mut asy);
    assert!(
        out.contains("0 snapshot(s)")
            && out.contains("dbo.Diagnoskod re-sent to every caregiver that has it")
            && out.contains("is gone"),
        "{out}"
    );

    // Tracking disabled and re-enabled on a table.
    exec(
        &mut env.db(),
        "ALTER TABLE dbo.Diagnoskod DISABLE CHANGE_TRACKING",
    );
    exec(
        &mut env.db(),
        "DELETE FROM dbo.Diagnoskod WHERE Kod = N'J06'",
    );
    exec(
        &mut env.db(),
        "ALTER TABLE dbo.Diagnoskod ENABLE CHANGE_TRACKING",
    );
    let out = converge(&env, &mut norr, &mut syd, &mut an, &mut asy);
    assert!(
        out.contains("0 snapshot(s)") && out.contains("began again"),
        "{out}"
    );
    assert!(!syd["dbo.Diagnoskod"].contains_key("[Text(\"J06\")]"));
}

/// Runs `ctferry once` with a failpoint, waits for it, and kills it with SIGKILL.
fn once_killed_at(env: &Env, point: &str) -> bool {
    killed_at(env, &["once"], point)
}

/// Runs ctferry with `args` and a failpoint, waits for it, and kills it with SIGKILL.
fn killed_at(env: &Env, args: &[&str], point: &str) -> bool {
    killed_with(
        env,
        args,
        "ctferry.toml",
        ("CTFERRY_SOURCE_PASSWORD", PW),
        point,
    )
}

/// `killed_at` with another configuration file and password variable.
fn killed_with(
    env: &Env,
    args: &[&str],
    config: &str,
    password: (&str, &str),
    point: &str,
) -> bool {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(args)
        .arg("-c")
        .arg(env.path(config))
        .env(password.0, password.1)
        .env("CTFERRY_FAILPOINT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reached = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains(&format!("failpoint {point} reached")) {
            reached = true;
            break;
        }
    }
    if reached {
        Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap();
    }
    child.wait().unwrap();
    reached
}

#[test]
fn kill_9_at_every_commit_boundary_loses_and_duplicates_nothing() {
    let env = setup();
    let (mut norr, mut syd) = (Copy::new(), Copy::new());
    let (mut an, mut asy) = (0, 0);
    // Killed while onboarding: snapshot files written, not registered.
    assert!(once_killed_at(&env, "snapshot-written"));
    let mut round = 0;
    for point in [
        "cycle-committed",
        "delta-written",
        "delivered-unrecorded",
        "audit-queued",
        "snapshot-written",
    ] {
        round += 1;
        let mut db = env.db();
        exec(
            &mut db,
            &format!(
                "INSERT INTO dbo.Journalanteckning VALUES ({}, 10, N'runda {round}')",
                1000 + round
            ),
        );
        exec(
            &mut db,
            &format!("UPDATE dbo.Besok SET Patient = N'P{round}' WHERE Id = 12"),
        );
        let reached = if point == "snapshot-written" {
            // A requested snapshot killed before its packages are registered is redone.
            killed_at(&env, &["snapshot", "--subscriber", "SE-SYD"], point)
        } else {
            once_killed_at(&env, point)
        };
        assert!(reached, "failpoint {point} not reached");
        // The restart finishes the job.
        let (ok, out, err) = env.ctferry(&["once"]);
        assert!(ok, "once after kill -9 at {point} failed:\n{out}\n{err}");
        fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
        fold(&env, "syd", "deliveries/syd", &mut syd, &mut asy);
        assert_copy(&norr, &expected(&env, &["SE-E001", "SE-E002"]), "norr");
        assert_copy(&syd, &expected(&env, &["SE-E003"]), "syd");
        // The audit log holds every package and delivery once, chained.
        let (ok, out, err) = env.ctferry(&["audit", "--verify"]);
        assert!(
            ok,
            "audit --verify after kill -9 at {point}:\n{out}\n{err}\n{}",
            std::fs::read_to_string(env.path("state/audit.log")).unwrap_or_default()
        );
        let (_, csv, _) = env.ctferry(&["audit"]);
        // No record twice (a delivery's record carries its time), and no
        // package (caregiver, file) recorded as made twice.
        let mut lines = std::collections::HashSet::new();
        let mut made = std::collections::HashSet::new();
        for line in csv.lines().skip(1) {
            assert!(
                lines.insert(line),
                "twice in the audit after {point}: {line}"
            );
            let f: Vec<&str> = line.splitn(6, ',').collect();
            if f[2] == "delta" || f[2] == "snapshot" {
                assert!(
                    made.insert((f[1], f[4])),
                    "package {} recorded twice after {point}",
                    f[4]
                );
            }
        }
        // No partial file is ever visible under a final name.
        for d in ["deliveries/norr", "deliveries/syd"] {
            for e in std::fs::read_dir(env.path(d)).unwrap() {
                let n = e.unwrap().file_name().to_string_lossy().to_string();
                assert!(n.ends_with(".ctf.pgp") || n.ends_with(".part"), "{n}");
            }
        }
    }
}

fn ids(db: &mut Db, sql: &str) -> Vec<i64> {
    let mut out = Vec::new();
    db.query("ids", sql, &[], |r| {
        out.push(
            r.try_get::<i32, _>(0)
                .ok()
                .flatten()
                .map(|v| v as i64)
                .or_else(|| r.try_get::<i64, _>(0).ok().flatten())
                .unwrap(),
        );
        Ok(())
    })
    .unwrap();
    out
}

fn check_both(env: &Env, norr: &mut Copy, syd: &mut Copy, an: &mut u64, asy: &mut u64, ctx: &str) {
    fold(env, "norr", "deliveries/norr", norr, an);
    fold(env, "syd", "deliveries/syd", syd, asy);
    let nk = env.keys_of("norr");
    let sk = env.keys_of("syd");
    assert_copy(
        norr,
        &expected(env, &nk.iter().map(String::as_str).collect::<Vec<_>>()),
        &format!("norr ({ctx})"),
    );
    assert_copy(
        syd,
        &expected(env, &sk.iter().map(String::as_str).collect::<Vec<_>>()),
        &format!("syd ({ctx})"),
    );
}

#[test]
fn random_workloads_converge_for_every_caregiver() {
    for seed in [0x5eed_0001u64, 0x5eed_0002, 0x5eed_0003] {
        let env = setup();
        let mut rng = Rng(seed);
        let (mut norr, mut syd) = (Copy::new(), Copy::new());
        let (mut an, mut asy) = (0, 0);
        let mut next_id = 5000i64;
        let units = ["SE-E001", "SE-E002", "SE-E003", "SE-E999"];
        for round in 0..6 {
            let mut db = env.db();
            for _ in 0..14 {
                next_id += 1;
                let visits = ids(&mut db, "SELECT Id FROM dbo.Besok");
                let notes = ids(&mut db, "SELECT Id FROM dbo.Journalanteckning");
                let unit = 1 + rng.below(3);
                let pick = |rng: &mut Rng, v: &Vec<i64>| {
                    v.get(rng.below(v.len() as u64) as usize).copied()
                };
                let sql = match rng.below(12) {
                    0 | 1 => format!("INSERT INTO dbo.Besok VALUES ({next_id}, {unit}, N'P{next_id}', '2026-02-01 10:00:00', 12.50)"),
                    2 => match pick(&mut rng, &visits) { Some(v) => format!("UPDATE dbo.Besok SET Patient = N'ny {next_id}' WHERE Id = {v}"), None => continue },
                    3 => match pick(&mut rng, &visits) { Some(v) => format!("UPDATE dbo.Besok SET VardenhetId = {unit} WHERE Id = {v}"), None => continue },
                    4 => match pick(&mut rng, &visits) { Some(v) => format!("DELETE FROM dbo.Journalanteckning WHERE BesokId = {v}; DELETE FROM dbo.Besok WHERE Id = {v}"), None => continue },
                    5 | 6 => match pick(&mut rng, &visits) { Some(v) => format!("INSERT INTO dbo.Journalanteckning VALUES ({next_id}, {v}, N'text {next_id}')"), None => continue },
                    7 => match pick(&mut rng, &notes) { Some(n) => format!("UPDATE dbo.Journalanteckning SET Text = NULL WHERE Id = {n}"), None => continue },
                    8 => match pick(&mut rng, &notes) { Some(n) => format!("DELETE FROM dbo.Journalanteckning WHERE Id = {n}"), None => continue },
                    9 => format!("UPDATE dbo.Vardenhet SET HsaId = N'{}' WHERE Id = {unit}", units[rng.below(4) as usize]),
                    10 => format!("INSERT INTO dbo.Diagnoskod VALUES (N'K{next_id}', N'kod'); DELETE FROM dbo.Diagnoskod WHERE Kod = N'I10'"),
                    _ => format!("UPDATE dbo.Anvandare SET VardenhetHsaId = N'{}', Namn = N'n{next_id}' WHERE Id = {}", units[rng.below(4) as usize], 1 + rng.below(2)),
                };
                exec(&mut db, &sql);
            }
            // Now and then: a requested snapshot, or a care unit re-assigned in the configuration.
            match rng.below(5) {
                0 => {
                    let (ok, _, err) = env.ctferry(&["snapshot", "--subscriber", "SE-NORR"]);
                    assert!(ok, "{err}");
                }
                1 => {
                    {
                        let mut k = env.keys.borrow_mut();
                        if k.0.contains(&"SE-E002".to_string()) {
                            k.0.retain(|x| x != "SE-E002");
                            k.1.push("SE-E002".into());
                        } else {
                            k.1.retain(|x| x != "SE-E002");
                            k.0.push("SE-E002".into());
                        }
                    }
                    write_config(&env);
                }
                _ => {}
            }
            let (ok, out, err) = env.ctferry(&["once"]);
            assert!(
                ok,
                "seed {seed:x} round {round}: once failed:\n{out}\n{err}"
            );
            check_both(
                &env,
                &mut norr,
                &mut syd,
                &mut an,
                &mut asy,
                &format!("seed {seed:x} round {round}"),
            );
        }
    }
}

/// Statements per delta cycle, as `ctferry once` reports them.
fn statements(out: &str) -> u64 {
    out.split(", ")
        .find_map(|p| {
            p.strip_suffix(" statements").or_else(|| {
                p.split(" statements")
                    .next()
                    .filter(|_| p.contains(" statements"))
            })
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no statement count in {out}"))
}

#[test]
fn source_statements_per_cycle_do_not_grow_with_subscribers() {
    let mut counts = Vec::new();
    for n in [1usize, 300] {
        let env = setup();
        // n subscribers; the first covers the real units, the others units without rows.
        let mut toml = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
        let cut = toml.find("[[subscriber]]").unwrap();
        toml.truncate(cut);
        for i in 0..n {
            let keys = if i == 0 {
                r#"["SE-E001", "SE-E002", "SE-E003"]"#.to_string()
            } else {
                format!("[\"SE-X{i}\"]")
            };
            // Each caregiver has its own key (a shared one is refused).
            let (public, _) = ctferry::format::crypto::generate(
                &format!("s{i}"),
                &format!("s{i}@example.invalid"),
                None,
            )
            .unwrap();
            std::fs::write(env.path(&format!("keys/s{i}.pub.asc")), public).unwrap();
            toml.push_str(&format!(
                "[[subscriber]]\nhsa_id = \"SE-S{i}\"\nkeys = {keys}\npublic_key = \"keys/s{i}.pub.asc\"\ndeliver = {{ folder = \"deliveries/s{i}\" }}\n\n"
            ));
        }
        std::fs::write(env.path("ctferry.toml"), toml).unwrap();
        let (ok, out, err) = env.ctferry(&["once"]);
        assert!(ok, "{out}\n{err}");
        exec(
            &mut env.db(),
            "UPDATE dbo.Besok SET Patient = N'X' WHERE Id = 10",
        );
        exec(
            &mut env.db(),
            "INSERT INTO dbo.Diagnoskod VALUES (N'X1', N'x')",
        );
        let (ok, out, err) = env.ctferry(&["once"]);
        assert!(ok, "{out}\n{err}");
        assert!(out.contains("0 snapshot(s)"), "{out}");
        counts.push(statements(&out));
    }
    assert_eq!(
        counts[0], counts[1],
        "statements per cycle with 1 and 300 subscribers"
    );
}

#[test]
fn check_names_every_problem() {
    let env = setup();
    let mut db = env.db();
    exec(
        &mut db,
        "CREATE TABLE dbo.Otrackad (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NULL)",
    );
    exec(&mut db, "CREATE TABLE dbo.Utan (A int NULL)");
    let toml = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
    let toml = toml
        .replace(r#"mask = { Losenord = "NULL", Epost = "N'maskerad@example.invalid'" }"#, r#"mask = { Losenord = "NULL", Epost = "NULL" }"#)
        .replace(r#"owner = { path = "VardenhetId -> dbo.Vardenhet(Id).HsaId" }"#, r#"owner = { path = "Patient -> dbo.Vardenhet(Id).HsaId" }"#)
        + "\n[[table]]\nname = \"dbo.Otrackad\"\nowner = { column = \"HsaId\" }\n\n[[table]]\nname = \"dbo.Utan\"\nowner = \"shared\"\n\n[[table]]\nname = \"dbo.Finnsinte\"\nowner = \"shared\"\n";
    std::fs::write(env.path("ctferry.toml"), toml).unwrap();
    let (ok, out, err) = env.ctferry(&["check"]);
    assert!(!ok, "check passed a bad configuration:\n{out}");
    for want in [
        "mask Epost = NULL, but Epost is NOT NULL",
        "dbo.Besok: owner path hop dbo.Besok.Patient -> dbo.Vardenhet(Id) does not follow a foreign key",
        "dbo.Otrackad: change tracking is off",
        "dbo.Utan: table dbo.Utan has no primary key",
        "dbo.Finnsinte: no such table in the source database",
    ] {
        assert!(err.contains(want), "missing problem '{want}' in:\n{err}");
    }
    // A partition key claimed twice is a configuration error, before any connection.
    let toml = std::fs::read_to_string(env.path("ctferry.toml"))
        .unwrap()
        .replace(r#"keys = ["SE-E003"]"#, r#"keys = ["SE-E001"]"#);
    std::fs::write(env.path("ctferry.toml"), toml).unwrap();
    let (ok, _, err) = env.ctferry(&["check"]);
    assert!(!ok);
    assert!(
        err.contains("partition key SE-E001 is claimed by both SE-NORR and SE-SYD"),
        "{err}"
    );
    // The same key twice for one caregiver, differing in case and blanks.
    let toml = std::fs::read_to_string(env.path("ctferry.toml"))
        .unwrap()
        .replace(r#"keys = ["SE-E001"]"#, r#"keys = ["SE-E003", "se-e003 "]"#);
    std::fs::write(env.path("ctferry.toml"), toml).unwrap();
    let (ok, _, err) = env.ctferry(&["check"]);
    assert!(!ok);
    assert!(
        err.contains("partition key se-e003  is listed twice"),
        "{err}"
    );
}

#[test]
fn the_example_in_config_md_produces_packages() {
    let env = setup();
    exec(
        &mut env.db(),
        "INSERT INTO dbo.Vardenhet VALUES (7, N'SE2321000016-E001', N'VC Exempel')",
    );
    // The example's patient tables: a patient with a visit at unit 7 and
    // its address, one with a referral to unit 7, one without care there.
    for sql in [
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(100) NOT NULL, ListadVardenhetId int NULL REFERENCES dbo.Vardenhet(Id))",
        // Visits that name their patient.
        "ALTER TABLE dbo.Besok ADD PatientId int NULL REFERENCES dbo.Patient(Id)",
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), MottagareHsaId nvarchar(40) NOT NULL)",
        "CREATE TABLE dbo.PatientAdress (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), Adress nvarchar(100) NOT NULL)",
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.PatientAdress ENABLE CHANGE_TRACKING",
        "INSERT INTO dbo.Patient VALUES (1, N'Med besök', NULL), (2, N'Med remiss', NULL), (3, N'Utan vård', NULL)",
        "INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1'), (3, 3, N'Tredje vägen 3')",
        "INSERT INTO dbo.Remiss VALUES (1, 2, N'SE2321000016-E001')",
        "INSERT INTO dbo.Besok VALUES (70, 7, N'Exempel', '2026-03-01 12:00:00', NULL, 1)",
    ] {
        exec(&mut env.db(), sql);
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONFIG.md")).unwrap();
    let start = doc.find("```toml\n").unwrap() + 8;
    let end = start + doc[start..].find("```").unwrap();
    let example = doc[start..end].replace(
        "server=tcp:db.example,1433;database=PMO;user id=ctferry;encrypt=true",
        &env.conn().replace("user id=sa", "user id=sa"),
    );
    std::fs::write(env.path("ctferry.toml"), example).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["once", "-c"])
        .arg(env.path("ctferry.toml"))
        .env("CTFERRY_SOURCE_PASSWORD", PW)
        .env("CTFERRY_SIGNING_PASSPHRASE", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(env.path("deliveries/norr"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "{text}");
    // What the package holds, read back with `ctferry inspect`: the visit at
    // unit 7, the patients with care here (a visit, a referral), the
    // address that follows one of them; not the patient without care.
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["inspect", "--json", "--rows", "1000"])
        .arg(files[0].as_ref().unwrap().path())
        .arg("--key")
        .arg(env.path("keys/norr.sec.asc"))
        .arg("--signer")
        .arg(env.path("keys/region.pub.asc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = |table: &str| -> Vec<i64> {
        let mut ids: Vec<i64> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["table"] == table)
            .map(|r| r["values"]["Id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(rows("dbo.Besok"), vec![70]);
    assert_eq!(rows("dbo.Patient"), vec![1, 2]);
    assert_eq!(rows("dbo.PatientAdress"), vec![1]);
    assert_eq!(rows("dbo.Remiss"), vec![1]);
    // And `check` accepts it, judging the references complete.
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["check", "-c"])
        .arg(env.path("ctferry.toml"))
        .env("CTFERRY_SOURCE_PASSWORD", PW)
        .env("CTFERRY_SIGNING_PASSPHRASE", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("reference dbo.Besok.PatientId -> dbo.Patient: complete"),
        "{text}"
    );
}

#[test]
fn run_cycles_until_stopped() {
    let env = setup();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["run", "--every", "1", "-c"])
        .arg(env.path("ctferry.toml"))
        .env("CTFERRY_SOURCE_PASSWORD", PW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let delivered = |d: &str| {
        std::fs::read_dir(env.path(d))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    while delivered("deliveries/syd") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A second publisher on the same state is refused while the first runs.
    let (ok, _, err) = env.ctferry(&["once"]);
    // SIGTERM: the current cycle completes, then it exits 0.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let t = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(delivered("deliveries/syd"), 1);
    // The state is released: the next command runs.
    let (ok2, _, err2) = env.ctferry(&["status"]);
    assert!(ok2, "{err2}");
    assert!(
        !ok && err.contains("in use by another ctferry process"),
        "{err}"
    );
}

/// A column added at the source (issue 19) is held back: never sent
/// while nobody decided on it (it might hold something that must be
/// masked), while the table's reviewed columns go on flowing; listed under
/// `mask`, it travels masked as an added column, and since it already holds
/// values the table's rows travel again with it. No new epoch.
#[test]
fn a_new_column_is_held_back_until_decided_and_the_rest_flows() {
    let env = setup();
    let (mut norr, mut syd) = (Copy::new(), Copy::new());
    let (mut an, mut asy) = (0, 0);
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    check_both(&env, &mut norr, &mut syd, &mut an, &mut asy, "start");
    exec(
        &mut env.db(),
        "ALTER TABLE dbo.Anvandare ADD Personnummer nvarchar(13) NULL",
    );
    exec(
        &mut env.db(),
        "UPDATE dbo.Anvandare SET Personnummer = N'19121212-1212', Namn = N'ny' WHERE Id = 1",
    );
    for _ in 0..2 {
        let (ok, out, err) = env.ctferry(&["once"]);
        assert!(ok, "{out}\n{err}");
        assert!(
            out.contains("dbo.Anvandare: new column(s) Personnummer held back")
                && out.contains("ctferry schema accept --table dbo.Anvandare"),
            "{out}"
        );
        assert!(out.contains("0 snapshot(s)"), "{out}");
    }
    // The reviewed columns flowed; the new one never left.
    check_both(&env, &mut norr, &mut syd, &mut an, &mut asy, "held");
    assert!(!format!("{norr:?}{syd:?}").contains("19121212"));
    // The operator masks the new column: it travels, masked, and the rows
    // with it (the column already holds values).
    let toml = std::fs::read_to_string(env.path("ctferry.toml")).unwrap().replace(
        r#"mask = { Losenord = "NULL", Epost = "N'maskerad@example.invalid'" }"#,
        r#"mask = { Losenord = "NULL", Epost = "N'maskerad@example.invalid'", Personnummer = "NULL" }"#,
    );
    std::fs::write(env.path("ctferry.toml"), toml).unwrap();
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("dbo.Anvandare: column Personnummer added") && out.contains("0 snapshot(s)"),
        "{out}"
    );
    let before = an;
    fold(&env, "norr", "deliveries/norr", &mut norr, &mut an);
    assert_eq!(an, before + 1, "one delta");
    let users = &norr["dbo.Anvandare"];
    assert!(
        !users.is_empty() && users.values().all(|r| r.len() == 6 && r[5] == Value::Null),
        "{users:?}"
    );
    assert!(!format!("{norr:?}").contains("19121212"));
}

/// The caregiver's copy in its own MS SQL (a second simulator), as a Copy.
fn read_copy(db: &mut Db) -> Copy {
    let tables: Vec<(&str, &str, Vec<ColumnType>)> = vec![
        (
            "dbo.Vardenhet",
            "SELECT Id, HsaId, Namn FROM dbo.Vardenhet",
            vec![
                ColumnType::Int,
                ColumnType::parse("nvarchar(40)").unwrap(),
                ColumnType::parse("nvarchar(100)").unwrap(),
            ],
        ),
        (
            "dbo.Besok",
            "SELECT Id, VardenhetId, Patient, Tid, Avgift FROM dbo.Besok",
            vec![
                ColumnType::Int,
                ColumnType::Int,
                ColumnType::parse("nvarchar(100)").unwrap(),
                ColumnType::parse("datetime2(7)").unwrap(),
                ColumnType::parse("decimal(9,2)").unwrap(),
            ],
        ),
        (
            "dbo.Journalanteckning",
            "SELECT Id, BesokId, Text FROM dbo.Journalanteckning",
            vec![
                ColumnType::BigInt,
                ColumnType::Int,
                ColumnType::parse("nvarchar(max)").unwrap(),
            ],
        ),
        (
            "dbo.Diagnoskod",
            "SELECT Kod, Text FROM dbo.Diagnoskod",
            vec![
                ColumnType::parse("nvarchar(10)").unwrap(),
                ColumnType::parse("nvarchar(200)").unwrap(),
            ],
        ),
        (
            "dbo.Anvandare",
            "SELECT Id, VardenhetHsaId, Namn, Losenord, Epost FROM dbo.Anvandare",
            vec![
                ColumnType::Int,
                ColumnType::parse("nvarchar(40)").unwrap(),
                ColumnType::parse("nvarchar(100)").unwrap(),
                ColumnType::parse("varbinary(64)").unwrap(),
                ColumnType::parse("nvarchar(200)").unwrap(),
            ],
        ),
    ];
    let mut out = Copy::new();
    for (name, q, types) in tables {
        let t = out.entry(name.to_string()).or_default();
        db.query("copy", q, &[], |r| {
            let vals: Vec<Value> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| client::value(r, i, "c", ty).unwrap())
                .collect();
            t.insert(format!("{:?}", vec![vals[0].clone()]), vals);
            Ok(())
        })
        .unwrap();
    }
    out.retain(|_, v| !v.is_empty());
    out
}

struct Target {
    _dir: tempfile::TempDir,
    sim: mssql_sim::Server,
}

impl Target {
    fn conn(&self, db: &str) -> String {
        format!(
            "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
            self.sim.addr().ip(),
            self.sim.addr().port()
        )
    }

    /// A connection to database `db` of the caregivers' server.
    fn db(&self, db: &str) -> Db {
        Db::connect(
            &self.conn(db),
            &ctferry::config::Secret::new("Kopia#Passw0rd".into()),
        )
        .unwrap()
    }

    /// Norr's copy database.
    fn norr_copy(&self) -> Db {
        self.db("NorrKopia")
    }

    /// Creates caregiver `who`'s copy database and writes its apply
    /// configuration to `file` (in the test folder).
    fn add_caregiver(&self, env: &Env, file: &str, who: &str, hsa: &str, db: &str) {
        exec(&mut self.db("master"), &format!("CREATE DATABASE {db}"));
        std::fs::write(
            env.path(file),
            format!(
                "[target]\nconnection = \"{}\"\npassword_env = \"CTFERRY_TARGET_PASSWORD\"\n\n[keys]\nsecret_key = \"keys/{who}.sec.asc\"\npublisher_keys = [\"keys/region.pub.asc\"]\n\n[source]\nsubscriber = \"{hsa}\"\nfolder = \"deliveries/{who}\"\n",
                self.conn(db)
            ),
        )
        .unwrap();
    }
}

/// The caregivers' own SQL Server (a second simulator), with Norr's copy
/// database and apply.toml.
fn target(env: &Env) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let sim =
        mssql_sim::Server::start(mssql_sim::Config::new(dir.path(), "Kopia#Passw0rd")).unwrap();
    let t = Target { _dir: dir, sim };
    t.add_caregiver(env, "apply.toml", "norr", "SE-NORR", "NorrKopia");
    t
}

fn apply(env: &Env, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["apply"];
    args.extend_from_slice(extra);
    fixtures::run_ctferry(
        &args,
        &env.path("apply.toml"),
        &[("CTFERRY_TARGET_PASSWORD", "Kopia#Passw0rd")],
    )
}

#[test]
fn apply_keeps_the_caregivers_copy_exact_and_refuses_bad_packages() {
    let env = setup();
    let tgt = target(&env);
    let mut copy_db = tgt.norr_copy();
    let want = |env: &Env| expected(env, &["SE-E001", "SE-E002"]);
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "apply failed:\n{out}\n{err}");
    assert!(
        out.contains("0000000001-snapshot-0-") && out.contains("applied"),
        "{out}"
    );
    assert_eq!(read_copy(&mut copy_db), want(&env));

    // Deltas: updates, deletes, a visit moving in, a unit moving out.
    let mut db = env.db();
    for s in [
        "UPDATE dbo.Besok SET Patient = N'Anna B', Avgift = 99.99 WHERE Id = 10",
        "DELETE FROM dbo.Journalanteckning WHERE Id = 101",
        "UPDATE dbo.Besok SET VardenhetId = 1 WHERE Id = 12",
        "UPDATE dbo.Vardenhet SET HsaId = N'SE-E003' WHERE Id = 2",
    ] {
        exec(&mut db, s);
    }
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "apply failed:\n{out}\n{err}");
    assert_eq!(read_copy(&mut copy_db), want(&env));
    // Re-running applies nothing and says so.
    let (ok, out, _) = apply(&env, &[]);
    assert!(
        ok && out.contains("already applied, skipped") && !out.contains(": applied"),
        "{out}"
    );
    let (ok, out, _) = apply(&env, &["--status"]);
    assert!(
        ok && out.contains("epoch 1")
            && out.contains("last sequence 2")
            && out.contains("data as of 20"),
        "{out}"
    );

    // A gap: package 3 is missing when 4 arrives.
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'tre' WHERE Id = 10",
    );
    env.ctferry(&["once"]);
    let third: PathBuf = std::fs::read_dir(env.path("deliveries/norr"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("/0000000003-"))
        .next()
        .unwrap();
    let aside = env.path("third.ctf.pgp");
    std::fs::rename(&third, &aside).unwrap();
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'fyra' WHERE Id = 10",
    );
    env.ctferry(&["once"]);
    let before = read_copy(&mut copy_db);
    let (ok, _, err) = apply(&env, &[]);
    assert!(!ok && err.contains("package 3 is missing"), "{err}");
    assert_eq!(read_copy(&mut copy_db), before, "nothing applied on a gap");

    // Package 3 comes back, but tampered: refused, nothing applied.
    let mut bytes = std::fs::read(&aside).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&third, &bytes).unwrap();
    let (ok, _, err) = apply(&env, &[]);
    assert!(
        !ok && (err.contains("tampered") || err.contains("corrupt") || err.contains("malformed")),
        "{err}"
    );
    assert_eq!(
        read_copy(&mut copy_db),
        before,
        "nothing applied from a tampered package"
    );

    // Another caregiver's package under the expected name: refused.
    let syd_file = std::fs::read_dir(env.path("deliveries/syd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    std::fs::copy(&syd_file, &third).unwrap();
    let (ok, _, err) = apply(&env, &[]);
    assert!(
        !ok && err.contains("not encrypted to this caregiver"),
        "{err}"
    );

    // The real package 3: both apply, in order, and the copy is exact.
    std::fs::rename(&aside, &third).unwrap();
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("0000000003-") && out.contains("0000000004-"),
        "{out}"
    );
    assert_eq!(read_copy(&mut copy_db), want(&env));

    // The second caregiver, with `--watch`, into its own database.
    tgt.add_caregiver(&env, "apply-syd.toml", "syd", "SE-SYD", "SydKopia");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["apply", "--watch", "--every", "1", "-c"])
        .arg(env.path("apply-syd.toml"))
        .env("CTFERRY_TARGET_PASSWORD", "Kopia#Passw0rd")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut syd_db = tgt.db("SydKopia");
    let want_syd = expected(&env, &["SE-E003"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut got = Copy::new();
    while std::time::Instant::now() < deadline {
        let done = syd_db
            .rows(
                "applied",
                "SELECT COUNT(*) FROM sys.tables WHERE name = N'Besok'",
                &[],
            )
            .ok()
            .and_then(|r| r.first().and_then(|r| r.get::<i32, _>(0)))
            .unwrap_or(0);
        if done > 0 {
            got = read_copy(&mut syd_db);
            if got == want_syd {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Ctrl-C (SIGINT) stops the watcher cleanly between packages: exit 0.
    let int = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(int.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(got, want_syd, "syd's copy");
}

#[test]
fn apply_refuses_every_kind_of_bad_package_and_survives_kill_9() {
    let env = setup();
    let tgt = target(&env);
    let mut copy_db = tgt.norr_copy();
    let want = |env: &Env| expected(env, &["SE-E001", "SE-E002"]);
    env.ctferry(&["once"]);
    // kill -9 in the middle of applying the snapshot: nothing of it stays.
    assert!(killed_with(
        &env,
        &["apply"],
        "apply.toml",
        ("CTFERRY_TARGET_PASSWORD", "Kopia#Passw0rd"),
        "apply-mid-package"
    ));
    // The snapshot created its tables inside the transaction: none remain.
    let rows = copy_db
        .rows(
            "tables",
            "SELECT COUNT(*) FROM sys.tables WHERE schema_id = SCHEMA_ID(N'dbo')",
            &[],
        )
        .unwrap();
    assert_eq!(
        rows[0].get::<i32, _>(0),
        Some(0),
        "a killed apply left tables behind"
    );
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(read_copy(&mut copy_db), want(&env));

    let mut db = env.db();
    let next_file = |n: u64| {
        std::fs::read_dir(env.path("deliveries/norr"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{n:010}-"))
            })
            .unwrap()
    };
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'två' WHERE Id = 10",
    );
    env.ctferry(&["once"]);
    let good = next_file(2);
    let kept = env.path("good2");
    std::fs::copy(&good, &kept).unwrap();
    let before = read_copy(&mut copy_db);
    let refused = |env: &Env, want_msg: &str| {
        let (ok, _, err) = apply(env, &[]);
        assert!(
            !ok && err.contains(want_msg),
            "expected '{want_msg}', got: {err}"
        );
        // The reason is said once, not repeated by each layer.
        let line = err.lines().find(|l| l.starts_with("ctferry: ")).unwrap();
        assert_eq!(line.matches(want_msg).count(), 1, "{line}");
    };
    // Truncated.
    let bytes = std::fs::read(&kept).unwrap();
    std::fs::write(&good, &bytes[..bytes.len() - 25]).unwrap();
    refused(&env, "truncated");
    // Signed by a key the caregiver does not accept.
    let toml = std::fs::read_to_string(env.path("apply.toml")).unwrap();
    std::fs::write(
        env.path("apply.toml"),
        toml.replace("keys/region.pub.asc", "keys/syd.pub.asc"),
    )
    .unwrap();
    std::fs::copy(&kept, &good).unwrap();
    refused(&env, "not an accepted publisher key");
    std::fs::write(env.path("apply.toml"), &toml).unwrap();
    // Reordered: package 2 renamed as package 3 while 2 is missing → gap; as 2 with 3's name → mismatch.
    std::fs::remove_file(&good).unwrap();
    let renamed = env.path("deliveries/norr/0000000003-delta-0-0.ctf.pgp");
    std::fs::copy(&kept, &renamed).unwrap();
    refused(&env, "package 2 is missing");
    std::fs::remove_file(&renamed).unwrap();
    // A broken hash chain: a delta made after a state reset upstream (simulated
    // by a package whose previous hash is another's) is refused.
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'tre' WHERE Id = 10",
    );
    std::fs::copy(&kept, &good).unwrap();
    env.ctferry(&["once"]);
    let third = next_file(3);
    std::fs::remove_file(&good).unwrap();
    std::fs::rename(
        &third,
        env.path("deliveries/norr/0000000002-delta-x.ctf.pgp"),
    )
    .unwrap();
    refused(&env, "its manifest says sequence 3, its name 2");
    // A broken hash chain: a correctly signed package 2 whose previous hash is not package 1's.
    {
        let region = SecretKey::load(&env.path("keys/region.sec.asc"), None).unwrap();
        let norr = PublicKey::load(&env.path("keys/norr.pub.asc")).unwrap();
        let template = ctferry::format::package::Manifest {
            publisher: "region-pmo".into(),
            subscriber: "SE-NORR".into(),
            epoch: 1,
            sequence: 2,
            kind: ctferry::format::package::Kind::Delta,
            part: 1,
            last_part: true,
            previous_sha256: Some([9u8; 32]),
            ct_from: Some(1),
            ct_to: 2,
            source_commit_time: None,
            created_at: "2026-11-25T00:00:00Z".into(),
            tables: vec![],
        };
        let outdir = env.path("forged");
        std::fs::create_dir_all(&outdir).unwrap();
        let w = ctferry::format::package::PackageWriter::new(
            ctferry::format::package::WriterConfig {
                out_dir: outdir,
                signer: &region,
                recipient: &norr,
                part_bytes: 1 << 20,
                zstd_level: 3,
                zstd_workers: 1,
            },
            template,
        );
        let forged = w.finish().unwrap().remove(0).path;
        std::fs::copy(
            &forged,
            env.path("deliveries/norr/0000000002-delta-1-2.ctf.pgp"),
        )
        .unwrap();
        let (ok, _, err) = apply(&env, &[]);
        assert!(!ok && err.contains("hash chain does not continue"), "{err}");
        std::fs::remove_file(env.path("deliveries/norr/0000000002-delta-1-2.ctf.pgp")).unwrap();
    }
    assert_eq!(
        read_copy(&mut copy_db),
        before,
        "nothing applied by any refused package"
    );
    // Clean up: the real 2 and 3 apply.
    std::fs::rename(
        env.path("deliveries/norr/0000000002-delta-x.ctf.pgp"),
        &third,
    )
    .unwrap();
    std::fs::copy(&kept, &good).unwrap();
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(read_copy(&mut copy_db), want(&env));

    // kill -9 in the middle of a delta (after its deletes, before its upserts).
    exec(&mut db, "DELETE FROM dbo.Journalanteckning WHERE Id = 100");
    exec(
        &mut db,
        "INSERT INTO dbo.Journalanteckning VALUES (900, 10, N'mitt i')",
    );
    env.ctferry(&["once"]);
    let before = read_copy(&mut copy_db);
    assert!(killed_with(
        &env,
        &["apply"],
        "apply.toml",
        ("CTFERRY_TARGET_PASSWORD", "Kopia#Passw0rd"),
        "apply-mid-package"
    ));
    assert_eq!(
        read_copy(&mut copy_db),
        before,
        "a delta killed half way left a trace"
    );
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(read_copy(&mut copy_db), want(&env));
}

#[test]
fn cycles_log_one_json_line_each_without_values() {
    let env = setup();
    let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["once", "--log-format", "json", "-c"])
        .arg(env.path("ctferry.toml"))
        .env("CTFERRY_SOURCE_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let cycle: serde_json::Value = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "cycle")
        .unwrap_or_else(|| panic!("no JSON cycle line in:\n{err}"));
    assert_eq!(cycle["level"], "INFO");
    assert_eq!(cycle["snapshots"], 2);
    assert!(cycle["version"].as_i64().unwrap() > 0);
    assert!(cycle["duration_ms"].is_u64() && cycle["statements"].is_u64());
    // Neither row values nor the password reach the log.
    assert!(!err.contains("Anna") && !err.contains(PW), "{err}");
}

#[test]
fn status_exits_non_zero_when_a_caregiver_is_stale() {
    let env = setup();
    // Before the publisher ever ran there is no state: status says so
    // (and creates nothing), exiting non-zero as a monitor expects.
    let (ok, _, err) = env.ctferry(&["status"]);
    assert!(
        !ok && err.contains("no publisher state at"),
        "before onboarding: {err}"
    );
    env.ctferry(&["once"]);
    let (ok, out, err) = env.ctferry(&["status"]);
    assert!(ok, "{out}\n{err}");
    assert!(!out.contains("STALE"), "{out}");
    let (ok, out, _) = env.ctferry(&["status", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["stale"].is_null()));
    // A monitoring probe needs no secrets: status and audit read only the
    // state, so they run without the source password in the environment.
    for args in [&["status"][..], &["audit"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(args)
            .arg("-c")
            .arg(env.path("ctferry.toml"))
            .env_remove("CTFERRY_SOURCE_PASSWORD")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // ... while the commands that work still insist on it.
    let o = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["once", "-c"])
        .arg(env.path("ctferry.toml"))
        .env_remove("CTFERRY_SOURCE_PASSWORD")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("CTFERRY_SOURCE_PASSWORD is not set"));
}

#[test]
fn an_offboarded_caregiver_receives_nothing_and_starts_over_if_it_returns() {
    let env = setup();
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    let full = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
    // Offboarding: the [[subscriber]] block of SE-SYD is removed.
    let cut = full.rfind("[[subscriber]]").unwrap();
    std::fs::write(env.path("ctferry.toml"), &full[..cut]).unwrap();
    let mut db = env.db();
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'Cecilia S' WHERE Id = 12",
    );
    exec(
        &mut db,
        "UPDATE dbo.Besok SET Patient = N'Anna N' WHERE Id = 10",
    );
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    let syd: Vec<_> = std::fs::read_dir(env.path("deliveries/syd"))
        .unwrap()
        .collect();
    assert_eq!(syd.len(), 1, "nothing after offboarding");
    assert_eq!(
        std::fs::read_dir(env.path("deliveries/norr"))
            .unwrap()
            .count(),
        2
    );
    // Back in the configuration: a new epoch with a fresh snapshot, never a
    // delta that would skip what happened while it was away.
    std::fs::write(env.path("ctferry.toml"), &full).unwrap();
    let (ok, out, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed from the configuration"), "{out}");
    let mut names: Vec<String> = std::fs::read_dir(env.path("deliveries/syd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(names[1].starts_with("0000000002-snapshot"), "{names:?}");
    let (mut copy, mut n) = (Copy::new(), 0);
    fold(&env, "syd", "deliveries/syd", &mut copy, &mut n);
    assert_copy(&copy, &expected(&env, &["SE-E003"]), "syd");
}

#[test]
fn a_caregiver_key_rotation_applies_packages_for_the_old_and_the_new_key() {
    let env = setup();
    let tgt = target(&env);
    let mut copy_db = tgt.norr_copy();
    // Package 1 is encrypted to the old key and not applied yet.
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    // The caregiver sends a new public key; the region swaps it in.
    let (public, secret) = crypto::generate("norr 2027", "norr@example.invalid", None).unwrap();
    std::fs::write(env.path("keys/norr2.pub.asc"), public).unwrap();
    std::fs::write(env.path("keys/norr2.sec.asc"), secret).unwrap();
    let cfg = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
    std::fs::write(
        env.path("ctferry.toml"),
        cfg.replace("keys/norr.pub.asc", "keys/norr2.pub.asc"),
    )
    .unwrap();
    exec(
        &mut env.db(),
        "UPDATE dbo.Besok SET Patient = N'Anna R' WHERE Id = 10",
    );
    let (ok, _, err) = env.ctferry(&["once"]);
    assert!(ok, "{err}");
    // With only the new key, package 1 is refused and nothing applied.
    let apply_toml = std::fs::read_to_string(env.path("apply.toml")).unwrap();
    std::fs::write(
        env.path("apply.toml"),
        apply_toml.replace("\"keys/norr.sec.asc\"", "\"keys/norr2.sec.asc\""),
    )
    .unwrap();
    let (ok, out, err) = apply(&env, &[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("0000000001") && err.contains("not encrypted to"),
        "{err}"
    );
    // With both keys listed, both packages apply, each with its own key.
    std::fs::write(
        env.path("apply.toml"),
        apply_toml.replace(
            "\"keys/norr.sec.asc\"",
            "[\"keys/norr2.sec.asc\", \"keys/norr.sec.asc\"]",
        ),
    )
    .unwrap();
    let (ok, out, err) = apply(&env, &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("0000000002-delta") && out.contains("applied"),
        "{out}"
    );
    assert_eq!(
        read_copy(&mut copy_db),
        expected(&env, &["SE-E001", "SE-E002"])
    );
}
