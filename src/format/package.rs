//! The package: the only thing that leaves the region for a caregiver.
//! Formats 1 and 2 are specified in docs/FORMAT.md; this module writes and
//! reads them (format 2 only adds table changes, `format::change`, and is
//! written only by a package that carries one).
//!
//! Writing: rows are encoded (CBOR) into per-table buffers of the current
//! part; when a part reaches its size limit (or at `finish`) it is sealed:
//! header, manifest, sections and trailer → zstd → OpenPGP sign+encrypt →
//! `<name>.tmp` → fsync → rename to `<name>` → fsync of the folder. A package
//! file therefore either exists complete under its final name or not at all.
//! Memory is bounded by the part size (plus zstd's window and OpenPGP's 1 MiB
//! chunk), whatever the size of a snapshot.
//!
//! Reading is streaming and checks every byte (magic, format, manifest,
//! section order, counts, each value against its column type, the trailer's
//! digest, the OpenPGP integrity check and signature). Rows handed out before
//! `PackageReader::finish` returns Ok are not yet authenticated: a caller
//! applies them inside a transaction it commits only after `finish`.
//!
//! This module never logs values and never writes plaintext to disk.

use crate::format::cbor::{DecodeError, Decoder, Encoder, Item, Limits};
use crate::format::change::{self, TableChange};
use crate::format::crypto::{self, CryptoError, PublicKey, SecretKey};
use crate::format::schema::decode_column;
pub use crate::format::schema::{is_collation_name, ColumnSchema, TableSchema};
use crate::format::value::{self, Value};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// The newest format version this build writes and reads (it reads every
/// version from 1 up to this one).
pub const FORMAT_VERSION: u64 = 2;
/// The format of a package without table changes (what every reader reads).
pub const FORMAT_PLAIN: u64 = 1;
/// The header's magic string.
pub const MAGIC: &str = "ctferry package";
/// File name suffix of a package.
pub const SUFFIX: &str = ".ctf.pgp";
/// Default part size: uncompressed row bytes per package before a snapshot
/// continues in the next part.
pub const DEFAULT_PART_BYTES: usize = 64 << 20;

/// Snapshot (the whole filtered copy at one version) or delta (changes).
/// Stored (state records) and written (manifests) as `snapshot` / `delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Snapshot,
    Delta,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Delta => "delta",
        }
    }
}

/// A table in a manifest, with its row counts in this package.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub schema: TableSchema,
    pub upserts: u64,
    pub deletes: u64,
    /// What happens to the copy's table before its rows (format 2).
    pub change: Option<TableChange>,
}

/// Everything a package says about itself before its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub publisher: String,
    pub subscriber: String,
    pub epoch: u64,
    pub sequence: u64,
    pub kind: Kind,
    /// 1-based part number; deltas have one part.
    pub part: u32,
    /// Whether this is the last part of its snapshot (always true for deltas).
    pub last_part: bool,
    /// SHA-256 of the previous package file of this subscriber (None for its first).
    pub previous_sha256: Option<[u8; 32]>,
    /// Change tracking version the changes start after (None for a snapshot).
    pub ct_from: Option<i64>,
    /// Change tracking version the package brings the copy to.
    pub ct_to: i64,
    /// Commit time (UTC, RFC 3339) at the source of version `ct_to`, if known.
    pub source_commit_time: Option<String>,
    /// When the package was made (UTC, RFC 3339).
    pub created_at: String,
    pub tables: Vec<TableEntry>,
}

impl Manifest {
    /// The format this manifest is written in: 2 when a table carries a
    /// change, else 1 (readable by every ctferry).
    pub fn format(&self) -> u64 {
        if self.tables.iter().any(|t| t.change.is_some()) {
            FORMAT_VERSION
        } else {
            FORMAT_PLAIN
        }
    }

    /// The file name: `<seq:010>-<kind>-<from>-<to>.ctf.pgp`.
    pub fn file_name(&self) -> String {
        format!(
            "{:010}-{}-{}-{}{SUFFIX}",
            self.sequence,
            self.kind.as_str(),
            self.ct_from.unwrap_or(0),
            self.ct_to,
            SUFFIX = SUFFIX
        )
    }
}

