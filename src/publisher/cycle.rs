//! The publisher's cycle (docs/ARCHITECTURE.md, "The data path"): change tracking → route → stage →
//! package → deliver.
//!
//! Contract of one cycle (`Publisher::once`):
//! - the source is read in ONE snapshot transaction: V, the minimum valid
//!   versions, two statements per published table (changed rows with their
//!   owner along the owner path; deleted keys), and the snapshots of the
//!   subscribers that need one. The number of statements does not depend on
//!   the number of subscribers (snapshots aside);
//! - routing uses the row's owner now and the ownership index for the owner
//!   before: deletes go to previous owners only, a row that changed owner
//!   (itself or up its path) leaves the old owner and enters the new one;
//! - the staged changes, the ownership index, the snapshot packages'
//!   registration and the new watermark W = V are committed in one atomic,
//!   flushed state write. Package files are fsynced before they are
//!   registered; an unregistered file left by a crash is rewritten under the
//!   same name by the next cycle;
//! - then every due subscriber's stage drains into its next delta package,
//!   registered atomically with the removal of what it drained;
//! - then registered packages not yet delivered go to the subscriber's area
//!   (deliver.rs: folder or SFTP, `.part` then rename, in sequence order).
//!
//! Masked columns are replaced in the SELECT, so unmasked values never reach
//! ctferry, its state or its logs.

use crate::config::{Config, Owner, SubscriberConfig, TableConfig};
use crate::failpoint;
use crate::format::cbor::{Decoder, Encoder, Limits};
use crate::format::crypto::{CryptoError, PublicKey, SecretKey};
use crate::format::package::{
    self, ColumnSchema, Kind, Manifest, PackageError, PackageWriter, TableSchema, WriterConfig,
    Written,
};
use crate::format::value::{self, Value};
use crate::mssql::client::{self, Db, DbError, Param};
use crate::mssql::sql::source::{self as sql, SelectColumn};
use crate::publisher::state::{
    AuditRecord, Changes, PackageRecord, State, StateError, SubscriberState,
};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("source database: {0}")]
    Db(#[from] DbError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Source(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// A published table as found in the source.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub cfg: TableConfig,
    pub schema: TableSchema,
    pub key_pos: Vec<usize>,
    pub select: Vec<SelectColumn>,
    /// Columns and types, to detect DDL since the table was first published.
    pub signature: String,
}

use crate::mssql::client::{int_at as get_i64, text_at as get_str};

/// Reads a published table's columns and key from the source catalog.
pub fn describe(db: &mut Db, t: &TableConfig) -> Result<TableInfo, PublishError> {
    let name = t.name.to_string();
    let cols = db.rows(
        &format!("reading the columns of {name}"),
        sql::columns(),
        &[Param::Str(name.clone())],
    )?;
    if cols.is_empty() {
        return Err(PublishError::Source(format!(
            "table {name} does not exist in the source database (or the login cannot see it)"
        )));
    }
    let mut columns = Vec::new();
    let mut select = Vec::new();
    for r in &cols {
        let cname = get_str(r, 0).unwrap_or_default();
        let tname = get_str(r, 1).unwrap_or_default();
        let max_len = get_i64(r, 2).unwrap_or(0) as i16;
        let prec = get_i64(r, 3).unwrap_or(0) as u8;
        let scale = get_i64(r, 4).unwrap_or(0) as u8;
        let nullable = get_i64(r, 5).unwrap_or(1) != 0;
        let ty = client::column_type(&tname, max_len, prec, scale).ok_or_else(|| {
            PublishError::Source(format!("{name}.{cname} has type {tname}, which ctferry does not carry; leave the table out or ask for support"))
        })?;
        let mask = t
            .masks
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(&cname))
            .map(|(_, l)| l.clone());
        columns.push(ColumnSchema {
            name: cname.clone(),
            ty,
            nullable,
            masked: mask.is_some(),
        });
        select.push(SelectColumn {
            name: cname,
            ty,
            mask,
        });
    }
    for c in t.masks.keys() {
        if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
            return Err(PublishError::Source(format!(
                "{name}: mask names column {c}, which the table does not have"
            )));
        }
    }
    let key: Vec<String> = db
        .rows(
            &format!("reading the primary key of {name}"),
            sql::primary_key(),
            &[Param::Str(name.clone())],
        )?
        .iter()
        .filter_map(|r| get_str(r, 0))
        .collect();
    if key.is_empty() {
        return Err(PublishError::Source(format!(
            "table {name} has no primary key; change tracking and ctferry need one"
        )));
    }
    let schema = TableSchema {
        name: name.clone(),
        columns,
        key,
    };
    let key_pos = schema.key_positions().unwrap_or_default();
    let signature = schema
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                c.name,
                c.ty,
                if c.nullable { " NULL" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
        + &format!("; key {}", schema.key.join(","));
    Ok(TableInfo {
        cfg: t.clone(),
        schema,
        key_pos,
        select,
        signature,
    })
}

