//! One client connection's engine state (`Session`) and the server-wide
//! state all sessions share (`Shared`); a request's batch is parsed and each
//! statement dispatched from here to the module that runs it (`ddl`, `dml`,
//! `query`, `procedures`, `options`, `transaction`).

use super::catalog::{q, TableDef};
use super::functions::SimClock;
use super::names::*;
use super::parse::Stmt;
use super::translate::{Resolver, Rewriter, SessionView};
use super::{catalog, ct, functions, parse, security, translate};
use crate::collation::Collation;
use crate::error::SqlError;
use crate::tds::token::{Column, CMD_DELETE, CMD_INSERT, CMD_SELECT, CMD_UPDATE};
use crate::types::{Len, SqlType, Value};
use rusqlite::{Connection, InterruptHandle};
use sqlparser::ast::{Expr, SchemaName, Statement, Use};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// State shared by all sessions of one server.
pub struct Shared {
    pub data_dir: PathBuf,
    pub sa_password: String,
    pub clock: SimClock,
    pub lock_timeout: Duration,
    /// The server collation: master's, tempdb's (so every `#temp` table's),
    /// and the default of a new database.
    pub collation: Collation,
    pub(super) descriptors: AtomicU64,
    pub(super) spids: AtomicU16,
    pub(super) create_lock: Mutex<()>,
}

