//! `CycleReport`: what one publisher cycle did, for the command line's
//! summary and log line (`ctferry once`, `run`, `snapshot`).

use crate::publisher::state::PackageRecord;
use std::collections::BTreeMap;

/// What a cycle did.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub version: i64,
    pub previous: Option<i64>,
    pub changes_read: u64,
    /// Changes staged per caregiver.
    pub routed: BTreeMap<String, u64>,
    /// Caregivers that received a snapshot, and why.
    pub snapshots: Vec<(String, String)>,
    /// Caregivers whose snapshot continues at the next cycle (its steps
    /// had this cycle's time), with how far it has come.
    pub snapshots_continuing: Vec<(String, String)>,
    /// Tables re-sent whole to the caregivers that receive changes (their
    /// change history was lost), and why.
    pub resent: Vec<(String, String)>,
    /// Caregivers whose partition keys changed in the configuration, and
    /// how (their rows moved in this cycle, no new epoch).
    pub rekeyed: Vec<(String, String)>,
    /// Tables whose shape changed, or that were added or removed, and
    /// what the copies get (their next deltas carry the table change).
    pub reshaped: Vec<(String, String)>,
    /// Columns new at the source and held back (not published until
    /// decided), per table.
    pub held: Vec<(String, Vec<String>)>,
    pub packages: Vec<PackageRecord>,
    pub delivered: usize,
    /// Subscribers whose delivery failed this cycle, with the error.
    pub delivery_failures: Vec<(String, String)>,
    /// Subscribers waiting out a delivery backoff.
    pub delivery_waiting: Vec<String>,
    /// Subscribers that got no package because their key cannot be used
    /// (revoked, expired), with why.
    pub key_problems: Vec<(String, String)>,
    /// Statements sent to the source.
    pub statements: u64,
    pub duration_ms: u64,
}
