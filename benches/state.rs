//! Space the publisher's sled state takes per million owned rows.
//!
//!     cargo bench --bench state
//!
//! Writes ownership-index entries for 1,000,000 rows (int keys, as the
//! publisher encodes them, owned by 300 caregivers in turn) in commits of
//! CTFERRY_BENCH_BATCH (10,000) entries through `State::write_owners`,
//! flushing each as the publisher does, then reports the folder's size on
//! disk (bytes per owned row; the goal is at most 48) and the process's
//! peak RSS; then stages one
//! delta entry per row for one subscriber (a 120-byte row each) and reports
//! again. Baseline in the same run: the raw bytes of the keys and values.

use ctferry::publisher::state::{Changes, RowId, State};

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn main() {
    let rows: u64 = std::env::var("CTFERRY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch: usize = std::env::var("CTFERRY_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let raw_index;
    let raw_stage;
    {
        let state = State::open(dir.path()).unwrap();
        let mut raw = 0u64;
        let mut owners = Vec::new();
        for i in 0..rows {
            // The publisher's key encoding: a CBOR array of the key values.
            let mut e = ctferry::format::cbor::Encoder::new();
            e.array(1);
            e.int(i as i64);
            owners.push((
                RowId::new("dbo.Journalanteckning", &e.buf),
                Some(format!("SE2321000016-{:04}", i % 300)),
            ));
            raw += e.buf.len() as u64 + 24 + 17;
            if owners.len() >= batch {
                let mut c = Changes::default();
                state
                    .write_owners(std::mem::take(&mut owners), &mut c)
                    .unwrap();
                state.commit(c).unwrap();
            }
        }
        let mut c = Changes::default();
        state.write_owners(owners, &mut c).unwrap();
        state.commit(c).unwrap();
        raw_index = raw;
        let index_secs = t0.elapsed().as_secs_f64();
        let after_index = dir_size(dir.path());
        let mut raw = 0u64;
        let mut c = Changes::default();
        let row = vec![7u8; 120];
        for i in 0..rows {
            let mut e = ctferry::format::cbor::Encoder::new();
            e.array(1);
            e.int(i as i64);
            c.stage(
                "SE2321000016-A1B2",
                "dbo.Journalanteckning",
                &e.buf,
                row.clone(),
            );
            raw += e.buf.len() as u64 + 42 + 120;
            if c.len() >= batch {
                state.commit(std::mem::take(&mut c)).unwrap();
            }
        }
        state.commit(c).unwrap();
        raw_stage = raw;
        let after_stage = dir_size(dir.path());
        let per_m = |b: u64| b as f64 / (1 << 20) as f64 * 1_000_000.0 / rows as f64;
        println!("rows: {rows}, {batch} per commit");
        println!("ownership index: {:.1} MiB on disk per million rows = {:.1} bytes per owned row (raw keys+values {:.1} MiB), written in {index_secs:.1} s", per_m(after_index), after_index as f64 / rows as f64, per_m(raw_index));
        println!(
            "plus one staged 120-byte row each: {:.1} MiB on disk per million rows (raw {:.1} MiB)",
            per_m(after_stage - after_index),
            per_m(raw_stage)
        );
        println!(
            "sled reports size_on_disk {:.1} MiB",
            state.size_on_disk() as f64 / 1048576.0
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        println!(
            "peak RSS of this process: {}",
            l.trim_start_matches("VmHWM:").trim()
        );
    }
}
