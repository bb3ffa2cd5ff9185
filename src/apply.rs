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

use crate::config::{ConfigError, Secret};
use crate::crypto::{PublicKey, SecretKey};
use crate::package::{self, Kind, Manifest, PackageError, PackageReader, SectionKind, TableSchema};
use crate::source::{self, Db, DbError, Param};
use crate::sql::quote;
use crate::value::{ColumnType, Value};
use serde::Deserialize;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApply {
    target: RawTarget,
    keys: RawKeys,
    source: RawSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    connection: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

/// `secret_key = "a.sec.asc"` or, during a key rotation,
/// `secret_key = ["new.sec.asc", "old.sec.asc"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    secret_key: OneOrMany,
    passphrase_env: Option<String>,
    passphrase_file: Option<PathBuf>,
    publisher_keys: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    subscriber: String,
    folder: Option<PathBuf>,
    sftp: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    identity: Option<PathBuf>,
    identity_passphrase_env: Option<String>,
    identity_passphrase_file: Option<PathBuf>,
    host_key: Option<String>,
    known_hosts: Option<PathBuf>,
    timeout_seconds: Option<u64>,
}

/// `apply.toml`, validated.
#[derive(Debug, Clone)]
pub struct ApplyConfig {
    pub connection: String,
    pub password: Secret,
    /// The caregiver's secret key(s); a package is opened with the one it
    /// is encrypted to (more than one only during a key rotation).
    pub secret_keys: Vec<PathBuf>,
    pub passphrase: Option<Secret>,
    pub publisher_keys: Vec<PathBuf>,
    pub subscriber: String,
    /// Where packages are read from: the delivery folder, or with `sftp`
    /// the local folder they are downloaded to first.
    pub folder: PathBuf,
    /// The caregiver's SFTP area, when packages are picked up from there.
    pub sftp: Option<crate::sftp::Target>,
}

fn secret(
    file: &str,
    at: &str,
    env: &Option<String>,
    path: &Option<PathBuf>,
    base: &Path,
) -> Result<Option<Secret>, ConfigError> {
    let err = |message: String| ConfigError {
        file: file.into(),
        at: at.into(),
        message,
    };
    match (env, path) {
        (Some(_), Some(_)) => Err(err("give either *_env or *_file, not both".into())),
        (Some(v), None) => std::env::var(v)
            .map(|s| Some(Secret::new(s)))
            .map_err(|_| err(format!("environment variable {v} is not set"))),
        (None, Some(p)) => std::fs::read_to_string(base.join(p))
            .map(|t| Some(Secret::new(t.lines().next().unwrap_or("").to_string())))
            .map_err(|e| err(format!("cannot read {}: {e}", base.join(p).display()))),
        (None, None) => Ok(None),
    }
}

