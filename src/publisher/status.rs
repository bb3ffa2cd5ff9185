//! `ctferry status`: per caregiver, where its copy stands and whether it is
//! stale, computed from the publisher's state (read only) and returned as
//! typed rows; the command line only prints them.
//!
//! The rules, in one place:
//! - **stale**: no snapshot delivered yet, a new snapshot pending, or work
//!   waiting (staged changes or undelivered packages) while the last package
//!   is older than twice the caregiver's interval;
//! - **lag**: how old the source state is that the caregiver's copy shows
//!   once it applied what was delivered. With nothing staged or waiting that
//!   is the last cycle's read ("data as of" the watermark); otherwise the
//!   last delivered package's "data as of".

use crate::config::{Config, Deliver, SubscriberConfig};
use crate::publisher::deliver::waiting_until;
use crate::publisher::state::{DeliveryStatus, State, StateError, SubscriberState};
use crate::time::{self, Time};
use serde::Serialize;
use std::time::Duration;

/// The whole report: the source version last read, and one row per caregiver.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Status {
    pub watermark: Option<i64>,
    pub subscribers: Vec<SubscriberStatus>,
    /// Columns new at the source and held back (not published until
    /// decided: `ctferry schema accept`, mask or exclude), per table.
    #[serde(default)]
    pub held: Vec<HeldColumns>,
}

/// A table's columns held back.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct HeldColumns {
    pub table: String,
    pub columns: Vec<String>,
}

/// One caregiver's row (the JSON of `ctferry status --json`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SubscriberStatus {
    /// Why the caregiver is stale, or `None`.
    pub stale: Option<String>,
    pub lag_seconds: Option<i64>,
    pub copy_as_of: Option<String>,
    pub subscriber: String,
    pub name: String,
    pub epoch: u64,
    pub last_sequence: u64,
    pub version: Option<i64>,
    pub source_version: Option<i64>,
    pub lag_versions: Option<i64>,
    pub staged: u64,
    pub last_package: Option<String>,
    pub last_package_at: Option<String>,
    pub undelivered: usize,
    pub delivered_sequence: Option<u64>,
    pub delivered_at: Option<String>,
    pub delivery_failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub deliver_to: String,
    pub needs_snapshot: Option<String>,
    /// Table changes waiting for this caregiver's next package (`dbo.X:
    /// why`; "re-send in progress" when the table's rows travel again).
    #[serde(default)]
    pub table_changes: Vec<String>,
    /// A snapshot being written in steps: why, and how far it has come.
    #[serde(default)]
    pub snapshot_in_progress: Option<String>,
}

impl Status {
    /// The caregivers that are stale.
    pub fn stale(&self) -> Vec<&str> {
        self.subscribers
            .iter()
            .filter(|s| s.stale.is_some())
            .map(|s| s.subscriber.as_str())
            .collect()
    }
}

/// Why a caregiver is stale at `now`, or `None` (see the module doc).
pub fn stale_reason(
    st: &SubscriberState,
    work_waiting: bool,
    interval: Duration,
    now: Time,
) -> Option<String> {
    let age_ok = st
        .last_package_at
        .as_deref()
        .and_then(time::parse)
        .and_then(|t| now.signed_duration_since(t).to_std().ok())
        .map(|age| age <= interval * 2)
        .unwrap_or(false);
    if let Some(p) = &st.snapshot {
        Some(format!(
            "its snapshot ({}) is being written: {}",
            p.why,
            snapshot_progress(p)
        ))
    } else if st.epoch == 0 {
        Some("no snapshot delivered yet".to_string())
    } else if let Some(r) = &st.needs_snapshot {
        Some(format!("a new snapshot is pending ({r})"))
    } else if work_waiting && !age_ok {
        Some(format!(
            "changes have waited longer than twice its interval ({} s)",
            interval.as_secs()
        ))
    } else {
        None
    }
}

/// How far a snapshot under way has come, as shown to the operator.
pub fn snapshot_progress(p: &crate::publisher::state::SnapshotProgress) -> String {
    format!(
        "{} rows in {} part(s) since {}, reading {} (table {} of {})",
        p.rows,
        p.part.saturating_sub(1),
        p.started_at,
        p.tables.get(p.table).map(String::as_str).unwrap_or("-"),
        (p.table + 1).min(p.tables.len()),
        p.tables.len()
    )
}

/// Where a caregiver's packages go, as shown to the operator.
pub fn destination(s: &SubscriberConfig) -> String {
    match &s.deliver {
        Deliver::Folder(d) => d.display().to_string(),
        Deliver::Sftp(t) => t.url.to_string(),
    }
}

