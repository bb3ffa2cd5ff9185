//! The SQL engine behind one client connection: runs T-SQL batches against
//! the SQLite file of the current database and produces what SQL Server
//! would send back (result sets, row counts, errors, transaction changes).
//!
//! Transactions map onto SQLite like this:
//! - autocommit statements are SQLite autocommit statements;
//! - a READ COMMITTED transaction starts SQLite's transaction lazily, with
//!   `BEGIN IMMEDIATE` at its first write, so reads before that see the
//!   latest committed data (as READ COMMITTED does) and an idle open
//!   transaction (pytds and pymssql open one right after login) holds no lock;
//! - a SNAPSHOT transaction is a SQLite read transaction (WAL) started at
//!   BEGIN, so every statement sees the data as of its first read; a write
//!   that conflicts with a later commit fails with error 3960, as in SQL Server.
//!
//! SQLite allows one writer at a time per database; a second writer waits
//! (up to the lock timeout) where SQL Server would often proceed. That is
//! stricter than SQL Server, never looser.

pub mod catalog;
pub mod ct;
pub mod functions;
pub mod parse;
pub mod translate;

use crate::error::SqlError;
use crate::tds::token::{Column, CMD_DELETE, CMD_INSERT, CMD_SELECT, CMD_UPDATE};
use crate::types::{from_storage, to_storage, Len, SqlType, Value};
use catalog::{q, ColumnDef, ForeignKeyDef, TableDef};
use functions::SimClock;
use parse::Stmt;
use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{Connection, InterruptHandle};
use sqlparser::ast::{
    AssignmentTarget, ColumnOption, Expr, FromTable, IdentityPropertyFormatKind,
    IdentityPropertyKind, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, ObjectType,
    Query, ReferentialAction, SchemaName, SetExpr, Statement, TableConstraint, TableFactor,
    TableObject, UpdateTableFromKind, Use,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use translate::{Resolver, Rewriter, SessionView};

/// State shared by all sessions of one server.
pub struct Shared {
    pub data_dir: PathBuf,
    pub sa_password: String,
    pub clock: SimClock,
    pub lock_timeout: Duration,
    descriptors: AtomicU64,
    spids: AtomicU16,
    create_lock: Mutex<()>,
}

impl Shared {
    pub fn new(data_dir: PathBuf, sa_password: String, lock_timeout: Duration) -> Shared {
        Shared {
            data_dir,
            sa_password,
            clock: SimClock::default(),
            lock_timeout,
            descriptors: AtomicU64::new(1),
            spids: AtomicU16::new(51),
            create_lock: Mutex::new(()),
        }
    }

    pub fn next_spid(&self) -> u16 {
        let s = self.spids.fetch_add(1, Ordering::Relaxed);
        if s < 51 {
            self.spids.store(52, Ordering::Relaxed);
            51
        } else {
            s
        }
    }

    fn next_descriptor(&self) -> u64 {
        self.descriptors.fetch_add(1, Ordering::Relaxed)
    }

    /// The file name a database's SQLite file has, found case-insensitively.
    pub fn find_database(&self, name: &str) -> Option<(String, PathBuf)> {
        let want = name.to_lowercase();
        let entries = std::fs::read_dir(&self.data_dir).ok()?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("sqlite") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    if stem.to_lowercase() == want {
                        return Some((stem.to_string(), p));
                    }
                }
            }
        }
        None
    }

    /// Creates master if needed.
    pub fn ensure_master(&self) -> Result<(), SqlError> {
        if self.find_database("master").is_none() {
            self.create_database("master")?;
        }
        Ok(())
    }

    pub fn create_database(&self, name: &str) -> Result<(), SqlError> {
        if name.is_empty()
            || name.len() > 123
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(SqlError::unsupported(format!(
                "the database name '{name}' (use letters, digits, '_' and '-')"
            )));
        }
        let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.find_database(name).is_some() {
            return Err(SqlError::new(
                1801,
                16,
                format!("Database '{name}' already exists. Choose a different database name."),
            ));
        }
        let path = self.data_dir.join(format!("{name}.sqlite"));
        let conn = Connection::open(&path).map_err(catalog::sqlite_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(catalog::sqlite_err)?;
        functions::register(&conn, self.clock.clone()).map_err(catalog::sqlite_err)?;
        catalog::init(&conn).map_err(catalog::sqlite_err)?;
        catalog::set_option(&conn, "database_id", &database_id(name).to_string())
            .map_err(catalog::sqlite_err)?;
        Ok(())
    }
}

/// A stable database_id: master is 1, user databases count from 5.
pub fn database_id(name: &str) -> i64 {
    match name.to_ascii_lowercase().as_str() {
        "master" => 1,
        "tempdb" => 2,
        "model" => 3,
        "msdb" => 4,
        other => {
            5 + (other
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
                % 30000) as i64
        }
    }
}

/// What a request produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
    },
    /// The end of one statement; `count` is None for statements without a row count.
    Done {
        cmd: u16,
        count: Option<u64>,
        error: bool,
    },
    Error(SqlError),
    Info(i32, String),
    EnvDatabase {
        new: String,
        old: String,
    },
    BeginTran(u64),
    CommitTran(u64),
    RollbackTran(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
    Snapshot,
}