/// What goes wrong writing or reading a package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the package's compressed data is corrupt (zstd: {0}); the file is damaged, ask for it to be delivered again")]
    CorruptZstd(String),
    #[error("this is not a ctferry package (no ctferry header after decryption)")]
    NotAPackage,
    #[error("the package has format version {0}; this ctferry reads formats 1 to {FORMAT_VERSION}: upgrade ctferry (nothing was applied; the package applies once ctferry is upgraded)")]
    UnknownFormat(u64),
    #[error("the package is malformed at {at}: {detail}")]
    Malformed { at: String, detail: String },
    #[error("{what} {path}: {source}{}", crate::private::disk_full_hint(source))]
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn malformed(at: impl Into<String>, detail: impl Into<String>) -> PackageError {
    PackageError::Malformed {
        at: at.into(),
        detail: detail.into(),
    }
}

// ------------------------------------------------------------------ writing

/// Where and how packages are written for one subscriber.
pub struct WriterConfig<'k> {
    pub out_dir: PathBuf,
    pub signer: &'k SecretKey,
    pub recipient: &'k PublicKey,
    /// Uncompressed row bytes per part (see `DEFAULT_PART_BYTES`).
    pub part_bytes: usize,
    /// zstd level (3 by default).
    pub zstd_level: i32,
    /// zstd worker threads (0: compress on the writer's own thread);
    /// `default_zstd_workers()` by default.
    pub zstd_workers: u32,
}

/// zstd worker threads by default: one per CPU, at most 4.
pub fn default_zstd_workers() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(1)
}

/// One package file written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub file_name: String,
    pub manifest: Manifest,
    pub sha256: [u8; 32],
    pub bytes: u64,
}

struct TableBuf {
    schema: TableSchema,
    change: Option<TableChange>,
    key_pos: Vec<usize>,
    upserts: Encoder,
    n_upserts: u64,
    deletes: Encoder,
    n_deletes: u64,
}

/// Writes one logical package (a delta, or a snapshot in as many parts as
/// its size needs) for one subscriber.
pub struct PackageWriter<'k> {
    cfg: WriterConfig<'k>,
    /// The manifest of the next part (tables, counts and sequence filled in when sealed).
    template: Manifest,
    tables: Vec<TableBuf>,
    buffered: usize,
    written: Vec<Written>,
}