/// The status of every configured caregiver at `now`.
pub fn status(cfg: &Config, state: &State, now: Time) -> Result<Status, StateError> {
    let w = state.watermark()?;
    let wt = state.watermark_time()?;
    let mut out = Vec::new();
    for s in &cfg.subscribers {
        let st = state.subscriber(&s.hsa_id)?.unwrap_or_default();
        let undelivered = state.undelivered(&s.hsa_id)?.len();
        let last = state.last_package(&s.hsa_id)?;
        let staged = state.staged_count(&s.hsa_id)?;
        let ds: DeliveryStatus = state.delivery_status(&s.hsa_id)?;
        let table_changes: Vec<String> = state
            .copy_tables(&s.hsa_id)?
            .into_iter()
            .map(|(t, c)| {
                format!(
                    "{t}: {}{}",
                    c.why.join("; "),
                    if c.reload.is_some() {
                        " (re-send in progress)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let waiting = staged > 0 || undelivered > 0 || !table_changes.is_empty();
        let stale = stale_reason(&st, waiting, s.interval, now);
        let as_of = if !waiting && st.epoch > 0 {
            wt.as_deref().and_then(time::parse)
        } else {
            match ds.last_delivered_sequence {
                Some(seq) => state
                    .package(&s.hsa_id, seq)?
                    .and_then(|p| p.data_as_of)
                    .as_deref()
                    .and_then(time::parse),
                None => None,
            }
        };
        out.push(SubscriberStatus {
            stale,
            lag_seconds: as_of.map(|t| (now - t).num_seconds().max(0)),
            copy_as_of: as_of.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            subscriber: s.hsa_id.clone(),
            name: s.name.clone(),
            epoch: st.epoch,
            last_sequence: st.next_sequence.saturating_sub(1),
            version: st.version,
            source_version: w,
            lag_versions: match (w, st.version) {
                (Some(w), Some(v)) => Some(w - v),
                _ => None,
            },
            staged,
            last_package: last.map(|p| p.file),
            last_package_at: st.last_package_at.clone(),
            undelivered,
            delivered_sequence: ds.last_delivered_sequence,
            delivered_at: ds.last_delivered_at.clone(),
            delivery_failures: ds.failures,
            last_error: ds.last_error.clone(),
            last_error_at: ds.last_error_at.clone(),
            next_attempt_at: waiting_until(&ds),
            deliver_to: destination(s),
            needs_snapshot: st.needs_snapshot.clone(),
            table_changes,
            snapshot_in_progress: st
                .snapshot
                .as_ref()
                .map(|p| format!("{}: {}", p.why, snapshot_progress(p))),
        });
    }
    Ok(Status {
        watermark: w,
        subscribers: out,
        held: state
            .held_all()?
            .into_iter()
            .map(|(table, columns)| HeldColumns { table, columns })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> Time {
        time::parse(t).unwrap()
    }

    fn onboarded(last: &str) -> SubscriberState {
        SubscriberState {
            epoch: 1,
            next_sequence: 3,
            last_package_at: Some(last.into()),
            ..Default::default()
        }
    }

    #[test]
    fn stale_rules() {
        let now = at("2026-11-27T12:00:00Z");
        let iv = Duration::from_secs(15 * 60);
        let never = SubscriberState::default();
        assert_eq!(
            stale_reason(&never, false, iv, now).as_deref(),
            Some("no snapshot delivered yet")
        );
        let mut writing = onboarded("2026-11-27T11:59:00Z");
        writing.snapshot = Some(crate::publisher::state::SnapshotProgress {
            why: "onboarding".into(),
            started_at: "2026-11-27T11:58:00Z".into(),
            tables: vec!["dbo.A".into(), "dbo.B".into()],
            table: 1,
            part: 4,
            rows: 1200,
            ..Default::default()
        });
        assert_eq!(
            stale_reason(&writing, false, iv, now).as_deref(),
            Some("its snapshot (onboarding) is being written: 1200 rows in 3 part(s) since 2026-11-27T11:58:00Z, reading dbo.B (table 2 of 2)")
        );
        let mut pending = onboarded("2026-11-27T11:59:00Z");
        pending.needs_snapshot = Some("new keys".into());
        assert_eq!(
            stale_reason(&pending, false, iv, now).as_deref(),
            Some("a new snapshot is pending (new keys)")
        );
        // Old last package but nothing waiting: nothing to deliver, not stale.
        let idle = onboarded("2026-11-26T12:00:00Z");
        assert_eq!(stale_reason(&idle, false, iv, now), None);
        // Work waiting: stale only beyond twice the interval (30 min).
        assert_eq!(
            stale_reason(&onboarded("2026-11-27T11:31:00Z"), true, iv, now),
            None
        );
        assert_eq!(
            stale_reason(&onboarded("2026-11-27T11:29:00Z"), true, iv, now).as_deref(),
            Some("changes have waited longer than twice its interval (900 s)")
        );
        // An unreadable time counts as too old when work waits.
        assert!(stale_reason(&onboarded("garbage"), true, iv, now).is_some());
    }
}
