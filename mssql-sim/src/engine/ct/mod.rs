//! Change tracking (CT), as Microsoft documents it for SQL Server.
//!
//! How it is kept, per database (one SQLite file):
//! - `__sim_ct_database`: one row, whether CT is on, the retention, AUTO_CLEANUP,
//!   the database-wide version counter (it survives CT being switched off and
//!   on again) and the hardened cleanup version;
//! - `__sim_ct_tables`: the tracked tables, TRACK_COLUMNS_UPDATED,
//!   `begin_version` (set by ENABLE and TRUNCATE) and `cleanup_version`;
//! - `__sim_ct_commits`: version → commit time (SQL Server's syscommittab),
//!   which retention cleanup reads;
//! - one side table `__sim_ct_<object_id>` per tracked table, filled by SQLite
//!   triggers: one row per row change (I, U, D) with the primary key values,
//!   the statement, the SET list (for SYS_CHANGE_COLUMNS) and the context.
//!   A change's version is NULL until its transaction commits; `on_commit`
//!   then draws one version for the whole transaction and stamps its rows.
//!
//! Because the side rows and the version are written in the same SQLite
//! transaction as the data, a rollback (of the transaction or to a
//! savepoint) leaves no trace, and versions become visible in commit order.
//! CHANGETABLE computes the net changes when it is read, from the side rows
//! above the caller's version, with the rules of SQL Server's CHANGETABLE
//! documentation (and where it is silent, of SQL Server's observed
//! behaviour; see `../shared/reference/ct-semantics.md`).
//!
//! This module must never invent a change: rows it cannot account for
//! (cleaned up, truncated, tracked after the fact) are simply absent, and it
//! is the client's job to compare its version with the minimum valid one.

mod changetable;

use super::catalog::{q, sqlite_err, TableDef};
use crate::error::SqlError;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Prefix of the side tables (`__sim_ct_<object_id>`).
pub const SIDE_PREFIX: &str = "__sim_ct_";

/// How often AUTO_CLEANUP runs, in (simulated) seconds: SQL Server's cleanup
/// task runs every 30 minutes.
pub const AUTO_CLEANUP_INTERVAL_SECS: i64 = 30 * 60;

/// The statement being executed, as the CT triggers need to know it.
#[derive(Debug, Default, Clone)]
pub struct StmtInfo {
    /// Increases with every DML statement; orders the changes of one
    /// transaction (all deletes of a statement come before its inserts).
    pub stmt: i64,
    /// `WITH CHANGE_TRACKING_CONTEXT (...)` of the statement.
    pub context: Option<Vec<u8>>,
    /// For an UPDATE: the target table, the column ids of its SET list in
    /// order, and whether the SET list names a primary key column.
    pub update: Option<(i64, Vec<i32>, bool)>,
}

/// Per-connection statement information shared with the trigger functions.
pub type StmtCell = Arc<Mutex<StmtInfo>>;

static STATEMENTS: AtomicI64 = AtomicI64::new(1);

/// Starts a new DML statement on `cell`.
pub fn begin_statement(
    cell: &StmtCell,
    context: Option<Vec<u8>>,
    update: Option<(i64, Vec<i32>, bool)>,
) {
    let mut s = cell.lock().unwrap_or_else(|p| p.into_inner());
    s.stmt = STATEMENTS.fetch_add(1, Ordering::Relaxed);
    s.context = context;
    s.update = update;
}

/// Records the SET list of the UPDATE about to run.
pub fn set_update(cell: &StmtCell, object_id: i64, set_ids: Vec<i32>, key_set: bool) {
    let mut s = cell.lock().unwrap_or_else(|p| p.into_inner());
    s.update = Some((object_id, set_ids, key_set));
}

/// Clears the statement information after a DML statement.
pub fn end_statement(cell: &StmtCell) {
    let mut s = cell.lock().unwrap_or_else(|p| p.into_inner());
    s.context = None;
    s.update = None;
}

fn user_err(e: SqlError) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(e.encode().into())
}

/// Encodes column ids as SYS_CHANGE_COLUMNS does: four zero bytes, then one
/// little-endian int32 per column.
pub fn encode_mask(ids: &[i32]) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

