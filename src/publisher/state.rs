//! The publisher's state in sled (docs/ARCHITECTURE.md, "State"), behind a small interface.
//!
//! One sled tree, keys by prefix:
//! - `w`                       the watermark W: every change up to W is staged or packaged
//! - `wt`                      when W was read at the source (UTC, "data as of")
//! - `s/<hsa>`                 a subscriber's record (epoch, sequence, hash chain, ...)
//! - `g/<hsa>\0<table>\0<key>` a staged change (upsert with the row, or delete), compacted by key
//! - `O/<table>\0<first key>`  the ownership index: which subscriber has each row, in
//!   blocks of up to 128 rows with subscribers as numbers (`owner_index`); a
//!   state written with one `o/<table>\0<key>` entry per row is converted at `open`
//! - `sn/<hsa>`, `sN/<number>`, `sn`  a subscriber's number in the ownership index,
//!   the subscriber of a number, the next number; a subscriber's new epoch
//!   retires its number (both entries go; rows under it have no owner and
//!   leave their blocks as the blocks are written: `retire_owner`)
//! - `m/<table>\0<key>`        a membership table's row: the subscribers that hold it (`\0`-separated)
//! - `f/<rule>\0<table>\0<key>` the key a member table's row references through a
//!   membership rule (`<rule>`: `dbo.patient<-dbo.besok(patientid)`), since change
//!   tracking gives only the row's own key
//! - `p/<hsa>\0<seq:020>`      a registered package (outbox record, delivery state)
//! - `a/<time>\0<n>`           the audit log: every disclosure
//! - `d/<hsa>`                 a subscriber's delivery status (failures, backoff, last error)
//! - `l/<hsa>\0<time>\0<seq>`  the delivery log: every delivery and failed try
//! - `u/<hsa>\0<seq:020>`      index: packages not yet delivered (the backlog)
//! - `r/<hsa>\0<seq:020>`      index: delivered packages whose file is still in the outbox
//!
//! The two indexes keep every cycle's work proportional to the backlog, not
//! to the number of packages ever made (a year at 15 minutes is 35,000 per
//! caregiver). `add_package` maintains them; `open` builds them once for a
//! state written before they existed.
//! - `t/<table>`               the columns and key a table was published with (`PublishedSchema`, JSON)
//! - `b/<table>`               the begin version of the table's change tracking
//! - `k/<hsa>\0<table>`        a table of a caregiver's copy whose shape is not (yet) the
//!   published one (`reshape::CopyTable`, JSON): its next delta changes it
//! - `h/<table>`               columns held: new at the source, not published until accepted
//! - `n/<table>`               held columns accepted (`ctferry schema accept`), published next cycle
//! - `x/<table>`               the owner rule the table's index was built with (`owner = ...`)
//!
//! Contract: every change of state is one `commit` (an atomic sled batch)
//! followed by a flush, so that what a commit covers is durable before the
//! caller goes on; sled's own background flush is not relied upon. One
//! process at a time: sled locks the folder, and a second publisher gets a
//! clear error. Staged rows are already masked; no secret is ever stored.

use crate::format::package::Kind;
use crate::publisher::audit_log;
use crate::publisher::catalog::PublishedSchema;
use crate::publisher::owner_index;
use crate::publisher::reshape::CopyTable;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state folder {path} is in use by another ctferry process (only one publisher may run on a state folder)")]
    Locked { path: PathBuf },
    #[error("state folder {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("state record {key} is unreadable: {message}; the state folder may be damaged")]
    Corrupt { key: String, message: String },
}

/// A subscriber's publishing state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SubscriberState {
    /// 0 until its first snapshot.
    pub epoch: u64,
    /// The next package's sequence number (starts at 1).
    pub next_sequence: u64,
    /// SHA-256 (hex) of its last package file.
    pub last_sha256: Option<String>,
    /// The change-tracking version its copy reaches with the packages so far.
    pub version: Option<i64>,
    /// When its last package was made (RFC 3339).
    pub last_package_at: Option<String>,
    /// Its partition keys when its current epoch began.
    pub keys: Vec<String>,
    /// A new snapshot is needed (expiry, restore, re-enabled tracking, new keys).
    pub needs_snapshot: Option<String>,
    /// The snapshot being written, step by step, if one is (`snapshot`).
    #[serde(default)]
    pub snapshot: Option<SnapshotProgress>,
    /// Its snapshot, now complete, was read in more than one step (at
    /// more than one version): the next cycle compares the membership
    /// rows it holds with the source (`cycle::Publisher::reconcile_held`).
    #[serde(default)]
    pub reconcile: bool,
}

/// How far a caregiver's snapshot has come: it is read in steps, each its
/// own short read at the source and its own package part and state commit,
/// so it resumes at the next step after a restart (`publisher::snapshot`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SnapshotProgress {
    /// Why it is made.
    pub why: String,
    /// The change-tracking version when it began: its packages say the
    /// copy reaches it, and the deltas that follow start there.
    pub version: i64,
    /// When the source was read at `version` ("data as of").
    pub as_of: Option<String>,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// The published tables in reading order, and a digest of their shapes
    /// when it began: a change of either starts the snapshot over.
    pub tables: Vec<String>,
    pub shapes: String,
    /// The table read next (an index into `tables`), and the last key read
    /// in it (encoded; none: from its first row).
    pub table: usize,
    pub after: Option<Vec<u8>>,
    /// The next part's number.
    pub part: u32,
    /// Rows written so far.
    pub rows: u64,
    /// Steps committed so far.
    #[serde(default)]
    pub steps: u32,
    /// Where the caregiver's chain stood when it began (its next sequence,
    /// last hash and version): a snapshot started over takes back its parts.
    pub from_sequence: u64,
    pub from_sha256: Option<String>,
    pub from_version: Option<i64>,
}

/// A package registered in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PackageRecord {
    pub subscriber: String,
    pub sequence: u64,
    pub epoch: u64,
    pub kind: Kind,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub ct_from: Option<i64>,
    pub ct_to: i64,
    pub rows: u64,
    pub tables: Vec<(String, u64, u64)>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// When its file was removed from the outbox (after the retention).
    #[serde(default)]
    pub removed_at: Option<String>,
    /// When the source was read for it ("data as of" its `ct_to`).
    #[serde(default)]
    pub data_as_of: Option<String>,
}

/// A subscriber's delivery status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeliveryStatus {
    /// Consecutive failed delivery rounds (0 after a success).
    pub failures: u32,
    /// Not before this time (RFC 3339) will `run` try again.
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_delivered_sequence: Option<u64>,
    pub last_delivered_at: Option<String>,
}

/// One line of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryRecord {
    pub time: String,
    pub subscriber: String,
    pub sequence: u64,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// Tries it took (or took so far, for a failure).
    pub attempts: u32,
    /// `delivered`, `already there` or `failed: <reason>`.
    pub result: String,
}

impl DeliveryRecord {
    /// Whether the file reached the area (`delivered` or `already there`).
    pub fn delivered(&self) -> bool {
        !self.result.starts_with("failed")
    }

    /// The delivery as an audit record (`delivered` or `delivery failed`).
    pub fn to_audit(&self) -> AuditRecord {
        let event = if self.delivered() {
            "delivered"
        } else {
            "delivery failed"
        };
        AuditRecord {
            time: self.time.clone(),
            subscriber: self.subscriber.clone(),
            event: event.into(),
            sequence: Some(self.sequence),
            file: Some(self.file.clone()),
            sha256: Some(self.sha256.clone()),
            tables: vec![],
            detail: Some(format!(
                "{} ({} bytes, attempt {})",
                self.result, self.bytes, self.attempts
            )),
        }
    }
}

/// One audit record: what was disclosed to whom.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub time: String,
    pub subscriber: String,
    pub event: String,
    pub sequence: Option<u64>,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub tables: Vec<(String, u64, u64)>,
    pub detail: Option<String>,
}

pub struct State {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    /// One appender at a time: deliveries to several caregivers commit
    /// from their own threads.
    audit_lock: std::sync::Mutex<()>,
}

/// A staged change's place in the state (to remove it once packaged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageId(Vec<u8>);

/// One staged change of a subscriber: its table and the encoded op
/// (`publisher::stage::Op`).
#[derive(Debug, Clone)]
pub struct Staged {
    pub id: StageId,
    pub table: String,
    pub op: Vec<u8>,
}