impl<'k> PackageWriter<'k> {
    /// `template` carries publisher, subscriber, epoch, the first sequence
    /// number, kind, versions, times and the previous hash; its `tables`,
    /// `part` and `last_part` are set by the writer.
    pub fn new(cfg: WriterConfig<'k>, mut template: Manifest) -> PackageWriter<'k> {
        template.tables.clear();
        template.part = 1;
        template.last_part = true;
        PackageWriter {
            cfg,
            template,
            tables: Vec::new(),
            buffered: 0,
            written: Vec::new(),
        }
    }

    /// As `new`, for a snapshot continued from part `part` (its sequence
    /// and previous hash in `template`): a snapshot written in steps.
    pub fn continuing(cfg: WriterConfig<'k>, template: Manifest, part: u32) -> PackageWriter<'k> {
        let mut w = PackageWriter::new(cfg, template);
        w.template.part = part.max(1);
        w
    }

    /// Seals what is buffered as a part that is not the last (nothing when
    /// no row was added since the last part) and returns every file
    /// written: a step of a snapshot ends here, its parts registered before
    /// the next step begins.
    pub fn finish_part(mut self) -> Result<Vec<Written>, PackageError> {
        if self.template.kind != Kind::Snapshot {
            return Err(PackageError::Invalid(
                "only a snapshot continues in another part".into(),
            ));
        }
        if self.buffered > 0 || self.tables.iter().any(|t| t.n_upserts + t.n_deletes > 0) {
            self.seal_part(false)?;
        }
        Ok(self.written)
    }

    /// Declares a table; returns its handle for `upsert`/`delete`.
    pub fn add_table(&mut self, schema: TableSchema) -> Result<usize, PackageError> {
        self.add_changed_table(schema, None)
    }

    /// Declares a table with what happens to the copy's table before its
    /// rows (a delta only: a snapshot re-creates every table anyway).
    pub fn add_changed_table(
        &mut self,
        schema: TableSchema,
        change: Option<TableChange>,
    ) -> Result<usize, PackageError> {
        if change.is_some() && self.template.kind == Kind::Snapshot {
            return Err(PackageError::Invalid(format!(
                "table {}: a snapshot carries no table change",
                schema.name
            )));
        }
        let key_pos = schema.key_positions().ok_or_else(|| {
            PackageError::Invalid(format!(
                "table {}: a key column is not among its columns",
                schema.name
            ))
        })?;
        if key_pos.is_empty() {
            return Err(PackageError::Invalid(format!(
                "table {} has no key columns",
                schema.name
            )));
        }
        self.tables.push(TableBuf {
            schema,
            change,
            key_pos,
            upserts: Encoder::new(),
            n_upserts: 0,
            deletes: Encoder::new(),
            n_deletes: 0,
        });
        Ok(self.tables.len() - 1)
    }

    fn check_row(t: &TableBuf, row: &[Value]) -> Result<(), PackageError> {
        if row.len() != t.schema.columns.len() {
            return Err(PackageError::Invalid(format!(
                "table {}: a row has {} values for {} columns",
                t.schema.name,
                row.len(),
                t.schema.columns.len()
            )));
        }
        for (c, v) in t.schema.columns.iter().zip(row) {
            if matches!(v, Value::Null) && !c.nullable {
                return Err(PackageError::Invalid(format!(
                    "table {}: NULL in NOT NULL column {}",
                    t.schema.name, c.name
                )));
            }
            value::check(&c.ty, v).map_err(|e| {
                PackageError::Invalid(format!("table {} column {}: {e}", t.schema.name, c.name))
            })?;
        }
        Ok(())
    }

    /// Adds a full row (all columns, masked ones already masked).
    pub fn upsert(&mut self, table: usize, row: &[Value]) -> Result<(), PackageError> {
        let t = &mut self.tables[table];
        if t.change
            .as_ref()
            .is_some_and(|c| c.action == change::TableAction::Drop)
        {
            return Err(PackageError::Invalid(format!(
                "table {}: a row in a dropped table",
                t.schema.name
            )));
        }
        Self::check_row(t, row)?;
        let before = t.upserts.buf.len();
        t.upserts.array(row.len());
        for v in row {
            value::encode(&mut t.upserts, v);
        }
        t.n_upserts += 1;
        self.buffered += t.upserts.buf.len() - before;
        self.maybe_flush()
    }

    /// Adds a delete by key (key values in key order).
    pub fn delete(&mut self, table: usize, key: &[Value]) -> Result<(), PackageError> {
        let t = &mut self.tables[table];
        if let Some(c) = t
            .change
            .as_ref()
            .filter(|c| c.reloads() || c.action == change::TableAction::Drop)
        {
            return Err(PackageError::Invalid(format!(
                "table {}: a delete in a table whose change is {}",
                t.schema.name,
                c.name()
            )));
        }
        if key.len() != t.key_pos.len() {
            return Err(PackageError::Invalid(format!(
                "table {}: a delete has {} key values for {} key columns",
                t.schema.name,
                key.len(),
                t.key_pos.len()
            )));
        }
        for (p, v) in t.key_pos.iter().zip(key) {
            let c = &t.schema.columns[*p];
            if matches!(v, Value::Null) {
                return Err(PackageError::Invalid(format!(
                    "table {}: NULL in key column {}",
                    t.schema.name, c.name
                )));
            }
            value::check(&c.ty, v).map_err(|e| {
                PackageError::Invalid(format!("table {} column {}: {e}", t.schema.name, c.name))
            })?;
        }
        let before = t.deletes.buf.len();
        t.deletes.array(key.len());
        for v in key {
            value::encode(&mut t.deletes, v);
        }
        t.n_deletes += 1;
        self.buffered += t.deletes.buf.len() - before;
        self.maybe_flush()
    }

    fn maybe_flush(&mut self) -> Result<(), PackageError> {
        if self.buffered >= self.cfg.part_bytes {
            self.seal_part(false)?;
        }
        Ok(())
    }

    /// Seals the last part and returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<Written>, PackageError> {
        self.seal_part(true)?;
        Ok(self.written)
    }

    fn seal_part(&mut self, last: bool) -> Result<(), PackageError> {
        if !last && self.template.kind == Kind::Delta {
            // A delta is one package whatever its size: its versions cannot be split.
            return Ok(());
        }
        let mut m = self.template.clone();
        m.last_part = last;
        m.tables = self
            .tables
            .iter()
            .map(|t| TableEntry {
                schema: t.schema.clone(),
                upserts: t.n_upserts,
                deletes: t.n_deletes,
                change: t.change.clone(),
            })
            .collect();
        let mut sections: Vec<Vec<u8>> = Vec::new();
        let mut n_sections = 0u64;
        let (mut ups, mut dels) = (0u64, 0u64);
        for (i, t) in self.tables.iter_mut().enumerate() {
            for (kind, enc, n) in [
                ("deletes", &mut t.deletes, &mut t.n_deletes),
                ("upserts", &mut t.upserts, &mut t.n_upserts),
            ] {
                if *n == 0 {
                    continue;
                }
                let mut h = Encoder::new();
                h.map(3);
                h.text("section");
                h.text(kind);
                h.text("table");
                h.uint(i as u64);
                h.text("rows");
                h.uint(*n);
                sections.push(h.buf);
                sections.push(std::mem::take(&mut enc.buf));
                n_sections += 1;
                if kind == "deletes" {
                    dels += *n;
                } else {
                    ups += *n;
                }
                *n = 0;
            }
        }
        self.buffered = 0;
        let mut head = Encoder::new();
        head.map(2);
        head.text("magic");
        head.text(MAGIC);
        head.text("format");
        head.uint(m.format());
        encode_manifest(&mut head, &m);
        let mut digest = Sha256::new();
        digest.update(&head.buf);
        for s in &sections {
            digest.update(s);
        }
        let mut tail = Encoder::new();
        tail.map(5);
        tail.text("end");
        tail.bool(true);
        tail.text("sections");
        tail.uint(n_sections);
        tail.text("upserts");
        tail.uint(ups);
        tail.text("deletes");
        tail.uint(dels);
        tail.text("sha256");
        tail.bytes(&digest.finalize());
        let plain = std::iter::once(head.buf)
            .chain(sections)
            .chain(std::iter::once(tail.buf))
            .map(io::Cursor::new)
            .fold(Box::new(io::empty()) as Box<dyn Read + Send>, |acc, c| {
                Box::new(acc.chain(c))
            });
        let written = self.write_file(&m, plain)?;
        self.template.previous_sha256 = Some(written.sha256);
        self.template.sequence += 1;
        self.template.part += 1;
        self.written.push(written);
        Ok(())
    }

    fn write_file(
        &self,
        m: &Manifest,
        plain: Box<dyn Read + Send>,
    ) -> Result<Written, PackageError> {
        let name = m.file_name();
        let path = self.cfg.out_dir.join(&name);
        let tmp = self.cfg.out_dir.join(format!("{name}.tmp"));
        let file_err = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| PackageError::File {
                what,
                path: p,
                source,
            }
        };
        let file = File::create(&tmp).map_err(file_err("cannot create", &tmp))?;
        let mut out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        // Two stages on two threads, like `zstd | gpg`: this one compresses
        // into a pipe, the caller's thread signs and encrypts from it.
        let (pipe_r, pipe_w) = io::pipe().map_err(file_err("cannot create a pipe for", &tmp))?;
        let level = self.cfg.zstd_level;
        let workers = self.cfg.zstd_workers;
        let (sealed, compressed) = std::thread::scope(|s| {
            let zstd_stage = s.spawn(move || -> io::Result<()> {
                let mut plain = plain;
                let mut enc = zstd::stream::write::Encoder::new(
                    BufWriter::with_capacity(1 << 20, pipe_w),
                    level,
                )?;
                enc.multithread(workers)?;
                io::copy(&mut plain, &mut enc)?;
                enc.finish()?.flush()
            });
            let sealed = crypto::seal(
                io::BufReader::with_capacity(1 << 20, pipe_r),
                self.cfg.signer,
                self.cfg.recipient,
                &mut out,
            );
            let compressed = zstd_stage
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the compression thread panicked")));
            (sealed, compressed)
        });
        // A compression failure must not leave a short but valid-looking package.
        let failed = match (sealed, compressed) {
            (Err(e), _) => Some(PackageError::from(e)),
            (Ok(()), Err(e)) => Some(PackageError::CorruptZstd(e.to_string())),
            (Ok(()), Ok(())) => None,
        };
        if let Some(e) = failed {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let HashingWriter { inner, hash, bytes } = out;
        // Whatever fails from here (a full disk, most likely), the
        // unfinished file goes: it was never registered.
        let finished = inner
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(file_err("cannot write", &tmp))
            .and_then(|file| file.sync_all().map_err(file_err("cannot sync", &tmp)))
            .and_then(|()| {
                std::fs::rename(&tmp, &path).map_err(file_err("cannot rename into place", &path))
            });
        if let Err(e) = finished {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Ok(dir) = File::open(&self.cfg.out_dir) {
            let _ = dir.sync_all();
        }
        Ok(Written {
            path,
            file_name: name,
            manifest: m.clone(),
            sha256: hash.finalize().into(),
            bytes,
        })
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn encode_manifest(e: &mut Encoder, m: &Manifest) {
    e.map(13);
    e.text("publisher");
    e.text(&m.publisher);
    e.text("subscriber");
    e.text(&m.subscriber);
    e.text("epoch");
    e.uint(m.epoch);
    e.text("sequence");
    e.uint(m.sequence);
    e.text("kind");
    e.text(m.kind.as_str());
    e.text("part");
    e.map(2);
    e.text("index");
    e.uint(m.part as u64);
    e.text("last");
    e.bool(m.last_part);
    e.text("previous_sha256");
    match &m.previous_sha256 {
        Some(h) => e.bytes(h),
        None => e.null(),
    }
    e.text("ct_from");
    match m.ct_from {
        Some(v) => e.int(v),
        None => e.null(),
    }
    e.text("ct_to");
    e.int(m.ct_to);
    e.text("source_commit_time");
    match &m.source_commit_time {
        Some(t) => e.text(t),
        None => e.null(),
    }
    e.text("created_at");
    e.text(&m.created_at);
    e.text("format");
    e.uint(m.format());
    e.text("tables");
    e.array(m.tables.len());
    for t in &m.tables {
        e.map(5 + usize::from(t.change.is_some()));
        e.text("name");
        e.text(&t.schema.name);
        e.text("columns");
        e.array(t.schema.columns.len());
        for c in &t.schema.columns {
            crate::format::schema::encode_column(e, c);
        }
        e.text("key");
        e.array(t.schema.key.len());
        for k in &t.schema.key {
            e.text(k);
        }
        e.text("upserts");
        e.uint(t.upserts);
        e.text("deletes");
        e.uint(t.deletes);
        if let Some(c) = &t.change {
            e.text("change");
            change::encode(e, c);
        }
    }
}

/// Reads the manifest of a package whose header says `header_format`.
fn decode_manifest(item: &Item, header_format: u64) -> Result<Manifest, PackageError> {
    let at = "manifest";
    let field = |k: &str| {
        item.get(k)
            .ok_or_else(|| malformed(at, format!("missing '{k}'")))
    };
    let text = |k: &str| -> Result<String, PackageError> {
        field(k)?
            .as_text()
            .map(str::to_string)
            .ok_or_else(|| malformed(at, format!("'{k}' is not text")))
    };
    let uint = |k: &str| -> Result<u64, PackageError> {
        field(k)?
            .as_u64()
            .ok_or_else(|| malformed(at, format!("'{k}' is not an unsigned integer")))
    };
    let opt_int = |k: &str| -> Result<Option<i64>, PackageError> {
        match field(k)? {
            Item::Null => Ok(None),
            Item::Int(i) => i64::try_from(*i)
                .map(Some)
                .map_err(|_| malformed(at, format!("'{k}' is out of range"))),
            _ => Err(malformed(at, format!("'{k}' is not an integer"))),
        }
    };
    let format = uint("format")?;
    if format != header_format {
        return Err(malformed(
            at,
            format!("format {format} differs from the header's {header_format}"),
        ));
    }
    let kind = match text("kind")?.as_str() {
        "snapshot" => Kind::Snapshot,
        "delta" => Kind::Delta,
        other => return Err(malformed(at, format!("unknown kind '{other}'"))),
    };
    let part = field("part")?;
    let part_index = part
        .get("index")
        .and_then(Item::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| malformed(at, "'part.index' is not a positive integer"))?;
    let last_part = part
        .get("last")
        .and_then(Item::as_bool)
        .ok_or_else(|| malformed(at, "'part.last' is not a boolean"))?;
    let previous_sha256 = match field("previous_sha256")? {
        Item::Null => None,
        Item::Bytes(b) if b.len() == 32 => {
            let mut h = [0u8; 32];
            h.copy_from_slice(b);
            Some(h)
        }
        _ => return Err(malformed(at, "'previous_sha256' is not 32 bytes or null")),
    };
    let source_commit_time = match field("source_commit_time")? {
        Item::Null => None,
        Item::Text(t) => Some(t.clone()),
        _ => return Err(malformed(at, "'source_commit_time' is not text or null")),
    };
    let ct_to = opt_int("ct_to")?.ok_or_else(|| malformed(at, "'ct_to' is null"))?;
    let mut tables = Vec::new();
    for (i, t) in field("tables")?
        .as_array()
        .ok_or_else(|| malformed(at, "'tables' is not an array"))?
        .iter()
        .enumerate()
    {
        let tat = format!("manifest table {i}");
        let name = t
            .get("name")
            .and_then(Item::as_text)
            .ok_or_else(|| malformed(&tat, "no name"))?
            .to_string();
        let mut columns = Vec::new();
        for c in t
            .get("columns")
            .and_then(Item::as_array)
            .ok_or_else(|| malformed(&tat, "no columns"))?
        {
            columns.push(decode_column(c).map_err(|d| malformed(&tat, d))?);
        }
        let key: Vec<String> = t
            .get("key")
            .and_then(Item::as_array)
            .ok_or_else(|| malformed(&tat, "no key"))?
            .iter()
            .map(|k| k.as_text().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| malformed(&tat, "a key column name is not text"))?;
        let schema = TableSchema { name, columns, key };
        if schema.key.is_empty() || schema.key_positions().is_none() {
            return Err(malformed(&tat, "the key names no column of the table"));
        }
        let count = |k: &str| {
            t.get(k)
                .and_then(Item::as_u64)
                .ok_or_else(|| malformed(&tat, format!("'{k}' is not a count")))
        };
        let (upserts, deletes) = (count("upserts")?, count("deletes")?);
        // Format 1 readers ignore unknown keys; a `change` means something
        // only in format 2.
        let change = match t.get("change") {
            Some(c) if format >= 2 => {
                if kind == Kind::Snapshot {
                    return Err(malformed(&tat, "a snapshot carries a table change"));
                }
                Some(
                    change::decode(c, &schema, upserts, deletes, decode_column)
                        .map_err(|d| malformed(format!("{tat} change"), d))?,
                )
            }
            _ => None,
        };
        tables.push(TableEntry {
            upserts,
            deletes,
            schema,
            change,
        });
    }
    Ok(Manifest {
        publisher: text("publisher")?,
        subscriber: text("subscriber")?,
        epoch: uint("epoch")?,
        sequence: uint("sequence")?,
        kind,
        part: part_index,
        last_part,
        previous_sha256,
        ct_from: opt_int("ct_from")?,
        ct_to,
        source_commit_time,
        created_at: text("created_at")?,
        tables,
    })
}

// ------------------------------------------------------------------ reading

/// Reads through, counting and hashing the bytes that pass.
struct HashingReader<R: Read> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Remembers whether an error came from the OpenPGP layer (so that it is not
/// mistaken for corrupt zstd data).
struct Tap<R: Read> {
    inner: R,
    failed: Rc<Cell<bool>>,
    error: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.failed.set(true);
                let copy = io::Error::new(e.kind(), e.to_string());
                *self.error.borrow_mut() = Some(e);
                Err(copy)
            }
        }
    }
}

/// The package file, hashed as OpenPGP reads it (shared so that the hash can
/// be read after OpenPGP is done).
type FileHash = Arc<Mutex<HashingReader<BufReader<File>>>>;

/// A `BufRead` over the shared, hashing file reader (OpenPGP needs BufRead).
struct SharedFile {
    inner: FileHash,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl std::fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedFile")
    }
}

impl Read for SharedFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = io::BufRead::fill_buf(self)?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl io::BufRead for SharedFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.len {
            let mut f = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            self.len = f.read(&mut self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.len])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

/// Which kind of rows a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Whole rows to insert or replace by key.
    Upserts,
    /// Keys of rows to delete.
    Deletes,
}