fn decode_mask(b: &[u8]) -> Option<Vec<i32>> {
    if b.len() < 8 || !(b.len() - 4).is_multiple_of(4) {
        return None;
    }
    Some(
        b[4..]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The order of a table's change events within the same version.
const ORDER: &str = "__version, __stmt, __phase, __seq";

/// Net operation: D when the last change is a delete, else I when the first
/// is an insert, else U.
#[derive(Default)]
struct NetOp {
    first: Option<String>,
    last: Option<String>,
}

struct NetOpAgg;
impl Aggregate<NetOp, Option<String>> for NetOpAgg {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<NetOp> {
        Ok(NetOp::default())
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut NetOp) -> rusqlite::Result<()> {
        let op: String = ctx.get(0)?;
        if acc.first.is_none() {
            acc.first = Some(op.clone());
        }
        acc.last = Some(op);
        Ok(())
    }
    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<NetOp>,
    ) -> rusqlite::Result<Option<String>> {
        let Some(acc) = acc else { return Ok(None) };
        Ok(Some(
            if acc.last.as_deref() == Some("D") {
                "D"
            } else if acc.first.as_deref() == Some("I") {
                "I"
            } else {
                "U"
            }
            .to_string(),
        ))
    }
}

/// SYS_CHANGE_COLUMNS: the union of the SET lists of the updates in range,
/// in first-SET order; NULL when any insert or delete is in range, when an
/// update's columns are unknown, or when every non-key column was set.
struct MaskAcc {
    null: bool,
    cols: Vec<i32>,
    started: bool,
    /// The table's non-key column ids (the third argument).
    nonkey: Vec<i32>,
}

struct MaskAgg;
impl Aggregate<MaskAcc, Option<Vec<u8>>> for MaskAgg {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<MaskAcc> {
        Ok(MaskAcc {
            null: false,
            cols: vec![],
            started: false,
            nonkey: vec![],
        })
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut MaskAcc) -> rusqlite::Result<()> {
        if !acc.started {
            let nonkey: String = ctx.get(2)?;
            acc.nonkey = nonkey
                .split(',')
                .filter_map(|s| s.parse::<i32>().ok())
                .collect();
        }
        acc.started = true;
        let op: String = ctx.get(0)?;
        if op != "U" {
            acc.null = true;
            return Ok(());
        }
        match ctx.get_raw(1) {
            ValueRef::Blob(b) => match decode_mask(b) {
                Some(ids) => {
                    for id in ids {
                        if !acc.cols.contains(&id) {
                            acc.cols.push(id);
                        }
                    }
                }
                None => acc.null = true,
            },
            _ => acc.null = true,
        }
        Ok(())
    }
    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<MaskAcc>,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        let Some(acc) = acc else { return Ok(None) };
        if acc.null || !acc.started {
            return Ok(None);
        }
        let all = acc.nonkey.iter().all(|id| acc.cols.contains(id));
        if all {
            return Ok(None);
        }
        Ok(Some(encode_mask(&acc.cols)))
    }
}

/// The last value of its argument, NULL included.
struct LastAgg;
impl Aggregate<Option<SqliteValue>, SqliteValue> for LastAgg {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Option<SqliteValue>> {
        Ok(None)
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut Option<SqliteValue>) -> rusqlite::Result<()> {
        *acc = Some(owned(ctx.get_raw(0)));
        Ok(())
    }
    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<Option<SqliteValue>>,
    ) -> rusqlite::Result<SqliteValue> {
        Ok(acc.flatten().unwrap_or(SqliteValue::Null))
    }
}

/// Registers the trigger functions and CHANGETABLE's aggregates.
pub fn register(conn: &Connection, cell: StmtCell) -> rusqlite::Result<()> {
    let nondet = FunctionFlags::SQLITE_UTF8;
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let c = cell.clone();
    conn.create_scalar_function("__sim_ct_stmt", 0, nondet, move |_| {
        Ok(c.lock().unwrap_or_else(|p| p.into_inner()).stmt)
    })?;
    let c = cell.clone();
    conn.create_scalar_function("__sim_ct_ctx", 0, nondet, move |_| {
        Ok(c.lock().unwrap_or_else(|p| p.into_inner()).context.clone())
    })?;
    // __sim_ct_pk_set(object_id, fallback): whether the running UPDATE's SET
    // list names a key column; `fallback` (old key IS NOT new key) when the
    // statement did not say.
    let c = cell.clone();
    conn.create_scalar_function("__sim_ct_pk_set", 2, nondet, move |ctx| {
        let obj: i64 = ctx.get(0)?;
        let fallback: Option<i64> = ctx.get(1)?;
        let s = c.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match &s.update {
            Some((o, _, pk)) if *o == obj => *pk as i64,
            _ => fallback.unwrap_or(0),
        })
    })?;
    let c = cell;
    conn.create_scalar_function("__sim_ct_cols", 1, nondet, move |ctx| {
        let obj: i64 = ctx.get(0)?;
        let s = c.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match &s.update {
            Some((o, cols, _)) if *o == obj => Some(encode_mask(cols)),
            _ => None,
        })
    })?;
    conn.create_aggregate_function("__sim_ct_op", 1, det, NetOpAgg)?;
    conn.create_aggregate_function("__sim_ct_mask", 3, det, MaskAgg)?;
    conn.create_aggregate_function("__sim_ct_last", 1, det, LastAgg)?;
    // CHANGE_TRACKING_IS_COLUMN_IN_MASK(column_id, mask)
    conn.create_scalar_function("__sim_ct_in_mask", 2, det, |ctx| {
        let id: Option<i64> = ctx.get(0)?;
        match ctx.get_raw(1) {
            ValueRef::Null => Ok(Some(1i64)),
            ValueRef::Blob(b) => {
                let ids = decode_mask(b).ok_or_else(|| user_err(bad_mask()))?;
                Ok(id.map(|id| ids.contains(&(id as i32)) as i64))
            }
            _ => Err(user_err(bad_mask())),
        }
    })?;
    // Typed identity: marks an expression as bigint for result typing.
    conn.create_scalar_function("__sim_bigint", 1, det, |ctx| Ok(owned(ctx.get_raw(0))))?;
    Ok(())
}