/// A set of state changes applied atomically by `State::commit`.
#[derive(Default)]
pub struct Changes {
    batch: sled::Batch,
    n: usize,
    /// Subscriber numbers this commit retires (`State::retire_owner`): a
    /// subscriber whose committed number is among them gets a new one if it
    /// owns rows again.
    retired: HashSet<u32>,
    /// Audit records (JSON) to queue for the audit log at commit.
    audit: Vec<serde_json::Value>,
}

fn stage_prefix(hsa: &str) -> Vec<u8> {
    let mut k = format!("g/{hsa}").into_bytes();
    k.push(0);
    k
}

fn stage_key(hsa: &str, table: &str, key: &[u8]) -> Vec<u8> {
    let mut k = stage_prefix(hsa);
    k.extend_from_slice(table.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// A published row: its table and its encoded key, as `o/<table>\0<key>`
/// (the ownership index's entry for it before the index was kept in
/// blocks; the membership index `m/` and references `f/` are keyed by it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(Vec<u8>);

impl RowId {
    /// The row of `table` whose encoded primary key is `key`.
    pub fn new(table: &str, key: &[u8]) -> RowId {
        let mut k = format!("o/{table}").into_bytes();
        k.push(0);
        k.extend_from_slice(key);
        RowId(k)
    }

    /// The row's table.
    pub fn table(&self) -> &str {
        self.parts().0
    }

    /// The row's encoded key.
    pub fn key(&self) -> &[u8] {
        self.parts().1
    }

    /// The row's table and encoded key.
    fn parts(&self) -> (&str, &[u8]) {
        let rest = &self.0[2..];
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        (
            std::str::from_utf8(&rest[..end]).unwrap_or_default(),
            rest.get(end + 1..).unwrap_or_default(),
        )
    }

    /// The row's key in the membership index (`m/`).
    fn holders_key(&self) -> Vec<u8> {
        let mut k = b"m/".to_vec();
        k.extend_from_slice(&self.0[2..]);
        k
    }
}

/// Where the key a member table's row references through membership rule
/// `rule` is remembered (`f/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefId(Vec<u8>);

impl RefId {
    /// The reference of `row` (of the member table) through `rule`.
    pub fn new(rule: &str, row: &RowId) -> RefId {
        let mut k = format!("f/{rule}").into_bytes();
        k.push(0);
        k.extend_from_slice(&row.0[2..]);
        RefId(k)
    }
}

/// The holders of a membership row as stored: ids joined by `\0`.
fn holders_bytes(set: &std::collections::BTreeSet<String>) -> Vec<u8> {
    let v: Vec<&str> = set.iter().map(String::as_str).collect();
    v.join("\0").into_bytes()
}

fn holders_of(bytes: &[u8]) -> std::collections::BTreeSet<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).to_string())
        .collect()
}

/// Where a `settle_row` row is kept: `z/<hsa>\0<row>`.
fn settle_key(hsa: &str, row: &RowId) -> Vec<u8> {
    let mut k = format!("z/{hsa}").into_bytes();
    k.push(0);
    k.extend_from_slice(&row.0);
    k
}

fn package_key(hsa: &str, seq: u64) -> Vec<u8> {
    let mut k = format!("p/{hsa}").into_bytes();
    k.push(0);
    k.extend_from_slice(format!("{seq:020}").as_bytes());
    k
}

/// The backlog (`u/`) and in-outbox (`r/`) index keys of a package.
fn index_keys(hsa: &str, seq: u64) -> (Vec<u8>, Vec<u8>) {
    let k = |p: &str| {
        let mut k = format!("{p}/{hsa}").into_bytes();
        k.push(0);
        k.extend_from_slice(format!("{seq:020}").as_bytes());
        k
    };
    (k("u"), k("r"))
}

impl Changes {
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn set_watermark(&mut self, v: i64) {
        self.batch.insert(&b"w"[..], &v.to_be_bytes()[..]);
        self.n += 1;
    }
    /// When the watermark's version was read at the source ("data as of").
    pub fn set_watermark_time(&mut self, t: &str) {
        self.batch.insert(&b"wt"[..], t.as_bytes());
        self.n += 1;
    }
    pub fn set_subscriber(&mut self, hsa: &str, s: &SubscriberState) {
        self.batch.insert(
            format!("s/{hsa}").as_bytes(),
            serde_json::to_vec(s).unwrap_or_default(),
        );
        self.n += 1;
    }
    /// Stages an op (already encoded) for a subscriber, replacing any earlier one for the key.
    pub fn stage(&mut self, hsa: &str, table: &str, key: &[u8], op: Vec<u8>) {
        self.batch.insert(stage_key(hsa, table, key), op);
        self.n += 1;
    }
    /// Replaces a staged change with `op` (the same row in a new shape).
    pub fn restage(&mut self, id: &StageId, op: Vec<u8>) {
        self.batch.insert(id.0.as_slice(), op);
        self.n += 1;
    }
    /// Removes a staged change (packaged, or replaced by a snapshot).
    pub fn unstage(&mut self, id: &StageId) {
        self.batch.remove(id.0.as_slice());
        self.n += 1;
    }
    /// Sets the subscribers that hold membership row `row` (none: removed).
    pub fn set_holders(&mut self, row: &RowId, set: &std::collections::BTreeSet<String>) {
        if set.is_empty() {
            self.batch.remove(row.holders_key());
        } else {
            self.batch.insert(row.holders_key(), holders_bytes(set));
        }
        self.n += 1;
    }
    /// Sets (or, with `None`, removes) the key a member row references.
    pub fn set_reference(&mut self, r: &RefId, key: Option<&[u8]>) {
        match key {
            Some(k) => self.batch.insert(r.0.as_slice(), k),
            None => self.batch.remove(r.0.as_slice()),
        }
        self.n += 1;
    }
    /// Row `row` is in `hsa`'s copy (read by a step of its snapshot) while
    /// the ownership index gives it to another caregiver: the next cycle
    /// deletes it there unless it is `hsa`'s by then (`z/`).
    pub fn settle_row(&mut self, hsa: &str, row: &RowId) {
        self.batch.insert(settle_key(hsa, row), &[][..]);
        self.n += 1;
    }
    /// The cycle routed `settle_row`'s row.
    pub fn settled_row(&mut self, hsa: &str, row: &RowId) {
        self.batch.remove(settle_key(hsa, row));
        self.n += 1;
    }
    /// Removes caregiver `hsa`'s package `seq` from the records (a part of
    /// a snapshot started over, never delivered).
    pub fn drop_package(&mut self, hsa: &str, seq: u64) {
        self.batch.remove(package_key(hsa, seq));
        let (u, r) = index_keys(hsa, seq);
        self.batch.remove(u);
        self.batch.remove(r);
        self.n += 1;
    }
    pub fn add_package(&mut self, p: &PackageRecord) {
        self.batch.insert(
            package_key(&p.subscriber, p.sequence),
            serde_json::to_vec(p).unwrap_or_default(),
        );
        let (u, r) = index_keys(&p.subscriber, p.sequence);
        if p.delivered_at.is_none() {
            self.batch.insert(u, &[][..]);
        } else {
            self.batch.remove(u);
        }
        if p.delivered_at.is_some() && p.removed_at.is_none() {
            self.batch.insert(r, &[][..]);
        } else {
            self.batch.remove(r);
        }
        self.n += 1;
    }
    pub fn audit(&mut self, a: &AuditRecord, n: u64) {
        let mut k = format!("a/{}", a.time).into_bytes();
        k.push(0);
        k.extend_from_slice(format!("{n:010}").as_bytes());
        self.batch
            .insert(k, serde_json::to_vec(a).unwrap_or_default());
        self.audit.push(serde_json::to_value(a).unwrap_or_default());
        self.n += 1;
    }
    pub fn set_delivery_status(&mut self, hsa: &str, d: &DeliveryStatus) {
        self.batch.insert(
            format!("d/{hsa}").as_bytes(),
            serde_json::to_vec(d).unwrap_or_default(),
        );
        self.n += 1;
    }
    pub fn log_delivery(&mut self, r: &DeliveryRecord) {
        let mut k = format!("l/{}", r.subscriber).into_bytes();
        k.push(0);
        k.extend_from_slice(r.time.as_bytes());
        k.push(0);
        k.extend_from_slice(format!("{:020}", r.sequence).as_bytes());
        self.batch
            .insert(k, serde_json::to_vec(r).unwrap_or_default());
        self.audit
            .push(serde_json::to_value(r.to_audit()).unwrap_or_default());
        self.n += 1;
    }
    pub fn set_begin_version(&mut self, table: &str, v: i64) {
        self.batch
            .insert(format!("b/{table}").as_bytes(), &v.to_be_bytes()[..]);
        self.n += 1;
    }
    /// Remembers the columns and key `table` is published with.
    pub fn set_table_schema(&mut self, table: &str, schema: &PublishedSchema) {
        self.batch
            .insert(format!("t/{table}").as_bytes(), schema.to_bytes());
        self.n += 1;
    }
    /// Forgets a table that is no longer published (schema, begin version,
    /// held and accepted columns).
    pub fn forget_table(&mut self, table: &str) {
        for p in ["t", "b", "h", "n", "x"] {
            self.batch.remove(format!("{p}/{table}").as_bytes());
        }
        self.n += 1;
    }
    /// Sets (or, with `None`, removes) how a caregiver's copy has `table`
    /// while it differs from what is published.
    pub fn set_copy_table(&mut self, hsa: &str, table: &str, c: Option<&CopyTable>) {
        let k = copy_table_key(hsa, table);
        match c {
            Some(c) => self
                .batch
                .insert(k, serde_json::to_vec(c).unwrap_or_default()),
            None => self.batch.remove(k),
        }
        self.n += 1;
    }
    /// Records the owner rule `table`'s index is built with.
    pub fn set_owner_rule(&mut self, table: &str, rule: &str) {
        self.batch
            .insert(format!("x/{table}").as_bytes(), rule.as_bytes());
        self.n += 1;
    }
    /// Sets the columns of `table` held back (empty: none).
    pub fn set_held(&mut self, table: &str, columns: &[String]) {
        set_list(&mut self.batch, format!("h/{table}"), columns);
        self.n += 1;
    }
    /// Sets the held columns of `table` accepted for publishing (empty: none).
    pub fn set_accepted(&mut self, table: &str, columns: &[String]) {
        set_list(&mut self.batch, format!("n/{table}"), columns);
        self.n += 1;
    }
}

