//! Applying packages at the caregiver: a 1-million-row snapshot and a
//! 100,000-change delta into mssql-sim, against two baselines in the same
//! run: the bare tiberius bulk insert of the same rows into the same kind
//! of table (the limit), and a row-by-row applier.
//!
//!     cargo bench --bench apply
//!     CTFERRY_BENCH_ROWS=200000 cargo bench --bench apply
//!
//! Reports rows/s and the round trips per 1,000 rows (each statement batch
//! and each bulk-load message is one round trip). The baseline inserts
//! 10,000 rows with one INSERT statement each, as a naive applier would.

use ctferry::caregiver::{self, ApplyReport};
use ctferry::config::ApplyConfig;
use ctferry::config::Secret;
use ctferry::format::crypto::{self, PublicKey, SecretKey};
use ctferry::format::package::{self, Kind, Manifest, PackageWriter, TableSchema, WriterConfig};
use ctferry::format::value::{Decimal, Value};
use ctferry::mssql::client::Db;
use std::time::Instant;

const PW: &str = "Bench#Passw0rd";

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

fn schema() -> TableSchema {
    fixtures::schema(
        "dbo.Journalanteckning",
        &[
            ("Id", "bigint", false),
            ("BesokId", "int", false),
            ("Skriven", "datetime2(7)", false),
            ("Text", "nvarchar(400)", true),
            ("Vikt", "decimal(9,3)", true),
        ],
    )
}

fn row(i: i64, tag: &str) -> Vec<Value> {
    let when = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        + chrono::Duration::seconds(i);
    vec![
        Value::Int(i),
        Value::Int(i / 5),
        Value::DateTime(when),
        Value::Text(format!(
            "{tag} anteckning {i}: patienten mår bra, uppföljning om två veckor"
        )),
        Value::Decimal(Decimal {
            mantissa: (i % 100_000) as i128,
            scale: 3,
        }),
    ]
}

#[allow(clippy::too_many_arguments)]
fn write(
    dir: &std::path::Path,
    region: &SecretKey,
    norr: &PublicKey,
    kind: Kind,
    seq: u64,
    prev: Option<[u8; 32]>,
    rows: impl Iterator<Item = (bool, Vec<Value>)>,
) -> package::Written {
    let template = Manifest {
        publisher: "region".into(),
        subscriber: "SE-NORR".into(),
        epoch: 1,
        sequence: seq,
        kind,
        part: 1,
        last_part: true,
        previous_sha256: prev,
        ct_from: if kind == Kind::Delta { Some(1) } else { None },
        ct_to: seq as i64,
        source_commit_time: None,
        created_at: "2026-11-25T08:00:00Z".into(),
        tables: vec![],
    };
    let mut w = PackageWriter::new(
        WriterConfig {
            out_dir: dir.to_path_buf(),
            signer: region,
            recipient: norr,
            part_bytes: 1 << 30,
            zstd_level: 3,
            zstd_workers: package::default_zstd_workers(),
        },
        template,
    );
    let t = w.add_table(schema()).unwrap();
    for (upsert, r) in rows {
        if upsert {
            w.upsert(t, &r).unwrap();
        } else {
            w.delete(t, &r[..1]).unwrap();
        }
    }
    w.finish().unwrap().remove(0)
}

