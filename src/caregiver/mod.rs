//! `ctferry apply`, at the caregiver: verify, decrypt and apply every new
//! package, in order, each in ONE transaction on the local MS SQL copy.
//!
//! Contract: a package is applied only on top of its predecessor (sequence
//! and hash chain, checked against the `ctferry.applied` log in the target
//! database, so state and data cannot disagree); rows are loaded while the
//! package is read (bounded memory) but the transaction commits only after
//! the reader has verified the trailer, the OpenPGP integrity check and the
//! signature; reading and loading overlap (two threads, a queue of two
//! chunks). A snapshot (all its parts together) replaces the copy's
//! tables, its rows bulk-loaded straight into them; a delta deletes and
//! upserts by key with a few set-based statements per 10,000 rows (bulk
//! load into a temp table, DELETE … JOIN, INSERT … SELECT). Anything wrong: rollback, nothing applied, an error
//! naming the file and the reason. Already applied packages are skipped.
//!
//! The steps, one module each: `fetch` (where packages come from), `chain`
//! (may this package go on top of the copy: a pure decision), `load` (rows
//! into the copy), `log` (`ctferry.applied`).

pub mod chain;
pub mod fetch;
pub mod load;
pub mod log;

pub use chain::Refusal;
pub use fetch::{fetch, FetchError};
pub use log::{ensure_log, last_applied, Applied};

use crate::config::ApplyConfig;
use crate::format::crypto::{CryptoError, PublicKey, SecretKey};
use crate::format::package::{PackageError, PackageReader, SectionKind};
use crate::format::value::Value;
use crate::mssql::client::{Db, DbError};
use crate::mssql::sql;
use chain::Next;
use load::{Loader, CHUNK};
use std::path::{Path, PathBuf};