fn set_list(batch: &mut sled::Batch, key: String, list: &[String]) {
    if list.is_empty() {
        batch.remove(key.as_bytes());
    } else {
        batch.insert(key.as_bytes(), serde_json::to_vec(list).unwrap_or_default());
    }
}

fn copy_table_key(hsa: &str, table: &str) -> Vec<u8> {
    let mut k = format!("k/{hsa}").into_bytes();
    k.push(0);
    k.extend_from_slice(table.as_bytes());
    k
}

/// Opens sled on `path`: `Locked` when another process has it.
fn open_sled(path: &Path) -> Result<sled::Db, StateError> {
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .open()
        .map_err(|e| {
            let m = e.to_string();
            if m.contains("lock")
                || m.contains("WouldBlock")
                || m.contains("Resource temporarily unavailable")
            {
                StateError::Locked {
                    path: path.to_path_buf(),
                }
            } else {
                StateError::Db {
                    path: path.to_path_buf(),
                    message: format!("{m}{}", sled_hint(&e)),
                }
            }
        })
}

/// What to do about a sled error the operator can fix: a full disk.
fn sled_hint(e: &sled::Error) -> &'static str {
    match e {
        sled::Error::Io(io) => crate::private::disk_full_hint(io),
        _ => "",
    }
}