/// Encodes key values (the ownership index and stage key).
fn key_bytes(values: &[Value]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(values.len());
    for v in values {
        value::encode(&mut e, v);
    }
    e.buf
}

/// A staged op: CBOR `["U", v1, v2, ...]` (the whole row) or `["D", k1, ...]` (the key).
fn encode_op(upsert: bool, values: &[Value]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(values.len() + 1);
    e.text(if upsert { "U" } else { "D" });
    for v in values {
        value::encode(&mut e, v);
    }
    e.buf
}

fn decode_op(bytes: &[u8], t: &TableInfo) -> Result<(bool, Vec<Value>), String> {
    let item = Decoder::new(bytes, Limits::default())
        .next_item()
        .map_err(|e| e.to_string())?;
    let items = item.as_array().ok_or("not an array")?;
    let upsert = match items.first().and_then(|i| i.as_text()) {
        Some("U") => true,
        Some("D") => false,
        _ => return Err("unknown op".into()),
    };
    let cols: Vec<&ColumnSchema> = if upsert {
        t.schema.columns.iter().collect()
    } else {
        t.key_pos.iter().map(|p| &t.schema.columns[*p]).collect()
    };
    if items.len() != cols.len() + 1 {
        return Err("wrong number of values".into());
    }
    let mut out = Vec::new();
    for (c, it) in cols.iter().zip(&items[1..]) {
        out.push(value::decode(&c.ty, it).map_err(|e| e.to_string())?);
    }
    Ok((upsert, out))
}

use crate::time::now_text;

/// What a cycle did.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub version: i64,
    pub previous: Option<i64>,
    pub changes_read: u64,
    pub routed: BTreeMap<String, u64>,
    pub snapshots: Vec<(String, String)>,
    pub packages: Vec<PackageRecord>,
    pub delivered: usize,
    /// Subscribers whose delivery failed this cycle, with the error.
    pub delivery_failures: Vec<(String, String)>,
    /// Subscribers waiting out a delivery backoff.
    pub delivery_waiting: Vec<String>,
    pub statements: u64,
    pub duration_ms: u64,
}

pub struct Publisher<'c> {
    pub cfg: &'c Config,
    pub state: State,
    signer: SecretKey,
    recipients: Vec<PublicKey>,
    audit_n: u64,
    /// Accept changed table columns in this run (`ctferry snapshot --all`).
    accept_schema: bool,
}

