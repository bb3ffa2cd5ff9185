//! The publisher at the scale of a region (issue 21). First part: a cycle
//! costs what changed, not what exists. Two published tables of the same
//! size, one path-owned (`owner = { path = "EnhetId -> dbo.Enhet(Id).Hsa"
//! }`, with an index on the foreign-key column as `check` asks for) and one
//! column-owned; one row of one of them changes, and a cycle reads both
//! tables' changes. At 0.5 M and 2 M rows per table; the floor in the same
//! run is the bare read of both tables' changed rows (CHANGETABLE joined
//! to the table by key, no owner, no routing) with the same client.
//!
//!     cargo bench --bench scale
//!     CTFERRY_BENCH_SIZES=500000,2000000 CTFERRY_BENCH_REPEAT=5 cargo bench --bench scale
//!
//! Each figure is the median of `CTFERRY_BENCH_REPEAT` one-change cycles
//! (`ctferry once` in process: read, route, stage, package, deliver to a
//! folder) for one caregiver owning one care unit of 300.

use ctferry::publisher::Publisher;
use std::time::Instant;

#[path = "support/sim.rs"]
mod sim;
use sim::PW;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One-change cycle times (seconds) for the path-owned and the
/// column-owned table of `n` rows each.
fn run(n: i64, repeat: usize, keys: &std::path::Path) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (sim, mut db) = sim::Sim::with_pmo();
    for s in [
        "CREATE TABLE dbo.Enhet (Id int NOT NULL PRIMARY KEY, Hsa nvarchar(40) NOT NULL)",
        "CREATE TABLE dbo.Anteckning (Id bigint NOT NULL PRIMARY KEY, EnhetId int NOT NULL REFERENCES dbo.Enhet(Id), Text nvarchar(400) NOT NULL)",
        "CREATE INDEX IX_Anteckning_EnhetId ON dbo.Anteckning (EnhetId)",
        "CREATE TABLE dbo.AnteckningK (Id bigint NOT NULL PRIMARY KEY, Hsa nvarchar(40) NOT NULL, Text nvarchar(400) NOT NULL)",
    ] {
        db.execute(s).unwrap();
    }
    let units: Vec<String> = (1..=300).map(|u| format!("({u}, N'E{u}')")).collect();
    db.execute(&format!(
        "INSERT INTO dbo.Enhet VALUES {}",
        units.join(", ")
    ))
    .unwrap();
    let text = "anteckning: patienten mår bra, uppföljning om två veckor";
    sim::fill_doubling(
        &mut db,
        "dbo.Anteckning",
        "Id, EnhetId, Text",
        |i| format!("({i}, {}, N'{text} {i}')", 1 + i % 300),
        "Id + {have}, 1 + (Id + {have}) % 300, Text",
        n,
    );
    sim::fill_doubling(
        &mut db,
        "dbo.AnteckningK",
        "Id, Hsa, Text",
        |i| format!("({i}, N'E{}', N'{text} {i}')", 1 + i % 300),
        "Id + {have}, N'E' + CAST(1 + (Id + {have}) % 300 AS nvarchar(10)), Text",
        n,
    );
    for t in ["Enhet", "Anteckning", "AnteckningK"] {
        db.execute(&format!("ALTER TABLE dbo.{t} ENABLE CHANGE_TRACKING"))
            .unwrap();
    }
    let toml = format!(
        "[source]\nconnection = \"{}\"\npassword_env = \"CTFERRY_BENCH_PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"{}\"\n\
         [[table]]\nname = \"dbo.Anteckning\"\nowner = {{ path = \"EnhetId -> dbo.Enhet(Id).Hsa\" }}\n\
         [[table]]\nname = \"dbo.AnteckningK\"\nowner = {{ column = \"Hsa\" }}\n\
         [[subscriber]]\nhsa_id = \"SE-1\"\nkeys = [\"E1\"]\npublic_key = \"{}\"\ndeliver = {{ folder = \"out\" }}\n",
        sim.conn("Pmo"),
        keys.join("region.sec.asc").display(),
        keys.join("c.pub.asc").display()
    );
    std::fs::write(dir.path().join("ctferry.toml"), toml).unwrap();
    std::env::set_var("CTFERRY_BENCH_PW", PW);
    let cfg = ctferry::config::load(&dir.path().join("ctferry.toml")).unwrap();
    let mut p = Publisher::open(&cfg).unwrap();
    p.once(&mut db, true).unwrap();
    let mut times = |table: &str| -> f64 {
        let mut v = Vec::new();
        for r in 0..repeat {
            // A row of the caregiver's own unit (Id % 300 == 0 is unit 1).
            db.execute(&format!(
                "UPDATE dbo.{table} SET Text = N'ändrad {r}' WHERE Id = 300"
            ))
            .unwrap();
            let t = Instant::now();
            let rep = p.once(&mut db, true).unwrap();
            v.push(t.elapsed().as_secs_f64());
            assert_eq!(rep.changes_read, 1, "{table}");
            assert_eq!(rep.packages.len(), 1, "{table}");
        }
        median(v)
    };
    let path = times("Anteckning");
    let column = times("AnteckningK");
    drop(p);
    let mut floor = Vec::new();
    for r in 0..repeat {
        let before = db
            .rows(
                "the version",
                "SELECT CHANGE_TRACKING_CURRENT_VERSION()",
                &[],
            )
            .unwrap();
        let before = ctferry::mssql::client::int_at(&before[0], 0).unwrap();
        db.execute(&format!(
            "UPDATE dbo.Anteckning SET Text = N'igen {r}' WHERE Id = 300"
        ))
        .unwrap();
        let t = Instant::now();
        db.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION")
            .unwrap();
        let mut read = 0;
        for q in [
            "SELECT t.* FROM CHANGETABLE(CHANGES dbo.Anteckning, @P1) AS c JOIN dbo.Anteckning AS t ON t.Id = c.Id",
            "SELECT t.* FROM CHANGETABLE(CHANGES dbo.AnteckningK, @P1) AS c JOIN dbo.AnteckningK AS t ON t.Id = c.Id",
        ] {
            let v = ctferry::mssql::client::Param::I64(before);
            db.query("the floor", q, &[v], |_| {
                read += 1;
                Ok(())
            })
            .unwrap();
        }
        db.execute("COMMIT").unwrap();
        floor.push(t.elapsed().as_secs_f64());
        assert!(read >= 1);
    }
    sim.shutdown();
    (path, column, median(floor))
}

fn main() {
    let sizes: Vec<i64> = std::env::var("CTFERRY_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![500_000, 2_000_000]);
    let repeat: usize = std::env::var("CTFERRY_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let keys = tempfile::tempdir().unwrap();
    for (name, file) in [("region", "region"), ("c", "c")] {
        let (public, secret) =
            ctferry::format::crypto::generate(name, "k@example.invalid", None).unwrap();
        std::fs::write(keys.path().join(format!("{file}.pub.asc")), public).unwrap();
        std::fs::write(keys.path().join(format!("{file}.sec.asc")), secret).unwrap();
    }
    println!("one-change cycle, median of {repeat} (seconds)");
    println!("| rows per table | a path-owned row changed | a column-owned row changed | floor: bare reads of the changed rows | ratio (path / floor) |");
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let (path, column, floor) = run(n, repeat, keys.path());
        println!(
            "| {n} | {path:.3} | {column:.3} | {floor:.3} | {:.1}× |",
            path / floor
        );
    }
}
