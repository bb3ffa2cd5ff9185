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
//!
//! Second part: the onboarding snapshot of the column-owned table at the
//! same sizes, by the `ctferry` binary (`ctferry once`, a child process, so
//! that its peak RSS is its own and not the simulator's), for one caregiver
//! owning all 300 care units and for 300 caregivers owning one each. The
//! floor in the same run: a bare `SELECT` of the same rows and columns with
//! the same client. Also the state's size on disk per owned row, and, for
//! the one caregiver, a new epoch (`ctferry snapshot --subscriber`: every
//! row it owned forgotten, then written again): its time and peak RSS.
//!
//! Third part: freshness. `ctferry run --every 30s` for 300 caregivers
//! (each `interval = "30s"`, one care unit each, delivery to a folder) and
//! `ctferry apply --watch --every 10s` at three of them, each into its own
//! copy; a writer commits one row for a watched caregiver every second and
//! 50 rows spread over all units every second, for
//! `CTFERRY_BENCH_FRESHNESS_SECS` (180); the time from each watched row's
//! commit at the source to its arrival in the copy (polled every 250 ms):
//! p50, p95, max. The bound it is measured against: the run interval plus
//! the apply poll interval (40 s) plus one cycle and one apply.
//!
//!     CTFERRY_BENCH_PARTS=freshness cargo bench --bench scale

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
    fill_journal(&mut db, n);
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

/// The column-owned journal table `dbo.AnteckningK` (bigint key, care unit
/// `Hsa` with an index, text) with `n` rows over care units E1..E300, one
/// table for every part of the benchmark.
fn fill_journal(db: &mut ctferry::mssql::client::Db, n: i64) {
    db.execute("CREATE TABLE dbo.AnteckningK (Id bigint NOT NULL PRIMARY KEY, Hsa nvarchar(40) NOT NULL, Text nvarchar(400) NOT NULL)")
        .unwrap();
    db.execute("CREATE INDEX IX_AnteckningK_Hsa ON dbo.AnteckningK (Hsa)")
        .unwrap();
    let text = "anteckning: patienten mår bra, uppföljning om två veckor";
    sim::fill_doubling(
        db,
        "dbo.AnteckningK",
        "Id, Hsa, Text",
        |i| format!("({i}, N'E{}', N'{text} {i}')", 1 + i % 300),
        "Id + {have}, N'E' + CAST(1 + (Id + {have}) % 300 AS nvarchar(10)), Text",
        n,
    );
}

/// A source with the column-owned journal table (`dbo.AnteckningK`) of `n`
/// rows over care units E1..E300, for the snapshot and freshness parts.
fn journal_source(n: i64) -> (sim::Sim, ctferry::mssql::client::Db) {
    let (sim, mut db) = sim::Sim::with_pmo();
    fill_journal(&mut db, n);
    db.execute("ALTER TABLE dbo.AnteckningK ENABLE CHANGE_TRACKING")
        .unwrap();
    // What SQL Server's automatic statistics do after such a load (the
    // simulator has none of its own): its planner then reads a snapshot
    // step by the primary key in order, not through the Hsa index and a sort.
    db.execute("UPDATE STATISTICS dbo.AnteckningK").unwrap();
    (sim, db)
}

/// The start of ctferry.toml publishing `journal_source`'s table, owned by
/// its `Hsa` column; the caregivers follow.
fn journal_config(sim: &sim::Sim, keys: &std::path::Path) -> String {
    // CTFERRY_BENCH_STEP_ROWS sets `snapshot_step_rows` (default 100,000).
    let step = std::env::var("CTFERRY_BENCH_STEP_ROWS")
        .map(|n| format!("snapshot_step_rows = {n}\n"))
        .unwrap_or_default();
    format!(
        "[source]\nconnection = \"{}\"\npassword_env = \"CTFERRY_BENCH_PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"{}\"\n{step}\
         [[table]]\nname = \"dbo.AnteckningK\"\nowner = {{ column = \"Hsa\" }}\n",
        sim.conn("Pmo"),
        keys.join("region.sec.asc").display(),
    )
}

