//! Rows owned by several caregivers at the scale of a region (issue 18):
//! 300 caregivers, patients with visits at 1-5 of them, one delta cycle of
//! mixed changes, routed with membership (`dbo.Patient` by its visits and
//! its listing) against the same workload with single owners (the patient
//! by its listing only), in the same run, on mssql-sim.
//!
//!     cargo bench --bench membership
//!     CTFERRY_BENCH_PATIENTS=20000 CTFERRY_BENCH_SUBSCRIBERS=300 CTFERRY_BENCH_CHANGES=2000 cargo bench --bench membership
//!
//! Reports, per mode: onboarding (300 snapshots), then the delta cycle's
//! read, routing and staging (time, statements sent to the source, changes
//! read, rows staged) apart from its packaging and delivery (300
//! packages), and the state's routing indexes ((row, member) pairs) and
//! size on disk. The
//! floor in the same run: the bare reads of the changed rows (one
//! CHANGETABLE join per table, no routing), timed with the same client.

use ctferry::mssql::client::Db;
use ctferry::publisher::Publisher;
use std::fmt::Write as _;
use std::time::Instant;

#[path = "support/sim.rs"]
mod sim;
use sim::PW;

#[path = "../tests/support/fixtures.rs"]
mod fixtures;
use fixtures::Rng;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sizes {
    subscribers: usize,
    patients: usize,
    changes: usize,
}

/// Inserts `rows` with multi-row INSERTs of 1,000.
fn insert(db: &mut Db, table: &str, rows: Vec<String>) {
    for chunk in rows.chunks(1000) {
        db.execute(&format!("INSERT INTO {table} VALUES {}", chunk.join(", ")))
            .unwrap();
    }
}

/// The source: two care units per caregiver; each patient visits 1-5
/// caregivers (one visit at a unit of each) and is listed at its first.
fn fill(db: &mut Db, n: &Sizes) -> usize {
    for s in [
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)",
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(100) NOT NULL, ListadVardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id))",
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Orsak nvarchar(100) NOT NULL)",
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING",
    ] {
        db.execute(s).unwrap();
    }
    let units = 2 * n.subscribers;
    insert(
        db,
        "dbo.Vardenhet",
        (1..=units)
            .map(|u| format!("({u}, N'K{}')", (u - 1) / 2))
            .collect(),
    );
    let mut rng = Rng(0x5eed_0018);
    let mut patients = Vec::new();
    let mut visits = Vec::new();
    for p in 1..=n.patients {
        let k = 1 + rng.below(5) as usize;
        let mut cgs: Vec<usize> = Vec::new();
        while cgs.len() < k {
            let c = rng.below(n.subscribers as u64) as usize;
            if !cgs.contains(&c) {
                cgs.push(c);
            }
        }
        let unit = |c: usize, r: &mut Rng| 2 * c + 1 + r.below(2) as usize;
        patients.push(format!("({p}, N'Patient {p}', {})", unit(cgs[0], &mut rng)));
        for c in cgs {
            visits.push(format!(
                "({}, {p}, {}, N'Besök')",
                visits.len() + 1,
                unit(c, &mut rng)
            ));
        }
    }
    insert(db, "dbo.Patient", patients);
    let n_visits = visits.len();
    insert(db, "dbo.Besok", visits);
    n_visits
}

/// The cycle's workload, the same in both modes: new visits (a patient's
/// first at a caregiver, mostly), visits moved to another caregiver's
/// unit, visits deleted, patients renamed.
fn workload(n: &Sizes, visits: usize) -> Vec<String> {
    let mut rng = Rng(0xc0ffee);
    let units = 2 * n.subscribers as u64;
    let mut out = Vec::new();
    let mut next = visits + 1;
    for i in 0..n.changes {
        let p = 1 + rng.below(n.patients as u64);
        let v = 1 + rng.below(visits as u64);
        out.push(match i % 10 {
            0..=3 => {
                next += 1;
                format!(
                    "INSERT INTO dbo.Besok VALUES ({}, {p}, {}, N'Nytt besök')",
                    next - 1,
                    1 + rng.below(units)
                )
            }
            4..=6 => format!(
                "UPDATE dbo.Besok SET VardenhetId = {} WHERE Id = {v}",
                1 + rng.below(units)
            ),
            7 | 8 => format!("DELETE FROM dbo.Besok WHERE Id = {v}"),
            _ => format!("UPDATE dbo.Patient SET Namn = N'Patient {p} (ändrad)' WHERE Id = {p}"),
        });
    }
    out
}

struct Run {
    onboarding_s: f64,
    snapshot_rows: u64,
    cycle_s: f64,
    package_s: f64,
    statements: u64,
    changes_read: u64,
    staged: u64,
    packages: usize,
    floor_s: f64,
    index: ctferry::publisher::state::IndexSizes,
    state_bytes: u64,
}