fn owned(v: ValueRef<'_>) -> SqliteValue {
    match v {
        ValueRef::Null => SqliteValue::Null,
        ValueRef::Integer(i) => SqliteValue::Integer(i),
        ValueRef::Real(f) => SqliteValue::Real(f),
        ValueRef::Text(t) => SqliteValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqliteValue::Blob(b.to_vec()),
    }
}

fn bad_mask() -> SqlError {
    SqlError::new(22101, 16, "The value supplied for the change_columns argument of CHANGE_TRACKING_IS_COLUMN_IN_MASK function is not valid. The value must be a bitmask returned by the CHANGETABLE(CHANGES ...) function.")
}

/// Creates the CT bookkeeping tables (idempotent).
pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS __sim_ct_database(id INTEGER PRIMARY KEY CHECK (id = 1), is_enabled INTEGER NOT NULL,
             retention_period INTEGER NOT NULL, retention_period_units INTEGER NOT NULL, is_auto_cleanup_on INTEGER NOT NULL,
             current_version INTEGER NOT NULL, hardened_cleanup_version INTEGER NOT NULL, last_auto_cleanup TEXT);
         CREATE TABLE IF NOT EXISTS __sim_ct_tables(object_id INTEGER PRIMARY KEY, is_track_columns_updated_on INTEGER NOT NULL,
             begin_version INTEGER NOT NULL, cleanup_version INTEGER NOT NULL, min_valid_version INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS __sim_ct_commits(version INTEGER PRIMARY KEY, commit_time TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS __sim_ct_pending(object_id INTEGER PRIMARY KEY);",
    )
}

/// How commit and cleanup times are stored (sortable text).
pub fn time_text(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.9f").to_string()
}

/// The database's CT settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbSettings {
    pub enabled: bool,
    pub retention: i64,
    /// 1 MINUTES, 2 HOURS, 3 DAYS (sys.change_tracking_databases).
    pub units: i64,
    pub auto_cleanup: bool,
    pub current_version: i64,
    pub last_auto_cleanup: Option<String>,
}

impl DbSettings {
    pub fn retention_minutes(&self) -> i64 {
        self.retention
            * match self.units {
                1 => 1,
                2 => 60,
                _ => 1440,
            }
    }
}

pub fn settings(conn: &Connection) -> Result<Option<DbSettings>, SqlError> {
    conn.query_row(
        "SELECT is_enabled, retention_period, retention_period_units, is_auto_cleanup_on, current_version, last_auto_cleanup FROM __sim_ct_database WHERE id = 1",
        [],
        |r| {
            Ok(DbSettings {
                enabled: r.get::<_, i64>(0)? != 0,
                retention: r.get(1)?,
                units: r.get(2)?,
                auto_cleanup: r.get::<_, i64>(3)? != 0,
                current_version: r.get(4)?,
                last_auto_cleanup: r.get(5)?,
            })
        },
    )
    .optional()
    .map_err(sqlite_err)
}

/// What `ALTER DATABASE ... SET CHANGE_TRACKING ...` asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbChange {
    /// Some(true) `= ON`, Some(false) `= OFF`, None: options only.
    pub on: Option<bool>,
    /// (n, units) with units 1 MINUTES, 2 HOURS, 3 DAYS.
    pub retention: Option<(i64, i64)>,
    pub auto_cleanup: Option<bool>,
}

