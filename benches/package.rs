//! Packaging speed: ctferry's package writer against the shell pipeline
//! `zstd -3 | gpg --sign --encrypt` on the same bytes, in the same run.
//!
//!     cargo bench --bench package            # 200 MB of rows
//!     CTFERRY_BENCH_MB=50 cargo bench --bench package
//!
//! ctferry encodes ~200 MB of realistic rows (CBOR), compresses (zstd 3),
//! signs and encrypts (OpenPGP) into packages of the default part size.
//! The pipeline gets the very same uncompressed bytes (the plaintext of the
//! packages, concatenated) from a file, and its output goes to a file too.
//! gpg runs twice: as typed (with its default compression) and with
//! `--compress-algo none` (as ctferry does). Results go to stdout; the
//! figures in docs/BENCHMARKS.md come from here.

use ctferry::format::crypto::{self, PublicKey, SecretKey};
use ctferry::format::package::{self, Kind, Manifest, PackageWriter, TableSchema, WriterConfig};
use ctferry::format::value::{Decimal, Value};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[path = "../tests/support/fixtures.rs"]
mod fixtures;
use fixtures::Rng;

const WORDS: &[&str] = &[
    "patienten",
    "besök",
    "remiss",
    "blodtryck",
    "normalt",
    "uppföljning",
    "om",
    "två",
    "veckor",
    "recept",
    "förnyat",
    "smärta",
    "i",
    "knä",
    "vänster",
    "ingen",
    "feber",
    "lab",
    "prover",
    "tagna",
    "kontakt",
    "med",
    "anhörig",
    "journal",
    "anteckning",
    "bedömning",
    "åtgärd",
    "plan",
];

fn note(rng: &mut Rng) -> String {
    let n = 12 + (rng.next() % 24) as usize;
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
    }
    s
}

fn schema() -> TableSchema {
    fixtures::schema(
        "dbo.Journalanteckning",
        &[
            ("Id", "bigint", false),
            ("BesokId", "bigint", false),
            ("PatientGuid", "uniqueidentifier", false),
            ("Skriven", "datetime2(7)", false),
            ("Text", "nvarchar(max)", true),
            ("Vikt", "decimal(9,3)", true),
            ("Signerad", "bit", false),
        ],
    )
}

fn gpg(home: &Path, args: &[&str]) -> std::process::Output {
    fixtures::gpg_command(home)
        .args(["--passphrase", ""])
        .args(args)
        .output()
        .expect("gpg")
}

