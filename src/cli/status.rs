//! `ctferry status`: one row per caregiver (text or JSON); exit 1 when one
//! is stale. The rules are `ctferry::publisher::status`.

use anyhow::{bail, Result};
use ctferry::config::Pins;
use ctferry::publisher::monitor;
use ctferry::publisher::state::{State, StateError};
use ctferry::publisher::status::{self, SubscriberStatus};
use std::path::Path;

/// A number, or `-` when there is none.
fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn print_row(o: &SubscriberStatus) {
    println!(
        "{:<22} {:>5} {:>6} {:>8} {:>6} {:>7} {:>9} {:>7}  {}",
        o.subscriber,
        o.epoch,
        o.last_sequence,
        num(o.version),
        num(o.lag_versions),
        o.staged,
        num(o.delivered_sequence),
        o.undelivered,
        o.last_package_at.as_deref().unwrap_or("-"),
    );
    match (&o.copy_as_of, o.lag_seconds) {
        (Some(t), Some(l)) => println!("  copy shows the source as of {t} ({l} s ago)"),
        _ => println!("  no copy yet"),
    }
    println!("  deliver to {}", o.deliver_to);
    if let Some(e) = &o.last_error {
        let state = if o.delivery_failures > 0 {
            "failing"
        } else {
            "recovered"
        };
        println!(
            "  last delivery error ({}, {state}): {e}",
            o.last_error_at.as_deref().unwrap_or("")
        );
    }
    if let Some(t) = &o.next_attempt_at {
        println!("  next delivery try at {t}");
    }
    if let Some(r) = &o.stale {
        println!("  STALE: {r}");
    }
}

pub fn run(config: &Path, json: bool) -> Result<()> {
    let cfg = ctferry::config::load_with(config, Pins::Optional)?;
    super::require_state(&cfg.publisher.state)?;
    let now = ctferry::time::now();
    let report = match State::open(&cfg.publisher.state) {
        Ok(state) => status::status(&cfg, &state, now)?,
        // `ctferry run` holds the state: use what it wrote after its last cycle.
        Err(StateError::Locked { .. }) => {
            let Some(snap) = monitor::read(&cfg.publisher.state)? else {
                bail!(
                    "the state {} is in use by a running publisher that has not written its status yet ({}); try again after its first cycle",
                    cfg.publisher.state.display(),
                    monitor::path(&cfg.publisher.state).display()
                );
            };
            if !json {
                let last = snap.last_cycle.as_ref();
                println!(
                    "from the running publisher (pid {}), status of {} ({} s ago); {} cycle(s), {} failed; last cycle {}",
                    snap.pid,
                    snap.written_at,
                    monitor::written_ago(&snap, now),
                    snap.cycles,
                    snap.cycle_failures,
                    match last {
                        Some(c) if c.ok => format!("ok at {}", c.ended_at),
                        Some(c) => format!(
                            "FAILED at {}: {}",
                            c.ended_at,
                            c.error.as_deref().unwrap_or("")
                        ),
                        None => "none yet".into(),
                    }
                );
            }
            monitor::current(&snap, &cfg, now)
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "source version read: {}",
            report
                .watermark
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(never)".into())
        );
        println!(
            "{:<22} {:>5} {:>6} {:>8} {:>6} {:>7} {:>9} {:>7}  last package",
            "subscriber", "epoch", "seq", "version", "lag v", "staged", "delivered", "backlog",
        );
        for o in &report.subscribers {
            print_row(o);
        }
        for o in &report.subscribers {
            if let Some(p) = &o.snapshot_in_progress {
                println!("  {}: snapshot being written ({p})", o.subscriber);
            }
            for c in &o.table_changes {
                println!(
                    "  {}: table change waiting for its next package: {c}",
                    o.subscriber
                );
            }
        }
        for h in &report.held {
            println!(
                "held back (not published): {} of {}; `ctferry schema accept -c {} --table {}` publishes them",
                h.columns.join(", "),
                h.table,
                config.display(),
                h.table
            );
        }
    }
    let stale = report.stale();
    if !stale.is_empty() {
        bail!("{} caregiver(s) stale: {}", stale.len(), stale.join(", "));
    }
    Ok(())
}
