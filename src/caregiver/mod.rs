//! `ctferry apply`, at the caregiver: verify, decrypt and apply every new
//! package, in order, each in ONE transaction on the local MS SQL copy.
//!
//! Contract: a package is applied only on top of its predecessor (sequence
//! and hash chain, checked against the `ctferry.applied` log in the target
//! database, so state and data cannot disagree); rows are loaded while the
//! package is read (bounded memory) but the transaction commits only after
//! the reader has verified the trailer, the OpenPGP integrity check and the
//! signature. A snapshot (all its parts together) replaces the copy's
//! tables; a delta deletes and upserts by key with a few set-based
//! statements per 10,000 rows (bulk load into a temp table, DELETE … JOIN,
//! INSERT … SELECT). Anything wrong: rollback, nothing applied, an error
//! naming the file and the reason. Already applied packages are skipped.

use crate::config::{ApplyConfig, ConfigError, Target};
use crate::format::crypto::{PublicKey, SecretKey};
use crate::format::package::{
    self, Kind, Manifest, PackageError, PackageReader, SectionKind, TableSchema,
};
use crate::format::value::{ColumnType, Value};
use crate::mssql::client::{self, Db, DbError, Param};
use crate::mssql::sql::qualified;
use crate::mssql::sql::target as sql;
use std::path::{Path, PathBuf};

/// Rows per bulk load.
const CHUNK: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("target database: {0}")]
    Db(#[from] DbError),
    #[error("{file}: {source}")]
    Package { file: String, source: PackageError },
    #[error("{file} is refused: {reason}; nothing was applied")]
    Refused { file: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// The last package applied, from `ctferry.applied`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub sequence: u64,
    pub epoch: u64,
    pub sha256: String,
    pub ct_to: i64,
    pub data_as_of: Option<String>,
    pub file: String,
}

use crate::mssql::client::int_at as get_i64;

/// Creates the `ctferry` schema and its log table when missing.
pub fn ensure_log(db: &mut Db) -> Result<(), ApplyError> {
    let rows = db.rows("looking for the apply log", sql::applied_log_exists(), &[])?;
    if rows.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) > 0 {
        return Ok(());
    }
    ensure_schema(db, "ctferry")?;
    db.execute(sql::create_applied_log())?;
    Ok(())
}

pub fn last_applied(db: &mut Db) -> Result<Option<Applied>, ApplyError> {
    let rows = db.rows("reading the apply log", sql::last_applied(), &[])?;
    Ok(rows.first().map(|r| Applied {
        sequence: get_i64(r, 0).unwrap_or(0) as u64,
        epoch: get_i64(r, 1).unwrap_or(0) as u64,
        sha256: r
            .try_get::<&str, _>(2)
            .ok()
            .flatten()
            .unwrap_or("")
            .trim()
            .to_string(),
        ct_to: get_i64(r, 3).unwrap_or(0),
        data_as_of: r.try_get::<&str, _>(4).ok().flatten().map(str::to_string),
        file: r
            .try_get::<&str, _>(5)
            .ok()
            .flatten()
            .unwrap_or("")
            .to_string(),
    }))
}

/// What a run did, and an optional progress callback (file, rows so far).
#[derive(Default)]
pub struct ApplyReport {
    pub applied: Vec<(String, u64)>,
    pub skipped: Vec<String>,
    /// Packages fetched from the SFTP area in this run.
    pub downloaded: Vec<String>,
    pub progress: Option<Box<dyn FnMut(&str, u64)>>,
}

/// Creates schema `name` in the copy when it is missing.
fn ensure_schema(db: &mut Db, name: &str) -> Result<(), DbError> {
    let n = db.rows(
        "looking for a schema",
        sql::schema_exists(),
        &[Param::Str(name.to_string())],
    )?;
    if n.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) == 0 {
        db.execute(&sql::create_schema(name))?;
    }
    Ok(())
}

struct Loader<'a> {
    db: &'a mut Db,
    seq: u64,
    temps: Vec<String>,
    created: std::collections::HashSet<(usize, bool)>,
}

impl Loader<'_> {
    fn stage_name(&self, table: usize, keys: bool) -> String {
        format!(
            "#ctf_{}_{}_{}",
            self.seq,
            table,
            if keys { "k" } else { "r" }
        )
    }

    fn flush(
        &mut self,
        m: &Manifest,
        table: usize,
        kind: SectionKind,
        rows: &mut Vec<Vec<Value>>,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let t = &m.tables[table].schema;
        let target = qualified(&t.name);
        let keys_only = kind == SectionKind::Deletes;
        let stage = self.stage_name(table, keys_only);
        let kp = t.key_positions().unwrap_or_default();
        let schema_for_stage = if keys_only {
            TableSchema {
                name: t.name.clone(),
                columns: kp.iter().map(|p| t.columns[*p].clone()).collect(),
                key: t.key.clone(),
            }
        } else {
            t.clone()
        };
        if self.created.insert((table, keys_only)) {
            self.db
                .execute(&sql::create_table(&schema_for_stage, &stage, true))?;
            self.temps.push(stage.clone());
        }
        let types: Vec<ColumnType> = schema_for_stage
            .columns
            .iter()
            .map(|c| client::stage_type(&c.ty))
            .collect();
        self.db.bulk_load(&stage, &types, rows)?;
        let batch = sql::merge_chunk(
            t,
            &target,
            &stage,
            keys_only || m.kind == Kind::Delta,
            !keys_only,
        );
        self.db.execute(&batch)?;
        rows.clear();
        Ok(())
    }
}