/// A row read from a package.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index into `Manifest::tables`.
    pub table: usize,
    pub kind: SectionKind,
    /// All columns (upserts) or the key columns in key order (deletes).
    pub values: Vec<Value>,
}

/// What a successful read proved.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Fingerprint of the publisher key that signed the package.
    pub signer: String,
    /// SHA-256 of the package file (what the next package's `previous_sha256` must be).
    pub file_sha256: [u8; 32],
    pub file_bytes: u64,
}

type Plain<'a> =
    HashingReader<zstd::stream::read::Decoder<'static, BufReader<Tap<crypto::Opened<'a>>>>>;

/// Streams one package: manifest first, then rows; `finish` proves it.
pub struct PackageReader<'a> {
    decoder: Decoder<Plain<'a>>,
    file: FileHash,
    tap_failed: Rc<Cell<bool>>,
    tap_error: Rc<RefCell<Option<io::Error>>>,
    manifest: Manifest,
    /// Sections still expected: (table, kind, rows).
    expected: std::collections::VecDeque<(usize, SectionKind, u64)>,
    /// The section being read and the rows left in it.
    current: Option<(usize, SectionKind, u64)>,
    sections_seen: u64,
}

/// Limits for reading a package: values up to 1 GiB, rows up to 4096 columns.
fn limits() -> Limits {
    Limits {
        max_string: 1 << 30,
        max_items: 1 << 16,
        max_depth: 8,
    }
}

