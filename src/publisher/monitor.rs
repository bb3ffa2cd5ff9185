//! What `ctferry run` tells the world while it runs: after every cycle it
//! replaces `<state>/status.json` (the status of every caregiver, and how
//! the cycles went), and with `--metrics` it serves the same as Prometheus
//! text and a `/health` check. `ctferry status` reads the file when `run`
//! holds the state's lock.
//!
//! Why a file: sled allows one process per state folder, so nothing else
//! can open the state while `run` runs. The file is written whole to a
//! temporary name and renamed (a reader never sees half of it), 0600 like
//! everything in the state. It holds no row data: HSA ids, counts, times,
//! file names and the last delivery error.
//!
//! A status read later than it was written is brought up to now
//! (`current`): every lag grows by the file's age, staleness is judged
//! again, and a publisher whose last good cycle is older than twice a
//! caregiver's interval (or twice its own `--every`) makes that caregiver
//! stale, because its copy stops moving, whatever the reason.

use crate::config::Config;
use crate::publisher::state::SubscriberState;
use crate::publisher::status::{stale_reason, Status};
use crate::time::{self, Time};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file's name inside the state folder.
pub const FILE: &str = "status.json";

/// Where the status file of a state folder is.
pub fn path(state: &Path) -> PathBuf {
    state.join(FILE)
}

/// How the last cycle went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastCycle {
    pub ended_at: String,
    pub ok: bool,
    pub duration_ms: u64,
    /// Changes read from the source (0 for a failed cycle).
    pub changes_read: u64,
    /// Changes staged for caregivers, all together.
    pub rows_routed: u64,
    pub packages: u64,
    /// Why the cycle failed.
    pub error: Option<String>,
}

/// What `run` writes after each cycle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub written_at: String,
    /// `run --every`, in seconds.
    pub every_seconds: u64,
    pub pid: u32,
    pub cycles: u64,
    pub cycle_failures: u64,
    pub last_cycle: Option<LastCycle>,
    pub last_success_at: Option<String>,
    pub status: Status,
}

/// Writes the snapshot: a temporary file, synced, renamed over the old one.
pub fn write(state: &Path, s: &Snapshot) -> io::Result<()> {
    let tmp = state.join(format!("{FILE}.tmp"));
    let mut f = crate::private::create_new(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(s).map_err(io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(state))
}

/// The snapshot a running publisher wrote, if any.
pub fn read(state: &Path) -> io::Result<Option<Snapshot>> {
    let p = path(state);
    let text = match crate::private::read_small(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a ctferry status ({e})", p.display()),
        )
    })
}

fn age(t: Option<&str>, now: Time) -> Option<i64> {
    t.and_then(time::parse)
        .map(|t| (now - t).num_seconds().max(0))
}

/// The snapshot's status as of `now` (see the module doc).
pub fn current(s: &Snapshot, cfg: &Config, now: Time) -> Status {
    let since_written = age(Some(&s.written_at), now).unwrap_or(0);
    let since_success = age(s.last_success_at.as_deref(), now);
    let mut status = s.status.clone();
    for row in &mut status.subscribers {
        row.lag_seconds = row.lag_seconds.map(|l| l + since_written);
        let Some(sub) = cfg.subscribers.iter().find(|c| c.hsa_id == row.subscriber) else {
            continue;
        };
        let st = SubscriberState {
            epoch: row.epoch,
            needs_snapshot: row.needs_snapshot.clone(),
            last_package_at: row.last_package_at.clone(),
            ..Default::default()
        };
        let waiting = row.staged > 0 || row.undelivered > 0;
        row.stale = stale_reason(&st, waiting, sub.interval, now);
        let limit = 2 * sub.interval.as_secs().max(s.every_seconds) as i64;
        if row.stale.is_none() {
            row.stale = match since_success {
                None => Some("the publisher has not completed a cycle yet".into()),
                Some(a) if a > limit => Some(format!(
                    "the publisher's last good cycle was {a} s ago (more than twice the interval, {limit} s): its copy is not moving"
                )),
                _ => None,
            };
        }
    }
    status
}

