//! The copy's own record of what it holds: `ctferry.applied`, one row per
//! applied package (sequence, epoch, SHA-256, versions, "data as of"),
//! written in the package's transaction. It is the caregiver's only state,
//! so the copy's data and its state cannot disagree.

use crate::format::package::{hex, Manifest};
use crate::mssql::client::{int_at as get_i64, Db, DbError, Param};
use crate::mssql::sql::target as sql;

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

/// Creates the `ctferry` schema and its log table when missing.
pub fn ensure_log(db: &mut Db) -> Result<(), DbError> {
    let rows = db.rows("looking for the apply log", sql::applied_log_exists(), &[])?;
    if rows.first().and_then(|r| get_i64(r, 0)).unwrap_or(0) > 0 {
        return Ok(());
    }
    ensure_schema(db, "ctferry")?;
    db.execute(sql::create_applied_log())?;
    Ok(())
}

/// The last applied package, if any.
pub fn last_applied(db: &mut Db) -> Result<Option<Applied>, DbError> {
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

/// Creates schema `name` in the copy when it is missing.
pub fn ensure_schema(db: &mut Db, name: &str) -> Result<(), DbError> {
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

/// Records package `m` (file `file`, SHA-256 `sha`, `rows` rows applied) in
/// the open transaction; returns what `last_applied` will now say.
pub fn record(
    db: &mut Db,
    m: &Manifest,
    file: &str,
    sha: &[u8; 32],
    rows: u64,
) -> Result<Applied, DbError> {
    let sha = hex(sha);
    db.rows(
        "recording the package",
        sql::record_applied(),
        &[
            Param::I64(m.sequence as i64),
            Param::I64(m.epoch as i64),
            Param::Str(m.kind.as_str().into()),
            Param::Str(file.to_string()),
            Param::Str(sha.clone()),
            Param::OptI64(m.ct_from),
            Param::I64(m.ct_to),
            Param::Str(m.source_commit_time.clone().unwrap_or_default()),
            Param::I64(rows as i64),
        ],
    )?;
    Ok(Applied {
        sequence: m.sequence,
        epoch: m.epoch,
        sha256: sha,
        ct_to: m.ct_to,
        data_as_of: m.source_commit_time.clone(),
        file: file.to_string(),
    })
}