impl<'a> PackageReader<'a> {
    /// Opens and decrypts `path` with `key`, and reads its header and manifest.
    pub fn open(
        path: &Path,
        key: &'a SecretKey,
        publishers: &[PublicKey],
    ) -> Result<PackageReader<'a>, PackageError> {
        let file = crate::private::open_regular(path).map_err(|source| PackageError::File {
            what: "cannot open",
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileHash = Arc::new(Mutex::new(HashingReader {
            inner: BufReader::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        }));
        let shared = SharedFile {
            inner: file.clone(),
            buf: vec![0u8; 1 << 16],
            pos: 0,
            len: 0,
        };
        let opened = crypto::open(shared, key, publishers)?;
        let failed = Rc::new(Cell::new(false));
        let error = Rc::new(RefCell::new(None));
        let tap = Tap {
            inner: opened,
            failed: failed.clone(),
            error: error.clone(),
        };
        let zstd = zstd::stream::read::Decoder::new(tap)
            .map_err(|e| PackageError::CorruptZstd(e.to_string()))?;
        let plain = HashingReader {
            inner: zstd,
            hash: Sha256::new(),
            bytes: 0,
        };
        let mut r = PackageReader {
            decoder: Decoder::new(plain, limits()),
            file,
            tap_failed: failed,
            tap_error: error,
            manifest: Manifest {
                publisher: String::new(),
                subscriber: String::new(),
                epoch: 0,
                sequence: 0,
                kind: Kind::Delta,
                part: 1,
                last_part: true,
                previous_sha256: None,
                ct_from: None,
                ct_to: 0,
                source_commit_time: None,
                created_at: String::new(),
                tables: vec![],
            },
            expected: Default::default(),
            current: None,
            sections_seen: 0,
        };
        let header = r.item("header")?;
        if header.get("magic").and_then(Item::as_text) != Some(MAGIC) {
            return Err(PackageError::NotAPackage);
        }
        let format = match header.get("format").and_then(Item::as_u64) {
            Some(v @ FORMAT_PLAIN..=FORMAT_VERSION) => v,
            Some(v) => return Err(PackageError::UnknownFormat(v)),
            None => return Err(PackageError::NotAPackage),
        };
        let m = r.item("manifest")?;
        r.manifest = decode_manifest(&m, format)?;
        for (i, t) in r.manifest.tables.iter().enumerate() {
            if t.deletes > 0 {
                r.expected.push_back((i, SectionKind::Deletes, t.deletes));
            }
            if t.upserts > 0 {
                r.expected.push_back((i, SectionKind::Upserts, t.upserts));
            }
        }
        Ok(r)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Maps a decoding failure to the layer that caused it.
    fn fail(&self, at: &str, e: DecodeError) -> PackageError {
        if self.tap_failed.get() {
            let inner = self
                .tap_error
                .borrow_mut()
                .take()
                .unwrap_or_else(|| io::Error::other("OpenPGP read failed"));
            return PackageError::Crypto(crypto::read_error(inner));
        }
        match e {
            DecodeError::Io(io) => PackageError::CorruptZstd(io.to_string()),
            DecodeError::End | DecodeError::Truncated => {
                malformed(at, "the package data ends early")
            }
            DecodeError::Invalid(d) => malformed(at, d),
        }
    }

    fn item(&mut self, at: &str) -> Result<Item, PackageError> {
        match self.decoder.next_item() {
            Ok(i) => Ok(i),
            Err(e) => Err(self.fail(at, e)),
        }
    }

    /// The next row, or None after the last one (then call `finish`).
    pub fn next_row(&mut self) -> Result<Option<Row>, PackageError> {
        loop {
            if let Some((table, kind, left)) = self.current {
                if left > 0 {
                    let at = format!(
                        "table {} {}",
                        self.manifest.tables[table].schema.name,
                        if kind == SectionKind::Upserts {
                            "upserts"
                        } else {
                            "deletes"
                        }
                    );
                    let item = self.item(&at)?;
                    let values = self.decode_row(table, kind, &item, &at)?;
                    self.current = Some((table, kind, left - 1));
                    return Ok(Some(Row {
                        table,
                        kind,
                        values,
                    }));
                }
                self.current = None;
            }
            let Some((table, kind, rows)) = self.expected.pop_front() else {
                return Ok(None);
            };
            let item = self.item("section header")?;
            let want_kind = if kind == SectionKind::Upserts {
                "upserts"
            } else {
                "deletes"
            };
            let ok = item.get("section").and_then(Item::as_text) == Some(want_kind)
                && item.get("table").and_then(Item::as_u64) == Some(table as u64)
                && item.get("rows").and_then(Item::as_u64) == Some(rows);
            if !ok {
                return Err(malformed(
                    "section header",
                    format!(
                        "expected {want_kind} of table {} with {rows} rows as the manifest says",
                        self.manifest.tables[table].schema.name
                    ),
                ));
            }
            self.sections_seen += 1;
            self.current = Some((table, kind, rows));
        }
    }

    fn decode_row(
        &self,
        table: usize,
        kind: SectionKind,
        item: &Item,
        at: &str,
    ) -> Result<Vec<Value>, PackageError> {
        let schema = &self.manifest.tables[table].schema;
        let cols: Vec<&ColumnSchema> = match kind {
            SectionKind::Upserts => schema.columns.iter().collect(),
            SectionKind::Deletes => schema
                .key_positions()
                .unwrap_or_default()
                .into_iter()
                .map(|p| &schema.columns[p])
                .collect(),
        };
        let items = item
            .as_array()
            .ok_or_else(|| malformed(at, "a row is not an array"))?;
        if items.len() != cols.len() {
            return Err(malformed(
                at,
                format!(
                    "a row has {} values for {} columns",
                    items.len(),
                    cols.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(cols.len());
        for (c, it) in cols.iter().zip(items) {
            let v = value::decode(&c.ty, it)
                .map_err(|e| malformed(at, format!("column {}: {e}", c.name)))?;
            let key_col = kind == SectionKind::Deletes || schema.key.contains(&c.name);
            if matches!(v, Value::Null) && (!c.nullable || key_col) {
                return Err(malformed(at, format!("NULL in NOT NULL column {}", c.name)));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Reads the trailer, checks counts and digest, then the OpenPGP
    /// integrity and signature. Only after Ok is the package authentic.
    pub fn finish(mut self) -> Result<Verified, PackageError> {
        while self.next_row()?.is_some() {}
        let digest: [u8; 32] = self.decoder.get_mut().hash.clone().finalize().into();
        let trailer = self.item("trailer")?;
        let (ups, dels) = self
            .manifest
            .tables
            .iter()
            .fold((0, 0), |(u, d), t| (u + t.upserts, d + t.deletes));
        let ok = trailer.get("end").and_then(Item::as_bool) == Some(true)
            && trailer.get("sections").and_then(Item::as_u64) == Some(self.sections_seen)
            && trailer.get("upserts").and_then(Item::as_u64) == Some(ups)
            && trailer.get("deletes").and_then(Item::as_u64) == Some(dels);
        if !ok {
            return Err(malformed("trailer", "its counts do not match the manifest"));
        }
        match trailer.get("sha256") {
            Some(Item::Bytes(b)) if b.as_slice() == digest => {}
            _ => {
                return Err(malformed(
                    "trailer",
                    "the digest does not match the content",
                ))
            }
        }
        match self.decoder.next_item() {
            Err(DecodeError::End) => {}
            Ok(_) => return Err(malformed("after the trailer", "unexpected data")),
            Err(e) => return Err(self.fail("after the trailer", e)),
        }
        // Hand back the OpenPGP layer to check integrity and signature.
        let PackageReader { decoder, file, .. } = self;
        let opened = decoder.into_inner().inner.finish().into_inner().inner;
        let signer = opened.finish()?;
        // The file hash covers the whole file, whatever follows the message.
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        io::copy(&mut *f, &mut io::sink()).map_err(|e| PackageError::Crypto(CryptoError::Io(e)))?;
        Ok(Verified {
            signer,
            file_sha256: f.hash.clone().finalize().into(),
            file_bytes: f.bytes,
        })
    }
}

/// Reads a whole package to check it, without keeping its rows.
pub fn verify_file(
    path: &Path,
    key: &SecretKey,
    publishers: &[PublicKey],
) -> Result<(Manifest, Verified), PackageError> {
    let mut r = PackageReader::open(path, key, publishers)?;
    while r.next_row()?.is_some() {}
    let m = r.manifest().clone();
    let v = r.finish()?;
    Ok((m, v))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