impl Shared {
    pub fn new(
        data_dir: PathBuf,
        sa_password: String,
        lock_timeout: Duration,
        collation: Collation,
    ) -> Shared {
        Shared {
            data_dir,
            sa_password,
            clock: SimClock::default(),
            lock_timeout,
            collation,
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

    pub(super) fn next_descriptor(&self) -> u64 {
        self.descriptors.fetch_add(1, Ordering::Relaxed)
    }

    /// The file name a database's SQLite file has, found case-insensitively.
    /// The names of every database on the server, master first.
    pub fn database_names(&self) -> Vec<String> {
        catalog::database_files(&self.data_dir)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

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

    /// Checks a login's password: `sa` against the server's password, any
    /// other against the logins in master (`CREATE LOGIN`). Returns the
    /// login's name and whether it is sysadmin, and its default database.
    pub fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<(security::Login, bool)>, SqlError> {
        if user.eq_ignore_ascii_case("sa") {
            return Ok((password == self.sa_password).then(|| {
                (
                    security::Login {
                        name: "sa".into(),
                        default_database: "master".into(),
                    },
                    true,
                )
            }));
        }
        let conn = self.open_master_logins()?;
        Ok(security::authenticate(&conn, user, password)?.map(|l| (l, false)))
    }

    /// A connection to master for its logins (`__sim_logins`): at login,
    /// and for CREATE/ALTER/DROP LOGIN from any database.
    pub(super) fn open_master_logins(&self) -> Result<Connection, SqlError> {
        let Some((_, path)) = self.find_database("master") else {
            return Err(SqlError::unsupported("a server without master"));
        };
        let conn = Connection::open(&path).map_err(catalog::sqlite_err)?;
        conn.busy_timeout(self.lock_timeout)
            .map_err(catalog::sqlite_err)?;
        functions::register(&conn, self.clock.clone()).map_err(catalog::sqlite_err)?;
        security::init(&conn).map_err(catalog::sqlite_err)?;
        Ok(conn)
    }

    /// Creates master if needed; a data folder made with another server
    /// collation is refused (SQL Server's server collation is chosen at
    /// setup and does not change).
    pub fn ensure_master(&self) -> Result<(), SqlError> {
        let Some((_, path)) = self.find_database("master") else {
            return self.create_database("master", None);
        };
        let conn = Connection::open(&path).map_err(catalog::sqlite_err)?;
        functions::register(&conn, self.clock.clone()).map_err(catalog::sqlite_err)?;
        let have = catalog::database_collation(&conn)?;
        if have != self.collation {
            return Err(SqlError::unsupported(format!(
                "changing the server collation: the data folder {} was made with {have}; \
                 start with --collation {have} or use a new data folder for {}",
                self.data_dir.display(),
                self.collation
            )));
        }
        Ok(())
    }

    /// CREATE DATABASE, in the server collation unless `collation` names
    /// another.
    pub fn create_database(
        &self,
        name: &str,
        collation: Option<Collation>,
    ) -> Result<(), SqlError> {
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
        catalog::set_option(
            &conn,
            "database_id",
            &catalog::database_id(name).to_string(),
        )
        .map_err(catalog::sqlite_err)?;
        catalog::set_option(
            &conn,
            "collation",
            collation.unwrap_or(self.collation).name(),
        )
        .map_err(catalog::sqlite_err)?;
        Ok(())
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
    /// The session changed database; `collation` is the new database's
    /// when it differs from the old one's.
    EnvDatabase {
        new: String,
        old: String,
        collation: Option<Collation>,
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
pub(super) struct Tran {
    pub(super) count: u32,
    pub(super) descriptor: u64,
    /// A SQLite transaction is open.
    pub(super) open: bool,
    pub(super) snapshot: bool,
    /// Savepoints, and whether each exists in SQLite yet.
    pub(super) savepoints: Vec<(String, bool)>,
}

/// How far an error reaches (see Erland Sommarskog's classification).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Abort {
    Statement,
    Batch,
    BatchAndTransaction,
}

pub(super) fn abort_kind(e: &SqlError) -> Abort {
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
    pub(super) shared: Arc<Shared>,
    pub spid: u16,
    pub database: String,
    /// The collation of `database` (its default for new columns).
    pub collation: Collation,
    pub(super) conn: Connection,
    /// Lets the connection's reader thread cancel a running statement.
    pub interrupt: Arc<Mutex<Option<InterruptHandle>>>,
    pub(super) tran: Tran,
    pub(super) isolation: Isolation,
    pub(super) nocount: bool,
    pub(super) xact_abort: bool,
    pub(super) identity_insert: Option<i64>,
    pub(super) rowcount: i64,
    pub(super) last_identity: Option<i64>,
    pub(super) temp: HashMap<String, TableDef>,
    pub(super) temp_ids: i64,
    pub(super) vars: HashMap<String, (SqlType, Value)>,
    /// What the change tracking triggers need to know of the running statement.
    pub(super) ct_stmt: ct::StmtCell,
    /// The rowversion counter of the current database (see `functions`).
    pub(super) rowversion: functions::RowVersionCounter,
    /// @@DBTS when the running write statement started drawing rowversions
    /// (None: it draws none), for `Session::dml` to write back.
    pub(super) dbts_start: Option<i64>,
    /// `WITH CHANGE_TRACKING_CONTEXT` of the statement about to run.
    pub(super) ct_context: Option<Vec<u8>>,
    /// The login, whether it is sa (sysadmin), and what it may do in the
    /// current database (engine::security).
    pub(super) caller: security::Caller,
    /// The caller's grants as the SQLite permission functions read them.
    pub(super) perms: security::PermCell,
    /// The target of an `INSERT BULK` whose bulk-load message is awaited,
    /// with the columns and the types the statement declared.
    pub(super) bulk: Option<(TableDef, Vec<(String, String)>)>,
}

pub(super) fn open_connection(
    shared: &Shared,
    path: &std::path::Path,
    name: &str,
    ct_stmt: &ct::StmtCell,
    rowversion: &functions::RowVersionCounter,
    perms: &security::PermCell,
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
    functions::register_rowversion(&conn, rowversion.clone()).map_err(catalog::sqlite_err)?;
    security::register(&conn, perms.clone()).map_err(catalog::sqlite_err)?;
    catalog::init(&conn).map_err(catalog::sqlite_err)?;
    security::init(&conn).map_err(catalog::sqlite_err)?;
    ct::init(&conn).map_err(catalog::sqlite_err)?;
    catalog::create_views(&conn, name).map_err(catalog::sqlite_err)?;
    security::create_views(&conn).map_err(catalog::sqlite_err)?;
    Ok(conn)
}

impl Session {
    /// Opens a session on `database` (master when empty).
    pub fn open(
        shared: Arc<Shared>,
        database: &str,
        login: &str,
        sysadmin: bool,
    ) -> Result<Session, SqlError> {
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
        let rowversion = functions::RowVersionCounter::default();
        let perms = security::PermCell::default();
        let conn = open_connection(&shared, &path, &name, &ct_stmt, &rowversion, &perms)?;
        // A login without a user in the database cannot open it (4060).
        let caller = security::caller(&conn, login, sysadmin, &name).map_err(|_| {
            SqlError::new(
                4060,
                11,
                format!(
                    "Cannot open database \"{want}\" requested by the login. The login failed."
                ),
            )
        })?;
        *perms.lock().unwrap_or_else(|p| p.into_inner()) = caller.grants.clone();
        let collation = catalog::database_collation(&conn)?;
        let spid = shared.next_spid();
        let interrupt = Arc::new(Mutex::new(Some(conn.get_interrupt_handle())));
        Ok(Session {
            shared,
            spid,
            database: name,
            collation,
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
            rowversion,
            dbts_start: None,
            ct_context: None,
            bulk: None,
            caller,
            perms,
        })
    }

    /// Makes `caller` the session's principal in its database.
    pub(super) fn set_caller(&mut self, caller: security::Caller) {
        *self.perms.lock().unwrap_or_else(|p| p.into_inner()) = caller.grants.clone();
        self.caller = caller;
    }

    /// Reads the caller's grants again (another session may have granted or
    /// revoked since): at each batch of a login that is not sa, and
    /// after a security statement.
    pub(super) fn refresh_caller(&mut self) -> Result<(), SqlError> {
        let c = security::caller(
            &self.conn,
            &self.caller.login,
            self.caller.sysadmin,
            &self.database,
        )?;
        self.set_caller(c);
        Ok(())
    }

    /// Runs GRANT/DENY/REVOKE, CREATE/DROP LOGIN/USER/ROLE, ALTER ROLE.
    fn security(&mut self, cmd: &security::Command) -> Result<(), SqlError> {
        if self.tran.count > 0
            && matches!(
                cmd,
                security::Command::CreateLogin { .. } | security::Command::DropLogin(_)
            )
        {
            return Err(SqlError::new(
                15002,
                16,
                "The procedure 'sys.sp_addlogin' cannot be executed within a transaction.",
            ));
        }
        if self.database.eq_ignore_ascii_case("master") {
            security::run(&self.conn, &self.conn, cmd, &self.caller)?;
        } else {
            let master = self.shared.open_master_logins()?;
            security::run(&self.conn, &master, cmd, &self.caller)?;
        }
        self.refresh_caller()
    }

    /// Refuses a statement that changes the database's schema unless the
    /// caller is an owner (or db_ddladmin): `error` is SQL Server's error
    /// for that statement.
    pub(super) fn require_ddl(&self, error: impl FnOnce() -> SqlError) -> Result<(), SqlError> {
        if self.caller.may_alter_database(true) {
            Ok(())
        } else {
            Err(error())
        }
    }

    /// Refuses to alter a table (ALTER TABLE, CREATE INDEX, TRUNCATE,
    /// change tracking) without ALTER on it or db_ddladmin: 1088. A table
    /// that does not exist gets the same answer, as in SQL Server.
    pub(super) fn require_alter(&self, name: &sqlparser::ast::ObjectName) -> Result<(), SqlError> {
        if self.caller.may_alter_database(true) || column_name_of(name).starts_with('#') {
            return Ok(());
        }
        match self.resolver().resolve_table(name) {
            Ok(t) if self.caller.may(t.object_id, "ALTER") => Ok(()),
            _ => Err(Session::alter_denied(
                &name.to_string().replace(['[', ']'], ""),
            )),
        }
    }

    /// Error 262 for CREATE `what` without permission.
    pub(super) fn create_denied(&self, what: &str) -> SqlError {
        SqlError::new(
            262,
            14,
            format!("{what} permission denied in database '{}'.", self.database),
        )
    }

    /// Error 1088 for altering a table without permission (or that does
    /// not exist: SQL Server does not say which).
    pub(super) fn alter_denied(name: &str) -> SqlError {
        SqlError::new(
            1088,
            16,
            format!("Cannot find the object \"{name}\" because it does not exist or you do not have permissions."),
        )
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

    pub(super) fn view(&self) -> SessionView {
        SessionView {
            database: self.database.clone(),
            trancount: self.tran.count,
            rowcount: self.rowcount,
            spid: self.spid,
            identity: self.last_identity,
            databases: self.shared.database_names(),
            collation: self.collation,
            server_collation: self.shared.collation,
            variables: self
                .vars
                .iter()
                .map(|(k, (t, _))| (k.clone(), *t))
                .collect(),
        }
    }

    // ------------------------------------------------------------ transactions

    /// Runs a batch. `params` are bound by name (`@P1`, ...), as from sp_executesql.
    pub fn execute(&mut self, sql: &str, params: Vec<(String, SqlType, Value)>) -> Vec<Out> {
        let mut out = Vec::new();
        // A batch refused as a whole: the error, then DONE with ERROR.
        let refused = |mut out: Vec<Out>, e| {
            out.push(Out::Error(e));
            out.push(Out::Done {
                cmd: 0,
                count: None,
                error: true,
            });
            out
        };
        if !self.caller.sysadmin {
            if let Err(e) = self.refresh_caller() {
                return refused(out, e);
            }
        }
        if self.tran.count == 0 {
            self.maybe_auto_cleanup();
        }
        self.vars = params
            .into_iter()
            .map(|(n, t, v)| (n.to_lowercase(), (t, v)))
            .collect();
        let stmts = match parse::parse_batch(sql) {
            Ok(s) => s,
            Err(e) => return refused(out, e),
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
        self.drop_table_variables();
        out
    }

    /// A table variable lives for the batch that declares it.
    fn drop_table_variables(&mut self) {
        let names: Vec<String> = self
            .temp
            .keys()
            .filter(|k| k.starts_with('@'))
            .cloned()
            .collect();
        for k in names {
            if let Some(t) = self.temp.remove(&k) {
                let _ = self.conn.execute_batch(&format!(
                    "DROP TABLE IF EXISTS temp.{}",
                    q(&t.sqlite_name())
                ));
            }
        }
    }

    /// The simulator's clock as change tracking stores it.
    pub(super) fn now_text(&self) -> String {
        ct::time_text(&self.shared.clock.now_utc())
    }

    pub(super) fn done_count(&self, cmd: u16, n: u64, out: &mut Vec<Out>) {
        out.push(Out::Done {
            cmd,
            count: if self.nocount { None } else { Some(n) },
            error: false,
        });
    }

    /// AUTO_CLEANUP: SQL Server's cleanup task runs every 30 minutes; here it
    /// runs when a batch starts outside a transaction and 30 simulated
    /// minutes have passed. It never waits for a lock: when another session
    /// is writing, it runs at a later batch.
    pub(super) fn maybe_auto_cleanup(&mut self) {
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

    pub(super) fn execute_stmt(&mut self, stmt: Stmt, out: &mut Vec<Out>) -> Result<(), SqlError> {
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
                    let res = self.resolver();
                    res.resolve_table(&table)?
                };
                if !t.temp && !self.caller.may(t.object_id, "ALTER") {
                    return Err(Session::alter_denied(&t.display_name()));
                }
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
                    let ty = match ty {
                        parse::VarType::System(t) => t,
                        parse::VarType::Named(n) => super::alias_types::resolve(&self.conn, &n)?.0,
                    };
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
            Stmt::DeclareTable(stmt) => {
                let Statement::CreateTable(ct) = *stmt else {
                    return Err(SqlError::syntax_near("TABLE"));
                };
                let name = column_name_of(&ct.name);
                if self.temp.contains_key(&name.to_lowercase())
                    || self.vars.contains_key(&name.to_lowercase())
                {
                    return Err(SqlError::new(
                        134,
                        15,
                        format!("The variable name '{name}' has already been declared. Variable names must be unique within a query batch or stored procedure."),
                    ));
                }
                self.create_table(ct)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::CreateType {
                name,
                base,
                nullable,
            } => {
                self.require_ddl(|| self.create_denied("CREATE TYPE"))?;
                self.before_write()?;
                self.create_alias_type(&name, &base, nullable.unwrap_or(true))?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::UpdateStatistics { table } => {
                self.require_alter(&table)?;
                self.update_statistics(&table)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::DropType { name, if_exists } => {
                self.require_ddl(|| {
                    SqlError::new(15151, 16, format!("Cannot drop the type '{name}', because it does not exist or you do not have permission."))
                })?;
                self.before_write()?;
                self.drop_alias_type(&name, if_exists)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::CreateDatabase { name, collation } => {
                if !self.caller.sysadmin {
                    return Err(SqlError::new(
                        262,
                        14,
                        "CREATE DATABASE permission denied in database 'master'.",
                    ));
                }
                self.create_database(&name, collation.as_deref(), out)?;
            }
            Stmt::AlterDatabase { database, words } => {
                if self.caller.grants.is_some() {
                    let db = database.clone().unwrap_or_else(|| self.database.clone());
                    return Err(SqlError::new(5011, 14, format!("User does not have permission to alter database '{db}', the database does not exist, or the database is not in a state that allows access checks.")));
                }
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
                self.require_alter(&table)?;
                self.before_write()?;
                self.alter_table_change_tracking(&table, enable, track_columns.unwrap_or(false))?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::AlterColumn {
                table,
                column,
                ty,
                collation,
                nullable,
            } => {
                self.require_alter(&table)?;
                self.before_write()?;
                self.alter_column(&table, &column, &ty, collation.as_deref(), nullable)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::AlterTableSwitch { table, target } => {
                self.require_alter(&table)?;
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
                self.resolver().require(&def, "INSERT")?;
                for (c, _) in &columns {
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
            Stmt::Security(cmd) => {
                self.security(&cmd)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Stmt::Sql(s) => self.execute_sql(*s, out)?,
        }
        Ok(())
    }

    pub(super) fn execute_sql(
        &mut self,
        stmt: Statement,
        out: &mut Vec<Out>,
    ) -> Result<(), SqlError> {
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
                self.create_database(&column_name_of(&db_name), None, out)?;
            }
            Statement::CreateSchema { schema_name, .. } => {
                self.require_ddl(|| self.create_denied("CREATE SCHEMA"))?;
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
                if !column_name_of(&ct.name).starts_with('#') {
                    self.require_ddl(|| self.create_denied("CREATE TABLE"))?;
                }
                self.before_write()?;
                self.create_table(ct)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::CreateIndex(ci) => {
                self.require_alter(&ci.table_name)?;
                self.before_write()?;
                self.create_index(ci)?;
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: false,
                });
            }
            Statement::AlterTable(at) => {
                self.require_alter(&at.name)?;
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
                for n in &names {
                    let name = column_name_of(n);
                    if !name.starts_with('#') && !self.caller.may_alter_database(true) {
                        let what = object_type.to_string().to_lowercase();
                        return Err(SqlError::new(3701, 14, format!("Cannot drop the {what} '{name}', because it does not exist or you do not have permission.")));
                    }
                }
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
                    self.require_alter(&target.name)?;
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
                self.execute_procedure(&name, parameters, out)?;
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

    pub(super) fn resolver(&self) -> Resolver<'_> {
        Resolver {
            conn: &self.conn,
            temp: &self.temp,
            database: &self.database,
            data_dir: &self.shared.data_dir,
            caller: &self.caller,
        }
    }

    /// Evaluates a scalar expression (DECLARE/SET @v = ...).
    pub(super) fn eval_scalar(&mut self, mut e: Expr) -> Result<Value, SqlError> {
        let view = self.view();
        let sql = {
            let res = self.resolver();
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

    fn create_database(
        &mut self,
        name: &str,
        collation: Option<&str>,
        out: &mut Vec<Out>,
    ) -> Result<(), SqlError> {
        if self.tran.count > 0 {
            return Err(SqlError::new(
                226,
                16,
                "CREATE DATABASE statement not allowed within multi-statement transaction.",
            ));
        }
        let collation = collation.map(Collation::parse).transpose()?;
        self.shared.create_database(name, collation)?;
        out.push(Out::Done {
            cmd: 0,
            count: None,
            error: false,
        });
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
                collation: None,
            });
            return Ok(());
        }
        if self.tran.open {
            return Err(SqlError::unsupported(
                "USE inside a transaction that has written data",
            ));
        }
        let conn = open_connection(
            &self.shared,
            &path,
            &real,
            &self.ct_stmt,
            &self.rowversion,
            &self.perms,
        )?;
        let caller = security::caller(&conn, &self.caller.login, self.caller.sysadmin, &real)?;
        *self.interrupt.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(conn.get_interrupt_handle());
        let collation = catalog::database_collation(&conn)?;
        // The counter is the database's: another one starts from its own.
        self.rowversion.store(0, Ordering::SeqCst);
        self.conn = conn;
        self.set_caller(caller);
        self.temp.clear();
        let old = std::mem::replace(&mut self.database, real.clone());
        let changed = std::mem::replace(&mut self.collation, collation) != collation;
        out.push(Out::EnvDatabase {
            new: real,
            old,
            collation: changed.then_some(collation),
        });
        Ok(())
    }

    // ------------------------------------------------------------------ SELECT
}