fn main() {
    let mb: usize = std::env::var("CTFERRY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let target = mb << 20;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = fixtures::private_tmp("gpgb");
    for name in ["region", "norr"] {
        let (public, secret) =
            crypto::generate(name, &format!("{name}@example.invalid"), None).unwrap();
        std::fs::write(d.join(format!("{name}.pub.asc")), public).unwrap();
        std::fs::write(d.join(format!("{name}.sec.asc")), secret).unwrap();
    }
    let region = SecretKey::load(&d.join("region.sec.asc"), None).unwrap();
    let norr = PublicKey::load(&d.join("norr.pub.asc")).unwrap();
    gpg(
        home.path(),
        &["--import", d.join("region.sec.asc").to_str().unwrap()],
    );
    gpg(
        home.path(),
        &["--import", d.join("norr.pub.asc").to_str().unwrap()],
    );

    // Generate the rows first (not timed): the benchmark measures packaging.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let when = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut approx = 0usize;
    let mut id = 0i64;
    while approx < target {
        id += 1;
        let text = note(&mut rng);
        approx += text.len() + 60;
        let mut g = [0u8; 16];
        g[..8].copy_from_slice(&rng.next().to_le_bytes());
        g[8..].copy_from_slice(&rng.next().to_le_bytes());
        rows.push(vec![
            Value::Int(id),
            Value::Int(id / 7),
            Value::Guid(g),
            Value::DateTime(when + chrono::Duration::seconds(id)),
            Value::Text(text),
            Value::Decimal(Decimal {
                mantissa: (rng.next() % 200_000) as i128,
                scale: 3,
            }),
            Value::Bool(id % 3 == 0),
        ]);
    }
    let rss_before = peak_rss_mb();

    // ctferry
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let t0 = Instant::now();
    let template = Manifest {
        publisher: "region-pmo".into(),
        subscriber: "SE2321000016-A1B2".into(),
        epoch: 1,
        sequence: 1,
        kind: Kind::Snapshot,
        part: 1,
        last_part: true,
        previous_sha256: None,
        ct_from: None,
        ct_to: 1,
        source_commit_time: None,
        created_at: "2026-11-25T08:00:00Z".into(),
        tables: vec![],
    };
    let mut w = PackageWriter::new(
        WriterConfig {
            out_dir: out.clone(),
            signer: &region,
            recipient: &norr,
            part_bytes: package::DEFAULT_PART_BYTES,
            zstd_level: 3,
            zstd_workers: package::default_zstd_workers(),
        },
        template,
    );
    let t = w.add_table(schema()).unwrap();
    for r in &rows {
        w.upsert(t, r).unwrap();
    }
    let written = w.finish().unwrap();
    let ct_secs = t0.elapsed().as_secs_f64();
    let ct_bytes: u64 = written.iter().map(|w| w.bytes).sum();
    drop(rows);

    // The same plaintext for the pipeline: decrypt our packages (not timed).
    let norr_sec = SecretKey::load(&d.join("norr.sec.asc"), None).unwrap();
    let plain_path = d.join("plain.cbor");
    let mut plain = std::fs::File::create(&plain_path).unwrap();
    let mut plain_bytes = 0u64;
    for wr in &written {
        let f = std::io::BufReader::new(std::fs::File::open(&wr.path).unwrap());
        let mut o = crypto::open(f, &norr_sec, &[region.public()]).unwrap();
        let mut zst = Vec::new();
        o.read_to_end(&mut zst).unwrap();
        o.finish().unwrap();
        let p = zstd::decode_all(&zst[..]).unwrap();
        plain_bytes += p.len() as u64;
        std::io::Write::write_all(&mut plain, &p).unwrap();
    }
    plain.sync_all().unwrap();
    drop(plain);

    let pipeline = |extra: &str| -> (f64, u64) {
        let outp = d.join("pipeline.gpg");
        let t0 = Instant::now();
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; zstd -3 -q -c {plain} | gpg --homedir {home} --batch --yes --no-tty --pinentry-mode loopback --passphrase '' --trust-model always {extra} --sign --encrypt --local-user region@example.invalid --recipient norr@example.invalid --output {out}",
                plain = plain_path.display(),
                home = home.path().display(),
                out = outp.display(),
            ))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the pipeline failed");
        let secs = t0.elapsed().as_secs_f64();
        (secs, std::fs::metadata(&outp).unwrap().len())
    };
    let (gpg_default_secs, gpg_default_bytes) = pipeline("");
    let (gpg_none_secs, gpg_none_bytes) = pipeline("--compress-algo none");
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home.path())
        .args(["--kill", "all"])
        .status();

    let mbs = |secs: f64| plain_bytes as f64 / (1 << 20) as f64 / secs;
    println!(
        "plaintext: {:.1} MiB of CBOR rows in {} package(s)",
        plain_bytes as f64 / (1 << 20) as f64,
        written.len()
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12}",
        "", "seconds", "MiB/s", "output MiB"
    );
    println!(
        "{:<44} {:>8.2} {:>10.1} {:>12.1}",
        "ctferry (zstd 3 + rpgp sign+encrypt)",
        ct_secs,
        mbs(ct_secs),
        ct_bytes as f64 / 1048576.0
    );
    println!(
        "{:<44} {:>8.2} {:>10.1} {:>12.1}",
        "zstd -3 | gpg --sign --encrypt",
        gpg_default_secs,
        mbs(gpg_default_secs),
        gpg_default_bytes as f64 / 1048576.0
    );
    println!(
        "{:<44} {:>8.2} {:>10.1} {:>12.1}",
        "zstd -3 | gpg --compress-algo none ...",
        gpg_none_secs,
        mbs(gpg_none_secs),
        gpg_none_bytes as f64 / 1048576.0
    );
    println!(
        "ctferry / pipeline speed: {:.2}x (gpg default), {:.2}x (gpg without compression)",
        gpg_default_secs / ct_secs,
        gpg_none_secs / ct_secs
    );
    println!(
        "peak RSS: {:.0} MiB before packaging (rows held by the benchmark), {:.0} MiB after",
        rss_before,
        peak_rss_mb()
    );
}