/// Parses the words after `SET` of an ALTER DATABASE that names CHANGE_TRACKING.
pub fn parse_db_change(words: &[String]) -> Result<DbChange, SqlError> {
    // words: CHANGE_TRACKING [= ON|OFF] [( option = value [, ...] )]
    let up: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let mut i = 1;
    let mut ch = DbChange::default();
    let syntax = |w: Option<&String>| match w {
        Some(w) => SqlError::syntax_near(w),
        None => SqlError::new(102, 15, "Incorrect syntax near the end of the batch."),
    };
    if up.get(i).map(String::as_str) == Some("=") {
        match up.get(i + 1).map(String::as_str) {
            Some("ON") => ch.on = Some(true),
            Some("OFF") => ch.on = Some(false),
            _ => return Err(syntax(words.get(i + 1))),
        }
        i += 2;
    }
    if up.get(i).map(String::as_str) == Some("(") {
        if ch.on == Some(false) {
            return Err(syntax(words.get(i)));
        }
        i += 1;
        loop {
            let name = up.get(i).cloned().ok_or_else(|| syntax(None))?;
            if up.get(i + 1).map(String::as_str) != Some("=") {
                return Err(syntax(words.get(i + 1)));
            }
            match name.as_str() {
                "CHANGE_RETENTION" => {
                    if ch.retention.is_some() {
                        return Err(repeated("CHANGE_RETENTION"));
                    }
                    let n: i64 = up
                        .get(i + 2)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| syntax(words.get(i + 2)))?;
                    let unit = up.get(i + 3).cloned().ok_or_else(|| syntax(None))?;
                    let units = match unit.as_str() {
                        "MINUTES" => 1,
                        "HOURS" => 2,
                        "DAYS" => 3,
                        other => {
                            return Err(SqlError::new(
                                155,
                                15,
                                format!(
                                    "'{other}' is not a recognized CHANGE RETENTION UNIT option."
                                ),
                            ))
                        }
                    };
                    let minutes = n.checked_mul([0, 1, 60, 1440][units as usize]);
                    if n < 1 || minutes.map(|m| m > i32::MAX as i64).unwrap_or(true) {
                        return Err(SqlError::new(5092, 15, "The value for change tracking option 'CHANGE_RETENTION' is not valid. The value must be between 1 and 2147483647 minutes."));
                    }
                    ch.retention = Some((n, units));
                    i += 4;
                }
                "AUTO_CLEANUP" => {
                    if ch.auto_cleanup.is_some() {
                        return Err(repeated("AUTO_CLEANUP"));
                    }
                    ch.auto_cleanup = match up.get(i + 2).map(String::as_str) {
                        Some("ON") => Some(true),
                        Some("OFF") => Some(false),
                        _ => return Err(syntax(words.get(i + 2))),
                    };
                    i += 3;
                }
                _ => return Err(syntax(words.get(i))),
            }
            match up.get(i).map(String::as_str) {
                Some(",") => i += 1,
                Some(")") => {
                    i += 1;
                    break;
                }
                _ => return Err(syntax(words.get(i))),
            }
        }
    }
    if i < up.len() {
        if up[i] == "," {
            return Err(SqlError::new(
                22114,
                16,
                "Change tracking options for ALTER DATABASE cannot be combined with other ALTER DATABASE options.",
            ));
        }
        return Err(syntax(words.get(i)));
    }
    if ch.on.is_none() && ch.retention.is_none() && ch.auto_cleanup.is_none() {
        return Err(syntax(None));
    }
    Ok(ch)
}

fn repeated(opt: &str) -> SqlError {
    SqlError::new(5091, 15, format!("ALTER DATABASE change tracking option '{opt}' was specified more than once. Each option can be specified only once."))
}

/// Applies an `ALTER DATABASE ... SET CHANGE_TRACKING ...`.
pub fn alter_database(
    conn: &Connection,
    database: &str,
    ch: &DbChange,
    now: &str,
) -> Result<(), SqlError> {
    if ["master", "tempdb", "model", "msdb"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(database))
    {
        return Err(SqlError::new(5090, 16, format!("Database '{database}' is a system database. Change tracking settings cannot be modified for system databases.")));
    }
    let cur = settings(conn)?;
    let is_on = cur.as_ref().map(|s| s.enabled).unwrap_or(false);
    match ch.on {
        Some(true) => {
            if is_on {
                return Err(SqlError::new(
                    5088,
                    16,
                    format!("Change tracking is already enabled for database '{database}'."),
                ));
            }
            let (n, units) = ch.retention.unwrap_or((2, 3));
            let auto = ch.auto_cleanup.unwrap_or(true);
            // The version counter survives OFF/ON.
            conn.execute(
                "INSERT INTO __sim_ct_database(id, is_enabled, retention_period, retention_period_units, is_auto_cleanup_on, current_version, hardened_cleanup_version, last_auto_cleanup)
                 VALUES (1, 1, ?1, ?2, ?3, 0, 0, ?4)
                 ON CONFLICT(id) DO UPDATE SET is_enabled = 1, retention_period = ?1, retention_period_units = ?2, is_auto_cleanup_on = ?3, last_auto_cleanup = ?4",
                params![n, units, auto as i64, now],
            )
            .map_err(sqlite_err)?;
        }
        Some(false) => {
            if !is_on {
                return Err(disabled_db(database, 1));
            }
            let tracked: i64 = conn
                .query_row("SELECT count(*) FROM __sim_ct_tables", [], |r| r.get(0))
                .map_err(sqlite_err)?;
            if tracked > 0 {
                return Err(SqlError::new(22115, 16, format!("Change tracking is enabled for one or more tables in database '{database}'. Disable change tracking on each table before disabling it for the database. Use the sys.change_tracking_tables catalog view to obtain a list of tables for which change tracking is enabled.")));
            }
            conn.execute_batch(
                "UPDATE __sim_ct_database SET is_enabled = 0; DELETE FROM __sim_ct_commits;",
            )
            .map_err(sqlite_err)?;
        }
        None => {
            if !is_on {
                return Err(disabled_db(database, 2));
            }
            if let Some((n, units)) = ch.retention {
                conn.execute(
                    "UPDATE __sim_ct_database SET retention_period = ?1, retention_period_units = ?2",
                    params![n, units],
                )
                .map_err(sqlite_err)?;
            }
            if let Some(a) = ch.auto_cleanup {
                conn.execute(
                    "UPDATE __sim_ct_database SET is_auto_cleanup_on = ?1",
                    [a as i64],
                )
                .map_err(sqlite_err)?;
            }
        }
    }
    Ok(())
}