fn run(n: &Sizes, membership: bool, keys: &std::path::Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (sim, mut db) = sim::Sim::with_pmo();
    let visits = fill(&mut db, n);
    let patient = if membership {
        r#"owner = { path = "ListadVardenhetId -> dbo.Vardenhet(Id).HsaId", members = ["dbo.Besok(PatientId)"] }"#
    } else {
        r#"owner = { path = "ListadVardenhetId -> dbo.Vardenhet(Id).HsaId" }"#
    };
    let mut toml = format!(
        "[source]\nconnection = \"{}\"\npassword_env = \"CTFERRY_BENCH_PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"{}\"\n\
         [[table]]\nname = \"dbo.Patient\"\n{patient}\n\
         [[table]]\nname = \"dbo.Besok\"\nowner = {{ path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" }}\n",
        sim.conn("Pmo"),
        keys.join("region.sec.asc").display()
    );
    for i in 0..n.subscribers {
        let _ = write!(
            toml,
            "[[subscriber]]\nhsa_id = \"SE-{i}\"\nkeys = [\"K{i}\"]\npublic_key = \"{}\"\ndeliver = {{ folder = \"out/{i}\" }}\n",
            keys.join(format!("c{i}.pub.asc")).display()
        );
    }
    std::fs::write(dir.path().join("ctferry.toml"), toml).unwrap();
    std::env::set_var("CTFERRY_BENCH_PW", PW);
    let cfg = ctferry::config::load(&dir.path().join("ctferry.toml")).unwrap();
    let mut p = Publisher::open(&cfg).unwrap();

    let t = Instant::now();
    let r = p.once(&mut db, true).unwrap();
    let onboarding_s = t.elapsed().as_secs_f64();
    assert_eq!(r.snapshots.len(), n.subscribers);
    let snapshot_rows = r.packages.iter().map(|p| p.rows).sum();

    for chunk in workload(n, visits).chunks(200) {
        db.execute(&chunk.join(";\n")).unwrap();
    }
    // The floor: the changed rows read bare, in one snapshot transaction.
    let w = r.version;
    let t = Instant::now();
    db.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION")
        .unwrap();
    let mut read = 0u64;
    for q in [
        "SELECT t.* FROM dbo.Besok AS t JOIN CHANGETABLE(CHANGES dbo.Besok, @P1) AS c ON c.Id = t.Id",
        "SELECT c.Id FROM CHANGETABLE(CHANGES dbo.Besok, @P1) AS c LEFT JOIN dbo.Besok AS t ON t.Id = c.Id WHERE t.Id IS NULL",
        "SELECT t.* FROM dbo.Patient AS t JOIN CHANGETABLE(CHANGES dbo.Patient, @P1) AS c ON c.Id = t.Id",
    ] {
        db.query("the floor", q, &[ctferry::mssql::client::Param::I64(w)], |_| {
            read += 1;
            Ok(())
        })
        .unwrap();
    }
    db.execute("COMMIT").unwrap();
    let floor_s = t.elapsed().as_secs_f64();
    assert!(read > 0);

    // The cycle's read, routing and staging (no caregiver is due yet, so
    // nothing is packaged), then the packaging and delivery of what it
    // staged.
    let t = Instant::now();
    let r = p.once(&mut db, false).unwrap();
    let cycle_s = t.elapsed().as_secs_f64();
    assert!(r.packages.is_empty());
    let t = Instant::now();
    let packaged = p.once(&mut db, true).unwrap();
    let package_s = t.elapsed().as_secs_f64();
    let index = p.state.index_sizes().unwrap();
    let state_bytes = p.state.size_on_disk();
    drop(p);
    sim.shutdown();
    Run {
        onboarding_s,
        snapshot_rows,
        cycle_s,
        statements: r.statements,
        changes_read: r.changes_read,
        staged: r.routed.values().sum(),
        packages: packaged.packages.len(),
        package_s,
        floor_s,
        index,
        state_bytes,
    }
}

fn main() {
    let n = Sizes {
        subscribers: env("CTFERRY_BENCH_SUBSCRIBERS", 300),
        patients: env("CTFERRY_BENCH_PATIENTS", 20_000),
        changes: env("CTFERRY_BENCH_CHANGES", 2_000),
    };
    let keys = tempfile::tempdir().unwrap();
    let (public, secret) =
        ctferry::format::crypto::generate("region", "region@example.invalid", None).unwrap();
    std::fs::write(keys.path().join("region.pub.asc"), public).unwrap();
    std::fs::write(keys.path().join("region.sec.asc"), secret).unwrap();
    for i in 0..n.subscribers {
        let (public, _) =
            ctferry::format::crypto::generate(&format!("c{i}"), "c@example.invalid", None).unwrap();
        std::fs::write(keys.path().join(format!("c{i}.pub.asc")), public).unwrap();
    }
    println!(
        "{} caregivers, {} patients with visits at 1-5 caregivers each, {} changes in one cycle",
        n.subscribers, n.patients, n.changes
    );
    println!(
        "| | onboarding s | snapshot rows | read+route+stage s | floor s | statements | changes read | rows staged | package+deliver s | packages | o/ rows | m/ rows | (row, member) pairs | f/ refs | state MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, membership) in [("single owners", false), ("membership", true)] {
        let r = run(&n, membership, keys.path());
        println!(
            "| {name} | {:.1} | {} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {:.1} |",
            r.onboarding_s,
            r.snapshot_rows,
            r.cycle_s,
            r.floor_s,
            r.statements,
            r.changes_read,
            r.staged,
            r.package_s,
            r.packages,
            r.index.owned,
            r.index.membership_rows,
            r.index.pairs,
            r.index.references,
            r.state_bytes as f64 / (1 << 20) as f64
        );
    }
}
