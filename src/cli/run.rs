//! `ctferry run`: cycles until a signal; a failed cycle is logged and the
//! next one tried after the pause (it reconnects). After every cycle it
//! writes the status file that `ctferry status` reads meanwhile
//! (`ctferry::publisher::monitor`), and with `--metrics` serves it.

use super::report::print_cycle;
use super::signals;
use anyhow::{Context, Result};
use ctferry::mssql::client::Db;
use ctferry::publisher::monitor::{self, LastCycle, Snapshot};
use ctferry::publisher::{status, Publisher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub fn run(config: &Path, every: u64, metrics: Option<SocketAddr>) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    let mut p = Publisher::open(&cfg)?;
    // A large snapshot is written over many cycles, an interval of steps
    // each, so the other caregivers' changes keep flowing; a signal lets
    // the step under way finish.
    p.limit_snapshot_steps(
        Some(std::time::Duration::from_secs(every.max(1))),
        Some(&signals::STOP),
    );
    let shared: Arc<Mutex<Option<Snapshot>>> = Arc::new(Mutex::new(None));
    if let Some(addr) = metrics {
        super::metrics::serve(addr, Arc::new(cfg.clone()), shared.clone())
            .with_context(|| format!("--metrics {addr}"))?;
    }
    signals::stop_on_signals();
    let mut snap = Snapshot {
        written_at: ctferry::time::now_text(),
        every_seconds: every,
        pid: std::process::id(),
        cycles: 0,
        cycle_failures: 0,
        last_cycle: None,
        last_success_at: None,
        status: status::status(&cfg, &p.state, ctferry::time::now())?,
    };
    publish(&cfg.publisher.state, &snap, &shared);
    loop {
        let started = std::time::Instant::now();
        let r = Db::connect(&cfg.source.connection, &cfg.source.password)
            .map_err(anyhow::Error::from)
            .and_then(|mut db| Ok(p.once(&mut db, false)?));
        let ended_at = ctferry::time::now_text();
        snap.cycles += 1;
        snap.last_cycle = Some(match &r {
            Ok(r) => {
                print_cycle(r);
                snap.last_success_at = Some(ended_at.clone());
                LastCycle {
                    ended_at,
                    ok: true,
                    duration_ms: r.duration_ms,
                    changes_read: r.changes_read,
                    rows_routed: r.routed.values().sum(),
                    packages: r.packages.len() as u64,
                    error: None,
                }
            }
            Err(e) => {
                let text = super::error_text(e);
                tracing::error!(error = %text, "cycle failed");
                snap.cycle_failures += 1;
                LastCycle {
                    ended_at,
                    ok: false,
                    duration_ms: started.elapsed().as_millis() as u64,
                    changes_read: 0,
                    rows_routed: 0,
                    packages: 0,
                    error: Some(text),
                }
            }
        });
        match status::status(&cfg, &p.state, ctferry::time::now()) {
            Ok(s) => snap.status = s,
            Err(e) => tracing::error!(error = %e, "reading the status for monitoring failed"),
        }
        snap.written_at = ctferry::time::now_text();
        publish(&cfg.publisher.state, &snap, &shared);
        if !signals::pause(every) {
            tracing::info!("stopped by a signal after a complete cycle");
            return Ok(());
        }
    }
}

/// Hands the snapshot to the metrics endpoint and writes the status file
/// (a failure to write it is logged; the cycles go on).
fn publish(state: &Path, snap: &Snapshot, shared: &Mutex<Option<Snapshot>>) {
    *shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
    if let Err(e) = monitor::write(state, snap) {
        tracing::error!(error = %e, file = %monitor::path(state).display(), "writing the status file failed; `ctferry status` shows an older status until it works again");
    }
}
