//! Bytes shipped for a change of shape (issue 19), against a full
//! re-snapshot of the same caregiver, in the same run on mssql-sim:
//!
//!     cargo bench --bench schema_change      # CTFERRY_BENCH_ROWS=200000 by default
//!
//! The source: 300 care units, visits (`dbo.Besok`, owned through its care
//! unit) and journal notes (`dbo.Anteckning`, through its visit), ROWS of
//! each, spread evenly; one caregiver owning 10 care units (1/30 of the
//! rows). Measured, each as the package files written for the caregiver
//! (bytes on disk, rows) and the cycle's time:
//! - "add a nullable column to one table": `ALTER TABLE dbo.Besok ADD
//!   Kommentar nvarchar(200) NULL` (`new_columns = "publish"`);
//! - the same with values already in it (the table's rows travel again);
//! - "a caregiver gains one care unit": its keys in the configuration gain
//!   one more (its rows, and the notes through them, arrive);
//! - the baseline: a new snapshot of the same caregiver (what each of these
//!   cost before: a new epoch), made last, on the same data.

use ctferry::mssql::client::Db;
use ctferry::publisher::Publisher;
use std::path::Path;
use std::time::Instant;

#[path = "support/sim.rs"]
mod sim;
use sim::PW;

fn fill(db: &mut Db, rows: i64) {
    for s in [
        "CREATE TABLE dbo.Enhet (Id int NOT NULL PRIMARY KEY, Hsa nvarchar(40) NOT NULL)",
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, EnhetId int NOT NULL REFERENCES dbo.Enhet(Id), Tid datetime2(7) NOT NULL, Orsak nvarchar(200) NOT NULL)",
        "CREATE INDEX IX_Besok_EnhetId ON dbo.Besok (EnhetId)",
        "CREATE TABLE dbo.Anteckning (Id bigint NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id), Text nvarchar(400) NOT NULL)",
        "CREATE INDEX IX_Anteckning_BesokId ON dbo.Anteckning (BesokId)",
    ] {
        db.execute(s).unwrap();
    }
    let units: Vec<String> = (1..=300).map(|u| format!("({u}, N'E{u}')")).collect();
    db.execute(&format!(
        "INSERT INTO dbo.Enhet VALUES {}",
        units.join(", ")
    ))
    .unwrap();
    sim::fill_doubling(
        db,
        "dbo.Besok",
        "Id, EnhetId, Tid, Orsak",
        |i| {
            format!(
                "({i}, {}, '2026-01-02T08:00:00', N'kontroll {i}')",
                1 + i % 300
            )
        },
        "Id + {have}, 1 + (Id + {have}) % 300, Tid, Orsak",
        rows,
    );
    sim::fill_doubling(
        db,
        "dbo.Anteckning",
        "Id, BesokId, Text",
        |i| format!("({i}, {i}, N'anteckning: patienten mår bra, uppföljning om två veckor {i}')"),
        "Id + {have}, BesokId + {have}, Text",
        rows,
    );
    for t in ["Enhet", "Besok", "Anteckning"] {
        db.execute(&format!("ALTER TABLE dbo.{t} ENABLE CHANGE_TRACKING"))
            .unwrap();
    }
}

fn config(dir: &Path, conn: &str, keys: &Path, units: &[u32]) {
    let list: Vec<String> = units.iter().map(|u| format!("\"E{u}\"")).collect();
    let toml = format!(
        "[source]\nconnection = \"{conn}\"\npassword_env = \"CTFERRY_BENCH_PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"{}\"\n\
         [[table]]\nname = \"dbo.Besok\"\nowner = {{ path = \"EnhetId -> dbo.Enhet(Id).Hsa\" }}\nnew_columns = \"publish\"\n\
         [[table]]\nname = \"dbo.Anteckning\"\nowner = {{ path = \"BesokId -> dbo.Besok(Id).EnhetId -> dbo.Enhet(Id).Hsa\" }}\n\
         [[subscriber]]\nhsa_id = \"SE-1\"\nkeys = [{}]\npublic_key = \"{}\"\ndeliver = {{ folder = \"out\" }}\n",
        keys.join("region.sec.asc").display(),
        list.join(", "),
        keys.join("c.pub.asc").display()
    );
    std::fs::write(dir.join("ctferry.toml"), toml).unwrap();
}

/// One cycle with the configuration as it is in `dir`: (package bytes,
/// rows, snapshots, seconds).
fn cycle(dir: &Path, db: &mut Db, snapshot: bool) -> (u64, u64, usize, f64) {
    let cfg = ctferry::config::load(&dir.join("ctferry.toml")).unwrap();
    let mut p = Publisher::open(&cfg).unwrap();
    if snapshot {
        p.request_snapshot("SE-1", "benchmark baseline").unwrap();
    }
    let t = Instant::now();
    let r = p.once(db, true).unwrap();
    let secs = t.elapsed().as_secs_f64();
    (
        r.packages.iter().map(|p| p.bytes).sum(),
        r.packages.iter().map(|p| p.rows).sum(),
        r.snapshots.len(),
        secs,
    )
}

fn main() {
    let rows: i64 = std::env::var("CTFERRY_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let keys = tempfile::tempdir().unwrap();
    for name in ["region", "c"] {
        let (public, secret) =
            ctferry::format::crypto::generate(name, "k@example.invalid", None).unwrap();
        std::fs::write(keys.path().join(format!("{name}.pub.asc")), public).unwrap();
        std::fs::write(keys.path().join(format!("{name}.sec.asc")), secret).unwrap();
    }
    std::env::set_var("CTFERRY_BENCH_PW", PW);
    let dir = tempfile::tempdir().unwrap();
    let (sim, mut db) = sim::Sim::with_pmo();
    fill(&mut db, rows);
    let mut units: Vec<u32> = (1..=10).collect();
    config(dir.path(), &sim.conn("Pmo"), keys.path(), &units);
    let onboard = cycle(dir.path(), &mut db, false);
    println!(
        "schema_change: {rows} visits and {rows} notes, caregiver SE-1 owns 10 of 300 care units"
    );
    println!("| change | package bytes | rows | new epoch | cycle |");
    println!("|---|---:|---:|---|---:|");
    let line = |what: &str, r: (u64, u64, usize, f64)| {
        println!(
            "| {what} | {} | {} | {} | {:.2} s |",
            r.0,
            r.1,
            if r.2 > 0 { "yes" } else { "no" },
            r.3
        );
    };
    line("onboarding snapshot", onboard);
    db.execute("ALTER TABLE dbo.Besok ADD Kommentar nvarchar(200) NULL")
        .unwrap();
    line(
        "add a nullable column to dbo.Besok",
        cycle(dir.path(), &mut db, false),
    );
    db.execute("ALTER TABLE dbo.Anteckning ADD Signerad nvarchar(40) NULL")
        .unwrap();
    db.execute("UPDATE dbo.Anteckning SET Signerad = N'dr X' WHERE Id % 2 = 0")
        .unwrap();
    line(
        "add a column to dbo.Anteckning that already holds values (its rows again)",
        cycle(dir.path(), &mut db, false),
    );
    units.push(11);
    config(dir.path(), &sim.conn("Pmo"), keys.path(), &units);
    line(
        "the caregiver gains one care unit",
        cycle(dir.path(), &mut db, false),
    );
    line(
        "baseline: a new snapshot of the same caregiver",
        cycle(dir.path(), &mut db, true),
    );
    drop(db);
    sim.shutdown();
}