/// Whether every caregiver is fresh: Ok with a line, or the reasons.
pub fn health(s: &Snapshot, cfg: &Config, now: Time) -> Result<String, String> {
    let status = current(s, cfg, now);
    let stale: Vec<String> = status
        .subscribers
        .iter()
        .filter_map(|r| {
            r.stale
                .as_ref()
                .map(|why| format!("{}: {why}", r.subscriber))
        })
        .collect();
    if stale.is_empty() {
        Ok(format!(
            "ok: {} caregiver(s) fresh, last cycle {}\n",
            status.subscribers.len(),
            s.last_cycle
                .as_ref()
                .map(|c| c.ended_at.as_str())
                .unwrap_or("-")
        ))
    } else {
        Err(format!("stale: {}\n", stale.join("; ")))
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition format (version 0.0.4) of the snapshot
/// as of `now`.
pub fn prometheus(s: &Snapshot, cfg: &Config, now: Time) -> String {
    let status = current(s, cfg, now);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, values: Vec<(Option<&str>, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (sub, v) in values {
            match sub {
                Some(h) => out.push_str(&format!("{name}{{subscriber=\"{}\"}} {v}\n", label(h))),
                None => out.push_str(&format!("{name} {v}\n")),
            }
        }
    };
    let per = |f: &dyn Fn(&crate::publisher::status::SubscriberStatus) -> Option<f64>| {
        status
            .subscribers
            .iter()
            .filter_map(|r| f(r).map(|v| (Some(r.subscriber.as_str()), v)))
            .collect::<Vec<_>>()
    };
    family(
        "ctferry_caregiver_lag_seconds",
        "gauge",
        "How old the source state is that the caregiver's copy shows once it applied what was delivered.",
        per(&|r| r.lag_seconds.map(|l| l as f64)),
    );
    family(
        "ctferry_caregiver_stale",
        "gauge",
        "1 when the caregiver is stale (see ctferry status for why).",
        per(&|r| Some(r.stale.is_some() as u8 as f64)),
    );
    family(
        "ctferry_caregiver_backlog_packages",
        "gauge",
        "Packages made but not yet delivered to the caregiver's area.",
        per(&|r| Some(r.undelivered as f64)),
    );
    family(
        "ctferry_caregiver_staged_changes",
        "gauge",
        "Changes staged for the caregiver's next package.",
        per(&|r| Some(r.staged as f64)),
    );
    family(
        "ctferry_caregiver_delivery_failures",
        "gauge",
        "Consecutive failed deliveries to the caregiver (0 after a success).",
        per(&|r| Some(r.delivery_failures as f64)),
    );
    family(
        "ctferry_caregiver_last_sequence",
        "gauge",
        "Sequence number of the caregiver's last package.",
        per(&|r| Some(r.last_sequence as f64)),
    );
    let last = s.last_cycle.as_ref();
    family(
        "ctferry_last_cycle_duration_seconds",
        "gauge",
        "Duration of the last cycle.",
        vec![(
            None,
            last.map(|c| c.duration_ms as f64 / 1000.0).unwrap_or(0.0),
        )],
    );
    family(
        "ctferry_last_cycle_changes_read",
        "gauge",
        "Changes read from the source in the last cycle.",
        vec![(None, last.map(|c| c.changes_read as f64).unwrap_or(0.0))],
    );
    family(
        "ctferry_last_cycle_rows_routed",
        "gauge",
        "Changes staged for caregivers in the last cycle, all caregivers together.",
        vec![(None, last.map(|c| c.rows_routed as f64).unwrap_or(0.0))],
    );
    family(
        "ctferry_last_cycle_success",
        "gauge",
        "1 when the last cycle succeeded.",
        vec![(None, last.map(|c| c.ok as u8 as f64).unwrap_or(0.0))],
    );
    family(
        "ctferry_last_success_timestamp_seconds",
        "gauge",
        "When the last good cycle ended (Unix time).",
        vec![(
            None,
            s.last_success_at
                .as_deref()
                .and_then(time::parse)
                .map(|t| t.timestamp() as f64)
                .unwrap_or(0.0),
        )],
    );
    family(
        "ctferry_cycles_total",
        "counter",
        "Cycles run since this ctferry run started.",
        vec![(None, s.cycles as f64)],
    );
    family(
        "ctferry_cycle_failures_total",
        "counter",
        "Cycles that failed since this ctferry run started.",
        vec![(None, s.cycle_failures as f64)],
    );
    out
}

/// Seconds since the snapshot was written (for the operator).
pub fn written_ago(s: &Snapshot, now: Time) -> i64 {
    age(Some(&s.written_at), now).unwrap_or(0)
}