fn main() {
    let n: i64 = std::env::var("CTFERRY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let delta_n = (n / 10).max(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["region", "norr"] {
        let (p, s) = crypto::generate(name, "x@example.invalid", None).unwrap();
        std::fs::write(d.join(format!("{name}.pub.asc")), p).unwrap();
        std::fs::write(d.join(format!("{name}.sec.asc")), s).unwrap();
    }
    let region = SecretKey::load(&d.join("region.sec.asc"), None).unwrap();
    let norr_sec = SecretKey::load(&d.join("norr.sec.asc"), None).unwrap();
    let norr = norr_sec.public();
    let inbox = d.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let snap = write(
        &inbox,
        &region,
        &norr,
        Kind::Snapshot,
        1,
        None,
        (0..n).map(|i| (true, row(i, "v1"))),
    );
    // The delta: half updates, a quarter inserts, a quarter deletes.
    let delta = write(
        &inbox,
        &region,
        &norr,
        Kind::Delta,
        2,
        Some(snap.sha256),
        (0..delta_n).map(|k| {
            let i = k * 7 % n;
            match k % 4 {
                0 | 1 => (true, row(i, "v2")),
                2 => (true, row(n + k, "ny")),
                _ => (false, row(i, "")),
            }
        }),
    );
    let sim_dir = tempfile::tempdir().unwrap();
    let sim = mssql_sim::Server::start(mssql_sim::Config::new(sim_dir.path(), PW)).unwrap();
    let conn = |db: &str| {
        format!(
            "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT;packet size=16384",
            sim.addr().ip(),
            sim.addr().port()
        )
    };
    let mut master = Db::connect(&conn("master"), &Secret::new(PW.into())).unwrap();
    master.execute("CREATE DATABASE Kopia").unwrap();
    let mut db = Db::connect(&conn("Kopia"), &Secret::new(PW.into())).unwrap();
    let cfg = ApplyConfig {
        connection: ctferry::config::ConnectionString::parse(
            &conn("Kopia"),
            std::path::Path::new("."),
        )
        .unwrap(),
        password: Secret::new(PW.into()),
        secret_keys: vec![d.join("norr.sec.asc")],
        passphrase: None,
        publisher_keys: vec![d.join("region.pub.asc")],
        subscriber: "SE-NORR".into(),
        folder: inbox.clone(),
        sftp: None,
    };
    let publishers = vec![region.public()];
    // Snapshot only first: move the delta aside.
    let delta_path = d.join("delta.ctf.pgp");
    std::fs::rename(&delta.path, &delta_path).unwrap();
    // Seconds one `apply_all` run takes on what is in the inbox.
    let timed_apply = |db: &mut Db| {
        let t0 = Instant::now();
        let mut report = ApplyReport::default();
        caregiver::apply_all(
            &cfg,
            db,
            std::slice::from_ref(&norr_sec),
            &publishers,
            &mut report,
        )
        .unwrap();
        t0.elapsed().as_secs_f64()
    };
    let snap_secs = timed_apply(&mut db);
    std::fs::rename(&delta_path, &delta.path).unwrap();
    let delta_secs = timed_apply(&mut db);

    // The limit: the same rows bulk-inserted with tiberius (ctferry's Db,
    // nothing else) into a fresh table of the same shape, in one
    // transaction, in chunks of 10,000 as apply sends them.
    db.execute("CREATE TABLE dbo.BulkBaseline (Id bigint NOT NULL PRIMARY KEY, BesokId int NOT NULL, Skriven datetime2(7) NOT NULL, Text nvarchar(400) NULL, Vikt decimal(9,3) NULL)").unwrap();
    let types: Vec<_> = schema().columns.iter().map(|c| c.ty).collect();
    let t0 = Instant::now();
    db.execute("BEGIN TRANSACTION").unwrap();
    let mut chunk = Vec::with_capacity(10_000);
    for i in 0..n {
        chunk.push(row(i, "v1"));
        if chunk.len() == 10_000 {
            db.bulk_load("dbo.BulkBaseline", &types, &chunk).unwrap();
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        db.bulk_load("dbo.BulkBaseline", &types, &chunk).unwrap();
    }
    db.execute("COMMIT TRANSACTION").unwrap();
    let bulk_secs = t0.elapsed().as_secs_f64();

    // Baseline: one INSERT per row.
    db.execute("CREATE TABLE dbo.Baseline (Id bigint NOT NULL PRIMARY KEY, BesokId int NOT NULL, Skriven datetime2(7) NOT NULL, Text nvarchar(400) NULL, Vikt decimal(9,3) NULL)").unwrap();
    let base_n = 10_000i64;
    let t0 = Instant::now();
    db.execute("BEGIN TRANSACTION").unwrap();
    for i in 0..base_n {
        db.rows(
            "baseline",
            "INSERT INTO dbo.Baseline VALUES (@P1, @P2, '2026-11-25T08:00:00', @P3, 1.5)",
            &[
                ctferry::mssql::client::Param::I64(i),
                ctferry::mssql::client::Param::I64(i / 5),
                ctferry::mssql::client::Param::Str(format!("v1 anteckning {i}")),
            ],
        )
        .unwrap();
    }
    db.execute("COMMIT TRANSACTION").unwrap();
    let base_secs = t0.elapsed().as_secs_f64();

    // Round trips of ctferry apply per 10,000-row chunk of a delta: SELECT
    // TOP 0 (tiberius reads the metadata), INSERT BULK, the bulk-load
    // message, and one batch (DELETE … JOIN; INSERT … SELECT; TRUNCATE): 4;
    // of a snapshot, straight into its table: 3.
    let per_1000 = 4.0 / 10.0;
    println!(
        "snapshot: {n} rows in {snap_secs:.2} s = {:.0} rows/s",
        n as f64 / snap_secs
    );
    println!(
        "delta: {delta_n} changes in {delta_secs:.2} s = {:.0} rows/s",
        delta_n as f64 / delta_secs
    );
    println!(
        "round trips per 1,000 rows: delta {per_1000:.1} (4 per 10,000-row chunk), snapshot 0.3 (3) + a few per package"
    );
    println!(
        "limit, bare bulk insert of the same rows: {n} rows in {bulk_secs:.2} s = {:.0} rows/s; snapshot apply / bulk insert = {:.2}x",
        n as f64 / bulk_secs,
        bulk_secs / snap_secs
    );
    println!("baseline, one INSERT per row: {base_n} rows in {base_secs:.2} s = {:.0} rows/s, 1,000 round trips per 1,000 rows", base_n as f64 / base_secs);
    sim.shutdown();
}
