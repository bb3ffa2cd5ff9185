//! Turning staged or snapshot rows into registered packages: the region's
//! signing key and each caregiver's public key, the manifest of a
//! caregiver's next package (sequence, epoch, hash chain), and the
//! registration of written files (package record, audit record, the
//! caregiver's next sequence) into a state commit.
//!
//! Contract: files are written (and fsynced) by `format::package` before
//! `register` puts them into the commit; the caller commits. A file written
//! but not registered (a crash in between) is rewritten under the same name
//! by the next cycle, because the sequence only advances in the commit.

use crate::config::{Config, SubscriberConfig};
use crate::format::crypto::{PublicKey, SecretKey};
use crate::format::package::{self, Kind, Manifest, WriterConfig, Written};
use crate::publisher::error::PublishError;
use crate::publisher::report::CycleReport;
use crate::publisher::state::{AuditRecord, Changes, PackageRecord, SubscriberState};
use crate::time::now_text;
use std::path::PathBuf;

/// Keys and numbering for writing packages.
pub struct Packager<'c> {
    cfg: &'c Config,
    signer: SecretKey,
    /// One per `cfg.subscribers`, same order.
    recipients: Vec<PublicKey>,
    audit_n: u64,
    /// The caregivers' outbox folders made (or found) in this cycle: each
    /// is made once per cycle, not once per package.
    made: std::cell::RefCell<std::collections::HashSet<String>>,
}

/// One package-to-be's place in its caregiver's chain.
pub struct Next<'a> {
    pub subscriber: &'a SubscriberConfig,
    pub state: &'a SubscriberState,
    pub epoch: u64,
    pub kind: Kind,
    pub ct_from: Option<i64>,
    pub ct_to: i64,
    /// When the source was read ("data as of").
    pub as_of: Option<String>,
}

impl<'c> Packager<'c> {
    /// Loads the signing key and every caregiver's public key (each must be
    /// able to receive encrypted data), and creates the outbox.
    pub fn open(cfg: &'c Config) -> Result<Packager<'c>, PublishError> {
        let signer = SecretKey::load(
            &cfg.publisher.signing_key,
            cfg.publisher
                .signing_passphrase
                .as_ref()
                .map(|s| s.expose().to_string()),
        )?;
        // Nothing can be signed with a revoked or expired key: stop here.
        signer.check_can_sign_now()?;
        let mut recipients = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (i, s) in cfg.subscribers.iter().enumerate() {
            let k = PublicKey::load(&s.public_key)?;
            k.check_can_encrypt()?;
            // The same key under two file names is the same mistake as
            // one file named twice (which the configuration refuses).
            let fingerprint = k.fingerprint();
            if let Some(j) = seen.get(&fingerprint) {
                return Err(PublishError::SharedKey {
                    first: cfg.subscribers[*j].hsa_id.clone(),
                    second: cfg.subscribers[i].hsa_id.clone(),
                    fingerprint,
                });
            }
            seen.insert(fingerprint, i);
            recipients.push(k);
        }
        crate::private::dir(&cfg.publisher.outbox).map_err(|source| PublishError::Io {
            what: "cannot create the outbox",
            path: cfg.publisher.outbox.display().to_string(),
            source,
        })?;
        // A package being written when the process stopped or the disk
        // filled up is a `.tmp` that was never registered: it goes.
        for s in &cfg.subscribers {
            let Ok(entries) = std::fs::read_dir(cfg.publisher.outbox.join(&s.hsa_id)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".ctf.pgp.tmp") && e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(Packager {
            cfg,
            signer,
            recipients,
            audit_n: 0,
            made: Default::default(),
        })
    }

    /// A new cycle: each outbox folder is made again (an operator may have
    /// moved it, or loosened its mode) before its first package.
    pub fn new_cycle(&self) {
        self.made.borrow_mut().clear();
    }

    /// Why caregiver `i` cannot be sent a package now (its key revoked or
    /// expired), if so. Such a caregiver is skipped: its changes wait
    /// staged, a snapshot it is due stays pending (`CycleReport::key_problems`).
    pub fn recipient_problem(&self, i: usize) -> Option<String> {
        self.recipients[i]
            .check_usable_now()
            .err()
            .map(|e| e.to_string())
    }

    fn outbox(&self, hsa: &str) -> Result<PathBuf, PublishError> {
        let dir = self.cfg.publisher.outbox.join(hsa);
        if !self.made.borrow().contains(hsa) {
            crate::private::dir(&dir).map_err(|source| PublishError::Io {
                what: "cannot create",
                path: dir.display().to_string(),
                source,
            })?;
            self.made.borrow_mut().insert(hsa.to_string());
        }
        Ok(dir)
    }

    /// Where and how caregiver `i`'s packages are written.
    pub fn writer_config(&self, i: usize) -> Result<WriterConfig<'_>, PublishError> {
        Ok(WriterConfig {
            out_dir: self.outbox(&self.cfg.subscribers[i].hsa_id)?,
            signer: &self.signer,
            recipient: &self.recipients[i],
            part_bytes: self.cfg.publisher.part_bytes,
            zstd_level: 3,
            zstd_workers: package::default_zstd_workers(),
        })
    }

    /// The manifest of the next package in a caregiver's chain.
    pub fn template(&self, n: Next<'_>) -> Manifest {
        Manifest {
            publisher: self.cfg.publisher.id.clone(),
            subscriber: n.subscriber.hsa_id.clone(),
            epoch: n.epoch,
            sequence: n.state.next_sequence.max(1),
            kind: n.kind,
            part: 1,
            last_part: true,
            previous_sha256: n.state.last_sha256.as_deref().and_then(parse_hex32),
            ct_from: n.ct_from,
            ct_to: n.ct_to,
            source_commit_time: n.as_of,
            created_at: now_text(),
            tables: vec![],
        }
    }

    /// Registers written package files of caregiver `s` in `changes` (package
    /// records, audit records) and advances `st` past them.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
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
                kind: m.kind,
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
            self.audit_n += 1;
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
                self.audit_n,
            );
            st.next_sequence = m.sequence + 1;
            st.last_sha256 = Some(rec.sha256.clone());
            st.last_package_at = Some(m.created_at.clone());
            st.version = Some(m.ct_to);
            report.packages.push(rec);
        }
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