/// Removes `snap.*.generating` files from a state folder; how many.
fn remove_unfinished_snapshots(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("snap.")
            && name.ends_with(".generating")
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

impl State {
    /// Opens (creating if needed) the state folder; fails if another process has it.
    pub fn open(path: &Path) -> Result<State, StateError> {
        crate::private::dir(path).map_err(|e| StateError::Db {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let db = match open_sled(path) {
            // A snapshot sled was writing when the disk filled up (or the
            // process died) is left as `snap.*.generating`, and sled then
            // refuses to open ("Read corrupted data"). The data itself is
            // intact: the unfinished snapshot is only an index sled
            // rebuilds. No other process holds the state (that would have
            // been `Locked`), so the leftovers can go.
            Err(StateError::Db { .. }) if remove_unfinished_snapshots(path) > 0 => {
                tracing::warn!(state = %path.display(), "removed unfinished sled snapshot files (snap.*.generating) left by an earlier failure, such as a full disk");
                open_sled(path)?
            }
            other => other?,
        };
        // Files an older ctferry or another tool left readable by others.
        crate::private::tighten(path).map_err(|e| StateError::Db {
            path: path.to_path_buf(),
            message: format!("cannot make the state readable by this account only: {e}"),
        })?;
        let tree = db.open_tree("ctferry").map_err(|e| StateError::Db {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let state = State {
            path: path.to_path_buf(),
            db,
            tree,
            audit_lock: std::sync::Mutex::new(()),
        };
        state.build_indexes()?;
        state.block_owner_index()?;
        state.start_audit_log()?;
        Ok(state)
    }

    /// Builds the `u/` and `r/` indexes for a state written before they
    /// existed (once; marked by the key `ix`).
    fn build_indexes(&self) -> Result<(), StateError> {
        if self.tree.contains_key(b"ix").map_err(|e| self.err(e))? {
            return Ok(());
        }
        let mut c = Changes::default();
        for kv in self.tree.scan_prefix(b"p/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let p: PackageRecord = serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(&k).to_string(),
                message: e.to_string(),
            })?;
            c.add_package(&p);
        }
        c.batch.insert(&b"ix"[..], &b"1"[..]);
        self.commit(c)
    }

    /// Converts an ownership index written one entry per row (`o/`) into
    /// blocks (`O/`, `owner_index`), in one commit; nothing to do for a
    /// state that has no `o/` entry.
    fn block_owner_index(&self) -> Result<(), StateError> {
        let mut rows = Vec::new();
        for kv in self.tree.scan_prefix(b"o/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            rows.push((
                RowId(k.to_vec()),
                Some(String::from_utf8_lossy(&v).to_string()),
            ));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut c = Changes::default();
        for (row, _) in &rows {
            c.batch.remove(row.0.as_slice());
        }
        let n = rows.len();
        self.write_owners(rows, &mut c)?;
        self.commit(c)?;
        tracing::info!(rows = n, "ownership index converted to blocks");
        Ok(())
    }

    fn records<T: serde::de::DeserializeOwned>(
        &self,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<T>, StateError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.tree.get(&k).map_err(|e| self.err(e))? {
                out.push(serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                    key: String::from_utf8_lossy(&k).to_string(),
                    message: e.to_string(),
                })?);
            }
        }
        Ok(out)
    }

    /// Package records listed in index `prefix` ("u" or "r") for `hsa`, in sequence order.
    fn indexed(&self, prefix: &str, hsa: &str) -> Result<Vec<PackageRecord>, StateError> {
        let mut pre = format!("{prefix}/{hsa}").into_bytes();
        pre.push(0);
        let mut keys = Vec::new();
        for kv in self.tree.scan_prefix(&pre) {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            let seq = std::str::from_utf8(&k[pre.len()..])
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| StateError::Corrupt {
                    key: String::from_utf8_lossy(&k).to_string(),
                    message: "bad index key".into(),
                })?;
            keys.push(package_key(hsa, seq));
        }
        self.records(keys)
    }

    /// A subscriber's packages not yet delivered, in sequence order.
    pub fn undelivered(&self, hsa: &str) -> Result<Vec<PackageRecord>, StateError> {
        self.indexed("u", hsa)
    }

    /// A subscriber's delivered packages whose file is still in the outbox.
    pub fn delivered_in_outbox(&self, hsa: &str) -> Result<Vec<PackageRecord>, StateError> {
        self.indexed("r", hsa)
    }

    /// A subscriber's package `seq`, if registered.
    pub fn package(&self, hsa: &str, seq: u64) -> Result<Option<PackageRecord>, StateError> {
        Ok(self.records(vec![package_key(hsa, seq)])?.pop())
    }

    /// A subscriber's last registered package.
    pub fn last_package(&self, hsa: &str) -> Result<Option<PackageRecord>, StateError> {
        let mut prefix = format!("p/{hsa}").into_bytes();
        prefix.push(0);
        match self.tree.scan_prefix(&prefix).next_back() {
            None => Ok(None),
            Some(kv) => {
                let (k, _) = kv.map_err(|e| self.err(e))?;
                Ok(self.records(vec![k.to_vec()])?.pop())
            }
        }
    }

    fn err(&self, e: sled::Error) -> StateError {
        StateError::Db {
            path: self.path.clone(),
            message: format!("{e}{}", sled_hint(&e)),
        }
    }

    /// Applies `changes` atomically and makes them durable before returning.
    /// Applies `changes` atomically and durably. Its audit records are
    /// queued (`q/<id>`) in the same batch and then appended to the audit
    /// log file (`audit_log`), so a record is in the file after its commit
    /// or, after a crash, at the next commit.
    pub fn commit(&self, changes: Changes) -> Result<(), StateError> {
        // Queue ids are drawn, committed and appended under one lock, so
        // that the log's order is the ids' order.
        let _one = (!changes.audit.is_empty())
            .then(|| self.audit_lock.lock().unwrap_or_else(|p| p.into_inner()));
        let mut batch = changes.batch;
        for record in &changes.audit {
            // From 1: 0 is "nothing appended yet" in the log.
            let id = self.db.generate_id().map_err(|e| self.err(e))? + 1;
            batch.insert(
                format!("q/{id:020}").as_bytes(),
                serde_json::to_vec(record).unwrap_or_default(),
            );
        }
        self.tree.apply_batch(batch).map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        if !changes.audit.is_empty() {
            crate::failpoint::hit("audit-queued");
            self.sync_audit_log()?;
        }
        Ok(())
    }

    fn log_err(&self, e: std::io::Error) -> StateError {
        StateError::Db {
            path: audit_log::path(&self.path),
            message: format!("audit log: {e}"),
        }
    }

    /// Appends the queued audit records the log does not have yet, in
    /// queue order, then removes them from the queue.
    /// The caller holds `audit_lock` (or is `open`, alone).
    fn sync_audit_log(&self) -> Result<(), StateError> {
        let path = audit_log::path(&self.path);
        let tail = audit_log::tail(&path).map_err(|e| self.log_err(e))?;
        let mut todo = Vec::new();
        let mut done = sled::Batch::default();
        for kv in self.tree.scan_prefix(b"q/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let id: u64 = std::str::from_utf8(&k[2..])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if id > tail.q {
                let record = serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                    key: String::from_utf8_lossy(&k).to_string(),
                    message: e.to_string(),
                })?;
                todo.push((id, record));
            }
            done.remove(k);
        }
        audit_log::append(&path, &tail, &todo).map_err(|e| self.log_err(e))?;
        // Not flushed: a queue entry that comes back after a crash is
        // skipped by its id.
        self.tree.apply_batch(done).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Starts the audit log of a state that has none (a state from before
    /// the log existed, or a log that was removed): every record the state
    /// holds, in time order, then whatever is queued after them.
    fn start_audit_log(&self) -> Result<(), StateError> {
        let path = audit_log::path(&self.path);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => return self.sync_audit_log(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.log_err(e)),
        }
        let mut all = self.audit()?;
        for kv in self.tree.scan_prefix(b"s/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            let hsa = String::from_utf8_lossy(&k[2..]).to_string();
            all.extend(
                self.delivery_log(&hsa)?
                    .iter()
                    .map(DeliveryRecord::to_audit),
            );
        }
        all.sort_by(|a, b| a.time.cmp(&b.time));
        // What is queued is among those records: the lines carry the last
        // queue id, so that no queued record is appended a second time.
        let mut done = sled::Batch::default();
        let mut last = 0;
        for kv in self.tree.scan_prefix(b"q/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            last = std::str::from_utf8(&k[2..])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
                .max(last);
            done.remove(k);
        }
        let lines: Vec<(u64, serde_json::Value)> = all
            .iter()
            .map(|a| (last, serde_json::to_value(a).unwrap_or_default()))
            .collect();
        crate::private::create_new(&path).map_err(|e| self.log_err(e))?;
        audit_log::append(&path, &audit_log::Tail::start(), &lines).map_err(|e| self.log_err(e))?;
        self.tree.apply_batch(done).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn watermark(&self) -> Result<Option<i64>, StateError> {
        Ok(self
            .tree
            .get(b"w")
            .map_err(|e| self.err(e))?
            .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map(i64::from_be_bytes))
    }

    pub fn watermark_time(&self) -> Result<Option<String>, StateError> {
        Ok(self
            .tree
            .get(b"wt")
            .map_err(|e| self.err(e))?
            .map(|v| String::from_utf8_lossy(&v).to_string()))
    }

    pub fn subscriber(&self, hsa: &str) -> Result<Option<SubscriberState>, StateError> {
        let key = format!("s/{hsa}");
        match self.tree.get(key.as_bytes()).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    key,
                    message: e.to_string(),
                }),
        }
    }

    /// Every subscriber with a record, by HSA id.
    pub fn subscribers(&self) -> Result<Vec<(String, SubscriberState)>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"s/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let hsa = String::from_utf8_lossy(&k[2..]).to_string();
            let s = serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: format!("s/{hsa}"),
                message: e.to_string(),
            })?;
            out.push((hsa, s));
        }
        Ok(out)
    }

    /// The block of the ownership index that has (or would have) `key` of
    /// `table`: its state key and bytes; None when the table has no block
    /// (see `owner_index`).
    fn owner_block(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<(Vec<u8>, sled::IVec)>, StateError> {
        let prefix = owner_index::table_prefix(table);
        let found = match self.block_at_or_below(table, key)? {
            Some(kv) => Some(kv),
            None => match self.tree.scan_prefix(&prefix).next() {
                Some(kv) => Some(kv.map_err(|e| self.err(e))?),
                None => None,
            },
        };
        Ok(found.map(|(k, v)| (k.to_vec(), v)))
    }

    /// The block of `table` whose first key is the last one not above
    /// `key` (state key, bytes), if any: the block that has `key` if any
    /// has it.
    fn block_at_or_below(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<(sled::IVec, sled::IVec)>, StateError> {
        let prefix = owner_index::table_prefix(table);
        let target = owner_index::block_key(table, key);
        match self.tree.range(prefix..=target).next_back() {
            Some(kv) => Ok(Some(kv.map_err(|e| self.err(e))?)),
            None => Ok(None),
        }
    }

    /// The first key of `table`'s block after the block stored at `block`
    /// (None: that block is the table's last): where the keys it holds end.
    fn next_block_start(&self, table: &str, block: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let prefix = owner_index::table_prefix(table);
        match self
            .tree
            .range((
                std::ops::Bound::Excluded(block.to_vec()),
                std::ops::Bound::Unbounded,
            ))
            .next()
        {
            Some(kv) => {
                let (n, _) = kv.map_err(|e| self.err(e))?;
                Ok(n.strip_prefix(prefix.as_slice()).map(<[u8]>::to_vec))
            }
            None => Ok(None),
        }
    }

    /// A block of the ownership index that cannot be read, named by its
    /// table (the rest of its key is binary).
    fn corrupt_block(key: &[u8]) -> StateError {
        StateError::Corrupt {
            key: format!(
                "O/{} (a block of the ownership index)",
                owner_index::table_of(key).unwrap_or("?")
            ),
            message: "its bytes are not a list of rows and owners in key order".into(),
        }
    }

    /// The subscriber with number `n` in the ownership index; None for a
    /// retired number (its subscriber began a new epoch: `retire_owner`).
    fn numbered(&self, n: u32) -> Result<Option<String>, StateError> {
        let mut k = b"sN/".to_vec();
        k.extend_from_slice(&n.to_be_bytes());
        match self.tree.get(&k).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).to_string())),
            None if n < self.first_free_number()? => Ok(None),
            None => Err(StateError::Corrupt {
                key: format!("sN/{n}"),
                message: "the ownership index names a subscriber number that was never given"
                    .into(),
            }),
        }
    }

    /// The next subscriber number to give (`sn`): every number below it
    /// was given once, and is either live (`sN/<number>`) or retired.
    fn first_free_number(&self) -> Result<u32, StateError> {
        match self.tree.get(b"sn").map_err(|e| self.err(e))? {
            Some(v) => <[u8; 4]>::try_from(v.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| StateError::Corrupt {
                    key: "sn".into(),
                    message: "not a subscriber number".into(),
                }),
            None => Ok(1),
        }
    }

    /// The subscriber numbers in use (not retired), as committed.
    fn live_numbers(&self) -> Result<HashSet<u32>, StateError> {
        let mut out = HashSet::new();
        for kv in self.tree.scan_prefix(b"sN/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            if let Ok(n) = <[u8; 4]>::try_from(&k[3..]) {
                out.insert(u32::from_be_bytes(n));
            }
        }
        Ok(out)
    }

    /// From this commit on, `hsa` owns no row of the ownership index, and
    /// nothing is read to say so: its number is retired (never given
    /// again), and a row under a retired number has no owner. A
    /// caregiver's new epoch (`Owners::forget`) costs the same whether it
    /// owned ten rows or a hundred million (before, every row it owned was
    /// loaded and written back). The rows stay in their blocks until the
    /// block is next written (`write_owners` drops them), so the index's
    /// size on disk shrinks as the new snapshot's steps pass. Rows `hsa`
    /// owns again in the same commit (`write_owners` after this) get a new
    /// number.
    pub fn retire_owner(&self, hsa: &str, changes: &mut Changes) -> Result<(), StateError> {
        if let Some(n) = self.number_of(hsa)? {
            changes.batch.remove(format!("sn/{hsa}").as_bytes());
            let mut k = b"sN/".to_vec();
            k.extend_from_slice(&n.to_be_bytes());
            changes.batch.remove(k);
            changes.retired.insert(n);
        }
        Ok(())
    }

    /// `hsa`'s number in the ownership index, if it has one.
    fn number_of(&self, hsa: &str) -> Result<Option<u32>, StateError> {
        Ok(self
            .tree
            .get(format!("sn/{hsa}").as_bytes())
            .map_err(|e| self.err(e))?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    /// The caregiver that has `row`, per the ownership index.
    pub fn owner(&self, row: &RowId) -> Result<Option<String>, StateError> {
        let (table, key) = row.parts();
        let Some((bk, bytes)) = self.owner_block(table, key)? else {
            return Ok(None);
        };
        match owner_index::find(&bytes, key) {
            Ok(Some(n)) => self.numbered(n),
            Ok(None) => Ok(None),
            Err(owner_index::NotABlock) => Err(Self::corrupt_block(&bk)),
        }
    }

    /// Every row `settle_row` recorded, with its caregiver (one scan of
    /// `z/`, empty but for the cycle after snapshot steps).
    pub fn settle_rows(&self) -> Result<Vec<(String, RowId)>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"z/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            let rest = &k[2..];
            let Some(end) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            out.push((
                String::from_utf8_lossy(&rest[..end]).to_string(),
                RowId(rest[end + 1..].to_vec()),
            ));
        }
        Ok(out)
    }

    /// The caregiver that has each of `rows`, per the ownership index (as
    /// `owner`, one answer per row in the same order). Rows in key order
    /// read each block of the index once; a block is searched in its
    /// stored bytes (`owner_index::spans`), without a copy of its keys.
    pub fn owners_of(&self, rows: &[RowId]) -> Result<Vec<Option<String>>, StateError> {
        // What is in hand: a block (it answers for keys from its first to
        // its last row, and up to the next block's first key once `end`
        // is known: Some(None) for the table's last block), or the gap
        // below a table's first block (no row there has an owner; `end`:
        // that block's first key, None when the table has no block).
        enum Hand {
            Block {
                table: String,
                first: Vec<u8>,
                end: Option<Option<Vec<u8>>>,
                bytes: sled::IVec,
                spans: Vec<(usize, usize, u32)>,
            },
            Gap {
                table: String,
                end: Option<Vec<u8>>,
            },
        }
        impl Hand {
            fn covers(&self, t: &str, key: &[u8]) -> bool {
                match self {
                    Hand::Block {
                        table,
                        first,
                        end,
                        bytes,
                        spans,
                    } => {
                        table == t
                            && key >= first.as_slice()
                            && (spans
                                .last()
                                .is_some_and(|(at, len, _)| key <= &bytes[*at..at + len])
                                || end
                                    .as_ref()
                                    .is_some_and(|e| e.as_deref().is_none_or(|e| key < e)))
                    }
                    Hand::Gap { table, end } => {
                        table == t && end.as_deref().is_none_or(|e| key < e)
                    }
                }
            }
            fn owner(&self, key: &[u8]) -> Option<u32> {
                match self {
                    Hand::Block { bytes, spans, .. } => spans
                        .binary_search_by(|(at, len, _)| bytes[*at..at + len].cmp(key))
                        .ok()
                        .map(|i| spans[i].2),
                    Hand::Gap { .. } => None,
                }
            }
        }
        let mut hand: Option<Hand> = None;
        let mut names: std::collections::HashMap<u32, Option<String>> = Default::default();
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (table, key) = row.parts();
            if !hand.as_ref().is_some_and(|h| h.covers(table, key)) {
                let prefix = owner_index::table_prefix(table);
                hand = Some(match self.block_at_or_below(table, key)? {
                    Some((bk, bytes)) => {
                        let first = &bk[prefix.len()..];
                        match hand {
                            // The same block again (a key past its last
                            // row): from now on it answers up to the next.
                            Some(Hand::Block {
                                table: t,
                                first: f,
                                bytes,
                                spans,
                                ..
                            }) if t == table && f.as_slice() == first => Hand::Block {
                                end: Some(self.next_block_start(table, &bk)?),
                                table: t,
                                first: f,
                                bytes,
                                spans,
                            },
                            _ => Hand::Block {
                                table: table.to_string(),
                                first: first.to_vec(),
                                end: None,
                                spans: owner_index::spans(&bytes)
                                    .ok_or_else(|| Self::corrupt_block(&bk))?,
                                bytes,
                            },
                        }
                    }
                    None => Hand::Gap {
                        table: table.to_string(),
                        end: match self.tree.scan_prefix(&prefix).next() {
                            Some(kv) => {
                                let (k, _) = kv.map_err(|e| self.err(e))?;
                                Some(k[prefix.len()..].to_vec())
                            }
                            None => None,
                        },
                    },
                });
            }
            let n = hand.as_ref().and_then(|h| h.owner(key));
            out.push(match n {
                None => None,
                Some(n) => match names.get(&n) {
                    Some(h) => h.clone(),
                    None => {
                        let h = self.numbered(n)?;
                        names.insert(n, h.clone());
                        h
                    }
                },
            });
        }
        Ok(out)
    }

    /// Every row of the ownership index under `prefix` owned by `hsa`:
    /// (table, encoded key).
    fn owned_under(&self, prefix: &[u8], hsa: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let Some(n) = self.number_of(hsa)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let table = owner_index::table_of(&k).ok_or_else(|| Self::corrupt_block(&k))?;
            let rows = owner_index::decode(&v).ok_or_else(|| Self::corrupt_block(&k))?;
            for (key, owner) in rows {
                if owner == n {
                    out.push((table.to_string(), key));
                }
            }
        }
        Ok(out)
    }

    /// The rows of `table` the ownership index gives to `hsa`, with their
    /// encoded keys (to re-send that table to it).
    pub fn owned_in(&self, table: &str, hsa: &str) -> Result<Vec<(RowId, Vec<u8>)>, StateError> {
        Ok(self
            .owned_under(&owner_index::table_prefix(table), hsa)?
            .into_iter()
            .map(|(t, k)| (RowId::new(&t, &k), k))
            .collect())
    }

    /// The rows the ownership index gives to `hsa` (tests check the index
    /// with it; a new epoch reads none: `retire_owner`).
    #[cfg(test)]
    pub fn owned_by(&self, hsa: &str) -> Result<Vec<RowId>, StateError> {
        Ok(self
            .owned_under(b"O/", hsa)?
            .into_iter()
            .map(|(t, k)| RowId::new(&t, &k))
            .collect())
    }

    /// Writes the ownership index's new decisions (`row` is now `hsa`'s, or
    /// no one's; each row at most once) into `changes`: in key order, every
    /// block they touch read once, merged with them, split when full and
    /// written under its first key; numbers given to subscribers new to the
    /// index (see `owner_index`). At most once per commit: the blocks and
    /// numbers it starts from are the committed ones.
    pub fn write_owners(
        &self,
        decisions: impl IntoIterator<Item = (RowId, Option<String>)>,
        changes: &mut Changes,
    ) -> Result<(), StateError> {
        let mut rows: Vec<(RowId, Option<String>)> = decisions.into_iter().collect();
        // By table, then key: `o/<table>\0<key>`, and no table name holds a \0.
        rows.sort_unstable_by(|a, b| a.0 .0.cmp(&b.0 .0));
        let first_free = self.first_free_number()?;
        // Rows under a number retired before or in this commit are dropped
        // from every block this commit writes (`retire_owner`).
        let mut live: Option<HashSet<u32>> = None;
        let mut next = first_free;
        let mut numbers: HashMap<String, u32> = HashMap::new();
        let mut last: Option<(String, u32)> = None;
        let mut number = |h: &str, changes: &mut Changes| -> Result<u32, StateError> {
            if let Some((lh, n)) = &last {
                if lh == h {
                    return Ok(*n);
                }
            }
            let n = match numbers.get(h) {
                Some(n) => *n,
                None => {
                    let known = self.number_of(h)?.filter(|n| !changes.retired.contains(n));
                    let n = match known {
                        Some(n) => n,
                        None => {
                            let n = next;
                            next += 1;
                            changes
                                .batch
                                .insert(format!("sn/{h}").as_bytes(), &n.to_be_bytes()[..]);
                            let mut k = b"sN/".to_vec();
                            k.extend_from_slice(&n.to_be_bytes());
                            changes.batch.insert(k, h.as_bytes());
                            n
                        }
                    };
                    numbers.insert(h.to_string(), n);
                    n
                }
            };
            last = Some((h.to_string(), n));
            Ok(n)
        };
        let mut i = 0;
        while i < rows.len() {
            let table = rows[i].0.parts().0.to_string();
            let end = rows[i..]
                .iter()
                .position(|(r, _)| r.parts().0 != table)
                .map_or(rows.len(), |p| i + p);
            // The blocks touched, in key order: state key (empty: the table
            // has none yet), bytes, the next block's first key, the changes.
            #[allow(clippy::type_complexity)]
            let mut touched: Vec<(
                Vec<u8>,
                Option<sled::IVec>,
                Option<Vec<u8>>,
                Vec<(&[u8], Option<u32>)>,
            )> = Vec::new();
            for (row, hsa) in &rows[i..end] {
                let key = row.parts().1;
                // Keys come in order, so a key below the next block's first
                // key is in the block the previous key was.
                let covered = touched
                    .last()
                    .is_some_and(|(_, _, next, _)| next.as_deref().is_none_or(|n| key < n));
                if !covered {
                    match self.owner_block(&table, key)? {
                        Some((bk, bytes)) => {
                            let next = self.next_block_start(&table, &bk)?;
                            touched.push((bk, Some(bytes), next, Vec::new()))
                        }
                        None => touched.push((Vec::new(), None, None, Vec::new())),
                    }
                }
                let n = match hsa {
                    Some(h) => Some(number(h, changes)?),
                    None => None,
                };
                touched.last_mut().expect("pushed above").3.push((key, n));
                changes.n += 1;
            }
            for (bk, bytes, _, block_changes) in &touched {
                let old = match bytes {
                    Some(b) => owner_index::rows(b).ok_or_else(|| Self::corrupt_block(bk))?,
                    None => Vec::new(),
                };
                if !bk.is_empty() {
                    changes.batch.remove(bk.as_slice());
                }
                let mut merged = owner_index::merge(old, block_changes);
                let live = match &mut live {
                    Some(l) => l,
                    None => {
                        let mut l = self.live_numbers()?;
                        l.retain(|n| !changes.retired.contains(n));
                        live.insert(l)
                    }
                };
                merged.retain(|(_, n)| *n >= first_free || live.contains(n));
                for (first, bytes) in owner_index::split(&merged) {
                    changes
                        .batch
                        .insert(owner_index::block_key(&table, &first), bytes);
                }
            }
            i = end;
        }
        if next != first_free {
            changes.batch.insert(&b"sn"[..], &next.to_be_bytes()[..]);
        }
        Ok(())
    }

    /// The subscribers that hold membership row `row`.
    pub fn holders(&self, row: &RowId) -> Result<std::collections::BTreeSet<String>, StateError> {
        Ok(self
            .tree
            .get(row.holders_key())
            .map_err(|e| self.err(e))?
            .map(|v| holders_of(&v))
            .unwrap_or_default())
    }

    /// The membership rows `hsa` holds, with all their holders (to clear
    /// on a new epoch).
    #[allow(clippy::type_complexity)]
    pub fn held_by(
        &self,
        hsa: &str,
    ) -> Result<Vec<(RowId, std::collections::BTreeSet<String>)>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"m/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let set = holders_of(&v);
            if set.contains(hsa) {
                let mut id = b"o/".to_vec();
                id.extend_from_slice(&k[2..]);
                out.push((RowId(id), set));
            }
        }
        Ok(out)
    }

    /// The rows of membership table `table` that have holders, with their
    /// encoded keys and holders (to learn the table's holders again).
    #[allow(clippy::type_complexity)]
    pub fn holders_in(
        &self,
        table: &str,
    ) -> Result<Vec<(RowId, Vec<u8>, std::collections::BTreeSet<String>)>, StateError> {
        let mut prefix = format!("m/{table}").into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let kb = k[prefix.len()..].to_vec();
            out.push((RowId::new(table, &kb), kb, holders_of(&v)));
        }
        Ok(out)
    }

    /// The key a member row references through a rule, as remembered.
    pub fn reference(&self, r: &RefId) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .tree
            .get(&r.0)
            .map_err(|e| self.err(e))?
            .map(|v| v.to_vec()))
    }

    /// A subscriber's staged changes, in key order.
    pub fn staged(&self, hsa: &str) -> Result<Vec<Staged>, StateError> {
        let prefix = stage_prefix(hsa);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let rest = &k[prefix.len()..];
            let Some(sep) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            let table = String::from_utf8_lossy(&rest[..sep]).to_string();
            out.push(Staged {
                id: StageId(k.to_vec()),
                table,
                op: v.to_vec(),
            });
        }
        Ok(out)
    }

    /// How many changes are staged for a subscriber.
    pub fn staged_count(&self, hsa: &str) -> Result<u64, StateError> {
        let mut n = 0;
        for kv in self.tree.scan_prefix(stage_prefix(hsa)) {
            kv.map_err(|e| self.err(e))?;
            n += 1;
        }
        Ok(n)
    }

    /// A subscriber's registered packages in sequence order.
    pub fn packages(&self, hsa: &str) -> Result<Vec<PackageRecord>, StateError> {
        let mut prefix = format!("p/{hsa}").into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(&k).to_string(),
                message: e.to_string(),
            })?);
        }
        Ok(out)
    }

    pub fn delivery_status(&self, hsa: &str) -> Result<DeliveryStatus, StateError> {
        let k = format!("d/{hsa}");
        match self.tree.get(k.as_bytes()).map_err(|e| self.err(e))? {
            None => Ok(DeliveryStatus::default()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: k,
                message: e.to_string(),
            }),
        }
    }

    /// A subscriber's delivery log in time order.
    pub fn delivery_log(&self, hsa: &str) -> Result<Vec<DeliveryRecord>, StateError> {
        let mut prefix = format!("l/{hsa}").into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(&k).to_string(),
                message: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// The audit log in time order.
    pub fn audit(&self) -> Result<Vec<AuditRecord>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"a/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: String::from_utf8_lossy(&k).to_string(),
                message: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// The begin version of a table's change tracking when last read.
    pub fn begin_version(&self, table: &str) -> Result<Option<i64>, StateError> {
        Ok(self
            .tree
            .get(format!("b/{table}").as_bytes())
            .map_err(|e| self.err(e))?
            .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map(i64::from_be_bytes))
    }

    /// The tables whose copy at `hsa` differs from what is published, until
    /// its next delta (`k/`).
    pub fn copy_tables(&self, hsa: &str) -> Result<Vec<(String, CopyTable)>, StateError> {
        let mut prefix = format!("k/{hsa}").into_bytes();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let table = String::from_utf8_lossy(&k[prefix.len()..]).to_string();
            let c = serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key: format!("k/{hsa}/{table}"),
                message: e.to_string(),
            })?;
            out.push((table, c));
        }
        Ok(out)
    }

    /// How `hsa`'s copy has `table`, when that differs from what is published.
    pub fn copy_table(&self, hsa: &str, table: &str) -> Result<Option<CopyTable>, StateError> {
        match self
            .tree
            .get(copy_table_key(hsa, table))
            .map_err(|e| self.err(e))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    key: format!("k/{hsa}/{table}"),
                    message: e.to_string(),
                }),
        }
    }

    fn list(&self, key: String) -> Result<Vec<String>, StateError> {
        match self.tree.get(key.as_bytes()).map_err(|e| self.err(e))? {
            None => Ok(Vec::new()),
            Some(v) => serde_json::from_slice(&v).map_err(|e| StateError::Corrupt {
                key,
                message: e.to_string(),
            }),
        }
    }

    /// The owner rule `table`'s index was built with, if recorded.
    pub fn owner_rule(&self, table: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .tree
            .get(format!("x/{table}").as_bytes())
            .map_err(|e| self.err(e))?
            .map(|v| String::from_utf8_lossy(&v).to_string()))
    }

    /// The columns of `table` held back: new at the source, not published.
    pub fn held(&self, table: &str) -> Result<Vec<String>, StateError> {
        self.list(format!("h/{table}"))
    }

    /// Every table with columns held back, and those columns.
    pub fn held_all(&self) -> Result<Vec<(String, Vec<String>)>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"h/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            let table = String::from_utf8_lossy(&k[2..]).to_string();
            let cols = self.held(&table)?;
            out.push((table, cols));
        }
        Ok(out)
    }

    /// The held columns of `table` accepted for publishing.
    pub fn accepted(&self, table: &str) -> Result<Vec<String>, StateError> {
        self.list(format!("n/{table}"))
    }

    /// Every published table's name and schema (`t/`).
    pub fn table_schemas(&self) -> Result<Vec<(String, PublishedSchema)>, StateError> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(b"t/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let table = String::from_utf8_lossy(&k[2..]).to_string();
            let schema = PublishedSchema::from_bytes(&v).map_err(|e| StateError::Corrupt {
                key: format!("t/{table}"),
                message: e.to_string(),
            })?;
            out.push((table, schema));
        }
        Ok(out)
    }

    /// A subscriber's staged changes of one table.
    pub fn staged_in(&self, hsa: &str, table: &str) -> Result<Vec<Staged>, StateError> {
        let mut prefix = stage_prefix(hsa);
        prefix.extend_from_slice(table.as_bytes());
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.push(Staged {
                id: StageId(k.to_vec()),
                table: table.to_string(),
                op: v.to_vec(),
            });
        }
        Ok(out)
    }

    /// The columns and key `table` was published with, if it was.
    pub fn table_schema(&self, table: &str) -> Result<Option<PublishedSchema>, StateError> {
        let key = format!("t/{table}");
        match self.tree.get(key.as_bytes()).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => PublishedSchema::from_bytes(&v)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    key,
                    message: e.to_string(),
                }),
        }
    }

    /// Bytes the state folder takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// How big the routing indexes are: (rows in the ownership index `O/`
    /// that have an owner (not those of a retired number), membership rows `m/`, (row, member) pairs in them, remembered
    /// references `f/`).
    pub fn index_sizes(&self) -> Result<IndexSizes, StateError> {
        let mut out = IndexSizes::default();
        let live = self.live_numbers()?;
        for kv in self.tree.scan_prefix(b"O/") {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            out.owned += owner_index::decode(&v)
                .ok_or_else(|| Self::corrupt_block(&k))?
                .iter()
                .filter(|(_, n)| live.contains(n))
                .count() as u64;
        }
        for kv in self.tree.scan_prefix(b"m/") {
            let (_, v) = kv.map_err(|e| self.err(e))?;
            out.membership_rows += 1;
            out.pairs += holders_of(&v).len() as u64;
        }
        for kv in self.tree.scan_prefix(b"f/") {
            kv.map_err(|e| self.err(e))?;
            out.references += 1;
        }
        Ok(out)
    }
}