impl Isolation {
    /// From the TM_BEGIN isolation byte.
    pub fn from_tm(b: u8) -> Option<Isolation> {
        Some(match b {
            1 => Isolation::ReadUncommitted,
            2 => Isolation::ReadCommitted,
            3 => Isolation::RepeatableRead,
            4 => Isolation::Serializable,
            5 => Isolation::Snapshot,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
struct Tran {
    count: u32,
    descriptor: u64,
    /// A SQLite transaction is open.
    open: bool,
    snapshot: bool,
    /// Savepoints, and whether each exists in SQLite yet.
    savepoints: Vec<(String, bool)>,
}

/// How far an error reaches (see Erland Sommarskog's classification).
#[derive(Debug, PartialEq, Eq)]
enum Abort {
    Statement,
    Batch,
    BatchAndTransaction,
}

fn abort_kind(e: &SqlError) -> Abort {
    match e.number {
        245 | 8114 | 241 | 8169 | 206 | 1205 | 3960 | 1222 | 8115 | 220 => {
            Abort::BatchAndTransaction
        }
        208 | 207 | 4104 | 102 | 156 | 195 | 2715 | 213 | 109 | 110 | 137 | 911 | 40000 | 174
        | 189 => Abort::Batch,
        _ => Abort::Statement,
    }
}

/// One client connection's engine state.
pub struct Session {
    shared: Arc<Shared>,
    pub spid: u16,
    pub database: String,
    conn: Connection,
    /// Lets the connection's reader thread cancel a running statement.
    pub interrupt: Arc<Mutex<Option<InterruptHandle>>>,
    tran: Tran,
    isolation: Isolation,
    nocount: bool,
    xact_abort: bool,
    identity_insert: Option<i64>,
    rowcount: i64,
    last_identity: Option<i64>,
    temp: HashMap<String, TableDef>,
    temp_ids: i64,
    vars: HashMap<String, (SqlType, Value)>,
    /// What the change tracking triggers need to know of the running statement.
    ct_stmt: ct::StmtCell,
    /// `WITH CHANGE_TRACKING_CONTEXT` of the statement about to run.
    ct_context: Option<Vec<u8>>,
    /// The target of an `INSERT BULK` whose bulk-load message is awaited.
    bulk: Option<(TableDef, Vec<String>)>,
}

fn open_connection(
    shared: &Shared,
    path: &std::path::Path,
    name: &str,
    ct_stmt: &ct::StmtCell,
) -> Result<Connection, SqlError> {
    let conn = Connection::open(path).map_err(catalog::sqlite_err)?;
    conn.busy_timeout(shared.lock_timeout)
        .map_err(catalog::sqlite_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(catalog::sqlite_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(catalog::sqlite_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(catalog::sqlite_err)?;
    functions::register(&conn, shared.clock.clone()).map_err(catalog::sqlite_err)?;
    ct::register(&conn, ct_stmt.clone()).map_err(catalog::sqlite_err)?;
    catalog::init(&conn).map_err(catalog::sqlite_err)?;
    ct::init(&conn).map_err(catalog::sqlite_err)?;
    catalog::create_views(&conn, name).map_err(catalog::sqlite_err)?;
    Ok(conn)
}

/// Maps a SQLite failure to SQL Server's error for the same condition.
fn map_sqlite(e: rusqlite::Error, table: Option<&TableDef>, db: &str, verb: &str) -> SqlError {
    if let Some(se) = SqlError::decode(&e.to_string()) {
        return se;
    }
    let msg = e.to_string();
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            rusqlite::ErrorCode::OperationInterrupted => {
                return SqlError::new(3617, 25, "The query was cancelled.").with_state(1)
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                if f.extended_code == 517 {
                    // SQLITE_BUSY_SNAPSHOT
                    return SqlError::new(
                        3960,
                        16,
                        format!("Snapshot isolation transaction aborted due to update conflict. You cannot use snapshot isolation to access table '{}' directly or indirectly in database '{db}' to update, delete, or insert the row that has been modified or deleted by another transaction. Retry the transaction or change the isolation level for the update/delete statement.", table.map(|t| t.display_name()).unwrap_or_default()),
                    );
                }
                return SqlError::new(1222, 16, "Lock request time out period exceeded.");
            }
            _ => {}
        }
    }
    let tname = table.map(|t| t.display_name()).unwrap_or_default();
    if let Some(rest) = msg.strip_prefix("NOT NULL constraint failed: ") {
        let col = rest.rsplit('.').next().unwrap_or(rest);
        return SqlError::new(515, 16, format!("Cannot insert the value NULL into column '{col}', table '{db}.{tname}'; column does not allow nulls. {verb} fails."))
            .with_state(2);
    }
    if msg.starts_with("UNIQUE constraint failed") {
        if let Some(t) = table {
            let cols: Vec<String> = msg
                .trim_start_matches("UNIQUE constraint failed: ")
                .split(", ")
                .map(|c| c.rsplit('.').next().unwrap_or(c).to_string())
                .collect();
            let is_pk = !t.pk.is_empty()
                && cols.len() == t.pk.len()
                && cols
                    .iter()
                    .all(|c| t.pk.iter().any(|p| p.eq_ignore_ascii_case(c)));
            if is_pk {
                return SqlError::new(
                    2627,
                    14,
                    format!(
                        "Violation of PRIMARY KEY constraint '{}'. Cannot insert duplicate key in object '{}'.",
                        t.pk_name.clone().unwrap_or_default(),
                        t.display_name()
                    ),
                );
            }
            return SqlError::new(
                2601,
                14,
                format!(
                    "Cannot insert duplicate key row in object '{}' with unique index.",
                    t.display_name()
                ),
            );
        }
        return SqlError::new(
            2627,
            14,
            "Violation of PRIMARY KEY constraint. Cannot insert duplicate key.",
        );
    }
    if msg.contains("FOREIGN KEY constraint failed") {
        let (fk, other) = table
            .and_then(|t| {
                t.foreign_keys
                    .first()
                    .map(|f| (f.name.clone(), format!("{}.{}", f.ref_schema, f.ref_table)))
            })
            .unwrap_or_default();
        return SqlError::new(
            547,
            16,
            format!("The {verb} statement conflicted with the FOREIGN KEY constraint \"{fk}\". The conflict occurred in database \"{db}\", table \"{other}\"."),
        );
    }
    if msg.contains("CHECK constraint failed") {
        return SqlError::new(547, 16, format!("The {verb} statement conflicted with the CHECK constraint. The conflict occurred in database \"{db}\", table \"{tname}\"."));
    }
    if let Some(rest) = msg.strip_prefix("no such column: ") {
        let col = rest.rsplit('.').next().unwrap_or(rest);
        return SqlError::invalid_column(col.trim_matches('"'));
    }
    if msg.starts_with("ambiguous column name: ") {
        let col = msg.trim_start_matches("ambiguous column name: ");
        return SqlError::new(
            209,
            16,
            format!(
                "Ambiguous column name '{}'.",
                col.rsplit('.').next().unwrap_or(col)
            ),
        );
    }
    if let Some(rest) = msg.strip_prefix("no such table: ") {
        return SqlError::invalid_object(rest);
    }
    if msg.contains("integer overflow") {
        return SqlError::new(
            8115,
            16,
            "Arithmetic overflow error converting expression to data type bigint.",
        );
    }
    if msg.contains("values for") && msg.contains("columns") {
        return SqlError::new(120, 15, "The select list for the INSERT statement contains fewer items than the insert list. The number of SELECT values must match the number of INSERT columns.");
    }
    SqlError::new(
        40000,
        16,
        format!("mssql-sim cannot run this statement: {msg}"),
    )
}

/// The column a key or index column names (`[Id]`, `"Id"`, `Id`).
fn index_column_name(ic: &sqlparser::ast::IndexColumn) -> String {
    match &ic.column.expr {
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

fn column_name_of(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
        _ => name.to_string(),
    }
}

/// Infers a type from values when nothing else is known.
fn infer_from_values(values: &[&SqliteValue]) -> SqlType {
    let mut ty: Option<SqlType> = None;
    for v in values {
        let t = match v {
            SqliteValue::Null => continue,
            SqliteValue::Integer(i) => {
                if i32::try_from(*i).is_ok() {
                    SqlType::Int
                } else {
                    SqlType::BigInt
                }
            }
            SqliteValue::Real(_) => SqlType::Float,
            SqliteValue::Text(s) => {
                if s.encode_utf16().count() > 4000 {
                    SqlType::NVarChar(Len::Max)
                } else {
                    SqlType::NVarChar(Len::N(4000))
                }
            }
            SqliteValue::Blob(b) => {
                if b.len() > 8000 {
                    SqlType::VarBinary(Len::Max)
                } else {
                    SqlType::VarBinary(Len::N(8000))
                }
            }
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(SqlType::Int), SqlType::BigInt) => SqlType::BigInt,
            (Some(SqlType::Int | SqlType::BigInt), SqlType::Float) => SqlType::Float,
            (Some(SqlType::NVarChar(_)), SqlType::NVarChar(Len::Max)) => {
                SqlType::NVarChar(Len::Max)
            }
            (Some(SqlType::VarBinary(_)), SqlType::VarBinary(Len::Max)) => {
                SqlType::VarBinary(Len::Max)
            }
            (Some(prev), _) => prev,
        });
    }
    ty.unwrap_or(SqlType::Int)
}

impl Session {
    /// Opens a session on `database` (master when empty).
    pub fn open(shared: Arc<Shared>, database: &str) -> Result<Session, SqlError> {
        let want = if database.is_empty() {
            "master"
        } else {
            database
        };
        let Some((name, path)) = shared.find_database(want) else {
            return Err(SqlError::new(
                4060,
                11,
                format!(
                    "Cannot open database \"{want}\" requested by the login. The login failed."
                ),
            ));
        };
        let ct_stmt = ct::StmtCell::default();
        let conn = open_connection(&shared, &path, &name, &ct_stmt)?;
        let spid = shared.next_spid();
        let interrupt = Arc::new(Mutex::new(Some(conn.get_interrupt_handle())));
        Ok(Session {
            shared,
            spid,
            database: name,
            conn,
            interrupt,
            tran: Tran::default(),
            isolation: Isolation::ReadCommitted,
            nocount: false,
            xact_abort: false,
            identity_insert: None,
            rowcount: 0,
            last_identity: None,
            temp: HashMap::new(),
            temp_ids: -1_000_000,
            vars: HashMap::new(),
            ct_stmt,
            ct_context: None,
            bulk: None,
        })
    }

    pub fn trancount(&self) -> u32 {
        self.tran.count
    }

    /// Undoes everything a RESETCONNECTION asks for: rolls back, drops temp
    /// tables, resets options.
    pub fn reset(&mut self, out: &mut Vec<Out>) {
        if self.tran.count > 0 {
            self.rollback_all(out);
        }
        for t in std::mem::take(&mut self.temp).values() {
            let _ = self.conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.{}",
                q(&t.sqlite_name())
            ));
        }
        self.isolation = Isolation::ReadCommitted;
        self.nocount = false;
        self.xact_abort = false;
        self.identity_insert = None;
    }

    fn view(&self) -> SessionView {
        SessionView {
            database: self.database.clone(),
            trancount: self.tran.count,
            rowcount: self.rowcount,
            spid: self.spid,
            identity: self.last_identity,
        }
    }

    // ------------------------------------------------------------ transactions

    pub fn begin(&mut self, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            if self.isolation == Isolation::Snapshot {
                let allowed = catalog::get_option(&self.conn, "allow_snapshot_isolation")
                    .map_err(catalog::sqlite_err)?;
                if allowed.as_deref() != Some("ON") {
                    return Err(SqlError::new(
                        3952,
                        16,
                        format!("Snapshot isolation transaction failed accessing database '{}' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.", self.database),
                    ));
                }
                self.conn
                    .execute_batch("BEGIN DEFERRED")
                    .map_err(catalog::sqlite_err)?;
                self.tran.open = true;
                self.tran.snapshot = true;
            } else {
                self.tran.open = false;
                self.tran.snapshot = false;
            }
            self.tran.descriptor = self.shared.next_descriptor();
            self.tran.savepoints.clear();
            self.tran.count = 1;
            out.push(Out::BeginTran(self.tran.descriptor));
        } else {
            self.tran.count += 1;
        }
        Ok(())
    }

    /// Makes sure SQLite has a write transaction when a statement is about to write.
    fn before_write(&mut self) -> Result<(), SqlError> {
        if self.tran.count > 0 && !self.tran.open {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
            self.tran.open = true;
            for (name, made) in self.tran.savepoints.iter_mut() {
                self.conn
                    .execute_batch(&format!("SAVEPOINT {}", q(name)))
                    .map_err(catalog::sqlite_err)?;
                *made = true;
            }
        }
        Ok(())
    }

    pub fn commit(&mut self, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                3902,
                16,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        self.tran.count -= 1;
        if self.tran.count == 0 {
            if self.tran.open {
                let now = self.now_text();
                let committed = ct::on_commit(&self.conn, &now).and_then(|_| {
                    self.conn
                        .execute_batch("COMMIT")
                        .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))
                });
                if let Err(err) = committed {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.tran.open = false;
                    out.push(Out::RollbackTran(self.tran.descriptor));
                    return Err(err);
                }
            }
            self.tran.open = false;
            out.push(Out::CommitTran(self.tran.descriptor));
        }
        Ok(())
    }

    fn rollback_all(&mut self, out: &mut Vec<Out>) {
        if self.tran.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tran.open = false;
        self.tran.count = 0;
        self.tran.savepoints.clear();
        out.push(Out::RollbackTran(self.tran.descriptor));
    }

    pub fn rollback(&mut self, name: Option<&str>, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                3903,
                16,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        if let Some(n) = name {
            if let Some(pos) = self.tran.savepoints.iter().rposition(|(s, _)| s == n) {
                let (_, made) = self.tran.savepoints[pos].clone();
                if made {
                    self.conn
                        .execute_batch(&format!("ROLLBACK TO {}", q(n)))
                        .map_err(catalog::sqlite_err)?;
                }
                self.tran.savepoints.truncate(pos + 1);
                return Ok(());
            }
            // A name that is not a savepoint must be the outer transaction's name;
            // we accept any other name only for the outermost rollback.
        }
        self.rollback_all(out);
        Ok(())
    }

    pub fn save(&mut self, name: &str) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                628,
                16,
                "Cannot issue SAVE TRANSACTION when there is no active transaction.",
            ));
        }
        let made = if self.tran.open {
            self.conn
                .execute_batch(&format!("SAVEPOINT {}", q(name)))
                .map_err(catalog::sqlite_err)?;
            true
        } else {
            false
        };
        self.tran.savepoints.push((name.to_string(), made));
        Ok(())
    }

    pub fn set_isolation(&mut self, level: Isolation) {
        self.isolation = level;
    }

    // ---------------------------------------------------------------- batches

    /// Runs a batch. `params` are bound by name (`@P1`, ...), as from sp_executesql.
    pub fn execute(&mut self, sql: &str, params: Vec<(String, SqlType, Value)>) -> Vec<Out> {
        let mut out = Vec::new();
        if self.tran.count == 0 {
            self.maybe_auto_cleanup();
        }
        self.vars = params
            .into_iter()
            .map(|(n, t, v)| (n.to_lowercase(), (t, v)))
            .collect();
        let stmts = match parse::parse_batch(sql) {
            Ok(s) => s,
            Err(e) => {
                out.push(Out::Error(e));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: true,
                });
                return out;
            }
        };
        for stmt in stmts {
            match self.execute_stmt(stmt, &mut out) {
                Ok(()) => {}
                Err(e) => {
                    let kind = abort_kind(&e);
                    let cancelled = e.number == 3617;
                    // A statement pushes results only when it succeeds; what it
                    // pushed before failing is a transaction change the client
                    // must still hear of (a failed COMMIT rolls back).
                    if !cancelled {
                        out.push(Out::Error(e));
                        out.push(Out::Done {
                            cmd: 0,
                            count: None,
                            error: true,
                        });
                    }
                    let in_tran = self.tran.count > 0;
                    if in_tran && (kind == Abort::BatchAndTransaction || self.xact_abort) {
                        self.rollback_all(&mut out);
                    }
                    if cancelled || kind != Abort::Statement || self.xact_abort {
                        break;
                    }
                }
            }
        }
        self.vars.clear();
        out
    }

    /// The simulator's clock as change tracking stores it.
    fn now_text(&self) -> String {
        ct::time_text(&self.shared.clock.now_utc())
    }

    /// Runs one INSERT/UPDATE/DELETE. Outside a transaction the statement
    /// is its own transaction, so that the change tracking version it draws
    /// commits with it.
    fn dml(
        &mut self,
        f: impl FnOnce(&mut Session) -> Result<u64, SqlError>,
    ) -> Result<u64, SqlError> {
        let auto = self.tran.count == 0;
        if auto {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
        }
        ct::begin_statement(&self.ct_stmt, self.ct_context.take(), None);
        let r = f(self);
        ct::end_statement(&self.ct_stmt);
        if !auto {
            return r;
        }
        let r = r.and_then(|n| {
            ct::on_commit(&self.conn, &self.now_text())?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))?;
            Ok(n)
        });
        if r.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        r
    }

    /// AUTO_CLEANUP: SQL Server's cleanup task runs every 30 minutes; here it
    /// runs when a batch starts outside a transaction and 30 simulated
    /// minutes have passed. It never waits for a lock: when another session
    /// is writing, it runs at a later batch.
    fn maybe_auto_cleanup(&mut self) {
        let now = self.shared.clock.now_utc();
        if !matches!(ct::auto_cleanup_due(&self.conn, &now), Ok(true)) {
            return;
        }
        let text = ct::time_text(&now);
        let _ = self.conn.busy_timeout(Duration::from_millis(0));
        if self.conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
            let r = ct::cleanup(&self.conn, &text, None)
                .and_then(|_| ct::mark_auto_cleanup(&self.conn, &text));
            let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
            if self.conn.execute_batch(end).is_err() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
        let _ = self.conn.busy_timeout(self.shared.lock_timeout);
    }

    fn done_count(&self, cmd: u16, n: u64, out: &mut Vec<Out>) {
        out.push(Out::Done {
            cmd,
            count: if self.nocount { None } else { Some(n) },
            error: false,
        });
    }

    fn execute_stmt(&mut self, stmt: Stmt, out: &mut Vec<Out>) -> Result<(), SqlError> {
        match stmt {
            Stmt::BeginTran(_) => {
                self.begin(out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::CommitTran(_) => {
                self.commit(out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::RollbackTran(name) => {
                self.rollback(name.as_deref(), out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::SaveTran(name) => {
                self.save(&name)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::SetOption { names, value } => {
                for n in &names {
                    self.set_option(n, &value)?;
                }
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::SetIsolation(level) => {
                let iso = match level.as_str() {
                    "READ UNCOMMITTED" => Isolation::ReadUncommitted,
                    "READ COMMITTED" => Isolation::ReadCommitted,
                    "REPEATABLE READ" => Isolation::RepeatableRead,
                    "SERIALIZABLE" => Isolation::Serializable,
                    "SNAPSHOT" => Isolation::Snapshot,
                    other => return Err(SqlError::syntax_near(other)),
                };
                self.isolation = iso;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::SetIdentityInsert { table, on } => {
                let t = {
                    let res = Resolver {
                        conn: &self.conn,
                        temp: &self.temp,
                        database: &self.database,
                    };
                    res.resolve_table(&table)?
                };
                if !t.columns.iter().any(|c| c.identity) {
                    return Err(SqlError::new(8106, 16, format!("Table '{}' does not have the identity property. Cannot perform SET operation.", t.display_name())));
                }
                self.identity_insert = if on { Some(t.object_id) } else { None };
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::Declare(vars) => {
                for (name, ty, init) in vars {
                    let v = match init {
                        Some(e) => {
                            let raw = self.eval_scalar(e)?;
                            crate::types::convert(&raw, &ty, None)?
                        }
                        None => Value::Null,
                    };
                    self.vars.insert(name.to_lowercase(), (ty, v));
                }
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::SetVariable { name, value } => {
                let key = name.to_lowercase();
                let Some((ty, _)) = self.vars.get(&key).cloned() else {
                    return Err(SqlError::new(
                        137,
                        15,
                        format!("Must declare the scalar variable \"{name}\"."),
                    ));
                };
                let raw = self.eval_scalar(value)?;
                let v = crate::types::convert(&raw, &ty, None)?;
                self.vars.insert(key, (ty, v));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::AlterDatabase { database, words } => {
                self.alter_database(database, &words)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::AlterTableChangeTracking {
                table,
                enable,
                track_columns,
            } => {
                self.before_write()?;
                self.alter_table_change_tracking(&table, enable, track_columns.unwrap_or(false))?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::AlterTableSwitch { table, target } => {
                for name in std::iter::once(&table).chain(target.as_ref()) {
                    let def = self.resolver().resolve_table(name)?;
                    if !def.temp && ct::table_tracking(&self.conn, def.object_id)?.is_some() {
                        let mut e = SqlError::new(4900, 16, format!("The ALTER TABLE SWITCH statement failed for table '{}.{}'. It is not possible to switch the partition of a table that has change tracking enabled. Disable change tracking before using ALTER TABLE SWITCH.", self.database, def.display_name()));
                        e.state = 1;
                        return Err(e);
                    }
                }
                return Err(SqlError::unsupported("ALTER TABLE ... SWITCH"));
            }
            Stmt::InsertBulk { table, columns } => {
                let def = self.resolver().resolve_table(&table)?;
                for c in &columns {
                    if def.column(c).is_none() {
                        return Err(SqlError::invalid_column(c));
                    }
                }
                self.bulk = Some((def, columns));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::WithChangeTrackingContext { context, stmt } => {
                if matches!(stmt.as_ref(), Statement::Query(_)) {
                    return Err(SqlError::new(22108, 16, "The CHANGE_TRACKING_CONTEXT WITH clause cannot be used with a SELECT statement."));
                }
                if !matches!(
                    stmt.as_ref(),
                    Statement::Insert(_)
                        | Statement::Update(_)
                        | Statement::Delete(_)
                        | Statement::Merge(_)
                ) {
                    return Err(SqlError::syntax_near("WITH"));
                }
                let bad = || {
                    SqlError::new(22109, 16, "The \"context\" argument for the CHANGE_TRACKING_CONTEXT WITH clause must be of type varbinary data type with a maximum length of 128.")
                };
                let typed_ok = match &context {
                    Expr::Identifier(i) if i.value.starts_with('@') => {
                        match self.vars.get(&i.value.to_lowercase()) {
                            Some((SqlType::VarBinary(Len::N(n)), _))
                            | Some((SqlType::Binary(n), _)) => *n <= 128,
                            Some(_) => false,
                            None => true, // 137 comes from evaluation
                        }
                    }
                    Expr::Value(_) => true,
                    _ => false,
                };
                if !typed_ok {
                    return Err(bad());
                }
                let v = self.eval_scalar(context)?;
                self.ct_context = match v {
                    Value::Bytes(b) if b.len() <= 128 => Some(b),
                    Value::Null => None,
                    _ => return Err(bad()),
                };
                let r = self.execute_sql(*stmt, out);
                self.ct_context = None;
                r?;
            }
            Stmt::Sql(s) => self.execute_sql(*s, out)?,
        }
        Ok(())
    }

    /// EXEC of the system procedures the simulator implements.
    fn execute_procedure(
        &mut self,
        name: &ObjectName,
        parameters: Vec<Expr>,
    ) -> Result<(), SqlError> {
        let proc = name.to_string().replace(['[', ']', '"'], "");
        let lower = proc.to_ascii_lowercase();
        // (parameter name or None, value expression)
        let mut args: Vec<(Option<String>, Expr)> = Vec::new();
        for p in parameters {
            match p {
                Expr::BinaryOp {
                    left,
                    op: sqlparser::ast::BinaryOperator::Eq,
                    right,
                } if matches!(left.as_ref(), Expr::Identifier(i) if i.value.starts_with('@')) => {
                    let Expr::Identifier(i) = *left else {
                        unreachable!()
                    };
                    args.push((Some(i.value.to_ascii_lowercase()), *right));
                }
                other => args.push((None, other)),
            }
        }
        let arg = |args: &[(Option<String>, Expr)], pos: usize, named: &str| -> Option<Expr> {
            args.iter()
                .find(|(n, _)| n.as_deref() == Some(named))
                .or_else(|| args.get(pos).filter(|(n, _)| n.is_none()))
                .map(|(_, e)| e.clone())
        };
        match lower.as_str() {
            "sys.sp_flush_ct_internal_table_on_demand" | "sp_flush_ct_internal_table_on_demand" => {
                let table = match arg(&args, 0, "@tabletoclean") {
                    Some(e) => match self.eval_scalar(e)? {
                        Value::Str(s) => Some(s),
                        Value::Null => None,
                        _ => {
                            return Err(SqlError::new(
                                8114,
                                16,
                                "Error converting data type to nvarchar.",
                            ))
                        }
                    },
                    None => None,
                };
                let only = match &table {
                    Some(t) => {
                        let def = self
                            .resolver()
                            .resolve_table(&translate::parse_object_name(t)?)?;
                        if def.temp || ct::table_tracking(&self.conn, def.object_id)?.is_none() {
                            return Err(SqlError::new(
                                22105,
                                16,
                                format!("Change tracking is not enabled on table '{t}'."),
                            ));
                        }
                        Some(def.object_id)
                    }
                    None => None,
                };
                self.before_write()?;
                let now = self.now_text();
                let deleted = self.dml(|s| ct::cleanup(&s.conn, &now, only).map(|n| n as u64))?;
                if let Some(Expr::Identifier(v)) = arg(&args, 1, "@deletedrowcount") {
                    let key = v.value.to_lowercase();
                    match self.vars.get(&key).cloned() {
                        Some((ty, _)) => {
                            let val =
                                crate::types::convert(&Value::Int(deleted as i64), &ty, None)?;
                            self.vars.insert(key, (ty, val));
                        }
                        None => {
                            return Err(SqlError::new(
                                137,
                                15,
                                format!("Must declare the scalar variable \"{}\".", v.value),
                            ))
                        }
                    }
                }
                Ok(())
            }
            "mssql_sim.advance_clock" => {
                let Some(e) = arg(&args, 0, "@seconds") else {
                    return Err(SqlError::new(201, 16, "Procedure or function 'mssql_sim.advance_clock' expects parameter '@seconds', which was not supplied."));
                };
                match self.eval_scalar(e)? {
                    Value::Int(n) => {
                        self.shared.clock.advance(n);
                        Ok(())
                    }
                    _ => Err(SqlError::new(
                        8114,
                        16,
                        "Error converting data type to bigint.",
                    )),
                }
            }
            _ if lower.starts_with("sys.")
                || lower.starts_with("sp_")
                || lower.starts_with("xp_") =>
            {
                Err(SqlError::unsupported(format!(
                    "the system procedure {proc}"
                )))
            }
            _ => Err(SqlError::new(
                2812,
                16,
                format!("Could not find stored procedure '{proc}'."),
            )),
        }
    }

    /// Loads the rows of a bulk-load message into the table named by the
    /// preceding `INSERT BULK`, converting each value to its column's type
    /// as SQL Server does; all rows or none (one statement).
    pub fn bulk_load(
        &mut self,
        columns: Vec<(String, SqlType)>,
        rows: Vec<Vec<Value>>,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let r = self.bulk_load_inner(columns, rows);
        match r {
            Ok(n) => {
                self.rowcount = n as i64;
                self.done_count(CMD_INSERT, n, &mut out);
            }
            Err(e) => {
                let abort = abort_kind(&e) == Abort::BatchAndTransaction || self.xact_abort;
                out.push(Out::Error(e));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: true,
                });
                if abort && self.tran.count > 0 {
                    self.rollback_all(&mut out);
                }
            }
        }
        out
    }

    fn bulk_load_inner(
        &mut self,
        columns: Vec<(String, SqlType)>,
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, SqlError> {
        let Some((def, names)) = self.bulk.take() else {
            return Err(SqlError::new(4804, 16, "While reading current row from host, a premature end-of-message was encountered--an incoming data stream was interrupted when the server expected to see more data. The host program may have terminated. Ensure that you are using a supported client application programming interface (API)."));
        };
        if columns.len() != names.len() {
            return Err(SqlError::new(
                4816,
                16,
                format!(
                    "Invalid column type from bcp client for colid {}.",
                    columns.len().min(names.len()) + 1
                ),
            ));
        }
        let targets: Vec<ColumnDef> = names
            .iter()
            .map(|n| {
                def.column(n)
                    .cloned()
                    .ok_or_else(|| SqlError::invalid_column(n))
            })
            .collect::<Result<_, _>>()?;
        let cols: Vec<String> = targets.iter().map(|c| q(&c.name)).collect();
        let vals: Vec<String> = targets
            .iter()
            .enumerate()
            .map(|(i, c)| Self::conv_expr(&def, c, &format!("?{}", i + 1)))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(&def.sqlite_name()),
            cols.join(", "),
            vals.join(", ")
        );
        self.before_write()?;
        let wire_types: Vec<SqlType> = columns.iter().map(|(_, t)| *t).collect();
        self.dml(|s| {
            s.atomic(|s| {
                let mut stmt = s
                    .conn
                    .prepare(&sql)
                    .map_err(|e| map_sqlite(e, Some(&def), &s.database, "INSERT"))?;
                let mut n = 0u64;
                for row in &rows {
                    for (i, (v, t)) in row.iter().zip(&wire_types).enumerate() {
                        stmt.raw_bind_parameter(i + 1, to_storage(v, t))
                            .map_err(catalog::sqlite_err)?;
                    }
                    n += stmt
                        .raw_execute()
                        .map_err(|e| map_sqlite(e, Some(&def), &s.database, "INSERT"))?
                        as u64;
                }
                Ok(n)
            })
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            conn: &self.conn,
            temp: &self.temp,
            database: &self.database,
        }
    }

    /// `ALTER TABLE t ENABLE|DISABLE CHANGE_TRACKING`.
    fn alter_table_change_tracking(
        &mut self,
        table: &ObjectName,
        enable: bool,
        track_columns: bool,
    ) -> Result<(), SqlError> {
        let written = table.to_string().replace(['[', ']', '"'], "");
        let def = self.resolver().resolve_table(table)?;
        if def.temp {
            return Err(SqlError::new(1718, 16, format!("Change tracking must be enabled on database 'tempdb' before it can be enabled on table '{written}'.")));
        }
        let database = self.database.clone();
        self.atomic(|s| {
            if enable {
                ct::enable_table(&s.conn, &database, &def, &written, track_columns)
            } else {
                ct::disable_table(&s.conn, &def, &written)
            }
        })
    }

    fn set_option(&mut self, name: &str, value: &str) -> Result<(), SqlError> {
        let on = value == "ON";
        match name {
            "NOCOUNT" => self.nocount = on,
            "XACT_ABORT" => self.xact_abort = on,
            "IMPLICIT_TRANSACTIONS" if on => {
                return Err(SqlError::unsupported("SET IMPLICIT_TRANSACTIONS ON"))
            }
            "ANSI_NULLS"
            | "ANSI_PADDING"
            | "ANSI_WARNINGS"
            | "CONCAT_NULL_YIELDS_NULL"
            | "QUOTED_IDENTIFIER"
            | "ARITHABORT"
                if !on =>
            {
                return Err(SqlError::unsupported(format!("SET {name} OFF")));
            }
            "ANSI_NULLS"
            | "ANSI_PADDING"
            | "ANSI_WARNINGS"
            | "CONCAT_NULL_YIELDS_NULL"
            | "QUOTED_IDENTIFIER"
            | "ARITHABORT"
            | "ANSI_NULL_DFLT_ON"
            | "ANSI_DEFAULTS"
            | "CURSOR_CLOSE_ON_COMMIT"
            | "IMPLICIT_TRANSACTIONS"
            | "NUMERIC_ROUNDABORT"
            | "TEXTSIZE"
            | "LANGUAGE"
            | "DATEFORMAT"
            | "DATEFIRST"
            | "LOCK_TIMEOUT"
            | "DEADLOCK_PRIORITY"
            | "ROWCOUNT"
            | "STATISTICS"
            | "FMTONLY"
            | "NOEXEC"
            | "ARITHIGNORE"
            | "ANSI_NULL_DFLT_OFF"
            | "CONTEXT_INFO"
            | "QUERY_GOVERNOR_COST_LIMIT"
            | "PARSEONLY"
            | "SHOWPLAN_ALL"
            | "SHOWPLAN_XML"
            | "XML" => {
                if name == "ROWCOUNT" && value != "0" {
                    return Err(SqlError::unsupported("SET ROWCOUNT other than 0"));
                }
                if (name == "FMTONLY"
                    || name == "NOEXEC"
                    || name == "PARSEONLY"
                    || name.starts_with("SHOWPLAN"))
                    && on
                {
                    return Err(SqlError::unsupported(format!("SET {name} ON")));
                }
                if name == "DATEFORMAT" && value != "MDY" && value != "YMD" {
                    return Err(SqlError::unsupported(format!("SET DATEFORMAT {value}")));
                }
            }
            other => {
                return Err(SqlError::new(
                    195,
                    15,
                    format!("'{other}' is not a recognized SET option."),
                ))
            }
        }
        Ok(())
    }

    fn alter_database(
        &mut self,
        database: Option<String>,
        words: &[String],
    ) -> Result<(), SqlError> {
        if let Some(db) = &database {
            if !db.eq_ignore_ascii_case(&self.database) {
                if self.shared.find_database(db).is_none() {
                    return Err(SqlError::new(5011, 14, format!("User does not have permission to alter database '{db}', the database does not exist, or the database is not in a state that allows access checks.")));
                }
                return Err(SqlError::unsupported(
                    "ALTER DATABASE on a database other than the current one",
                ));
            }
        }
        let up: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        if up.first().map(String::as_str) != Some("SET") {
            return Err(SqlError::unsupported(format!(
                "ALTER DATABASE {}",
                words.join(" ")
            )));
        }
        let rest = &up[1..];
        if let Some(pos) = rest.iter().position(|w| w == "CHANGE_TRACKING") {
            if pos != 0 {
                return Err(SqlError::new(22114, 16, "Change tracking options for ALTER DATABASE cannot be combined with other ALTER DATABASE options."));
            }
            if self.tran.count > 0 {
                return Err(SqlError::new(
                    226,
                    16,
                    "ALTER DATABASE statement not allowed within multi-statement transaction.",
                ));
            }
            let change = ct::parse_db_change(&words[1..])?;
            let database = self.database.clone();
            let now = self.now_text();
            return self.atomic(|s| ct::alter_database(&s.conn, &database, &change, &now));
        }
        match rest {
            [opt, v] if opt == "ALLOW_SNAPSHOT_ISOLATION" && (v == "ON" || v == "OFF") => {
                catalog::set_option(&self.conn, "allow_snapshot_isolation", v)
                    .map_err(catalog::sqlite_err)?;
            }
            [opt, v, ..] if opt == "READ_COMMITTED_SNAPSHOT" && (v == "ON" || v == "OFF") => {
                catalog::set_option(&self.conn, "read_committed_snapshot", v)
                    .map_err(catalog::sqlite_err)?;
            }
            [opt, ..]
                if opt == "RECOVERY"
                    || opt == "COMPATIBILITY_LEVEL"
                    || opt == "PAGE_VERIFY"
                    || opt == "AUTO_CLOSE"
                    || opt == "AUTO_SHRINK" => {}
            _ => {
                return Err(SqlError::unsupported(format!(
                    "ALTER DATABASE ... {}",
                    words.join(" ")
                )))
            }
        }
        Ok(())
    }

    /// Evaluates a scalar expression (DECLARE/SET @v = ...).
    fn eval_scalar(&mut self, mut e: Expr) -> Result<Value, SqlError> {
        let view = self.view();
        let sql = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            let mut rw = Rewriter::new(&res, &view);
            rw.rewrite(&mut e)?;
            rw.finish_sql(format!("SELECT {e}"))
        };
        let (_, rows) = self.select(&sql, &[None], false)?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null))
    }

    fn execute_sql(&mut self, stmt: Statement, out: &mut Vec<Out>) -> Result<(), SqlError> {
        match stmt {
            Statement::Query(q) => {
                let n = self.run_query(*q, out)?;
                self.rowcount = n as i64;
                self.done_count(CMD_SELECT, n, out);
            }
            Statement::Insert(ins) => {
                self.before_write()?;
                let n = self.dml(|s| s.insert(ins))?;
                self.rowcount = n as i64;
                self.done_count(CMD_INSERT, n, out);
            }
            Statement::Update(upd) => {
                self.before_write()?;
                let n = self.dml(|s| s.update(upd))?;
                self.rowcount = n as i64;
                self.done_count(CMD_UPDATE, n, out);
            }
            Statement::Delete(del) => {
                self.before_write()?;
                let n = self.dml(|s| s.delete(del))?;
                self.rowcount = n as i64;
                self.done_count(CMD_DELETE, n, out);
            }
            Statement::Use(u) => {
                let name = match u {
                    Use::Object(n) => column_name_of(&n),
                    other => return Err(SqlError::syntax_near(&other.to_string())),
                };
                self.use_database(&name, out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::CreateDatabase { db_name, .. } => {
                if self.tran.count > 0 {
                    return Err(SqlError::new(
                        226,
                        16,
                        "CREATE DATABASE statement not allowed within multi-statement transaction.",
                    ));
                }
                self.shared.create_database(&column_name_of(&db_name))?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::CreateSchema { schema_name, .. } => {
                self.before_write()?;
                let name = match schema_name {
                    SchemaName::Simple(n) => column_name_of(&n),
                    SchemaName::UnnamedAuthorization(_) | SchemaName::NamedAuthorization(..) => {
                        return Err(SqlError::unsupported("CREATE SCHEMA ... AUTHORIZATION"))
                    }
                };
                catalog::create_schema(&self.conn, &name)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::CreateTable(ct) => {
                self.before_write()?;
                self.create_table(ct)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::CreateIndex(ci) => {
                self.before_write()?;
                self.create_index(ci)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::AlterTable(at) => {
                self.before_write()?;
                self.alter_table(at)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                table,
                ..
            } => {
                self.before_write()?;
                self.drop(object_type, if_exists, names, table)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::Truncate(t) => {
                self.before_write()?;
                for target in &t.table_names {
                    self.truncate(&target.name)?;
                }
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::StartTransaction { .. } => {
                self.begin(out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::Commit { .. } => {
                self.commit(out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::Rollback { savepoint, .. } => {
                self.rollback(savepoint.as_ref().map(|s| s.value.as_str()), out)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                self.execute_procedure(&name, parameters)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::If(ifs) => {
                // IF cond stmt [ELSE stmt]: the condition is evaluated once, then
                // the chosen branch runs statement by statement.
                let mut chosen = None;
                for block in std::iter::once(&ifs.if_block).chain(ifs.elseif_blocks.iter()) {
                    let Some(cond) = &block.condition else {
                        continue;
                    };
                    let test = Expr::Case {
                        case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                        operand: None,
                        conditions: vec![sqlparser::ast::CaseWhen {
                            condition: cond.clone(),
                            result: translate::number_lit(1),
                        }],
                        else_result: Some(Box::new(translate::number_lit(0))),
                    };
                    if matches!(self.eval_scalar(test)?, Value::Int(1)) {
                        chosen = Some(block.statements().clone());
                        break;
                    }
                }
                if chosen.is_none() {
                    chosen = ifs.else_block.as_ref().map(|b| b.statements().clone());
                }
                for st in chosen.unwrap_or_default() {
                    self.execute_sql(st, out)?;
                }
            }
            Statement::Print(p) => {
                let v = self.eval_scalar(p.message.as_ref().clone())?;
                let text = match v {
                    Value::Str(s) => s,
                    Value::Null => String::new(),
                    other => format!("{:?}", other),
                };
                out.push(Out::Info(0, text));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            other => {
                let text = other.to_string();
                let head: String = text
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(SqlError::unsupported(format!("the statement '{head} ...'")));
            }
        }
        Ok(())
    }

    pub fn use_database(&mut self, name: &str, out: &mut Vec<Out>) -> Result<(), SqlError> {
        let Some((real, path)) = self.shared.find_database(name) else {
            return Err(SqlError::new(911, 16, format!("Database '{name}' does not exist. Make sure that the name is entered correctly.")));
        };
        if real == self.database {
            out.push(Out::EnvDatabase {
                new: real.clone(),
                old: real,
            });
            return Ok(());
        }
        if self.tran.open {
            return Err(SqlError::unsupported(
                "USE inside a transaction that has written data",
            ));
        }
        let conn = open_connection(&self.shared, &path, &real, &self.ct_stmt)?;
        *self.interrupt.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(conn.get_interrupt_handle());
        self.conn = conn;
        self.temp.clear();
        let old = std::mem::replace(&mut self.database, real.clone());
        out.push(Out::EnvDatabase { new: real, old });
        Ok(())
    }

    // ------------------------------------------------------------------ SELECT

    fn run_query(&mut self, mut q: Query, out: &mut Vec<Out>) -> Result<u64, SqlError> {
        let view = self.view();
        let (sql, hints, info_views) = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            let mut rw = Rewriter::new(&res, &view);
            rw.rewrite(&mut q)?;
            let hints = if translate::projection_is_explicit(&q) {
                translate::projection_hints(&rw, &q)
            } else {
                vec![]
            };
            let sql = rw.finish_sql(q.to_string());
            let info = sql.contains("\"INFORMATION_SCHEMA.");
            (sql, hints, info)
        };
        if let SetExpr::Select(sel) = q.body.as_ref() {
            if sel.into.is_some() {
                return Err(SqlError::unsupported("SELECT ... INTO"));
            }
        }
        let (columns, rows) = self.select(&sql, &hints, info_views)?;
        let n = rows.len() as u64;
        out.push(Out::Rows { columns, rows });
        Ok(n)
    }

    fn bind_params(&self, stmt: &mut rusqlite::Statement<'_>) -> Result<(), SqlError> {
        for i in 1..=stmt.parameter_count() {
            let Some(name) = stmt.parameter_name(i).map(str::to_string) else {
                return Err(SqlError::unsupported("positional '?' parameters"));
            };
            let Some((ty, v)) = self.vars.get(&name.to_lowercase()) else {
                return Err(SqlError::new(
                    137,
                    15,
                    format!("Must declare the scalar variable \"{name}\"."),
                ));
            };
            let sv = to_storage(v, ty);
            stmt.raw_bind_parameter(i, sv)
                .map_err(catalog::sqlite_err)?;
        }
        Ok(())
    }

    /// Runs a SELECT and types its columns: from the catalog column it comes
    /// from, else from the rewriter's hint, else from the values.
    fn select(
        &self,
        sql: &str,
        hints: &[Option<SqlType>],
        information_schema: bool,
    ) -> Result<(Vec<Column>, Vec<Vec<Value>>), SqlError> {
        let changetable = sql.contains("\"__sim_ctq_");
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| map_sqlite(e, None, &self.database, "SELECT"))?;
        self.bind_params(&mut stmt)?;
        let ncols = stmt.column_count();
        let mut columns: Vec<(String, Option<SqlType>, bool, bool)> = Vec::with_capacity(ncols);
        {
            let meta: Vec<_> = stmt.columns_with_metadata().collect();
            let mut table_cache: HashMap<String, Option<TableDef>> = HashMap::new();
            for (i, m) in meta.iter().enumerate() {
                let name = m.name().to_string();
                let mut ty = None;
                let mut nullable = true;
                let mut identity = false;
                if let (Some(db), Some(table), Some(origin)) =
                    (m.database_name(), m.table_name(), m.origin_name())
                {
                    let side_of = table
                        .strip_prefix(ct::SIDE_PREFIX)
                        .and_then(|id| id.parse::<i64>().ok());
                    if let Some(object_id) = side_of {
                        // A key column of a CHANGETABLE(CHANGES ...) source.
                        if let Ok(Some(def)) =
                            catalog::load_table_by_object_id(&self.conn, object_id)
                        {
                            if let Some(c) = def.column(origin) {
                                ty = Some(c.ty);
                            }
                        }
                    } else if table.starts_with("__sim_") {
                        ty = Some(catalog::internal_column_type(origin));
                        nullable = false;
                    } else {
                        let def = table_cache
                            .entry(format!("{db}/{table}"))
                            .or_insert_with(|| {
                                if db == "temp" {
                                    self.temp
                                        .values()
                                        .find(|t| t.sqlite_name() == table)
                                        .cloned()
                                } else {
                                    let (s, n) = table.split_once('.').unwrap_or(("dbo", table));
                                    catalog::load_table(&self.conn, s, n).ok().flatten()
                                }
                            })
                            .clone();
                        if let Some(c) = def.as_ref().and_then(|d| d.column(origin)) {
                            ty = Some(c.ty);
                            nullable = c.nullable;
                            identity = c.identity;
                        }
                    }
                }
                // A column traced to a table keeps that column's type; otherwise
                // the rewriter's static type of the expression, if it has one.
                if ty.is_none() {
                    ty = hints.get(i).copied().flatten();
                }
                if ty.is_none() && changetable {
                    ty = ct::system_column_type(&name);
                }
                if ty.is_none() {
                    if information_schema {
                        ty = Some(catalog::information_schema_column_type(&name));
                    }
                }
                columns.push((name, ty, nullable, identity));
            }
        }
        let mut raw_rows: Vec<Vec<SqliteValue>> = Vec::new();
        {
            let mut rows = stmt.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        let mut r = Vec::with_capacity(ncols);
                        for i in 0..ncols {
                            let v: ValueRef<'_> = row.get_ref(i).map_err(catalog::sqlite_err)?;
                            r.push(match v {
                                ValueRef::Null => SqliteValue::Null,
                                ValueRef::Integer(i) => SqliteValue::Integer(i),
                                ValueRef::Real(f) => SqliteValue::Real(f),
                                ValueRef::Text(t) => {
                                    SqliteValue::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                ValueRef::Blob(b) => SqliteValue::Blob(b.to_vec()),
                            });
                        }
                        raw_rows.push(r);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(map_sqlite(e, None, &self.database, "SELECT")),
                }
            }
        }
        let cols: Vec<Column> = columns
            .into_iter()
            .enumerate()
            .map(|(i, (name, ty, nullable, identity))| {
                let ty = ty.unwrap_or_else(|| {
                    let vals: Vec<&SqliteValue> = raw_rows.iter().map(|r| &r[i]).collect();
                    infer_from_values(&vals)
                });
                Column {
                    name,
                    ty,
                    nullable,
                    identity,
                }
            })
            .collect();
        let mut rows = Vec::with_capacity(raw_rows.len());
        for r in &raw_rows {
            let mut vals = Vec::with_capacity(ncols);
            for (c, v) in cols.iter().zip(r) {
                vals.push(from_storage(ValueRef::from(v), &c.ty)?);
            }
            rows.push(vals);
        }
        Ok((cols, rows))
    }

    /// Executes a write statement built by this module, in a savepoint so it
    /// is atomic, and returns the rows it changed.
    fn write(&self, sql: &str, table: Option<&TableDef>, verb: &str) -> Result<u64, SqlError> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| map_sqlite(e, table, &self.database, verb))?;
        self.bind_params(&mut stmt)?;
        let n = stmt
            .raw_execute()
            .map_err(|e| map_sqlite(e, table, &self.database, verb))?;
        Ok(n as u64)
    }

    fn atomic<T>(&self, f: impl FnOnce(&Session) -> Result<T, SqlError>) -> Result<T, SqlError> {
        self.conn
            .execute_batch("SAVEPOINT __sim_stmt")
            .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE __sim_stmt")
                    .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO __sim_stmt; RELEASE __sim_stmt");
                Err(e)
            }
        }
    }

    // ------------------------------------------------------------------ DML

    fn conv_expr(def: &TableDef, col: &ColumnDef, expr: &str) -> String {
        format!(
            "__sim_conv({expr}, '{}', '{}', '{}')",
            col.ty,
            def.display_name().replace('\'', "''"),
            col.name.replace('\'', "''")
        )
    }

    fn insert(&mut self, ins: sqlparser::ast::Insert) -> Result<u64, SqlError> {
        if ins.output.is_some() || ins.returning.is_some() {
            return Err(SqlError::unsupported("INSERT ... OUTPUT"));
        }
        let name = match &ins.table {
            TableObject::TableName(n) => n.clone(),
            _ => return Err(SqlError::unsupported("INSERT into a table function")),
        };
        let view = self.view();
        let (def, source_sql, target_cols) = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            let def = res.resolve_table(&name)?;
            let target_cols: Vec<ColumnDef> = if ins.columns.is_empty() {
                def.columns
                    .iter()
                    .filter(|c| !c.identity || self.identity_insert == Some(def.object_id))
                    .cloned()
                    .collect()
            } else {
                let mut v = Vec::new();
                for c in &ins.columns {
                    let n = column_name_of(c);
                    let cd = def.column(&n).ok_or_else(|| SqlError::invalid_column(&n))?;
                    if v.iter().any(|x: &ColumnDef| x.column_id == cd.column_id) {
                        return Err(SqlError::new(264, 16, format!("The column name '{}' is specified more than once in the SET clause or column list of an INSERT. A column cannot be assigned more than one value in the same clause. Modify the clause to make sure that a column is updated only once.", cd.name)));
                    }
                    v.push(cd.clone());
                }
                v
            };
            if target_cols.iter().any(|c| c.identity) && self.identity_insert != Some(def.object_id)
            {
                {
                    return Err(SqlError::new(
                        544,
                        16,
                        format!("Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.", def.name),
                    ));
                }
            }
            let source_sql = match ins.source {
                None => None,
                Some(mut src) => {
                    if let SetExpr::Values(v) = src.body.as_ref() {
                        for row in &v.rows {
                            if row.len() > target_cols.len() {
                                return Err(SqlError::new(110, 15, "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement."));
                            }
                            if row.len() < target_cols.len() {
                                return Err(SqlError::new(109, 15, "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement."));
                            }
                        }
                    }
                    let mut rw = Rewriter::new(&res, &view);
                    rw.rewrite(src.as_mut())?;
                    Some((src.to_string(), rw.ct_ctes()))
                }
            };
            (def, source_sql, target_cols)
        };
        let table = q(&def.sqlite_name());
        let sql = match source_sql {
            None => format!("INSERT INTO {table} DEFAULT VALUES"),
            Some((src, ct_ctes)) => {
                let ct_ctes = ct_ctes.map(|c| format!("{c}, ")).unwrap_or_default();
                let src_cols: Vec<String> = (1..=target_cols.len())
                    .map(|i| format!("\"__c{i}\""))
                    .collect();
                let convs: Vec<String> = target_cols
                    .iter()
                    .zip(&src_cols)
                    .map(|(c, s)| Self::conv_expr(&def, c, s))
                    .collect();
                let names: Vec<String> = target_cols.iter().map(|c| q(&c.name)).collect();
                format!(
                    "WITH {ct_ctes}\"__src\"({}) AS ({src}) INSERT INTO {table} ({}) SELECT {} FROM \"__src\"",
                    src_cols.join(", "),
                    names.join(", "),
                    convs.join(", ")
                )
            }
        };
        let n = self.write(&sql, Some(&def), "INSERT")?;
        if def.columns.iter().any(|c| c.identity) && n > 0 {
            self.last_identity = Some(self.conn.last_insert_rowid());
        }
        Ok(n)
    }

    fn update(&mut self, upd: sqlparser::ast::Update) -> Result<u64, SqlError> {
        if upd.output.is_some() || upd.returning.is_some() {
            return Err(SqlError::unsupported("UPDATE ... OUTPUT"));
        }
        if !upd.table.joins.is_empty() {
            return Err(SqlError::syntax_near("JOIN"));
        }
        let view = self.view();
        let res = Resolver {
            conn: &self.conn,
            temp: &self.temp,
            database: &self.database,
        };
        let mut rw = Rewriter::new(&res, &view);
        let TableFactor::Table {
            name: target_name,
            alias: target_alias,
            ..
        } = &upd.table.relation
        else {
            return Err(SqlError::unsupported("UPDATE of a derived table"));
        };
        let target_ref = column_name_of(target_name);
        // T-SQL's UPDATE alias SET ... FROM t alias JOIN ...: find the target in FROM.
        let from = match upd.from {
            Some(UpdateTableFromKind::AfterSet(f)) | Some(UpdateTableFromKind::BeforeSet(f)) => f,
            None => vec![],
        };
        let mut extra_from: Vec<String> = vec![];
        let mut extra_where: Vec<Expr> = vec![];
        let (def, alias) = if from.is_empty() {
            let def = res.resolve_table(target_name)?;
            let alias = target_alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| def.name.clone());
            (def, alias)
        } else {
            let mut from = from;
            // The target is the first table of FROM whose alias or name matches.
            let first = &from[0].relation;
            let matches = match first {
                TableFactor::Table { name, alias, .. } => {
                    alias
                        .as_ref()
                        .map(|a| a.name.value.eq_ignore_ascii_case(&target_ref))
                        .unwrap_or(false)
                        || column_name_of(name).eq_ignore_ascii_case(&target_ref)
                }
                _ => false,
            };
            if !matches {
                return Err(SqlError::unsupported(
                    "UPDATE ... FROM where the target is not the first table of FROM",
                ));
            }
            let TableFactor::Table { name, alias, .. } = first.clone() else {
                unreachable!()
            };
            let def = res.resolve_table(&name)?;
            let alias = alias
                .map(|a| a.name.value)
                .unwrap_or_else(|| def.name.clone());
            let twj = from.remove(0);
            let mut rest_rel = Vec::new();
            for j in twj.joins {
                match j.join_operator {
                    JoinOperator::Join(JoinConstraint::On(on))
                    | JoinOperator::Inner(JoinConstraint::On(on)) => {
                        rest_rel.push(j.relation);
                        extra_where.push(on);
                    }
                    _ => return Err(SqlError::unsupported("UPDATE ... FROM with outer joins")),
                }
            }
            for mut tf in rest_rel {
                rw.rewrite(&mut tf)?;
                extra_from.push(tf.to_string());
            }
            for mut t in from {
                rw.rewrite(&mut t)?;
                extra_from.push(t.to_string());
            }
            (def, alias)
        };
        rw.scope.insert(alias.to_lowercase(), def.clone());
        let mut sets = Vec::new();
        let mut set_ids: Vec<i32> = Vec::new();
        let mut key_set = false;
        for a in upd.assignments {
            let col_name = match &a.target {
                AssignmentTarget::ColumnName(n) => column_name_of(n),
                AssignmentTarget::Tuple(_) => return Err(SqlError::syntax_near("(")),
            };
            let col = def
                .column(&col_name)
                .ok_or_else(|| SqlError::invalid_column(&col_name))?
                .clone();
            if col.identity {
                return Err(SqlError::new(
                    8102,
                    16,
                    format!("Cannot update identity column '{}'.", col.name),
                ));
            }
            if !set_ids.contains(&col.column_id) {
                set_ids.push(col.column_id);
            }
            key_set |= def.pk.iter().any(|k| k.eq_ignore_ascii_case(&col.name));
            let mut v = a.value;
            rw.rewrite(&mut v)?;
            sets.push(format!(
                "{} = {}",
                q(&col.name),
                Self::conv_expr(&def, &col, &v.to_string())
            ));
        }
        let mut conds = Vec::new();
        for mut e in extra_where {
            rw.rewrite(&mut e)?;
            conds.push(format!("({e})"));
        }
        if let Some(mut w) = upd.selection {
            rw.rewrite(&mut w)?;
            conds.push(format!("({w})"));
        }
        let mut sql = format!(
            "UPDATE {} AS {} SET {}",
            q(&def.sqlite_name()),
            q(&alias),
            sets.join(", ")
        );
        if !extra_from.is_empty() {
            sql.push_str(&format!(" FROM {}", extra_from.join(", ")));
        }
        if !conds.is_empty() {
            sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        let sql = rw.finish_sql(sql);
        drop(rw);
        ct::set_update(&self.ct_stmt, def.object_id, set_ids, key_set);
        self.write(&sql, Some(&def), "UPDATE")
    }

    fn delete(&mut self, del: sqlparser::ast::Delete) -> Result<u64, SqlError> {
        if del.output.is_some() || del.returning.is_some() {
            return Err(SqlError::unsupported("DELETE ... OUTPUT"));
        }
        if del.limit.is_some() || !del.order_by.is_empty() || del.using.is_some() {
            return Err(SqlError::unsupported("DELETE TOP / ORDER BY / USING"));
        }
        let view = self.view();
        let res = Resolver {
            conn: &self.conn,
            temp: &self.temp,
            database: &self.database,
        };
        let mut rw = Rewriter::new(&res, &view);
        let from = match del.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        let (def, sql) = if del.tables.is_empty() {
            if from.len() != 1 || !from[0].joins.is_empty() {
                return Err(SqlError::syntax_near("JOIN"));
            }
            let TableFactor::Table { name, alias, .. } = &from[0].relation else {
                return Err(SqlError::unsupported("DELETE from a derived table"));
            };
            let def = res.resolve_table(name)?;
            let alias = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| def.name.clone());
            rw.scope.insert(alias.to_lowercase(), def.clone());
            let mut sql = format!("DELETE FROM {} AS {}", q(&def.sqlite_name()), q(&alias));
            if let Some(mut w) = del.selection {
                rw.rewrite(&mut w)?;
                sql.push_str(&format!(" WHERE {w}"));
            }
            (def, sql)
        } else {
            // DELETE t FROM <from> WHERE ...: delete the rows of t that the FROM yields.
            if del.tables.len() != 1 {
                return Err(SqlError::syntax_near(","));
            }
            let target = column_name_of(&del.tables[0]);
            let mut found: Option<(TableDef, String)> = None;
            let mut from = from;
            for twj in from.iter() {
                let rels =
                    std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation));
                for r in rels {
                    if let TableFactor::Table { name, alias, .. } = r {
                        let a = alias
                            .as_ref()
                            .map(|a| a.name.value.clone())
                            .unwrap_or_else(|| column_name_of(name));
                        if a.eq_ignore_ascii_case(&target) {
                            found = Some((res.resolve_table(name)?, a));
                        }
                    }
                }
            }
            let Some((def, alias)) = found else {
                return Err(SqlError::invalid_object(&target));
            };
            for twj in from.iter_mut() {
                rw.rewrite(twj)?;
            }
            let from_sql: Vec<String> = from.iter().map(|t| t.to_string()).collect();
            let mut inner = format!("SELECT {}.rowid FROM {}", q(&alias), from_sql.join(", "));
            if let Some(mut w) = del.selection {
                rw.rewrite(&mut w)?;
                inner.push_str(&format!(" WHERE {w}"));
            }
            let sql = format!(
                "DELETE FROM {} WHERE rowid IN ({inner})",
                q(&def.sqlite_name())
            );
            (def, sql)
        };
        let sql = rw.finish_sql(sql);
        drop(rw);
        self.write(&sql, Some(&def), "DELETE")
    }

    fn truncate(&mut self, name: &ObjectName) -> Result<(), SqlError> {
        let def = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            res.resolve_table(name)?
        };
        if !def.temp {
            let refs = catalog::referencing_tables(&self.conn, def.object_id)
                .map_err(catalog::sqlite_err)?;
            if !refs.is_empty() {
                return Err(SqlError::new(
                    4712,
                    16,
                    format!("Cannot truncate table '{}' because it is being referenced by a FOREIGN KEY constraint.", def.display_name()),
                ));
            }
        }
        self.atomic(|s| {
            s.write(
                &format!("DELETE FROM {}", q(&def.sqlite_name())),
                Some(&def),
                "TRUNCATE",
            )?;
            let _ = s.conn.execute(
                "DELETE FROM sqlite_sequence WHERE name = ?1",
                [def.sqlite_name()],
            );
            if !def.temp {
                ct::truncated(&s.conn, def.object_id)?;
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------------ DDL

    fn create_table(&mut self, ct: sqlparser::ast::CreateTable) -> Result<(), SqlError> {
        if ct.query.is_some() {
            return Err(SqlError::unsupported("CREATE TABLE ... AS SELECT"));
        }
        let (_, schema, name) = translate::name_parts(&ct.name)?;
        let temp = name.starts_with('#');
        if temp && name.starts_with("##") {
            return Err(SqlError::unsupported("global temporary tables (##)"));
        }
        let schema = schema.unwrap_or_else(|| "dbo".into());
        if !temp {
            if catalog::schema_name(&self.conn, &schema)
                .map_err(catalog::sqlite_err)?
                .is_none()
            {
                return Err(SqlError::new(2760, 16, format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it.")));
            }
            if catalog::find_object(&self.conn, &schema, &name)
                .map_err(catalog::sqlite_err)?
                .is_some()
            {
                return Err(SqlError::new(
                    2714,
                    16,
                    format!("There is already an object named '{name}' in the database."),
                ));
            }
        } else if self.temp.contains_key(&name.to_lowercase()) {
            return Err(SqlError::new(
                2714,
                16,
                format!("There is already an object named '{name}' in the database."),
            ));
        }
        let display = if temp {
            name.clone()
        } else {
            format!("{schema}.{name}")
        };
        let mut columns: Vec<ColumnDef> = Vec::new();
        let mut defaults: Vec<Option<String>> = Vec::new();
        let mut default_sql: Vec<Option<String>> = Vec::new();
        let mut pk: Vec<String> = Vec::new();
        let mut pk_name: Option<String> = None;
        let mut fks: Vec<ForeignKeyDef> = Vec::new();
        let mut uniques: Vec<(Option<String>, Vec<String>)> = Vec::new();
        let view = self.view();
        let res = Resolver {
            conn: &self.conn,
            temp: &self.temp,
            database: &self.database,
        };
        let action = |a: &Option<ReferentialAction>| match a {
            Some(ReferentialAction::Cascade) => Ok(1),
            Some(ReferentialAction::SetNull) => Ok(2),
            Some(ReferentialAction::SetDefault) => Ok(3),
            Some(ReferentialAction::NoAction) | None => Ok(0),
            Some(ReferentialAction::Restrict) => Err(SqlError::syntax_near("RESTRICT")),
        };
        let fk_target = |t: &ObjectName| -> Result<(String, String), SqlError> {
            let (_, s, n) = translate::name_parts(t)?;
            Ok((s.unwrap_or_else(|| "dbo".into()), n))
        };
        for (i, c) in ct.columns.iter().enumerate() {
            if columns
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&c.name.value))
            {
                return Err(SqlError::new(2705, 16, format!("Column names in each table must be unique. Column name '{}' in table '{display}' is specified more than once.", c.name.value)));
            }
            let ty = SqlType::parse(&c.data_type.to_string())?;
            let mut nullable = true;
            let mut identity = false;
            let mut default = None;
            for o in &c.options {
                match &o.option {
                    ColumnOption::Null => nullable = true,
                    ColumnOption::NotNull => nullable = false,
                    ColumnOption::Default(e) => {
                        let mut e = e.clone();
                        let mut rw = Rewriter::new(&res, &view);
                        rw.rewrite(&mut e)?;
                        default = Some(e.to_string());
                    }
                    ColumnOption::PrimaryKey(p) => {
                        if !pk.is_empty() {
                            return Err(SqlError::new(8110, 16, format!("Cannot add multiple PRIMARY KEY constraints to table '{display}'.")));
                        }
                        pk = vec![c.name.value.clone()];
                        pk_name = p.name.as_ref().or(o.name.as_ref()).map(|n| n.value.clone());
                        nullable = false;
                    }
                    ColumnOption::Unique(u) => uniques.push((
                        u.name.as_ref().or(o.name.as_ref()).map(|n| n.value.clone()),
                        vec![c.name.value.clone()],
                    )),
                    ColumnOption::ForeignKey(f) => {
                        let (rs, rt) = fk_target(&f.foreign_table)?;
                        let ref_cols = if f.referred_columns.is_empty() {
                            vec![]
                        } else {
                            f.referred_columns.iter().map(|i| i.value.clone()).collect()
                        };
                        fks.push(ForeignKeyDef {
                            name: f
                                .name
                                .as_ref()
                                .or(o.name.as_ref())
                                .map(|n| n.value.clone())
                                .unwrap_or_else(|| {
                                    format!("FK__{}__{}__{:08X}", name, c.name.value, i)
                                }),
                            columns: vec![c.name.value.clone()],
                            ref_schema: rs,
                            ref_table: rt,
                            ref_columns: ref_cols,
                            on_delete: action(&f.on_delete)?,
                            on_update: action(&f.on_update)?,
                        });
                    }
                    ColumnOption::Identity(kind) => {
                        let (IdentityPropertyKind::Identity(p)
                        | IdentityPropertyKind::Autoincrement(p)) = kind;
                        if let Some(IdentityPropertyFormatKind::FunctionCall(params)) =
                            &p.parameters
                        {
                            if params.seed.to_string() != "1" || params.increment.to_string() != "1"
                            {
                                return Err(SqlError::unsupported(
                                    "IDENTITY with a seed or increment other than (1,1)",
                                ));
                            }
                        }
                        if !matches!(ty, SqlType::Int | SqlType::BigInt) {
                            return Err(SqlError::unsupported(
                                "IDENTITY on a type other than int or bigint",
                            ));
                        }
                        identity = true;
                        nullable = false;
                    }
                    ColumnOption::Collation(coll) => {
                        let s = coll.to_string();
                        if !s.to_ascii_uppercase().contains("_CI_") {
                            return Err(SqlError::unsupported(format!("the collation {s}")));
                        }
                    }
                    ColumnOption::Check(_) => {
                        return Err(SqlError::unsupported("CHECK constraints"))
                    }
                    other => {
                        return Err(SqlError::unsupported(format!("the column option {other}")))
                    }
                }
            }
            if let Some(d) = &default {
                default_sql.push(Some(format!("({d})")));
            } else {
                default_sql.push(None);
            }
            defaults.push(default);
            columns.push(ColumnDef {
                column_id: i as i32 + 1,
                name: c.name.value.clone(),
                ty,
                nullable,
                identity,
            });
        }
        for tc in &ct.constraints {
            match tc {
                TableConstraint::PrimaryKey(p) => {
                    if !pk.is_empty() {
                        return Err(SqlError::new(
                            8110,
                            16,
                            format!(
                                "Cannot add multiple PRIMARY KEY constraints to table '{display}'."
                            ),
                        ));
                    }
                    pk = p.columns.iter().map(index_column_name).collect();
                    pk_name = p.name.as_ref().map(|n| n.value.clone());
                }
                TableConstraint::Unique(u) => uniques.push((
                    u.name.as_ref().map(|n| n.value.clone()),
                    u.columns.iter().map(index_column_name).collect(),
                )),
                TableConstraint::ForeignKey(f) => {
                    let (rs, rt) = fk_target(&f.foreign_table)?;
                    fks.push(ForeignKeyDef {
                        name: f
                            .name
                            .as_ref()
                            .map(|n| n.value.clone())
                            .unwrap_or_else(|| format!("FK__{}__{:08X}", name, fks.len())),
                        columns: f.columns.iter().map(|c| c.value.clone()).collect(),
                        ref_schema: rs,
                        ref_table: rt,
                        ref_columns: f.referred_columns.iter().map(|c| c.value.clone()).collect(),
                        on_delete: action(&f.on_delete)?,
                        on_update: action(&f.on_update)?,
                    });
                }
                TableConstraint::Check(_) => {
                    return Err(SqlError::unsupported("CHECK constraints"))
                }
                other => return Err(SqlError::unsupported(format!("the constraint {other}"))),
            }
        }
        for p in &pk {
            match columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(p)) {
                Some(c) => {
                    if c.nullable
                        && ct.columns.iter().any(|cd| {
                            cd.name.value.eq_ignore_ascii_case(p)
                                && cd
                                    .options
                                    .iter()
                                    .any(|o| matches!(o.option, ColumnOption::Null))
                        })
                    {
                        return Err(SqlError::new(8111, 16, format!("Cannot define PRIMARY KEY constraint on nullable column in table '{display}'.")));
                    }
                    c.nullable = false;
                }
                None => {
                    return Err(SqlError::new(
                        1911,
                        16,
                        format!("Column name '{p}' does not exist in the target table or view."),
                    ))
                }
            }
            if let Some(c) = columns.iter().find(|c| c.name.eq_ignore_ascii_case(p)) {
                if matches!(
                    c.ty,
                    SqlType::NVarChar(Len::Max)
                        | SqlType::VarChar(Len::Max)
                        | SqlType::VarBinary(Len::Max)
                ) {
                    return Err(SqlError::new(1919, 16, format!("Column '{}' in table '{display}' is of a type that is invalid for use as a key column in an index.", c.name)));
                }
            }
        }
        if let Some(idc) = columns.iter().find(|c| c.identity) {
            if !(pk.len() == 1 && pk[0].eq_ignore_ascii_case(&idc.name)) {
                return Err(SqlError::unsupported(
                    "an IDENTITY column that is not the table's single-column primary key",
                ));
            }
        }
        // Resolve referenced columns (default: the referenced table's primary key).
        for fk in fks.iter_mut() {
            let self_ref = fk.ref_table.eq_ignore_ascii_case(&name)
                && fk.ref_schema.eq_ignore_ascii_case(&schema);
            let (ref_pk, ref_cols): (Vec<String>, Vec<ColumnDef>) = if self_ref {
                (pk.clone(), columns.clone())
            } else {
                let r = catalog::load_table(&self.conn, &fk.ref_schema, &fk.ref_table)
                    .map_err(catalog::sqlite_err)?
                    .ok_or_else(|| catalog::invalid_fk_table(fk))?;
                fk.ref_table = r.name.clone();
                fk.ref_schema = r.schema.clone();
                (r.pk.clone(), r.columns.clone())
            };
            if fk.ref_columns.is_empty() {
                fk.ref_columns = ref_pk.clone();
            }
            for rc in &fk.ref_columns {
                if !ref_cols.iter().any(|c| c.name.eq_ignore_ascii_case(rc)) {
                    return Err(SqlError::new(1770, 16, format!("Foreign key '{}' references invalid column '{rc}' in referenced table '{}.{}'.", fk.name, fk.ref_schema, fk.ref_table)));
                }
            }
            let keyed = fk.ref_columns.len() == ref_pk.len()
                && fk
                    .ref_columns
                    .iter()
                    .all(|c| ref_pk.iter().any(|p| p.eq_ignore_ascii_case(c)));
            if !keyed {
                return Err(SqlError::new(1776, 16, format!("There are no primary or candidate keys in the referenced table '{}.{}' that match the referencing column list in the foreign key '{}'.", fk.ref_schema, fk.ref_table, fk.name)));
            }
            for c in &fk.columns {
                if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
                    return Err(SqlError::new(1769, 16, format!("Foreign key '{}' references invalid column '{c}' in referencing table '{name}'.", fk.name)));
                }
            }
        }
        drop(res);
        // The SQLite table.
        let mut parts = Vec::new();
        for (c, d) in columns.iter().zip(&defaults) {
            let mut s = format!("{} {}", q(&c.name), c.ty.sqlite_affinity());
            if c.identity {
                s = format!("{} INTEGER PRIMARY KEY AUTOINCREMENT", q(&c.name));
            }
            if !c.nullable {
                s.push_str(" NOT NULL");
            }
            if c.ty.is_string() {
                s.push_str(" COLLATE SQLSRV");
            }
            if let Some(d) = d {
                s.push_str(&format!(
                    " DEFAULT ({})",
                    Self::conv_expr(
                        &TableDef {
                            object_id: 0,
                            schema: schema.clone(),
                            name: name.clone(),
                            columns: vec![],
                            pk_name: None,
                            pk: vec![],
                            foreign_keys: vec![],
                            temp
                        },
                        c,
                        d
                    )
                ));
            }
            parts.push(s);
        }
        let identity_pk = columns.iter().any(|c| c.identity);
        if !pk.is_empty() && !identity_pk {
            parts.push(format!(
                "PRIMARY KEY ({})",
                pk.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
            ));
        }
        for (_, cols) in &uniques {
            parts.push(format!(
                "UNIQUE ({})",
                cols.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
            ));
        }
        let act = |a: i32| match a {
            1 => "CASCADE",
            2 => "SET NULL",
            3 => "SET DEFAULT",
            _ => "NO ACTION",
        };
        for fk in &fks {
            let rname = if fk.ref_table.eq_ignore_ascii_case(&name) && temp {
                fk.ref_table.clone()
            } else {
                format!("{}.{}", fk.ref_schema, fk.ref_table)
            };
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
                fk.columns
                    .iter()
                    .map(|p| q(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                q(&rname),
                fk.ref_columns
                    .iter()
                    .map(|p| q(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                act(fk.on_delete),
                act(fk.on_update)
            ));
        }
        let mut def = TableDef {
            object_id: 0,
            schema: schema.clone(),
            name: name.clone(),
            columns,
            pk_name,
            pk,
            foreign_keys: fks,
            temp,
        };
        let now = self
            .shared
            .clock
            .now_utc()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        if temp {
            if !def.foreign_keys.is_empty() {
                // SQL Server ignores FOREIGN KEY constraints on temporary tables (with a warning).
                def.foreign_keys.clear();
                parts.retain(|p| !p.starts_with("FOREIGN KEY"));
            }
            let sql = format!(
                "CREATE TEMP TABLE {} ({})",
                q(&def.sqlite_name()),
                parts.join(", ")
            );
            self.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, None, &self.database, "CREATE TABLE"))?;
            self.temp_ids -= 1;
            def.object_id = self.temp_ids;
            if def.pk_name.is_none() && !def.pk.is_empty() {
                def.pk_name = Some(format!("PK__{}", name.trim_start_matches('#')));
            }
            self.temp.insert(name.to_lowercase(), def);
            return Ok(());
        }
        let sql = format!(
            "CREATE TABLE {} ({})",
            q(&def.sqlite_name()),
            parts.join(", ")
        );
        self.atomic(|s| {
            s.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, None, &s.database, "CREATE TABLE"))?;
            catalog::register_table(&s.conn, &mut def, &now, &default_sql)?;
            for (i, (uname, cols)) in uniques.iter().enumerate() {
                let n = uname
                    .clone()
                    .unwrap_or_else(|| format!("UQ__{}__{}", name, i));
                let c: Vec<(String, bool)> = cols.iter().map(|c| (c.clone(), false)).collect();
                catalog::register_index(&s.conn, &def, &n, true, &c, "")?;
            }
            Ok(())
        })
    }

    fn create_index(&mut self, ci: sqlparser::ast::CreateIndex) -> Result<(), SqlError> {
        let def = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            res.resolve_table(&ci.table_name)?
        };
        let Some(name) = ci.name.as_ref().map(column_name_of) else {
            return Err(SqlError::syntax_near("ON"));
        };
        if ci.predicate.is_some() {
            return Err(SqlError::unsupported("filtered indexes"));
        }
        let mut cols = Vec::new();
        for c in &ci.columns {
            let n = index_column_name(c);
            if def.column(&n).is_none() {
                return Err(SqlError::invalid_column(&n));
            }
            cols.push((
                n,
                matches!(
                    c.column.options.sort,
                    Some(sqlparser::ast::OrderBySort::Desc)
                ),
            ));
        }
        let sqlite_name = format!("{}.{}", def.sqlite_name(), name);
        let sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if ci.unique { "UNIQUE " } else { "" },
            q(&sqlite_name),
            q(&def.sqlite_name()),
            cols.iter()
                .map(|(c, d)| format!("{}{}", q(c), if *d { " DESC" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if def.temp {
            self.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, Some(&def), &self.database, "CREATE INDEX"))?;
            return Ok(());
        }
        self.atomic(|s| {
            catalog::register_index(&s.conn, &def, &name, ci.unique, &cols, &sqlite_name)?;
            s.conn.execute_batch(&sql).map_err(|e| {
                let se = map_sqlite(e, Some(&def), &s.database, "CREATE INDEX");
                if se.number == 2601 || se.number == 2627 {
                    SqlError::new(1505, 16, format!("The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the object name '{}' and the index name '{name}'.", def.display_name()))
                } else {
                    se
                }
            })
        })
    }

    fn alter_table(&mut self, at: sqlparser::ast::AlterTable) -> Result<(), SqlError> {
        use sqlparser::ast::AlterTableOperation as Op;
        let def = {
            let res = Resolver {
                conn: &self.conn,
                temp: &self.temp,
                database: &self.database,
            };
            res.resolve_table(&at.name)?
        };
        if def.temp {
            return Err(SqlError::unsupported("ALTER TABLE on a temporary table"));
        }
        for op in at.operations {
            let def = {
                let res = Resolver {
                    conn: &self.conn,
                    temp: &self.temp,
                    database: &self.database,
                };
                res.resolve_table(&at.name)?
            };
            match op {
                Op::AddColumn { column_def, .. } => {
                    if def.column(&column_def.name.value).is_some() {
                        return Err(SqlError::new(2705, 16, format!("Column names in each table must be unique. Column name '{}' in table '{}' is specified more than once.", column_def.name.value, def.display_name())));
                    }
                    let ty = SqlType::parse(&column_def.data_type.to_string())?;
                    let mut nullable = true;
                    let mut default = None;
                    for o in &column_def.options {
                        match &o.option {
                            ColumnOption::Null => nullable = true,
                            ColumnOption::NotNull => nullable = false,
                            ColumnOption::Default(e) => {
                                let view = self.view();
                                let res = Resolver {
                                    conn: &self.conn,
                                    temp: &self.temp,
                                    database: &self.database,
                                };
                                let mut e = e.clone();
                                Rewriter::new(&res, &view).rewrite(&mut e)?;
                                default = Some(e.to_string());
                            }
                            other => {
                                return Err(SqlError::unsupported(format!(
                                    "ALTER TABLE ADD with the option {other}"
                                )))
                            }
                        }
                    }
                    let count: i64 = self
                        .conn
                        .query_row(
                            &format!("SELECT count(*) FROM {}", q(&def.sqlite_name())),
                            [],
                            |r| r.get(0),
                        )
                        .map_err(catalog::sqlite_err)?;
                    if !nullable && default.is_none() && count > 0 {
                        return Err(SqlError::new(4901, 16, format!("ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT definition specified, or the column being added is an identity or timestamp column, or alternatively if none of the previous conditions are satisfied the table must be empty to allow addition of this column. Column '{}' cannot be added to non-empty table '{}' because it does not satisfy these conditions.", column_def.name.value, def.name)));
                    }
                    if !nullable && default.is_none() {
                        return Err(SqlError::unsupported(
                            "adding a NOT NULL column without DEFAULT (recreate the table)",
                        ));
                    }
                    let col = ColumnDef {
                        column_id: def.columns.iter().map(|c| c.column_id).max().unwrap_or(0) + 1,
                        name: column_def.name.value.clone(),
                        ty,
                        nullable,
                        identity: false,
                    };
                    let mut s = format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        q(&def.sqlite_name()),
                        q(&col.name),
                        ty.sqlite_affinity()
                    );
                    if ty.is_string() {
                        s.push_str(" COLLATE SQLSRV");
                    }
                    if let Some(d) = &default {
                        // SQLite needs a constant default for ADD COLUMN: evaluate it now.
                        let v = self.eval_scalar(
                            translate::parse_query(&format!("SELECT {d}"))
                                .ok()
                                .and_then(|q| match *q.body {
                                    SetExpr::Select(s) => {
                                        s.projection.first().and_then(|p| match p {
                                            sqlparser::ast::SelectItem::UnnamedExpr(e) => {
                                                Some(e.clone())
                                            }
                                            _ => None,
                                        })
                                    }
                                    _ => None,
                                })
                                .ok_or_else(|| {
                                    SqlError::unsupported("this DEFAULT in ALTER TABLE ADD")
                                })?,
                        )?;
                        let stored = to_storage(&crate::types::convert(&v, &ty, None)?, &ty);
                        let lit = match stored {
                            SqliteValue::Null => "NULL".to_string(),
                            SqliteValue::Integer(i) => i.to_string(),
                            SqliteValue::Real(f) => format!("{f:?}"),
                            SqliteValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
                            SqliteValue::Blob(b) => format!(
                                "X'{}'",
                                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                            ),
                        };
                        s.push_str(&format!(" DEFAULT {lit}"));
                    }
                    if !nullable {
                        s.push_str(" NOT NULL");
                    }
                    self.atomic(|se| {
                        se.conn
                            .execute_batch(&s)
                            .map_err(|e| map_sqlite(e, Some(&def), &se.database, "ALTER TABLE"))?;
                        catalog::add_column(
                            &se.conn,
                            def.object_id,
                            &col,
                            default.as_ref().map(|d| format!("({d})")),
                        )
                    })?;
                }
                Op::DropColumn {
                    column_names,
                    if_exists,
                    ..
                } => {
                    for cn in column_names {
                        let Some(c) = def.column(&cn.value).cloned() else {
                            if if_exists {
                                continue;
                            }
                            return Err(SqlError::new(4924, 16, format!("ALTER TABLE DROP COLUMN failed because column '{}' does not exist in table '{}'.", cn.value, def.name)));
                        };
                        if def.pk.iter().any(|p| p.eq_ignore_ascii_case(&c.name)) {
                            return Err(SqlError::new(
                                5074,
                                16,
                                format!(
                                    "The object '{}' is dependent on column '{}'.",
                                    def.pk_name.clone().unwrap_or_default(),
                                    c.name
                                ),
                            ));
                        }
                        let sql = format!(
                            "ALTER TABLE {} DROP COLUMN {}",
                            q(&def.sqlite_name()),
                            q(&c.name)
                        );
                        self.atomic(|se| {
                            se.conn.execute_batch(&sql).map_err(|e| {
                                map_sqlite(e, Some(&def), &se.database, "ALTER TABLE")
                            })?;
                            catalog::drop_column(&se.conn, def.object_id, c.column_id)
                        })?;
                    }
                }
                Op::DropConstraint { ref name, .. }
                    if def
                        .pk_name
                        .as_deref()
                        .map(|p| p.eq_ignore_ascii_case(&name.value))
                        .unwrap_or(false)
                        && ct::table_tracking(&self.conn, def.object_id)?.is_some() =>
                {
                    // [MANAGE] the primary key of a tracked table cannot be dropped.
                    return Err(SqlError::new(3735, 16, format!("The primary key constraint '{}' on table '{}' cannot be dropped because change tracking is enabled on the table. Change tracking requires a primary key constraint on the table. Disable change tracking before dropping the constraint.", name.value, def.name)));
                }
                other => return Err(SqlError::unsupported(format!("ALTER TABLE {other}"))),
            }
        }
        Ok(())
    }

    fn drop(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: Vec<ObjectName>,
        table: Option<ObjectName>,
    ) -> Result<(), SqlError> {
        match object_type {
            ObjectType::Table => {
                for n in names {
                    let def = {
                        let res = Resolver {
                            conn: &self.conn,
                            temp: &self.temp,
                            database: &self.database,
                        };
                        match res.resolve_table(&n) {
                            Ok(d) => d,
                            Err(e) if e.number == 208 => {
                                if if_exists {
                                    continue;
                                }
                                return Err(SqlError::new(3701, 11, format!("Cannot drop the table '{}', because it does not exist or you do not have permission.", n.to_string().replace(['[', ']'], ""))));
                            }
                            Err(e) => return Err(e),
                        }
                    };
                    if def.temp {
                        self.conn
                            .execute_batch(&format!("DROP TABLE temp.{}", q(&def.sqlite_name())))
                            .map_err(catalog::sqlite_err)?;
                        self.temp.remove(&def.name.to_lowercase());
                        continue;
                    }
                    let refs = catalog::referencing_tables(&self.conn, def.object_id)
                        .map_err(catalog::sqlite_err)?;
                    if let Some(r) = refs.first() {
                        return Err(SqlError::new(3726, 16, format!("Could not drop object '{}' because it is referenced by a FOREIGN KEY constraint '{r}'.", def.display_name())));
                    }
                    self.atomic(|s| {
                        ct::forget_table(&s.conn, def.object_id)?;
                        s.conn
                            .execute_batch(&format!("DROP TABLE {}", q(&def.sqlite_name())))
                            .map_err(|e| map_sqlite(e, Some(&def), &s.database, "DROP TABLE"))?;
                        catalog::drop_table(&s.conn, def.object_id)
                    })?;
                }
                Ok(())
            }
            ObjectType::Index => {
                for n in names {
                    // DROP INDEX name ON table, or DROP INDEX table.name
                    let (tname, iname) = match &table {
                        Some(t) => (t.clone(), column_name_of(&n)),
                        None => {
                            let mut parts = n.0.clone();
                            let i = parts.pop();
                            let iname = match i {
                                Some(ObjectNamePart::Identifier(i)) => i.value,
                                _ => return Err(SqlError::syntax_near(&n.to_string())),
                            };
                            (ObjectName(parts), iname)
                        }
                    };
                    let def = {
                        let res = Resolver {
                            conn: &self.conn,
                            temp: &self.temp,
                            database: &self.database,
                        };
                        res.resolve_table(&tname)?
                    };
                    match catalog::find_index(&self.conn, def.object_id, &iname).map_err(catalog::sqlite_err)? {
                        Some((id, Some(sqlite_name))) if !sqlite_name.is_empty() => {
                            self.atomic(|s| {
                                s.conn.execute_batch(&format!("DROP INDEX {}", q(&sqlite_name))).map_err(catalog::sqlite_err)?;
                                catalog::drop_index(&s.conn, def.object_id, id)
                            })?;
                        }
                        Some(_) => return Err(SqlError::new(3723, 16, format!("An explicit DROP INDEX is not allowed on index '{}.{iname}'. It is being used for PRIMARY KEY or UNIQUE constraint enforcement.", def.display_name()))),
                        None if if_exists => {}
                        None => return Err(SqlError::new(3701, 11, format!("Cannot drop the index '{}.{iname}', because it does not exist or you do not have permission.", def.display_name()))),
                    }
                }
                Ok(())
            }
            ObjectType::Schema => Err(SqlError::unsupported("DROP SCHEMA")),
            ObjectType::Database => Err(SqlError::unsupported("DROP DATABASE")),
            other => Err(SqlError::unsupported(format!("DROP {other}"))),
        }
    }
}