/// Runs `ctferry <command> --config <config> [extra]` as a child process:
/// its wall time (seconds) and peak RSS (MiB, its VmHWM).
fn run_child(config: &std::path::Path, command: &str, extra: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    // CTFERRY_BENCH_WRAP="heaptrack -o /tmp/snapshot" runs it under a profiler.
    let wrap = std::env::var("CTFERRY_BENCH_WRAP").unwrap_or_default();
    let mut cmd = match wrap.split_whitespace().collect::<Vec<_>>().split_first() {
        Some((prog, args)) => {
            let mut c = std::process::Command::new(prog);
            c.args(args).arg(env!("CARGO_BIN_EXE_ctferry"));
            c
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_ctferry")),
    };
    // Reaped by wait4 below.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .arg(command)
        .arg("--config")
        .arg(config)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its peak RSS is the VmHWM of its own memory map, read from /proc
    // while it runs (every 10 ms; the last reading is the peak but for
    // its last moments). Not wait4's ru_maxrss: a child started with
    // posix_spawn (CLONE_VM) carries the parent's high-water mark across
    // exec, and this process holds the simulator's whole database.
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak_kb = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kb) = s
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    {
                        peak_kb = peak_kb.max(kb);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak_kb
        })
    };
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid as i32);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak_kb = watcher.join().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ctferry {command} failed: {status}"
    );
    (secs, peak_kb as f64 / 1024.0)
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

/// One snapshot figure: (ctferry seconds, peak RSS MiB, state bytes per
/// owned row, bare SELECT seconds) for `subscribers` caregivers.
fn snapshot(n: i64, subscribers: usize, keys: &std::path::Path) -> (f64, f64, f64, f64) {
    let (sim, mut db) = journal_source(n);
    let dir = tempfile::tempdir().unwrap();
    let mut toml = journal_config(&sim, keys);
    for s in 0..subscribers {
        let units: Vec<String> = if subscribers == 1 {
            (1..=300).map(|u| format!("\"E{u}\"")).collect()
        } else {
            vec![format!("\"E{}\"", s % 300 + 1)]
        };
        toml.push_str(&format!(
            "[[subscriber]]\nhsa_id = \"SE-{s}\"\nkeys = [{}]\npublic_key = \"{}\"\ndeliver = {{ folder = \"out/{s}\" }}\n",
            units.join(", "),
            keys.join(format!("c{s}.pub.asc")).display()
        ));
    }
    std::fs::write(dir.path().join("ctferry.toml"), toml).unwrap();
    std::env::set_var("CTFERRY_BENCH_PW", PW);
    let (secs, rss) = run_child(&dir.path().join("ctferry.toml"), "once", &[]);
    let state = dir_bytes(&dir.path().join("state")) as f64 / n as f64;
    let t = Instant::now();
    let mut read = 0i64;
    db.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION")
        .unwrap();
    db.query(
        "the floor",
        "SELECT Id, Hsa, Text FROM dbo.AnteckningK",
        &[],
        |r| {
            let id: Option<i64> = r.try_get(0).unwrap();
            let hsa: Option<&str> = r.try_get(1).unwrap();
            let text: Option<&str> = r.try_get(2).unwrap();
            assert!(id.is_some() && hsa.is_some() && text.is_some());
            read += 1;
            Ok(())
        },
    )
    .unwrap();
    db.execute("COMMIT").unwrap();
    let floor = t.elapsed().as_secs_f64();
    assert_eq!(read, n);
    // The same rows read as the steps read them (keyset pages of
    // `snapshot_step_rows` in key order, filtered by each caregiver's keys,
    // one caregiver after the other), bare: what the source costs
    // ctferry's steps.
    let step: i64 = std::env::var("CTFERRY_BENCH_STEP_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let caregivers: Vec<Vec<String>> = if subscribers == 1 {
        vec![(1..=300).map(|u| format!("E{u}")).collect()]
    } else {
        (0..subscribers)
            .map(|s| vec![format!("E{}", s % 300 + 1)])
            .collect()
    };
    let t = Instant::now();
    let mut paged_rows = 0i64;
    for units in &caregivers {
        let marks: Vec<String> = (1..=units.len()).map(|i| format!("@P{i}")).collect();
        let mut last = i64::MIN;
        loop {
            let mut params: Vec<ctferry::mssql::client::Param> = units
                .iter()
                .map(|u| ctferry::mssql::client::Param::Str(u.clone()))
                .collect();
            params.push(ctferry::mssql::client::Param::I64(last));
            let mut got = 0i64;
            db.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION")
                .unwrap();
            db.query(
                "the steps' floor",
                &format!(
                    "SELECT TOP ({step}) t.Id, t.Hsa, t.Text FROM dbo.AnteckningK AS t WHERE t.Hsa IN ({}) AND t.Id > CAST(@P{} AS bigint) ORDER BY t.Id",
                    marks.join(", "),
                    units.len() + 1
                ),
                &params,
                |r| {
                    let id: Option<i64> = r.try_get(0).unwrap();
                    last = id.unwrap();
                    got += 1;
                    Ok(())
                },
            )
            .unwrap();
            db.execute("COMMIT").unwrap();
            paged_rows += got;
            if got < step {
                break;
            }
        }
    }
    assert_eq!(paged_rows, n);
    let paged = t.elapsed().as_secs_f64();
    eprintln!("snapshot floor, paged as the steps read: {paged:.2} s ({n} rows, {subscribers} caregiver(s))");
    if subscribers == 1 {
        // A new epoch for the caregiver that owns every row (`ctferry
        // snapshot`: the epoch starts, then one cycle writes the snapshot
        // again): what forgetting everything it owned costs.
        let (secs, rss) = run_child(
            &dir.path().join("ctferry.toml"),
            "snapshot",
            &["--subscriber", "SE-0"],
        );
        eprintln!("a new epoch for the caregiver that owns all {n} rows (`ctferry snapshot`): {secs:.2} s, peak RSS {rss:.0} MiB");
    }
    sim.shutdown();
    (secs, rss, state, floor)
}