/// The routing indexes' sizes (`State::index_sizes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSizes {
    pub owned: u64,
    pub membership_rows: u64,
    pub pairs: u64,
    pub references: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the state again after this process dropped it: sled lets go of
    /// its lock when its flusher thread stops, up to half a second later
    /// (a test on a loaded machine saw `Locked`).
    fn reopen(path: &std::path::Path) -> State {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match State::open(path) {
                Err(StateError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                other => return other.unwrap(),
            }
        }
    }

    fn pkg(seq: u64, delivered: bool, removed: bool) -> PackageRecord {
        PackageRecord {
            subscriber: "SE-A".into(),
            sequence: seq,
            epoch: 1,
            kind: Kind::Delta,
            file: format!("{seq:010}-delta.ctf.pgp"),
            sha256: "00".into(),
            bytes: 1,
            ct_from: None,
            ct_to: seq as i64,
            rows: 0,
            tables: vec![],
            created_at: "2026-11-25T00:00:00Z".into(),
            delivered_at: delivered.then(|| "2026-11-25T00:00:01Z".into()),
            removed_at: removed.then(|| "2026-11-25T00:00:02Z".into()),
            data_as_of: None,
        }
    }

    fn seqs(v: Vec<PackageRecord>) -> Vec<u64> {
        v.into_iter().map(|p| p.sequence).collect()
    }

    /// A row key as the publisher encodes it (a CBOR array of one int).
    fn key(i: i64) -> Vec<u8> {
        let mut e = crate::format::cbor::Encoder::new();
        e.array(1);
        e.int(i);
        e.buf
    }

    /// The ownership index in blocks answers as one entry per row would:
    /// random decisions (rows gained, moved between caregivers, lost) over
    /// many commits, on two tables of up to 3,000 rows (tens of blocks,
    /// split as they fill), checked after every commit against a plain map;
    /// every block at most `BLOCK_ROWS` rows, stored under its first key.
    #[test]
    fn the_blocked_ownership_index_answers_as_a_map_would() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        let mut model: HashMap<RowId, String> = HashMap::new();
        let mut seed = 11u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let tables = ["dbo.Besok", "dbo.B"];
        for round in 0..40 {
            let mut decisions = Vec::new();
            let n = if round == 0 { 2500 } else { 1 + rnd(400) };
            for _ in 0..n {
                let t = tables[rnd(2) as usize];
                // Negative keys too: their CBOR bytes sort apart from the others.
                let row = RowId::new(t, &key(rnd(3000) as i64 - 500));
                let owner = match rnd(5) {
                    0 => None,
                    o => Some(format!("SE-{o}")),
                };
                decisions.retain(|(r, _): &(RowId, Option<String>)| *r != row);
                decisions.push((row, owner));
            }
            // Every fifth round a caregiver begins a new epoch in the same
            // commit: it owns nothing but what the round gives it.
            let mut c = Changes::default();
            if round % 5 == 4 {
                let gone = format!("SE-{}", 1 + rnd(4));
                st.retire_owner(&gone, &mut c).unwrap();
                model.retain(|_, h| *h != gone);
            }
            for (row, owner) in &decisions {
                match owner {
                    Some(o) => model.insert(row.clone(), o.clone()),
                    None => model.remove(row),
                };
            }
            st.write_owners(decisions, &mut c).unwrap();
            st.commit(c).unwrap();
            for t in tables {
                for i in -500..2500 {
                    let row = RowId::new(t, &key(i));
                    assert_eq!(
                        st.owner(&row).unwrap(),
                        model.get(&row).cloned(),
                        "round {round}, {t} {i}"
                    );
                }
            }
            // Many rows at once (a snapshot step), sorted, from below the
            // first block to past the last, over both tables and a third
            // with no block at all: the same answers.
            let mut many: Vec<RowId> = (0..600)
                .map(|_| {
                    let t = ["dbo.Besok", "dbo.B", "dbo.Tom"][rnd(3) as usize];
                    RowId::new(t, &key(rnd(3600) as i64 - 800))
                })
                .collect();
            many.sort();
            let want: Vec<Option<String>> = many.iter().map(|r| model.get(r).cloned()).collect();
            assert_eq!(
                st.owners_of(&many).unwrap(),
                want,
                "round {round}, owners_of"
            );
            // Out of order, and sparse (a row of every few blocks, as a
            // caregiver with one care unit of hundreds): the same answers.
            let mut odd: Vec<RowId> = many.iter().step_by(7).cloned().collect();
            odd.reverse();
            let third = odd.len() / 3;
            odd.rotate_left(third);
            let want: Vec<Option<String>> = odd.iter().map(|r| model.get(r).cloned()).collect();
            assert_eq!(
                st.owners_of(&odd).unwrap(),
                want,
                "round {round}, owners_of out of order"
            );
            assert_eq!(st.index_sizes().unwrap().owned, model.len() as u64);
            for o in 1..5 {
                let hsa = format!("SE-{o}");
                let mut want: Vec<RowId> = model
                    .iter()
                    .filter(|(_, h)| **h == hsa)
                    .map(|(r, _)| r.clone())
                    .collect();
                let mut got = st.owned_by(&hsa).unwrap();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                got.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "round {round}, owned_by {hsa}");
                let mine = st.owned_in("dbo.B", &hsa).unwrap();
                assert!(mine.iter().all(|(r, k)| *r == RowId::new("dbo.B", k)));
                assert_eq!(
                    mine.len(),
                    want.iter().filter(|r| r.parts().0 == "dbo.B").count()
                );
            }
            for kv in st.tree.scan_prefix(b"O/") {
                let (k, v) = kv.unwrap();
                let rows = owner_index::decode(&v).unwrap();
                assert!(!rows.is_empty() && rows.len() <= owner_index::BLOCK_ROWS);
                let table = owner_index::table_of(&k).unwrap();
                assert_eq!(
                    k.as_ref(),
                    owner_index::block_key(table, &rows[0].0).as_slice()
                );
            }
        }
        assert!(st.tree.scan_prefix(b"O/").count() > 20);
        assert!(st.owned_by("SE-9").unwrap().is_empty());
    }

    /// A caregiver's new epoch retires its number: its rows have no owner
    /// at once (no row read or written), rows it owns again get a new
    /// number, other caregivers keep theirs, and a retired row leaves its
    /// block when the block is next written.
    #[test]
    fn a_retired_owner_owns_nothing_and_its_rows_leave_as_blocks_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        let row = |i: i64| RowId::new("dbo.Besok", &key(i));
        let mut c = Changes::default();
        st.write_owners(
            (0..1000).map(|i| (row(i), Some(format!("SE-{}", i % 2)))),
            &mut c,
        )
        .unwrap();
        st.commit(c).unwrap();
        let blocks = |st: &State| -> Vec<sled::IVec> {
            st.tree.scan_prefix(b"O/").map(|kv| kv.unwrap().1).collect()
        };
        let before = blocks(&st);
        let stored = |st: &State| -> usize {
            blocks(st)
                .iter()
                .map(|b| owner_index::decode(b).unwrap().len())
                .sum()
        };
        let old_number = st.number_of("SE-1").unwrap().unwrap();

        let mut c = Changes::default();
        st.retire_owner("SE-1", &mut c).unwrap();
        // In the same commit it gains row 1 back (a snapshot step's row).
        st.write_owners([(row(1), Some("SE-1".to_string()))], &mut c)
            .unwrap();
        st.commit(c).unwrap();
        let new_number = st.number_of("SE-1").unwrap().unwrap();
        assert!(
            new_number > old_number,
            "a retired number is never given again"
        );
        for i in 0..1000 {
            let want = match i {
                1 => Some("SE-1".to_string()),
                i if i % 2 == 0 => Some("SE-0".to_string()),
                _ => None,
            };
            assert_eq!(st.owner(&row(i)).unwrap(), want, "row {i}");
        }
        let all: Vec<RowId> = (0..1000).map(row).collect();
        assert_eq!(st.owners_of(&all).unwrap()[3], None);
        assert_eq!(st.owned_by("SE-1").unwrap(), vec![row(1)]);
        assert_eq!(st.owned_by("SE-0").unwrap().len(), 500);
        assert_eq!(st.index_sizes().unwrap().owned, 501);
        // Only the one block row 1 is in was written; the others still
        // hold the retired rows (nothing read or written for them).
        let after = blocks(&st);
        assert_eq!(
            before.iter().filter(|b| !after.contains(b)).count(),
            1,
            "one block rewritten"
        );
        assert!(stored(&st) > 900);
        // Writing a block drops its retired rows: a decision in every block.
        let mut c = Changes::default();
        st.write_owners(
            (0..1000)
                .step_by(50)
                .map(|i| (row(i), Some("SE-0".to_string()))),
            &mut c,
        )
        .unwrap();
        st.commit(c).unwrap();
        assert_eq!(stored(&st), 501);
        // A number that was never given is damage, not "no owner".
        st.tree
            .insert(
                owner_index::block_key("dbo.Besok", &key(5000)),
                owner_index::encode([(key(5000).as_slice(), 999u32)].into_iter()),
            )
            .unwrap();
        let e = st.owner(&row(5000)).unwrap_err().to_string();
        assert!(e.contains("sN/999"), "{e}");
    }

    /// A damaged block is a clear error naming its table, from every
    /// reader and from the writer, never a panic or a wrong owner.
    #[test]
    fn a_damaged_ownership_block_is_named_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        let row = RowId::new("dbo.Besok", &key(1));
        let mut c = Changes::default();
        st.write_owners([(row.clone(), Some("SE-1".to_string()))], &mut c)
            .unwrap();
        st.commit(c).unwrap();
        let (k, _) = st.tree.scan_prefix(b"O/").next().unwrap().unwrap();
        st.tree.insert(&k, &[0x05, 0x81][..]).unwrap();
        for e in [
            st.owner(&row).unwrap_err(),
            st.owned_by("SE-1").unwrap_err(),
            st.index_sizes().unwrap_err(),
            st.write_owners([(row.clone(), None)], &mut Changes::default())
                .unwrap_err(),
        ] {
            let m = e.to_string();
            assert!(
                m.contains("O/dbo.Besok (a block of the ownership index)") && m.contains("damaged"),
                "{m}"
            );
        }
    }

    /// A state written with one `o/` entry per row (before the blocks) is
    /// converted at open, and answers the same.
    #[test]
    fn an_ownership_index_of_one_entry_per_row_is_converted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = State::open(dir.path()).unwrap();
            for i in 0..300 {
                let row = RowId::new("dbo.Besok", &key(i));
                st.tree
                    .insert(&row.0, format!("SE-{}", i % 3).as_bytes())
                    .unwrap();
            }
            st.db.flush().unwrap();
        }
        let st = reopen(dir.path());
        assert_eq!(st.tree.scan_prefix(b"o/").count(), 0);
        assert_eq!(st.tree.scan_prefix(b"O/").count(), 3);
        for i in 0..300 {
            assert_eq!(
                st.owner(&RowId::new("dbo.Besok", &key(i))).unwrap(),
                Some(format!("SE-{}", i % 3))
            );
        }
        assert_eq!(st.owned_in("dbo.Besok", "SE-1").unwrap().len(), 100);
    }

    #[test]
    fn backlog_and_outbox_indexes_follow_the_records_and_are_rebuilt_for_old_states() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = State::open(dir.path()).unwrap();
            let mut c = Changes::default();
            c.add_package(&pkg(1, true, true));
            c.add_package(&pkg(2, true, false));
            c.add_package(&pkg(3, false, false));
            c.add_package(&pkg(4, false, false));
            st.commit(c).unwrap();
            assert_eq!(seqs(st.undelivered("SE-A").unwrap()), vec![3, 4]);
            assert_eq!(seqs(st.delivered_in_outbox("SE-A").unwrap()), vec![2]);
            // Delivering 3 moves it from one index to the other.
            let mut c = Changes::default();
            c.add_package(&pkg(3, true, false));
            st.commit(c).unwrap();
            assert_eq!(seqs(st.undelivered("SE-A").unwrap()), vec![4]);
            assert_eq!(seqs(st.delivered_in_outbox("SE-A").unwrap()), vec![2, 3]);
            assert_eq!(st.last_package("SE-A").unwrap().unwrap().sequence, 4);
            assert_eq!(st.package("SE-A", 2).unwrap().unwrap().sequence, 2);
            assert!(st.package("SE-B", 2).unwrap().is_none());
            // A state from before the indexes: drop them and the marker.
            for p in ["u/", "r/", "ix"] {
                let keys: Vec<_> = st.tree.scan_prefix(p).keys().map(|k| k.unwrap()).collect();
                for k in keys {
                    st.tree.remove(k).unwrap();
                }
            }
            st.db.flush().unwrap();
        }
        let st = reopen(dir.path());
        assert_eq!(seqs(st.undelivered("SE-A").unwrap()), vec![4]);
        assert_eq!(seqs(st.delivered_in_outbox("SE-A").unwrap()), vec![2, 3]);
    }
}