fn seq_of(file: &Path) -> Option<u64> {
    let name = file.file_name()?.to_str()?;
    if !name.ends_with(package::SUFFIX) || name.len() < 11 || name.as_bytes()[10] != b'-' {
        return None;
    }
    name[..10].parse().ok()
}

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
            Err(e @ PackageError::Crypto(crate::format::crypto::CryptoError::NotForUs { .. })) => {
                not_ours.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(not_ours.unwrap_or_else(|| PackageError::Invalid("no secret key configured".into())))
}

/// Downloads the packages after sequence `last` from the caregiver's SFTP
/// area into `folder` (each via `.part`, size-checked, fsynced, renamed);
/// files already there with the right size are kept, and files of packages
/// already applied are removed from `folder` (it is a download cache; the
/// copies on the server are left alone). Returns the names downloaded.
pub fn fetch(t: &Target, folder: &Path, last: u64) -> Result<Vec<String>, ApplyError> {
    std::fs::create_dir_all(folder).map_err(|e| {
        ApplyError::Other(format!(
            "cannot create the download folder {}: {e}",
            folder.display()
        ))
    })?;
    if let Ok(rd) = std::fs::read_dir(folder) {
        for p in rd.flatten().map(|e| e.path()) {
            if seq_of(&p).is_some_and(|s| s <= last) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let sftp_err = |e: crate::sftp::SftpError| {
        ApplyError::Other(format!(
            "fetching packages over SFTP: {e}{}",
            if e.retryable() {
                " (the next run tries again)"
            } else {
                ""
            }
        ))
    };
    let c = crate::sftp::connect(t).map_err(sftp_err)?;
    let mut got = Vec::new();
    for f in c.list(package::SUFFIX).map_err(sftp_err)? {
        let dest = folder.join(&f.name);
        match seq_of(&dest) {
            Some(s) if s > last => {}
            _ => continue,
        }
        if std::fs::metadata(&dest).map(|m| m.len()).ok() == Some(f.size) {
            continue;
        }
        c.download(&f.name, f.size, &dest).map_err(sftp_err)?;
        tracing::info!(file = %f.name, bytes = f.size, "downloaded");
        got.push(f.name);
    }
    c.close();
    Ok(got)
}

/// Applies every new package in `cfg.folder`, in order. Stops at the first
/// refusal (returned as the error, after what was applied before it).
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
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&cfg.folder)
        .map_err(|e| {
            ApplyError::Other(format!(
                "cannot read the package folder {}: {e}",
                cfg.folder.display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| seq_of(&p).map(|s| (s, p)))
        .collect();
    files.sort();
    let mut i = 0;
    while i < files.len() {
        let last = last_applied(db)?;
        let (seq, path) = &files[i];
        let fname = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let last_seq = last.as_ref().map(|l| l.sequence).unwrap_or(0);
        if *seq <= last_seq {
            report.skipped.push(fname);
            i += 1;
            continue;
        }
        if *seq != last_seq + 1 {
            return Err(ApplyError::Refused {
                file: fname,
                reason: format!("package {} is missing (the last applied is {last_seq}); wait for it or ask the region to deliver it again", last_seq + 1),
            });
        }
        // One transaction for a delta, or for all parts of a snapshot.
        db.execute(sql::begin_transaction())?;
        let mut noop = |_: &str, _: u64| {};
        let progress: &mut dyn FnMut(&str, u64) = match report.progress.as_mut() {
            Some(p) => p.as_mut(),
            None => &mut noop,
        };
        let r = apply_group(cfg, db, keys, publishers, &files, &mut i, last, progress);
        match r {
            Ok(done) => {
                db.execute(sql::commit_transaction())?;
                report.applied.extend(done);
            }
            Err(e) => {
                let _ = db.execute(crate::mssql::sql::rollback_if_open());
                return Err(e);
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn apply_group(
    cfg: &ApplyConfig,
    db: &mut Db,
    keys: &[SecretKey],
    publishers: &[PublicKey],
    files: &[(u64, PathBuf)],
    i: &mut usize,
    mut last: Option<Applied>,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Vec<(String, u64)>, ApplyError> {
    let mut done = Vec::new();
    loop {
        let (seq, path) = files
            .get(*i)
            .cloned()
            .ok_or_else(|| ApplyError::Other("internal: no file".into()))?;
        let fname = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let refuse = |reason: String| ApplyError::Refused {
            file: fname.clone(),
            reason,
        };
        let pkg_err = |source: PackageError| ApplyError::Package {
            file: fname.clone(),
            source,
        };
        let mut reader = open_with_any(&path, keys, publishers).map_err(pkg_err)?;
        let m = reader.manifest().clone();
        if m.subscriber != cfg.subscriber {
            return Err(refuse(format!(
                "it is for caregiver {}, not for {}",
                m.subscriber, cfg.subscriber
            )));
        }
        if m.sequence != seq {
            return Err(refuse(format!(
                "its manifest says sequence {}, its name {seq}: it was renamed or reordered",
                m.sequence
            )));
        }
        let want_prev = last.as_ref().map(|l| l.sha256.clone());
        let got_prev = m.previous_sha256.map(|h| package::hex(&h));
        if want_prev != got_prev {
            return Err(refuse(format!(
                "its hash chain does not continue from the last applied package ({}): expected previous SHA-256 {}, found {}",
                last.as_ref().map(|l| l.file.as_str()).unwrap_or("none"),
                want_prev.as_deref().unwrap_or("none"),
                got_prev.as_deref().unwrap_or("none")
            )));
        }
        let last_epoch = last.as_ref().map(|l| l.epoch).unwrap_or(0);
        match m.kind {
            Kind::Snapshot if m.part == 1 && m.epoch <= last_epoch => {
                return Err(refuse(format!(
                    "a snapshot of epoch {} does not start a new epoch (current {last_epoch})",
                    m.epoch
                )))
            }
            Kind::Delta if m.epoch != last_epoch || last.is_none() => {
                return Err(refuse(format!(
                    "a delta of epoch {} cannot apply to a copy of epoch {last_epoch}",
                    m.epoch
                )))
            }
            _ => {}
        }
        if m.kind == Kind::Snapshot && m.part == 1 {
            for t in &m.tables {
                let target = qualified(&t.schema.name);
                if let Some((s, _)) = t.schema.name.split_once('.') {
                    ensure_schema(db, s)?;
                }
                let exists = db.rows(
                    "looking for a table",
                    sql::table_exists(),
                    &[Param::Str(t.schema.name.clone())],
                )?;
                if exists.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) > 0 {
                    db.execute(&sql::drop_table(&target))?;
                }
                db.execute(&sql::create_table(&t.schema, &target, false))?;
            }
        }
        let mut loader = Loader {
            db,
            seq,
            temps: vec![],
            created: Default::default(),
        };
        let mut buf: Vec<Vec<Value>> = Vec::new();
        let mut cur: Option<(usize, SectionKind)> = None;
        let mut n = 0u64;
        loop {
            let row = reader.next_row().map_err(pkg_err)?;
            let next = row.as_ref().map(|r| (r.table, r.kind));
            if cur.is_some() && (next != cur || buf.len() >= CHUNK) {
                let (t, k) = cur.unwrap_or((0, SectionKind::Upserts));
                loader.flush(&m, t, k, &mut buf)?;
                progress(&fname, n);
                crate::failpoint::hit("apply-mid-package");
            }
            let Some(row) = row else { break };
            cur = Some((row.table, row.kind));
            buf.push(row.values);
            n += 1;
        }
        let verified = reader.finish().map_err(pkg_err)?;
        for t in std::mem::take(&mut loader.temps) {
            loader.db.execute(&sql::drop_table(&t))?;
        }
        let sha = package::hex(&verified.file_sha256);
        let ct_from = Param::OptI64(m.ct_from);
        let as_of = m.source_commit_time.clone().unwrap_or_default();
        db.rows(
            "recording the package",
            sql::record_applied(),
            &[
                Param::I64(m.sequence as i64),
                Param::I64(m.epoch as i64),
                Param::Str(m.kind.as_str().into()),
                Param::Str(fname.clone()),
                Param::Str(sha.clone()),
                ct_from,
                Param::I64(m.ct_to),
                Param::Str(as_of),
                Param::I64(n as i64),
            ],
        )?;
        done.push((fname.clone(), n));
        last = Some(Applied {
            sequence: m.sequence,
            epoch: m.epoch,
            sha256: sha,
            ct_to: m.ct_to,
            data_as_of: m.source_commit_time.clone(),
            file: fname,
        });
        if m.kind == Kind::Snapshot && !m.last_part {
            *i += 1;
            if files.get(*i).map(|f| f.0) != Some(m.sequence + 1) {
                return Err(ApplyError::Refused {
                    file: files.get(*i - 1).map(|f| f.1.display().to_string()).unwrap_or_default(),
                    reason: format!("the snapshot continues in package {}, which is missing; nothing of it was applied", m.sequence + 1),
                });
            }
            continue;
        }
        *i += 1;
        return Ok(done);
    }
}