fn disabled_db(database: &str, state: u8) -> SqlError {
    let mut e = SqlError::new(5089, 16, format!("Change tracking is disabled for database '{database}'. Change tracking must be enabled on a database to modify change tracking settings."));
    e.state = state;
    e
}

/// Whether a table is tracked: Some(track_columns_updated).
pub fn table_tracking(conn: &Connection, object_id: i64) -> Result<Option<bool>, SqlError> {
    conn.query_row(
        "SELECT is_track_columns_updated_on FROM __sim_ct_tables WHERE object_id = ?1",
        [object_id],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.map(|v| v != 0))
    .map_err(sqlite_err)
}

/// Runs `rewrite` (which rewrites stored values of a tracked table in
/// place, as ALTER COLUMN does) without leaving change tracking entries:
/// SQL Server tracks DML, not the conversion a DDL statement makes.
pub fn untracked<T>(
    conn: &Connection,
    object_id: i64,
    rewrite: impl FnOnce() -> Result<T, SqlError>,
) -> Result<T, SqlError> {
    if table_tracking(conn, object_id)?.is_none() {
        return rewrite();
    }
    let s = side(object_id);
    let before: i64 = conn
        .query_row(
            &format!("SELECT COALESCE(MAX(__seq), 0) FROM {s}"),
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    let pending: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM __sim_ct_pending WHERE object_id = ?1",
            [object_id],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sqlite_err)?
        > 0;
    let out = rewrite()?;
    conn.execute(&format!("DELETE FROM {s} WHERE __seq > ?1"), [before])
        .map_err(sqlite_err)?;
    if !pending {
        conn.execute(
            "DELETE FROM __sim_ct_pending WHERE object_id = ?1",
            [object_id],
        )
        .map_err(sqlite_err)?;
    }
    Ok(out)
}

fn side(object_id: i64) -> String {
    q(&format!("{SIDE_PREFIX}{object_id}"))
}

/// `ALTER TABLE t ENABLE CHANGE_TRACKING [WITH (TRACK_COLUMNS_UPDATED = ...)]`.
pub fn enable_table(
    conn: &Connection,
    database: &str,
    def: &TableDef,
    written: &str,
    track_columns: bool,
) -> Result<(), SqlError> {
    let Some(st) = settings(conn)?.filter(|s| s.enabled) else {
        return Err(SqlError::new(1718, 16, format!("Change tracking must be enabled on database '{database}' before it can be enabled on table '{written}'.")));
    };
    if table_tracking(conn, def.object_id)?.is_some() {
        return Err(SqlError::new(
            4996,
            16,
            format!("Change tracking is already enabled for table '{written}'."),
        ));
    }
    if def.pk.is_empty() {
        return Err(SqlError::new(4997, 16, format!("Cannot enable change tracking on table '{written}'. Change tracking requires a primary key on the table. Create a primary key on the table before enabling change tracking.")));
    }
    let id = def.object_id;
    let table = q(&def.sqlite_name());
    let s = side(id);
    let mut pk_decl = Vec::new();
    let mut pk_cols = Vec::new();
    for name in &def.pk {
        let c = def
            .column(name)
            .ok_or_else(|| SqlError::invalid_column(name))?;
        pk_decl.push(format!("{} {}", q(&c.name), c.sqlite_type()));
        pk_cols.push(q(&c.name));
    }
    let cols = pk_cols.join(", ");
    let new_vals: Vec<String> = pk_cols.iter().map(|c| format!("NEW.{c}")).collect();
    let old_vals: Vec<String> = pk_cols.iter().map(|c| format!("OLD.{c}")).collect();
    let changed: Vec<String> = pk_cols
        .iter()
        .map(|c| format!("OLD.{c} IS NOT NEW.{c}"))
        .collect();
    let new_vals = new_vals.join(", ");
    let old_vals = old_vals.join(", ");
    let changed = changed.join(" OR ");
    let ins = |phase: i32, op: &str, cols_expr: &str, vals: &str| {
        format!(
            "INSERT INTO {s}(__stmt, __phase, __op, __cols, __ctx, {cols}) VALUES (__sim_ct_stmt(), {phase}, '{op}', {cols_expr}, __sim_ct_ctx(), {vals});"
        )
    };
    let pending = format!("INSERT OR IGNORE INTO __sim_ct_pending(object_id) VALUES ({id});");
    let tname = |suffix: &str| q(&format!("{SIDE_PREFIX}{id}_{suffix}"));
    let sql = format!(
        "CREATE TABLE {s}(__seq INTEGER PRIMARY KEY, __stmt INTEGER NOT NULL, __phase INTEGER NOT NULL, __version INTEGER,
             __op TEXT NOT NULL, __cols BLOB, __ctx BLOB, {pk_decl});
         CREATE INDEX {vidx} ON {s}(__version);
         CREATE INDEX {kidx} ON {s}({cols}, __version);
         CREATE TRIGGER {ti} AFTER INSERT ON {table} BEGIN {ins_i} {pending} END;
         CREATE TRIGGER {td} AFTER DELETE ON {table} BEGIN {ins_d} {pending} END;
         CREATE TRIGGER {tk} AFTER UPDATE ON {table} WHEN __sim_ct_pk_set({id}, {changed}) BEGIN {ins_kd} {ins_ki} {pending} END;
         CREATE TRIGGER {tu} AFTER UPDATE ON {table} WHEN NOT __sim_ct_pk_set({id}, {changed}) BEGIN {ins_u} {pending} END;
         INSERT INTO __sim_ct_tables(object_id, is_track_columns_updated_on, begin_version, cleanup_version, min_valid_version)
             VALUES ({id}, {track}, {cur}, 0, {cur});",
        pk_decl = pk_decl.join(", "),
        vidx = tname("vx"),
        kidx = tname("kx"),
        ti = tname("i"),
        td = tname("d"),
        tk = tname("k"),
        tu = tname("u"),
        ins_i = ins(1, "I", "NULL", &new_vals),
        ins_d = ins(0, "D", "NULL", &old_vals),
        ins_kd = ins(0, "D", "NULL", &old_vals),
        ins_ki = ins(1, "I", "NULL", &new_vals),
        ins_u = ins(1, "U", &format!("__sim_ct_cols({id})"), &new_vals),
        track = track_columns as i64,
        cur = st.current_version,
    );
    conn.execute_batch(&sql).map_err(sqlite_err)
}