pub fn load_config(path: &Path) -> Result<ApplyConfig, ConfigError> {
    let file = path.display().to_string();
    let err = |at: &str, message: String| ConfigError {
        file: file.clone(),
        at: at.into(),
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err("file", format!("cannot read it: {e}")))?;
    let raw: RawApply =
        toml::from_str(&text).map_err(|e| err("syntax", e.message().to_string()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let lower = raw.target.connection.to_ascii_lowercase();
    if lower.contains("password=") || lower.contains("pwd=") {
        return Err(err(
            "[target] connection",
            "must not contain the password; use password_env or password_file".into(),
        ));
    }
    let password = secret(
        &file,
        "[target]",
        &raw.target.password_env,
        &raw.target.password_file,
        &base,
    )?
    .ok_or_else(|| err("[target]", "set password_env or password_file".into()))?;
    let passphrase = secret(
        &file,
        "[keys]",
        &raw.keys.passphrase_env,
        &raw.keys.passphrase_file,
        &base,
    )?;
    let secret_keys: Vec<PathBuf> = match &raw.keys.secret_key {
        OneOrMany::One(p) => vec![base.join(p)],
        OneOrMany::Many(v) => v.iter().map(|p| base.join(p)).collect(),
    };
    if secret_keys.is_empty() {
        return Err(err(
            "[keys] secret_key",
            "name the caregiver's secret key file".into(),
        ));
    }
    if raw.keys.publisher_keys.is_empty() {
        return Err(err(
            "[keys] publisher_keys",
            "list at least the region's public key".into(),
        ));
    }
    let src = &raw.source;
    let (folder, sftp) = match (&src.folder, &src.sftp) {
        (Some(f), None) => {
            if src.password_env.is_some()
                || src.password_file.is_some()
                || src.identity.is_some()
                || src.host_key.is_some()
                || src.known_hosts.is_some()
            {
                return Err(err("[source]", "password, identity, host_key and known_hosts belong with sftp = \"...\"; a folder needs none".into()));
            }
            (base.join(f), None)
        }
        (f, Some(url)) => {
            let timeout =
                std::time::Duration::from_secs(src.timeout_seconds.unwrap_or(60).clamp(1, 3600));
            let fields = crate::config::RawSftp {
                sftp: Some(url.clone()),
                password_env: src.password_env.clone(),
                password_file: src.password_file.clone(),
                identity: src.identity.clone(),
                identity_passphrase_env: src.identity_passphrase_env.clone(),
                identity_passphrase_file: src.identity_passphrase_file.clone(),
                host_key: src.host_key.clone(),
                known_hosts: src.known_hosts.clone(),
            };
            let t = crate::config::sftp_target(
                &file,
                "[source]",
                &fields,
                &base,
                timeout,
                crate::config::Pins::Required,
            )?;
            (
                base.join(f.clone().unwrap_or_else(|| PathBuf::from("incoming"))),
                Some(t),
            )
        }
        (None, None) => return Err(err(
            "[source]",
            "give folder = \"...\" (where packages arrive) or sftp = \"sftp://user@host:port/dir\""
                .into(),
        )),
    };
    Ok(ApplyConfig {
        connection: raw.target.connection,
        password,
        secret_keys,
        passphrase,
        publisher_keys: raw
            .keys
            .publisher_keys
            .iter()
            .map(|p| base.join(p))
            .collect(),
        subscriber: raw.source.subscriber,
        folder,
        sftp,
    })
}

impl ApplyConfig {
    /// Loads the caregiver's secret key(s) and the accepted publisher keys.
    pub fn load_keys(
        &self,
    ) -> Result<(Vec<SecretKey>, Vec<PublicKey>), crate::crypto::CryptoError> {
        let pass = self.passphrase.as_ref().map(|s| s.expose().to_string());
        let keys = self
            .secret_keys
            .iter()
            .map(|p| SecretKey::load(p, pass.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let publishers = self
            .publisher_keys
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((keys, publishers))
    }
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

use crate::source::int_at as get_i64;

/// Creates the `ctferry` schema and its log table when missing.
pub fn ensure_log(db: &mut Db) -> Result<(), ApplyError> {
    let rows = db.rows(
        "looking for the apply log",
        "SELECT COUNT(*) FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name = N'ctferry' AND t.name = N'applied'",
        &[],
    )?;
    if rows.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) > 0 {
        return Ok(());
    }
    let schemas = db.rows(
        "looking for the ctferry schema",
        "SELECT COUNT(*) FROM sys.schemas WHERE name = N'ctferry'",
        &[],
    )?;
    if schemas.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) == 0 {
        db.execute("CREATE SCHEMA ctferry")?;
    }
    db.execute(
        "CREATE TABLE ctferry.applied (sequence bigint NOT NULL PRIMARY KEY, epoch bigint NOT NULL, kind nvarchar(10) NOT NULL,
            file_name nvarchar(260) NOT NULL, sha256 char(64) NOT NULL, ct_from bigint NULL, ct_to bigint NOT NULL,
            data_as_of nvarchar(40) NULL, applied_at datetime2(3) NOT NULL, rows_applied bigint NOT NULL)",
    )?;
    Ok(())
}

pub fn last_applied(db: &mut Db) -> Result<Option<Applied>, ApplyError> {
    let rows = db.rows(
        "reading the apply log",
        "SELECT TOP 1 sequence, epoch, sha256, ct_to, data_as_of, file_name FROM ctferry.applied ORDER BY sequence DESC",
        &[],
    )?;
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

fn table_ref(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote(s), quote(t)),
        None => quote(name),
    }
}

fn create_table_sql(t: &TableSchema, name: &str, stage: bool) -> String {
    let mut cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let ty = if stage {
                source::stage_type(&c.ty)
            } else {
                c.ty
            };
            format!(
                "{} {} {}",
                quote(&c.name),
                ty,
                if c.nullable { "NULL" } else { "NOT NULL" }
            )
        })
        .collect();
    if !stage {
        cols.push(format!(
            "PRIMARY KEY ({})",
            t.key
                .iter()
                .map(|k| quote(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!("CREATE TABLE {name} ({})", cols.join(", "))
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
        let target = table_ref(&t.name);
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
                .execute(&create_table_sql(&schema_for_stage, &stage, true))?;
            self.temps.push(stage.clone());
        }
        let types: Vec<ColumnType> = schema_for_stage
            .columns
            .iter()
            .map(|c| source::stage_type(&c.ty))
            .collect();
        self.db.bulk_load(&stage, &types, rows)?;
        let on = t
            .key
            .iter()
            .map(|k| format!("t.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut batch = String::new();
        if keys_only || m.kind == Kind::Delta {
            batch.push_str(&format!(
                "DELETE t FROM {target} AS t JOIN {stage} AS s ON {on}; "
            ));
        }
        if !keys_only {
            let cols = t
                .columns
                .iter()
                .map(|c| quote(&c.name))
                .collect::<Vec<_>>()
                .join(", ");
            let sel = t
                .columns
                .iter()
                .map(|c| {
                    if source::stage_type(&c.ty) != c.ty {
                        format!("CAST(s.{} AS {})", quote(&c.name), c.ty)
                    } else {
                        format!("s.{}", quote(&c.name))
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            batch.push_str(&format!(
                "INSERT INTO {target} ({cols}) SELECT {sel} FROM {stage} AS s; "
            ));
        }
        batch.push_str(&format!("TRUNCATE TABLE {stage};"));
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
            Err(e @ PackageError::Crypto(crate::crypto::CryptoError::NotForUs { .. })) => {
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
pub fn fetch(t: &crate::sftp::Target, folder: &Path, last: u64) -> Result<Vec<String>, ApplyError> {
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
        db.execute("SET XACT_ABORT ON; BEGIN TRANSACTION")?;
        let mut noop = |_: &str, _: u64| {};
        let progress: &mut dyn FnMut(&str, u64) = match report.progress.as_mut() {
            Some(p) => p.as_mut(),
            None => &mut noop,
        };
        let r = apply_group(cfg, db, keys, publishers, &files, &mut i, last, progress);
        match r {
            Ok(done) => {
                db.execute("COMMIT TRANSACTION")?;
                report.applied.extend(done);
            }
            Err(e) => {
                let _ = db.execute("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION");
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
                let target = table_ref(&t.schema.name);
                if let Some((s, _)) = t.schema.name.split_once('.') {
                    let n = db.rows(
                        "looking for a schema",
                        "SELECT COUNT(*) FROM sys.schemas WHERE name = @P1",
                        &[Param::Str(s.to_string())],
                    )?;
                    if n.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) == 0 {
                        db.execute(&format!("CREATE SCHEMA {}", quote(s)))?;
                    }
                }
                let exists = db.rows(
                    "looking for a table",
                    "SELECT COUNT(*) FROM sys.tables WHERE object_id = OBJECT_ID(@P1)",
                    &[Param::Str(t.schema.name.clone())],
                )?;
                if exists.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) > 0 {
                    db.execute(&format!("DROP TABLE {target}"))?;
                }
                db.execute(&create_table_sql(&t.schema, &target, false))?;
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
                crate::publish::failpoint("apply-mid-package");
            }
            let Some(row) = row else { break };
            cur = Some((row.table, row.kind));
            buf.push(row.values);
            n += 1;
        }
        let verified = reader.finish().map_err(pkg_err)?;
        for t in std::mem::take(&mut loader.temps) {
            loader.db.execute(&format!("DROP TABLE {t}"))?;
        }
        let sha = package::hex(&verified.file_sha256);
        let sql = "INSERT INTO ctferry.applied (sequence, epoch, kind, file_name, sha256, ct_from, ct_to, data_as_of, applied_at, rows_applied)
                   VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, SYSUTCDATETIME(), @P9)";
        let ct_from = Param::OptI64(m.ct_from);
        let as_of = m.source_commit_time.clone().unwrap_or_default();
        db.rows(
            "recording the package",
            sql,
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