/// Why `apply` stopped. Whatever it is, the package it names was not
/// applied at all (its transaction was rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("target database: {0}")]
    Db(#[from] DbError),
    #[error("{file}: {source}")]
    Package { file: String, source: PackageError },
    #[error("{file} is refused: {reason}; nothing was applied")]
    Refused { file: String, reason: Refusal },
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl ApplyError {
    /// Whether running again later can help without a person: a network or
    /// database hiccup can pass, and a missing package may still arrive; a
    /// tampered, foreign or out-of-chain package cannot.
    pub fn retryable(&self) -> bool {
        match self {
            ApplyError::Db(e) => e.retryable,
            ApplyError::Fetch(e) => e.retryable(),
            ApplyError::Refused { reason, .. } => matches!(
                reason,
                Refusal::Missing { .. } | Refusal::SnapshotPartMissing { .. }
            ),
            ApplyError::Package { .. } => false,
        }
    }
}

/// What a run did, and an optional progress callback (file, rows so far).
#[derive(Default)]
pub struct ApplyReport {
    pub applied: Vec<(String, u64)>,
    pub skipped: Vec<String>,
    /// Packages fetched from the SFTP area in this run.
    pub downloaded: Vec<String>,
    /// Table changes made (package file, what: `dbo.X: alter (add C
    /// nvarchar(200)): why`), in the order made.
    pub table_changes: Vec<(String, String)>,
    pub progress: Option<Progress>,
}

/// Told (file, rows applied so far) while a package is applied.
pub type Progress = Box<dyn FnMut(&str, u64)>;

/// Opens a package with whichever of the caregiver's keys it is encrypted
/// to; "not for us" only when it is for none of them.
fn open_with_any<'a>(
    path: &Path,
    keys: &'a [SecretKey],
    publishers: &[PublicKey],
) -> Result<PackageReader<'a>, PackageError> {
    let mut not_ours = None;
    for k in keys {
        match PackageReader::open(path, k, publishers) {
            Ok(r) => return Ok(r),
            Err(e @ PackageError::Crypto(CryptoError::NotForUs { .. })) => {
                not_ours.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(not_ours.unwrap_or_else(|| PackageError::Invalid("no secret key configured".into())))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Applies every new package in `cfg.folder` (after fetching them from the
/// SFTP area when one is configured), in order. Stops at the first refusal
/// (returned as the error, after what was applied before it).
pub fn apply_all(
    cfg: &ApplyConfig,
    db: &mut Db,
    keys: &[SecretKey],
    publishers: &[PublicKey],
    report: &mut ApplyReport,
) -> Result<(), ApplyError> {
    ensure_log(db)?;
    if let Some(t) = &cfg.sftp {
        let last = last_applied(db)?.map(|a| a.sequence).unwrap_or(0);
        report.downloaded = fetch(t, &cfg.folder, last)?;
    }
    let files = fetch::packages_in(&cfg.folder)?;
    let mut i = 0;
    while i < files.len() {
        let last = last_applied(db)?;
        let (seq, path) = &files[i];
        let last_seq = last.as_ref().map(|l| l.sequence).unwrap_or(0);
        match chain::position(*seq, last_seq) {
            Ok(Next::Skip) => {
                report.skipped.push(file_name(path));
                i += 1;
                continue;
            }
            Ok(Next::Apply) => {}
            Err(reason) => {
                return Err(ApplyError::Refused {
                    file: file_name(path),
                    reason,
                })
            }
        }
        // One transaction for a delta, or for all parts of a snapshot.
        db.execute(sql::target::begin_transaction())?;
        let mut noop = |_: &str, _: u64| {};
        let progress: &mut dyn FnMut(&str, u64) = match report.progress.as_mut() {
            Some(p) => p.as_mut(),
            None => &mut noop,
        };
        let mut changed = Vec::new();
        match apply_group(
            cfg,
            db,
            keys,
            publishers,
            &files[i..],
            last,
            progress,
            &mut changed,
        ) {
            Ok(done) => {
                db.execute(sql::target::commit_transaction())?;
                i += done.len();
                report.applied.extend(done);
                report.table_changes.extend(changed);
            }
            Err(e) => {
                let _ = db.execute(sql::rollback_if_open());
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Applies the package `files[0]` (a delta, or a whole snapshot: its parts
/// are `files[0..]` in a row) inside the open transaction; returns each
/// file applied with its row count, and adds the table changes made to
/// `changed`.
#[allow(clippy::too_many_arguments)]
fn apply_group(
    cfg: &ApplyConfig,
    db: &mut Db,
    keys: &[SecretKey],
    publishers: &[PublicKey],
    files: &[(u64, PathBuf)],
    mut last: Option<Applied>,
    progress: &mut dyn FnMut(&str, u64),
    changed: &mut Vec<(String, String)>,
) -> Result<Vec<(String, u64)>, ApplyError> {
    let mut done = Vec::new();
    // With a snapshot in several parts: the sequence the next part must
    // have, and the part before it.
    let mut expect: Option<(u64, &PathBuf)> = None;
    for (seq, path) in files {
        let seq = *seq;
        if let Some((next, prev)) = expect {
            if seq != next {
                return Err(part_missing(next, prev));
            }
        }
        let fname = file_name(path);
        let pkg_err = |source: PackageError| ApplyError::Package {
            file: fname.clone(),
            source,
        };
        let mut reader = open_with_any(path, keys, publishers).map_err(pkg_err)?;
        let m = reader.manifest().clone();
        chain::check(&m, seq, &cfg.subscriber, last.as_ref()).map_err(|reason| {
            ApplyError::Refused {
                file: fname.clone(),
                reason,
            }
        })?;
        // The name's kind and versions must be the manifest's too, so the
        // copy's log never records an authentic package under a false name.
        if m.file_name() != fname {
            return Err(ApplyError::Refused {
                file: fname.clone(),
                reason: chain::Refusal::NotItsName {
                    manifest: m.file_name(),
                },
            });
        }
        if m.kind == crate::format::package::Kind::Snapshot && m.part == 1 {
            load::create_tables(db, &m)?;
        }
        for what in load::change_tables(db, &m)? {
            changed.push((fname.clone(), what));
            crate::failpoint::hit("apply-table-changed");
        }
        // Reading (decryption, decompression, decoding, checks) on this
        // thread, loading on another: chunks pass through a queue of two,
        // so memory stays bounded and the two overlap.
        let mut n = 0u64;
        let read = std::thread::scope(|sc| -> Result<Result<(), PackageError>, DbError> {
            let (tx, rx) =
                std::sync::mpsc::sync_channel::<(usize, SectionKind, Vec<Vec<Value>>)>(2);
            let manifest = &m;
            let target: &mut Db = &mut *db;
            let loading = sc.spawn(move || -> Result<(), DbError> {
                let mut loader = Loader::new(target, seq);
                for (t, k, mut rows) in rx {
                    loader.flush(manifest, t, k, &mut rows)?;
                }
                loader.finish()
            });
            let mut buf: Vec<Vec<Value>> = Vec::new();
            let mut cur: Option<(usize, SectionKind)> = None;
            let read = loop {
                let row = match reader.next_row() {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                };
                let next = row.as_ref().map(|r| (r.table, r.kind));
                if cur.is_some() && (next != cur || buf.len() >= CHUNK) {
                    let (t, k) = cur.unwrap_or((0, SectionKind::Upserts));
                    if tx.send((t, k, std::mem::take(&mut buf))).is_err() {
                        // The loader stopped: its error is the one to report.
                        break Ok(());
                    }
                    progress(&fname, n);
                    crate::failpoint::hit("apply-mid-package");
                }
                let Some(row) = row else { break Ok(()) };
                cur = Some((row.table, row.kind));
                buf.push(row.values);
                n += 1;
            };
            drop(tx);
            loading.join().unwrap_or_else(|_| {
                Err(DbError {
                    what: "loading rows into the copy".into(),
                    message: "the loading thread panicked".into(),
                    number: None,
                    retryable: false,
                })
            })?;
            Ok(read)
        })?;
        read.map_err(pkg_err)?;
        let verified = reader.finish().map_err(pkg_err)?;
        last = Some(log::record(db, &m, &fname, &verified.file_sha256, n)?);
        done.push((fname, n));
        if m.last_part {
            return Ok(done);
        }
        expect = Some((m.sequence + 1, path));
    }
    // A snapshot whose next part is not (yet) in the folder: refuse it whole.
    Err(match expect {
        Some((next, prev)) => part_missing(next, prev),
        None => part_missing(1, &PathBuf::new()),
    })
}

/// The snapshot part before `next` was applied (in the open transaction),
/// but part `next` is not there: the whole snapshot is refused.
fn part_missing(next: u64, prev: &Path) -> ApplyError {
    ApplyError::Refused {
        file: prev.display().to_string(),
        reason: Refusal::SnapshotPartMissing { next },
    }
}