/// `ALTER TABLE t DISABLE CHANGE_TRACKING`: the table's history is discarded.
pub fn disable_table(conn: &Connection, def: &TableDef, written: &str) -> Result<(), SqlError> {
    if table_tracking(conn, def.object_id)?.is_none() {
        return Err(SqlError::new(
            4998,
            16,
            format!("Change tracking is not enabled on table '{written}'."),
        ));
    }
    forget_table(conn, def.object_id)
}

/// Removes a table's tracking (DISABLE, DROP TABLE).
pub fn forget_table(conn: &Connection, object_id: i64) -> Result<(), SqlError> {
    if table_tracking(conn, object_id)?.is_none() {
        return Ok(());
    }
    let id = object_id;
    let tname = |suffix: &str| q(&format!("{SIDE_PREFIX}{id}_{suffix}"));
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS {}; DROP TRIGGER IF EXISTS {}; DROP TRIGGER IF EXISTS {}; DROP TRIGGER IF EXISTS {};
         DROP TABLE IF EXISTS {};
         DELETE FROM __sim_ct_tables WHERE object_id = {id};
         DELETE FROM __sim_ct_pending WHERE object_id = {id};",
        tname("i"),
        tname("d"),
        tname("k"),
        tname("u"),
        side(id)
    ))
    .map_err(sqlite_err)
}

/// TRUNCATE TABLE on a tracked table: its history is discarded, as when CT
/// is disabled and enabled again, and no version is drawn.
pub fn truncated(conn: &Connection, object_id: i64) -> Result<(), SqlError> {
    if table_tracking(conn, object_id)?.is_none() {
        return Ok(());
    }
    let cur = settings(conn)?.map(|s| s.current_version).unwrap_or(0);
    conn.execute_batch(&format!(
        "DELETE FROM {};
         DELETE FROM __sim_ct_pending WHERE object_id = {object_id};
         UPDATE __sim_ct_tables SET begin_version = {cur}, min_valid_version = max({cur}, cleanup_version) WHERE object_id = {object_id};",
        side(object_id)
    ))
    .map_err(sqlite_err)
}

/// The object ids a query of the change tracking tables returns.
fn object_ids(conn: &Connection, sql: &str) -> Result<Vec<i64>, SqlError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = stmt
        .query_map([], |r| r.get(0))
        .map_err(sqlite_err)?
        .collect::<rusqlite::Result<Vec<i64>>>()
        .map_err(sqlite_err)?;
    Ok(rows)
}