/// Starts `ctferry <args>` in the background, its output thrown away.
fn spawn(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The ids in `dbo.AnteckningK` of copy `db` above `after`.
fn ids_above(db: &mut ctferry::mssql::client::Db, after: i64) -> Vec<i64> {
    let mut out = Vec::new();
    db.query(
        "the copy's new rows",
        "SELECT Id FROM dbo.AnteckningK WHERE Id > @P1",
        &[ctferry::mssql::client::Param::I64(after)],
        |r| {
            out.push(r.try_get::<i64, _>(0).unwrap().unwrap());
            Ok(())
        },
    )
    .unwrap();
    out
}

/// Freshness (see the module doc): (p50, p95, max seconds, rows measured).
fn freshness(keys: &std::path::Path, secs: u64) -> (f64, f64, f64, usize) {
    const WATCHED: [i64; 3] = [1, 151, 300];
    let (sim, mut db) = journal_source(30_000);
    let text = "anteckning: patienten mår bra, uppföljning om två veckor";
    let dir = tempfile::tempdir().unwrap();
    let mut toml = journal_config(&sim, keys);
    for u in 1..=300 {
        toml.push_str(&format!(
            "[[subscriber]]\nhsa_id = \"SE-{u}\"\nkeys = [\"E{u}\"]\npublic_key = \"{}\"\ninterval = \"30s\"\ndeliver = {{ folder = \"out/{u}\" }}\n",
            keys.join(format!("c{u}.pub.asc")).display()
        ));
    }
    let config = dir.path().join("ctferry.toml");
    std::fs::write(&config, toml).unwrap();
    std::env::set_var("CTFERRY_BENCH_PW", PW);
    let mut children = vec![spawn(&[
        "run",
        "-c",
        config.to_str().unwrap(),
        "--every",
        "30s",
    ])];
    let mut copies = Vec::new();
    for u in WATCHED {
        sim.connect("master")
            .execute(&format!("CREATE DATABASE Kopia{u}"))
            .unwrap();
        let apply = dir.path().join(format!("apply{u}.toml"));
        std::fs::write(
            &apply,
            format!(
                "[target]\nconnection = \"{}\"\npassword_env = \"CTFERRY_BENCH_PW\"\n[keys]\nsecret_key = \"{}\"\npublisher_keys = [\"{}\"]\n[source]\nsubscriber = \"SE-{u}\"\nfolder = \"out/{u}\"\n",
                sim.conn(&format!("Kopia{u}")),
                keys.join(format!("c{u}.sec.asc")).display(),
                keys.join("region.pub.asc").display(),
            ),
        )
        .unwrap();
        children.push(spawn(&[
            "apply",
            "-c",
            apply.to_str().unwrap(),
            "--watch",
            "--every",
            "10s",
        ]));
        copies.push(sim.connect(&format!("Kopia{u}")));
    }
    // Onboarding: every watched copy has its 100 rows.
    let t = Instant::now();
    for c in copies.iter_mut() {
        loop {
            let have = c
                .rows(
                    "the copy",
                    "SELECT COUNT(*) FROM sys.tables WHERE name = 'AnteckningK'",
                    &[],
                )
                .map(|r| ctferry::mssql::client::int_at(&r[0], 0).unwrap())
                .unwrap_or(0);
            if have == 1 && ids_above(c, 0).len() == 100 {
                break;
            }
            assert!(
                t.elapsed().as_secs() < 600,
                "no snapshot applied in 10 minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
    let mut next = 30_001i64;
    let mut committed: std::collections::HashMap<i64, (usize, Instant)> = Default::default();
    let mut latencies = Vec::new();
    let mut seen = vec![30_000i64; copies.len()];
    let start = Instant::now();
    let mut last_write = start - std::time::Duration::from_secs(1);
    let mut rng = 7u64;
    loop {
        let writing = start.elapsed().as_secs() < secs;
        if writing && last_write.elapsed().as_millis() >= 1000 {
            last_write = Instant::now();
            let w = committed.len() % copies.len();
            let mut rows = vec![format!("({next}, N'E{}', N'{text} {next}')", WATCHED[w])];
            let watched = next;
            for i in 1..=50 {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (rng >> 33) as i64 % 300 + 1;
                if !WATCHED.contains(&u) {
                    rows.push(format!("({}, N'E{u}', N'{text}')", next + i));
                }
            }
            next += 51;
            db.execute(&format!(
                "INSERT INTO dbo.AnteckningK VALUES {}",
                rows.join(", ")
            ))
            .unwrap();
            committed.insert(watched, (w, Instant::now()));
        }
        for (w, c) in copies.iter_mut().enumerate() {
            for id in ids_above(c, seen[w]) {
                seen[w] = seen[w].max(id);
                if let Some((cw, at)) = committed.get(&id) {
                    assert_eq!(*cw, w, "row {id} reached the wrong copy");
                    latencies.push(at.elapsed().as_secs_f64());
                }
            }
        }
        if !writing && latencies.len() == committed.len() {
            break;
        }
        assert!(
            start.elapsed().as_secs() < secs + 300,
            "{} of {} rows never reached their copy",
            committed.len() - latencies.len(),
            committed.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    sim.shutdown();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), at(1.0), latencies.len())
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
    // The region's key, and one key per caregiver (`c<n>`; `c` is `c0`).
    let mut names = vec!["region".to_string(), "c".to_string()];
    names.extend((0..=300).map(|n| format!("c{n}")));
    for file in names {
        let (public, secret) =
            ctferry::format::crypto::generate(&file, "k@example.invalid", None).unwrap();
        std::fs::write(keys.path().join(format!("{file}.pub.asc")), public).unwrap();
        std::fs::write(keys.path().join(format!("{file}.sec.asc")), secret).unwrap();
    }
    let parts =
        std::env::var("CTFERRY_BENCH_PARTS").unwrap_or_else(|_| "cycle,freshness,snapshot".into());
    if parts.contains("cycle") {
        println!("one-change cycle, median of {repeat} (seconds)");
        println!("| rows per table | a path-owned row changed | a column-owned row changed | floor: bare reads of the changed rows | ratio (path / floor) |");
        println!("|---:|---:|---:|---:|---:|");
        for n in sizes.clone() {
            let (path, column, floor) = run(n, repeat, keys.path());
            println!(
                "| {n} | {path:.3} | {column:.3} | {floor:.3} | {:.1}× |",
                path / floor
            );
        }
        println!();
    }
    if parts.contains("freshness") {
        let secs = std::env::var("CTFERRY_BENCH_FRESHNESS_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180);
        let (p50, p95, max, n) = freshness(keys.path(), secs);
        println!(
            "freshness: `run --every 30s` for 300 caregivers, `apply --watch --every 10s` at 3"
        );
        println!(
            "| rows measured | p50 s | p95 s | max s | bound: run interval + apply interval |"
        );
        println!("|---:|---:|---:|---:|---:|");
        println!("| {n} | {p50:.1} | {p95:.1} | {max:.1} | 40 |");
        println!();
    }
    if !parts.contains("snapshot") {
        return;
    }
    println!("onboarding snapshot of the column-owned table (`ctferry once`, a child process)");
    println!("| rows | caregivers | ctferry s | peak RSS MiB | state bytes per owned row | floor: bare SELECT s | ratio (floor / ctferry) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let subs: Vec<usize> = std::env::var("CTFERRY_BENCH_SUBSCRIBERS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 300]);
    for n in &sizes {
        for s in &subs {
            let (secs, rss, state, floor) = snapshot(*n, *s, keys.path());
            println!(
                "| {n} | {s} | {secs:.2} | {rss:.0} | {state:.0} | {floor:.2} | {:.2}× |",
                floor / secs
            );
        }
    }
}