impl<'c> Publisher<'c> {
    /// Loads the keys and opens the state (one publisher per state folder).
    pub fn open(cfg: &'c Config) -> Result<Publisher<'c>, PublishError> {
        let signer = SecretKey::load(
            &cfg.publisher.signing_key,
            cfg.publisher
                .signing_passphrase
                .as_ref()
                .map(|s| s.expose().to_string()),
        )?;
        let mut recipients = Vec::new();
        for s in &cfg.subscribers {
            let k = PublicKey::load(&s.public_key)?;
            k.check_can_encrypt()?;
            recipients.push(k);
        }
        let state = State::open(&cfg.publisher.state)?;
        std::fs::create_dir_all(&cfg.publisher.outbox).map_err(|source| PublishError::Io {
            what: "cannot create the outbox",
            path: cfg.publisher.outbox.display().to_string(),
            source,
        })?;
        Ok(Publisher {
            cfg,
            state,
            signer,
            recipients,
            audit_n: 0,
            accept_schema: false,
        })
    }

    fn outbox(&self, hsa: &str) -> Result<std::path::PathBuf, PublishError> {
        let dir = self.cfg.publisher.outbox.join(hsa);
        std::fs::create_dir_all(&dir).map_err(|source| PublishError::Io {
            what: "cannot create",
            path: dir.display().to_string(),
            source,
        })?;
        Ok(dir)
    }

    fn next_audit(&mut self) -> u64 {
        self.audit_n += 1;
        self.audit_n
    }

    /// Accepts the source's current table columns at the next cycle and gives
    /// every subscriber a new snapshot (after a reviewed schema change).
    pub fn snapshot_all_accepting_schema(&mut self) -> Result<(), PublishError> {
        for s in &self.cfg.subscribers {
            self.request_snapshot(&s.hsa_id, "requested with `ctferry snapshot --all`")?;
        }
        self.accept_schema = true;
        Ok(())
    }

    /// Marks a subscriber for a new snapshot at the next cycle.
    pub fn request_snapshot(&self, hsa: &str, reason: &str) -> Result<(), PublishError> {
        let mut st = self.state.subscriber(hsa)?.unwrap_or_default();
        st.needs_snapshot = Some(reason.to_string());
        let mut c = Changes::default();
        c.set_subscriber(hsa, &st);
        self.state.commit(c)?;
        Ok(())
    }

    /// One cycle. `all_due`: package every subscriber with work, whatever its interval.
    pub fn once(&mut self, db: &mut Db, all_due: bool) -> Result<CycleReport, PublishError> {
        let started = std::time::Instant::now();
        let mut report = CycleReport::default();
        db.execute(sql::begin_snapshot())?;
        let r = self.read_and_stage(db, &mut report);
        let end = db.execute(sql::commit());
        if r.is_err() {
            let _ = db.execute(crate::mssql::sql::rollback_if_open());
        }
        r?;
        end?;
        self.package_deltas(&mut report, all_due)?;
        let mode = if all_due {
            crate::publisher::deliver::Mode::Now
        } else {
            crate::publisher::deliver::Mode::Scheduled
        };
        let d = self.deliver(mode)?;
        report.delivered = d.delivered;
        report.delivery_failures = d.failures;
        report.delivery_waiting = d.waiting;
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    fn read_and_stage(
        &mut self,
        db: &mut Db,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let cfg = self.cfg;
        let vt = db.rows(
            "reading the current version",
            sql::current_version_and_time(),
            &[],
        )?;
        report.statements += 1;
        let v = vt.first().and_then(|r| get_i64(r, 0)).ok_or_else(|| {
            PublishError::Source("change tracking is not enabled on the source database: run ALTER DATABASE ... SET CHANGE_TRACKING = ON (see README, Source prerequisites)".into())
        })?;
        let as_of = vt
            .first()
            .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(1).ok().flatten())
            .map(|t| format!("{}Z", value::datetime_text(&t)));
        report.version = v;
        let mut tables = Vec::new();
        let mut changes = Changes::default();
        for t in &cfg.tables {
            let info = describe(db, t)?;
            report.statements += 2;
            let name = info.schema.name.clone();
            match self.state.table_signature(&name)? {
                Some(_) if self.accept_schema => {
                    changes.set_table_signature(&name, &info.signature)
                }
                Some(sig) if sig != info.signature => {
                    return Err(PublishError::Source(format!(
                        "table {name} changed since it was first published (was: {sig}; now: {}); ctferry stops publishing (nothing is sent and nothing is lost) rather than send columns nobody reviewed. Check the masks in the configuration, then run `ctferry snapshot --all` to accept the new columns and send every caregiver a fresh copy",
                        info.signature
                    )));
                }
                Some(_) => {}
                None => changes.set_table_signature(&name, &info.signature),
            }
            tables.push(info);
        }
        let w = self.state.watermark()?;
        report.previous = w;
        // Who needs a snapshot, and why.
        let mut reset: Option<String> = None;
        if let Some(w) = w {
            if v < w {
                reset = Some(format!("the source's change tracking version {v} is below the last one read ({w}): the database was restored or replaced"));
            }
        }
        for t in &tables {
            let rows = db.rows(
                "reading the minimum valid version",
                sql::min_valid_version(),
                &[Param::Str(t.schema.name.clone())],
            )?;
            report.statements += 1;
            let min = rows.first().and_then(|r| get_i64(r, 0)).ok_or_else(|| {
                PublishError::Source(format!("change tracking is not enabled on table {}: run ALTER TABLE {} ENABLE CHANGE_TRACKING", t.schema.name, t.schema.name))
            })?;
            let begin = rows.first().and_then(|r| get_i64(r, 1)).unwrap_or(min);
            let before = self.state.begin_version(&t.schema.name)?;
            if before != Some(begin) {
                changes.set_begin_version(&t.schema.name, begin);
            }
            let Some(w) = w else { continue };
            if reset.is_some() {
                continue;
            }
            if w < min {
                reset = Some(format!("the change history of {} before version {min} is gone (expired, truncated, or tracking re-enabled) and the last version read is {w}", t.schema.name));
            } else if before.is_some() && before != Some(begin) {
                reset = Some(format!(
                    "change tracking of {} began again at version {begin} (was {}): it was disabled and re-enabled, or the table truncated, and changes in between are unknown",
                    t.schema.name,
                    before.unwrap_or(0)
                ));
            }
        }
        // A caregiver no longer in the configuration (offboarded) receives
        // nothing from now on; should it come back, the changes in between
        // were never staged for it, so it must start over with a snapshot.
        for (hsa, mut st) in self.state.subscribers()? {
            if cfg.subscriber(&hsa).is_none() && st.epoch > 0 && st.needs_snapshot.is_none() {
                st.needs_snapshot =
                    Some("it was removed from the configuration (offboarded) and came back".into());
                changes.set_subscriber(&hsa, &st);
            }
        }
        let mut subs: Vec<SubscriberState> = Vec::new();
        let mut snap: Vec<Option<String>> = Vec::new();
        for s in &cfg.subscribers {
            let st = self.state.subscriber(&s.hsa_id)?.unwrap_or_default();
            let mut keys = s.keys.clone();
            keys.sort();
            let mut had = st.keys.clone();
            had.sort();
            let why = if st.epoch == 0 {
                Some("onboarding".to_string())
            } else if let Some(r) = &st.needs_snapshot {
                Some(r.clone())
            } else if keys != had {
                Some("its partition keys changed in the configuration".to_string())
            } else {
                reset.clone()
            };
            subs.push(st);
            snap.push(why);
        }
        let key_owner = cfg.key_owners();
        let mut owner_overlay: HashMap<Vec<u8>, Option<String>> = HashMap::new();
        if w.is_some() && reset.is_none() {
            let w = w.unwrap_or(0);
            for t in &tables {
                self.route_table(
                    db,
                    t,
                    w,
                    &key_owner,
                    &snap,
                    &mut changes,
                    &mut owner_overlay,
                    report,
                )?;
                report.statements += 2;
            }
        }
        // Snapshots, in the same read transaction.
        for (i, s) in cfg.subscribers.iter().enumerate() {
            let Some(why) = snap[i].clone() else { continue };
            self.snapshot(
                db,
                s,
                i,
                &subs[i],
                &tables,
                v,
                as_of.clone(),
                &why,
                &mut changes,
                &mut owner_overlay,
                report,
            )?;
        }
        for (k, hsa) in owner_overlay {
            match hsa {
                Some(h) => changes.set_owner_raw(&k, &h),
                None => changes.remove_raw(&k),
            }
        }
        changes.set_watermark(v);
        if let Some(t) = &as_of {
            changes.set_watermark_time(t);
        }
        self.state.commit(changes)?;
        failpoint::hit("cycle-committed");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn route_table(
        &mut self,
        db: &mut Db,
        t: &TableInfo,
        w: i64,
        key_owner: &HashMap<String, usize>,
        snap: &[Option<String>],
        changes: &mut Changes,
        overlay: &mut HashMap<Vec<u8>, Option<String>>,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let cfg = self.cfg;
        let name = t.schema.name.clone();
        let shared = t.cfg.owner == Owner::Shared;
        let live: Vec<usize> = (0..cfg.subscribers.len())
            .filter(|i| snap[*i].is_none())
            .collect();
        let q = sql::changed_rows(&t.cfg.name, &t.cfg.owner, &t.schema.key, &t.select);
        let mut rows: Vec<(bool, Option<String>, Vec<Value>)> = Vec::new();
        db.query(
            &format!("reading the changes of {name}"),
            &q,
            &[Param::I64(w)],
            |r| {
                let own_change = get_i64(r, 0).unwrap_or(0) != 0;
                let owner = get_str(r, 1);
                let mut vals = Vec::with_capacity(t.select.len());
                for (i, c) in t.schema.columns.iter().enumerate() {
                    vals.push(client::value(r, i + 2, &c.name, &c.ty)?);
                }
                rows.push((own_change, owner, vals));
                Ok(())
            },
        )?;
        let mut deleted: Vec<Vec<Value>> = Vec::new();
        db.query(
            &format!("reading the deletes of {name}"),
            &sql::deleted_keys(&t.cfg.name, &t.schema.key),
            &[Param::I64(w)],
            |r| {
                let mut k = Vec::new();
                for (i, p) in t.key_pos.iter().enumerate() {
                    let c = &t.schema.columns[*p];
                    k.push(client::value(r, i, &c.name, &c.ty)?);
                }
                deleted.push(k);
                Ok(())
            },
        )?;
        report.changes_read += rows.iter().filter(|r| r.0).count() as u64 + deleted.len() as u64;
        for (own_change, owner, vals) in rows {
            let key: Vec<Value> = t.key_pos.iter().map(|p| vals[*p].clone()).collect();
            let kb = key_bytes(&key);
            if shared {
                if own_change {
                    for i in &live {
                        let hsa = &cfg.subscribers[*i].hsa_id;
                        changes.stage(hsa, &name, &kb, encode_op(true, &vals));
                        *report.routed.entry(hsa.clone()).or_default() += 1;
                    }
                }
                continue;
            }
            let ok = crate::publisher::state::owner_key_pub(&name, &kb);
            let old = match overlay.get(&ok) {
                Some(o) => o.clone(),
                None => self.state.owner(&name, &kb)?,
            };
            let new = owner.and_then(|o| {
                key_owner
                    .get(&o)
                    .map(|i| cfg.subscribers[*i].hsa_id.clone())
            });
            if old == new {
                if own_change {
                    if let Some(h) = &new {
                        if live.iter().any(|i| &cfg.subscribers[*i].hsa_id == h) {
                            changes.stage(h, &name, &kb, encode_op(true, &vals));
                            *report.routed.entry(h.clone()).or_default() += 1;
                        }
                    }
                }
                continue;
            }
            if let Some(h) = &old {
                if live.iter().any(|i| &cfg.subscribers[*i].hsa_id == h) {
                    changes.stage(h, &name, &kb, encode_op(false, &key));
                    *report.routed.entry(h.clone()).or_default() += 1;
                }
            }
            if let Some(h) = &new {
                if live.iter().any(|i| &cfg.subscribers[*i].hsa_id == h) {
                    changes.stage(h, &name, &kb, encode_op(true, &vals));
                    *report.routed.entry(h.clone()).or_default() += 1;
                }
            }
            overlay.insert(ok, new);
        }
        for key in deleted {
            let kb = key_bytes(&key);
            if shared {
                for i in &live {
                    let hsa = &cfg.subscribers[*i].hsa_id;
                    changes.stage(hsa, &name, &kb, encode_op(false, &key));
                    *report.routed.entry(hsa.clone()).or_default() += 1;
                }
                continue;
            }
            let ok = crate::publisher::state::owner_key_pub(&name, &kb);
            let old = match overlay.get(&ok) {
                Some(o) => o.clone(),
                None => self.state.owner(&name, &kb)?,
            };
            if let Some(h) = &old {
                if live.iter().any(|i| &cfg.subscribers[*i].hsa_id == h) {
                    changes.stage(h, &name, &kb, encode_op(false, &key));
                    *report.routed.entry(h.clone()).or_default() += 1;
                }
                overlay.insert(ok, None);
            }
        }
        Ok(())
    }

    fn writer_config(&self, i: usize) -> Result<WriterConfig<'_>, PublishError> {
        Ok(WriterConfig {
            out_dir: self.outbox(&self.cfg.subscribers[i].hsa_id)?,
            signer: &self.signer,
            recipient: &self.recipients[i],
            part_bytes: self.cfg.publisher.part_bytes,
            zstd_level: 3,
            zstd_workers: package::default_zstd_workers(),
        })
    }

    fn template(
        &self,
        s: &SubscriberConfig,
        st: &SubscriberState,
        epoch: u64,
        kind: Kind,
        from: Option<i64>,
        to: i64,
        as_of: Option<String>,
    ) -> Manifest {
        Manifest {
            publisher: self.cfg.publisher.id.clone(),
            subscriber: s.hsa_id.clone(),
            epoch,
            sequence: st.next_sequence.max(1),
            kind,
            part: 1,
            last_part: true,
            previous_sha256: st.last_sha256.as_deref().and_then(parse_hex32),
            ct_from: from,
            ct_to: to,
            source_commit_time: as_of,
            created_at: now_text(),
            tables: vec![],
        }
    }

    /// Registers written package files for a subscriber.
    fn register(
        &mut self,
        s: &SubscriberConfig,
        st: &mut SubscriberState,
        written: &[Written],
        event: &str,
        detail: Option<String>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) {
        for wr in written {
            let m = &wr.manifest;
            let tables: Vec<(String, u64, u64)> = m
                .tables
                .iter()
                .map(|t| (t.schema.name.clone(), t.upserts, t.deletes))
                .collect();
            let rec = PackageRecord {
                subscriber: s.hsa_id.clone(),
                sequence: m.sequence,
                epoch: m.epoch,
                kind: m.kind.as_str().to_string(),
                file: wr.file_name.clone(),
                sha256: package::hex(&wr.sha256),
                bytes: wr.bytes,
                ct_from: m.ct_from,
                ct_to: m.ct_to,
                rows: tables.iter().map(|t| t.1 + t.2).sum(),
                tables: tables.clone(),
                created_at: m.created_at.clone(),
                delivered_at: None,
                removed_at: None,
                data_as_of: m.source_commit_time.clone(),
            };
            changes.add_package(&rec);
            let n = self.next_audit();
            changes.audit(
                &AuditRecord {
                    time: now_text(),
                    subscriber: s.hsa_id.clone(),
                    event: event.to_string(),
                    sequence: Some(m.sequence),
                    file: Some(wr.file_name.clone()),
                    sha256: Some(rec.sha256.clone()),
                    tables,
                    detail: detail.clone(),
                },
                n,
            );
            st.next_sequence = m.sequence + 1;
            st.last_sha256 = Some(rec.sha256.clone());
            st.last_package_at = Some(m.created_at.clone());
            st.version = Some(m.ct_to);
            report.packages.push(rec);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn snapshot(
        &mut self,
        db: &mut Db,
        s: &SubscriberConfig,
        i: usize,
        st: &SubscriberState,
        tables: &[TableInfo],
        v: i64,
        as_of: Option<String>,
        why: &str,
        changes: &mut Changes,
        overlay: &mut HashMap<Vec<u8>, Option<String>>,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        // A new epoch replaces the copy as a whole: drop its stage and its index entries.
        for (k, _, _, _) in self.state.staged(&s.hsa_id)? {
            changes.unstage_raw(&k);
        }
        for k in self.state.owned_by(&s.hsa_id)? {
            overlay.entry(k).or_insert(None);
        }
        for o in overlay.values_mut() {
            if o.as_deref() == Some(s.hsa_id.as_str()) {
                *o = None;
            }
        }
        let mut st = st.clone();
        let epoch = st.epoch + 1;
        let template = self.template(s, &st, epoch, Kind::Snapshot, None, v, as_of);
        let wcfg = self.writer_config(i)?;
        let mut w = PackageWriter::new(wcfg, template);
        let params: Vec<Param> = s.keys.iter().map(|k| Param::Str(k.clone())).collect();
        let mut index_rows: Vec<Vec<u8>> = Vec::new();
        for t in tables {
            let ti = w.add_table(t.schema.clone())?;
            let shared = t.cfg.owner == Owner::Shared;
            let q = sql::snapshot_rows(&t.cfg.name, &t.cfg.owner, &t.select, s.keys.len());
            let name = t.schema.name.clone();
            let mut failure: Option<PackageError> = None;
            db.query(
                &format!("reading the snapshot of {name} for {}", s.hsa_id),
                &q,
                if shared { &[] } else { &params },
                |r| {
                    let mut vals = Vec::with_capacity(t.schema.columns.len());
                    for (ci, c) in t.schema.columns.iter().enumerate() {
                        vals.push(client::value(r, ci + 1, &c.name, &c.ty)?);
                    }
                    if !shared {
                        let key: Vec<Value> = t.key_pos.iter().map(|p| vals[*p].clone()).collect();
                        index_rows.push(crate::publisher::state::owner_key_pub(
                            &name,
                            &key_bytes(&key),
                        ));
                    }
                    if failure.is_none() {
                        if let Err(e) = w.upsert(ti, &vals) {
                            failure = Some(e);
                        }
                    }
                    Ok(())
                },
            )?;
            report.statements += 1;
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        let written = w.finish()?;
        failpoint::hit("snapshot-written");
        for k in index_rows {
            overlay.insert(k, Some(s.hsa_id.clone()));
        }
        st.epoch = epoch;
        st.keys = {
            let mut k = s.keys.clone();
            k.sort();
            k
        };
        st.needs_snapshot = None;
        self.register(
            s,
            &mut st,
            &written,
            "snapshot",
            Some(why.to_string()),
            changes,
            report,
        );
        changes.set_subscriber(&s.hsa_id, &st);
        report.snapshots.push((s.hsa_id.clone(), why.to_string()));
        Ok(())
    }

    fn due(&self, s: &SubscriberConfig, st: &SubscriberState, all_due: bool) -> bool {
        if all_due {
            return true;
        }
        match st.last_package_at.as_deref().and_then(crate::time::parse) {
            None => true,
            Some(t) => {
                let age = crate::time::now().signed_duration_since(t);
                age.to_std().map(|a| a >= s.interval).unwrap_or(false)
            }
        }
    }

    fn package_deltas(
        &mut self,
        report: &mut CycleReport,
        all_due: bool,
    ) -> Result<(), PublishError> {
        let cfg = self.cfg;
        let w = self.state.watermark()?.unwrap_or(0);
        let mut infos: HashMap<String, TableInfo> = HashMap::new();
        for (i, s) in cfg.subscribers.iter().enumerate() {
            let Some(mut st) = self.state.subscriber(&s.hsa_id)? else {
                continue;
            };
            if st.epoch == 0 || !self.due(s, &st, all_due) {
                continue;
            }
            let staged = self.state.staged(&s.hsa_id)?;
            if staged.is_empty() {
                continue;
            }
            if infos.is_empty() {
                // Table schemas as published (the signature check ran in the cycle).
                for t in &cfg.tables {
                    let sig_name = t.name.to_string();
                    if let Some(info) = self.published_schema(&sig_name, t)? {
                        infos.insert(sig_name, info);
                    }
                }
            }
            let as_of = self.state.watermark_time()?;
            let template = self.template(s, &st, st.epoch, Kind::Delta, st.version, w, as_of);
            let wcfg = self.writer_config(i)?;
            let mut writer = PackageWriter::new(wcfg, template);
            let mut handles: HashMap<String, usize> = HashMap::new();
            let mut drained = Changes::default();
            for (full, table, _kb, op) in &staged {
                let Some(info) = infos.get(table) else {
                    return Err(PublishError::Source(format!("staged changes for {table}, which is no longer published; remove them with `ctferry snapshot --subscriber {}`", s.hsa_id)));
                };
                let ti = match handles.get(table) {
                    Some(h) => *h,
                    None => {
                        let h = writer.add_table(info.schema.clone())?;
                        handles.insert(table.clone(), h);
                        h
                    }
                };
                let (upsert, vals) = decode_op(op, info).map_err(|e| {
                    PublishError::Source(format!(
                        "a staged change of {table} is unreadable ({e}); the state may be damaged"
                    ))
                })?;
                if upsert {
                    writer.upsert(ti, &vals)?;
                } else {
                    writer.delete(ti, &vals)?;
                }
                drained.unstage_raw(full);
            }
            let written = writer.finish()?;
            failpoint::hit("delta-written");
            self.register(s, &mut st, &written, "delta", None, &mut drained, report);
            drained.set_subscriber(&s.hsa_id, &st);
            self.state.commit(drained)?;
        }
        Ok(())
    }

    /// The schema a table is published with, rebuilt from its signature.
    fn published_schema(
        &self,
        name: &str,
        t: &TableConfig,
    ) -> Result<Option<TableInfo>, PublishError> {
        let Some(sig) = self.state.table_signature(name)? else {
            return Ok(None);
        };
        let (cols, key) = sig.split_once("; key ").unwrap_or((&sig, ""));
        let mut columns = Vec::new();
        for c in cols.split(", ") {
            let nullable = c.ends_with(" NULL");
            let c = c.trim_end_matches(" NULL");
            let (n, ty) = c.rsplit_once(' ').ok_or_else(|| {
                PublishError::Source(format!("stored schema of {name} is unreadable"))
            })?;
            let ty =
                value::ColumnType::parse(ty).map_err(|e| PublishError::Source(e.to_string()))?;
            columns.push(ColumnSchema {
                name: n.to_string(),
                ty,
                nullable,
                masked: t.masks.keys().any(|m| m.eq_ignore_ascii_case(n)),
            });
        }
        let schema = TableSchema {
            name: name.to_string(),
            columns,
            key: key.split(',').map(str::to_string).collect(),
        };
        let key_pos = schema.key_positions().unwrap_or_default();
        Ok(Some(TableInfo {
            cfg: t.clone(),
            select: vec![],
            key_pos,
            signature: sig.clone(),
            schema,
        }))
    }

    /// Delivers registered, undelivered packages (see deliver.rs).
    pub fn deliver(
        &mut self,
        mode: crate::publisher::deliver::Mode,
    ) -> Result<crate::publisher::deliver::Report, PublishError> {
        Ok(crate::publisher::deliver::deliver_all(
            self.cfg,
            &self.state,
            mode,
        )?)
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