/// Called just before a transaction commits: when it changed a tracked
/// table, draws the next version, stamps the transaction's changes with it
/// and records the commit time. Returns the version drawn.
pub fn on_commit(conn: &Connection, now: &str) -> Result<Option<i64>, SqlError> {
    let pending = object_ids(conn, "SELECT object_id FROM __sim_ct_pending")?;
    if pending.is_empty() {
        return Ok(None);
    }
    let v: i64 = conn
        .query_row(
            "UPDATE __sim_ct_database SET current_version = current_version + 1 RETURNING current_version",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    for obj in pending {
        conn.execute(
            &format!(
                "UPDATE {} SET __version = ?1 WHERE __version IS NULL",
                side(obj)
            ),
            [v],
        )
        .map_err(sqlite_err)?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO __sim_ct_commits(version, commit_time) VALUES (?1, ?2)",
        params![v, now],
    )
    .map_err(sqlite_err)?;
    conn.execute("DELETE FROM __sim_ct_pending", [])
        .map_err(sqlite_err)?;
    Ok(Some(v))
}

/// Retention cleanup, as `sys.sp_flush_CT_internal_table_on_demand` and the
/// AUTO_CLEANUP task do it. For all tables: computes the invalid version
/// (the newest version committed before `now - retention`), deletes the side
/// rows up to it, hardens it and trims the commit table. For one table:
/// deletes that table's side rows up to the hardened invalid version.
/// Returns the number of side rows deleted.
pub fn cleanup(conn: &Connection, now: &str, only: Option<i64>) -> Result<i64, SqlError> {
    let Some(st) = settings(conn)?.filter(|s| s.enabled) else {
        return Ok(0);
    };
    let invalid: Option<i64> = if only.is_some() {
        // One table: up to the invalid version the last full cleanup hardened.
        conn.query_row(
            "SELECT nullif(hardened_cleanup_version, 0) FROM __sim_ct_database",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?
    } else {
        let now_t = chrono::NaiveDateTime::parse_from_str(now, "%Y-%m-%d %H:%M:%S%.f")
            .map_err(|e| SqlError::new(50000, 16, format!("mssql-sim clock: {e}")))?;
        let cutoff = time_text(&(now_t - chrono::Duration::minutes(st.retention_minutes())));
        conn.query_row(
            "SELECT max(version) FROM __sim_ct_commits WHERE commit_time < ?1",
            [&cutoff],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?
    };
    let Some(invalid) = invalid else { return Ok(0) };
    let tables = object_ids(conn, "SELECT object_id FROM __sim_ct_tables")?;
    let mut deleted = 0i64;
    for obj in tables {
        if only.is_some() && only != Some(obj) {
            continue;
        }
        deleted += conn
            .execute(
                &format!("DELETE FROM {} WHERE __version <= ?1", side(obj)),
                [invalid],
            )
            .map_err(sqlite_err)? as i64;
        conn.execute(
            "UPDATE __sim_ct_tables SET cleanup_version = max(cleanup_version, ?1), min_valid_version = max(begin_version, cleanup_version, ?1) WHERE object_id = ?2",
            [invalid, obj],
        )
        .map_err(sqlite_err)?;
    }
    if only.is_none() {
        conn.execute(
            "UPDATE __sim_ct_database SET hardened_cleanup_version = max(hardened_cleanup_version, ?1)",
            [invalid],
        )
        .map_err(sqlite_err)?;
        conn.execute("DELETE FROM __sim_ct_commits WHERE version < ?1", [invalid])
            .map_err(sqlite_err)?;
    }
    Ok(deleted)
}

/// Whether AUTO_CLEANUP is due: CT on, AUTO_CLEANUP on, and 30 simulated
/// minutes since the last run.
pub fn auto_cleanup_due(conn: &Connection, now: &chrono::NaiveDateTime) -> Result<bool, SqlError> {
    let Some(st) = settings(conn)?.filter(|s| s.enabled && s.auto_cleanup) else {
        return Ok(false);
    };
    let last = st
        .last_auto_cleanup
        .as_deref()
        .and_then(|l| chrono::NaiveDateTime::parse_from_str(l, "%Y-%m-%d %H:%M:%S%.f").ok());
    Ok(match last {
        Some(l) => (*now - l).num_seconds() >= AUTO_CLEANUP_INTERVAL_SECS,
        None => true,
    })
}

/// Records that AUTO_CLEANUP ran.
pub fn mark_auto_cleanup(conn: &Connection, now: &str) -> Result<(), SqlError> {
    conn.execute("UPDATE __sim_ct_database SET last_auto_cleanup = ?1", [now])
        .map_err(sqlite_err)?;
    Ok(())
}

// ------------------------------------------------------------------ queries

/// The output columns of CHANGETABLE(CHANGES ...), before the key columns.
pub const CHANGES_COLUMNS: [&str; 5] = [
    "SYS_CHANGE_VERSION",
    "SYS_CHANGE_CREATION_VERSION",
    "SYS_CHANGE_OPERATION",
    "SYS_CHANGE_COLUMNS",
    "SYS_CHANGE_CONTEXT",
];

/// The SQL type of a CHANGETABLE system column.
pub fn system_column_type(name: &str) -> Option<crate::types::SqlType> {
    use crate::types::{Len, SqlType};
    Some(match name.to_ascii_uppercase().as_str() {
        "SYS_CHANGE_VERSION" | "SYS_CHANGE_CREATION_VERSION" => SqlType::BigInt,
        "SYS_CHANGE_OPERATION" => SqlType::NChar(1),
        "SYS_CHANGE_COLUMNS" => SqlType::VarBinary(Len::N(4100)),
        "SYS_CHANGE_CONTEXT" => SqlType::VarBinary(Len::N(128)),
        _ => return None,
    })
}

/// The net changes of a tracked table after `last_sync` (an SQL expression:
/// a literal, a variable or NULL), one row per key, in CHANGETABLE's
/// column order.
pub fn changes_sql(def: &TableDef, track_columns: bool, last_sync: &str) -> String {
    let keys: Vec<String> = def.pk.iter().map(|k| q(k)).collect();
    let nonkey: Vec<String> = def
        .columns
        .iter()
        .filter(|c| !def.pk.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .map(|c| c.column_id.to_string())
        .collect();
    let cols = if track_columns {
        format!(
            "__sim_ct_mask(__op, __cols, '{}' ORDER BY {ORDER})",
            nonkey.join(",")
        )
    } else {
        "CAST(NULL AS BLOB)".to_string()
    };
    format!(
        "SELECT max(__version) AS \"SYS_CHANGE_VERSION\",
                max(CASE WHEN __op = 'I' THEN __version END) AS \"SYS_CHANGE_CREATION_VERSION\",
                __sim_ct_op(__op ORDER BY {ORDER}) AS \"SYS_CHANGE_OPERATION\",
                {cols} AS \"SYS_CHANGE_COLUMNS\",
                __sim_ct_last(__ctx ORDER BY {ORDER}) AS \"SYS_CHANGE_CONTEXT\",
                {keys}
         FROM {side} WHERE __version IS NOT NULL AND __version > coalesce({last_sync}, -9223372036854775808)
         GROUP BY {keys}",
        keys = keys.join(", "),
        side = side(def.object_id),
    )
}

/// CHANGETABLE(VERSION ...) for every row of the table: the version and
/// context of the row's last change, NULL when it has none left.
pub fn version_sql(def: &TableDef) -> String {
    let keys: Vec<String> = def.pk.iter().map(|k| q(k)).collect();
    let join: Vec<String> = keys.iter().map(|k| format!("s.{k} = b.{k}")).collect();
    let join = join.join(" AND ");
    let order = "s.__version DESC, s.__stmt DESC, s.__phase DESC, s.__seq DESC";
    let bkeys: Vec<String> = keys.iter().map(|k| format!("b.{k} AS {k}")).collect();
    format!(
        "SELECT (SELECT s.__version FROM {side} s WHERE {join} AND s.__version IS NOT NULL ORDER BY {order} LIMIT 1) AS \"SYS_CHANGE_VERSION\",
                (SELECT s.__ctx FROM {side} s WHERE {join} AND s.__version IS NOT NULL ORDER BY {order} LIMIT 1) AS \"SYS_CHANGE_CONTEXT\",
                {bkeys}
         FROM {table} b",
        side = side(def.object_id),
        bkeys = bkeys.join(", "),
        table = q(&def.sqlite_name()),
    )
}

/// CHANGE_TRACKING_CURRENT_VERSION(), read inside the statement's snapshot.
pub fn current_version_sql() -> String {
    "SELECT CASE WHEN is_enabled = 1 THEN current_version END FROM __sim_ct_database".into()
}

/// CHANGE_TRACKING_MIN_VALID_VERSION(object_id): NULL also when the
/// caller lacks permission to the table ("insufficient permission to the
/// table specified by the object ID", CHANGE_TRACKING_MIN_VALID_VERSION):
/// here, VIEW CHANGE TRACKING and SELECT.
pub fn min_valid_sql(object_id_expr: &str) -> String {
    format!(
        "SELECT t.min_valid_version FROM __sim_ct_tables t JOIN __sim_ct_database d ON d.is_enabled = 1 WHERE t.object_id = ({object_id_expr})
         AND __sim_can(t.object_id, 'VIEW CHANGE TRACKING') = 1 AND __sim_can(t.object_id, 'SELECT') = 1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_round_trip() {
        let m = encode_mask(&[3, 2]);
        assert_eq!(m, vec![0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(decode_mask(&m), Some(vec![3, 2]));
        assert_eq!(decode_mask(&[0, 0, 0, 0]), None);
    }

    #[test]
    fn parses_database_options() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let c = parse_db_change(&w(
            "CHANGE_TRACKING = ON ( CHANGE_RETENTION = 2 DAYS , AUTO_CLEANUP = ON )",
        ))
        .unwrap();
        assert_eq!(c.on, Some(true));
        assert_eq!(c.retention, Some((2, 3)));
        assert_eq!(c.auto_cleanup, Some(true));
        let c = parse_db_change(&w("CHANGE_TRACKING ( CHANGE_RETENTION = 90 MINUTES )")).unwrap();
        assert_eq!(c.on, None);
        assert_eq!(c.retention, Some((90, 1)));
        assert_eq!(
            parse_db_change(&w("CHANGE_TRACKING = ON ( CHANGE_RETENTION = 0 DAYS )"))
                .unwrap_err()
                .number,
            5092
        );
        assert_eq!(
            parse_db_change(&w(
                "CHANGE_TRACKING = ON ( AUTO_CLEANUP = ON , AUTO_CLEANUP = OFF )"
            ))
            .unwrap_err()
            .number,
            5091
        );
        assert_eq!(
            parse_db_change(&w("CHANGE_TRACKING = ON ( CHANGE_RETENTION = 2 WEEKS )"))
                .unwrap_err()
                .number,
            155
        );
        assert_eq!(
            parse_db_change(&w("CHANGE_TRACKING = ON , ALLOW_SNAPSHOT_ISOLATION ON"))
                .unwrap_err()
                .number,
            22114
        );
    }
}
