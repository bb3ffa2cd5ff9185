//! `ctferry inspect`: shows what a package holds, for a caregiver's analyst
//! or the region's operator, after verifying it completely.
//!
//! The package is read twice: once to verify every byte and the signature,
//! then again to show the manifest and the first rows, so that nothing is
//! shown from a package that would be refused.

use crate::format::crypto::{PublicKey, SecretKey};
use crate::format::package::{self, Manifest, PackageError, PackageReader, SectionKind, Verified};
use crate::format::value::{self, Value};
use serde_json::{json, Map, Value as Json};
use std::path::Path;

/// A verified package's manifest and its first rows.
pub struct Inspection {
    pub file: String,
    pub manifest: Manifest,
    pub verified: Verified,
    /// (table name, "upsert"/"delete", column names, values)
    pub rows: Vec<(String, &'static str, Vec<String>, Vec<Value>)>,
}

/// Verifies `path`, then reads its manifest and first `max_rows` rows.
pub fn inspect(
    path: &Path,
    key: &SecretKey,
    publishers: &[PublicKey],
    max_rows: usize,
) -> Result<Inspection, PackageError> {
    let (_, verified) = package::verify_file(path, key, publishers)?;
    let mut r = PackageReader::open(path, key, publishers)?;
    let manifest = r.manifest().clone();
    let mut rows = Vec::new();
    while rows.len() < max_rows {
        let Some(row) = r.next_row()? else { break };
        let schema = &manifest.tables[row.table].schema;
        let (op, names) = match row.kind {
            SectionKind::Upserts => (
                "upsert",
                schema.columns.iter().map(|c| c.name.clone()).collect(),
            ),
            SectionKind::Deletes => ("delete", schema.key.clone()),
        };
        rows.push((schema.name.clone(), op, names, row.values));
    }
    Ok(Inspection {
        file: path.display().to_string(),
        manifest,
        verified,
        rows,
    })
}

/// A value as JSON: exact (decimals, 64-bit integers and date-times as
/// strings where JSON numbers would lose digits), binary as hex.
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) if i.unsigned_abs() <= (1u64 << 53) => json!(i),
        Value::Int(i) => Json::String(i.to_string()),
        Value::Decimal(d) => Json::String(d.to_string()),
        Value::Float(f) => json!(f),
        Value::Real(f) => json!(f),
        Value::Text(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(format!("0x{}", package::hex(b))),
        Value::Guid(g) => Json::String(value::guid_text(g)),
        Value::Date(d) => Json::String(value::date_text(d)),
        Value::Time(t) => Json::String(value::time_text(t)),
        Value::DateTime(d) => Json::String(value::datetime_text(d)),
        Value::DateTimeOffset(d, o) => Json::String(value::datetimeoffset_text(d, *o)),
    }
}

/// The manifest as JSON (the same field names as in the package).
pub fn manifest_json(m: &Manifest) -> Json {
    json!({
        "publisher": m.publisher,
        "subscriber": m.subscriber,
        "epoch": m.epoch,
        "sequence": m.sequence,
        "kind": m.kind.as_str(),
        "part": {"index": m.part, "last": m.last_part},
        "previous_sha256": m.previous_sha256.map(|h| package::hex(&h)),
        "ct_from": m.ct_from,
        "ct_to": m.ct_to,
        "source_commit_time": m.source_commit_time,
        "created_at": m.created_at,
        "format": m.format(),
        "tables": m.tables.iter().map(|t| json!({
            "name": t.schema.name,
            "columns": t.schema.columns.iter().map(|c| json!({
                "name": c.name, "type": c.ty.to_string(), "nullable": c.nullable, "masked": c.masked,
                "collation": c.collation
            })).collect::<Vec<_>>(),
            "key": t.schema.key,
            "upserts": t.upserts,
            "deletes": t.deletes,
            "change": t.change.as_ref().map(|c| json!({"action": c.name(), "what": c.describe(), "why": c.why})),
        })).collect::<Vec<_>>(),
    })
}

impl Inspection {
    pub fn to_json(&self) -> Json {
        let rows: Vec<Json> = self
            .rows
            .iter()
            .map(|(table, op, names, values)| {
                let mut obj = Map::new();
                for (n, v) in names.iter().zip(values) {
                    obj.insert(n.clone(), value_json(v));
                }
                json!({"table": table, "op": op, "values": obj})
            })
            .collect();
        json!({
            "file": self.file,
            "sha256": package::hex(&self.verified.file_sha256),
            "bytes": self.verified.file_bytes,
            "signer": self.verified.signer,
            "manifest": manifest_json(&self.manifest),
            "rows": rows,
        })
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let m = &self.manifest;
        let mut s = String::new();
        s.push_str(&format!(
            "package    {} ({} bytes)\nsha256     {}\nsigned by  {} (verified)\n",
            self.file,
            self.verified.file_bytes,
            package::hex(&self.verified.file_sha256),
            self.verified.signer
        ));
        s.push_str(&format!(
            "from       {} to subscriber {}\n{} epoch {}, sequence {}, part {}{}\n",
            m.publisher,
            m.subscriber,
            m.kind.as_str(),
            m.epoch,
            m.sequence,
            m.part,
            if m.last_part { " (last)" } else { "" }
        ));
        s.push_str(&format!(
            "versions   {} -> {}\ndata as of {}\ncreated    {}\nprevious   {}\n",
            m.ct_from
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(snapshot)".into()),
            m.ct_to,
            m.source_commit_time.as_deref().unwrap_or("(unknown)"),
            m.created_at,
            m.previous_sha256
                .map(|h| package::hex(&h))
                .unwrap_or_else(|| "(none: first package)".into())
        ));
        s.push_str("tables\n");
        for t in &m.tables {
            s.push_str(&format!(
                "  {}: {} upserts, {} deletes\n",
                t.schema.name, t.upserts, t.deletes
            ));
            if let Some(c) = &t.change {
                s.push_str(&format!("    before its rows: {}\n", c.describe()));
            }
            for c in &t.schema.columns {
                let key = if t.schema.key.contains(&c.name) {
                    " key"
                } else {
                    ""
                };
                let masked = if c.masked { " masked" } else { "" };
                let null = if c.nullable { "NULL" } else { "NOT NULL" };
                s.push_str(&format!("    {} {} {null}{key}{masked}\n", c.name, c.ty));
            }
        }
        if !self.rows.is_empty() {
            s.push_str(&format!("first {} rows\n", self.rows.len()));
            for (table, op, names, values) in &self.rows {
                let cells: Vec<String> = names
                    .iter()
                    .zip(values)
                    .map(|(n, v)| format!("{n}={}", value_json(v)))
                    .collect();
                s.push_str(&format!("  {table} {op} {}\n", cells.join(" ")));
            }
        }
        s
    }
}
