//! Logins, database users, roles and permissions, checked as SQL Server
//! checks them, so that a client's least-privileged login meets the same
//! refusals here as on a real server.
//!
//! What SQL Server documents and this module follows:
//! - A login (`CREATE LOGIN ... WITH PASSWORD`) is a server principal; `sa`
//!   is the one sysadmin and passes every check. Logins live in master.
//! - A database is entered as the database user mapped to the login
//!   (`CREATE USER u FOR LOGIN l`); without one, error 4060 at login and
//!   916 at `USE` (master and tempdb admit every login as `guest`).
//! - Members of `db_owner` (and `dbo`) pass every check in their database.
//!   `db_datareader` holds SELECT, `db_datawriter` INSERT/UPDATE/DELETE on
//!   every table, `db_denydatareader`/`db_denydatawriter` deny them.
//! - A permission is granted or denied on an object, its schema or the
//!   database, to the user, a role it is a member of, or `public`; a DENY
//!   at any level wins; CONTROL implies every permission of its securable
//!   ("Permissions (Database Engine)").
//! - Reading a table needs SELECT (229 otherwise), writing it INSERT,
//!   UPDATE or DELETE (and SELECT when the statement reads it: a WHERE);
//!   CHANGETABLE needs SELECT and VIEW CHANGE TRACKING ("Manage change
//!   tracking", Security); CHANGE_TRACKING_MIN_VALID_VERSION returns NULL
//!   without permission; DDL needs db_owner or db_ddladmin here.
//! - Metadata is visible only for objects the user holds some permission
//!   on ("Metadata visibility configuration"): the catalog views filter
//!   their rows with `__sim_visible`, OBJECT_ID returns NULL.
//!
//! Not modelled (mssql-sim/README.md): Windows logins, server roles other
//! than sa's sysadmin, column permissions, ownership chains through views
//! and procedures, password policy, `EXECUTE AS`.

use crate::error::SqlError;
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const PUBLIC: i64 = 0;
pub const DBO: i64 = 1;
pub const GUEST: i64 = 2;
pub const DB_OWNER: i64 = 16384;
pub const DB_DDLADMIN: i64 = 16387;
pub const DB_DATAREADER: i64 = 16390;
pub const DB_DATAWRITER: i64 = 16391;
pub const DB_DENYDATAREADER: i64 = 16392;
pub const DB_DENYDATAWRITER: i64 = 16393;

/// Permissions on a table (or granted on its schema or the database, where
/// they cover every table).
const OBJECT_PERMISSIONS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "REFERENCES",
    "ALTER",
    "CONTROL",
    "TAKE OWNERSHIP",
    "VIEW DEFINITION",
    "VIEW CHANGE TRACKING",
];

/// Permissions that exist only on the database.
const DATABASE_PERMISSIONS: &[&str] = &[
    "CONNECT",
    "CREATE TABLE",
    "CREATE VIEW",
    "CREATE PROCEDURE",
    "CREATE FUNCTION",
    "CREATE SCHEMA",
    "CREATE TYPE",
    "VIEW DATABASE STATE",
    "SHOWPLAN",
];

/// Creates the principal and permission tables of a database file and its
/// fixed principals (ids as SQL Server numbers them).
pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS __sim_principals(principal_id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE SQLSRV UNIQUE,
             type TEXT NOT NULL, login_name TEXT COLLATE SQLSRV, is_fixed_role INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE IF NOT EXISTS __sim_role_members(role_principal_id INTEGER NOT NULL, member_principal_id INTEGER NOT NULL,
             PRIMARY KEY (role_principal_id, member_principal_id));
         CREATE TABLE IF NOT EXISTS __sim_permissions(class INTEGER NOT NULL, major_id INTEGER NOT NULL, grantee_principal_id INTEGER NOT NULL,
             permission_name TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (class, major_id, grantee_principal_id, permission_name));
         CREATE TABLE IF NOT EXISTS __sim_logins(name TEXT PRIMARY KEY COLLATE SQLSRV, salt TEXT NOT NULL, password_hash TEXT NOT NULL,
             default_database TEXT NOT NULL);",
    )?;
    // Written only once: a write at login would wait for another session's
    // open write transaction (catalog::init says the same).
    let fixed: i64 = conn.query_row(
        "SELECT count(*) FROM __sim_principals WHERE principal_id = 16393",
        [],
        |r| r.get(0),
    )?;
    if fixed == 0 {
        conn.execute_batch(
            "INSERT OR IGNORE INTO __sim_principals(principal_id, name, type, login_name, is_fixed_role) VALUES
                 (0, 'public', 'R', NULL, 0), (1, 'dbo', 'S', 'sa', 0), (2, 'guest', 'S', NULL, 0),
                 (3, 'INFORMATION_SCHEMA', 'S', NULL, 0), (4, 'sys', 'S', NULL, 0),
                 (16384, 'db_owner', 'R', NULL, 1), (16385, 'db_accessadmin', 'R', NULL, 1), (16386, 'db_securityadmin', 'R', NULL, 1),
                 (16387, 'db_ddladmin', 'R', NULL, 1), (16389, 'db_backupoperator', 'R', NULL, 1), (16390, 'db_datareader', 'R', NULL, 1),
                 (16391, 'db_datawriter', 'R', NULL, 1), (16392, 'db_denydatareader', 'R', NULL, 1), (16393, 'db_denydatawriter', 'R', NULL, 1);",
        )?;
    }
    Ok(())
}

/// The catalog views of principals and permissions (`sys.database_*`).
/// A user who is not an owner sees its own permissions only.
pub fn create_views(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TEMP VIEW IF NOT EXISTS \"sys.database_principals\" AS SELECT name, principal_id, type,
             CASE type WHEN 'S' THEN 'SQL_USER' WHEN 'R' THEN 'DATABASE_ROLE' END AS type_desc,
             CASE WHEN type = 'S' THEN 'dbo' END AS default_schema_name, is_fixed_role,
             CASE WHEN principal_id < 16384 AND principal_id > 0 THEN NULL ELSE 1 END AS owning_principal_id
             FROM __sim_principals;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.database_role_members\" AS SELECT role_principal_id, member_principal_id FROM __sim_role_members;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.database_permissions\" AS SELECT class,
             CASE class WHEN 0 THEN 'DATABASE' WHEN 1 THEN 'OBJECT_OR_COLUMN' WHEN 3 THEN 'SCHEMA' END AS class_desc,
             major_id, 0 AS minor_id, grantee_principal_id, 1 AS grantor_principal_id, permission_name,
             state, CASE state WHEN 'G' THEN 'GRANT' WHEN 'D' THEN 'DENY' WHEN 'W' THEN 'GRANT_WITH_GRANT_OPTION' END AS state_desc
             FROM __sim_permissions WHERE __sim_is_me(grantee_principal_id) = 1;",
    )
}

/// What the caller of a session holds in its current database.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The login (`SUSER_SNAME()`).
    pub login: String,
    /// The database user (`USER_NAME()`).
    pub user: String,
    /// None: sysadmin or db_owner, every check passes.
    pub grants: Option<Arc<Grants>>,
    /// The login is sa (sysadmin): dbo in every database, and the only one
    /// that may manage logins.
    pub sysadmin: bool,
}

impl Caller {
    /// sa, before a database is chosen.
    pub fn sysadmin(login: &str) -> Caller {
        Caller {
            login: login.to_string(),
            user: "dbo".into(),
            grants: None,
            sysadmin: true,
        }
    }

    /// Whether the caller may read or write a table: `perm` is SELECT,
    /// INSERT, UPDATE, DELETE, ALTER or VIEW CHANGE TRACKING.
    pub fn may(&self, object_id: i64, perm: &str) -> bool {
        match &self.grants {
            None => true,
            Some(g) => g.has(object_id, perm),
        }
    }

    /// Whether the caller may change the schema or the security of the
    /// database (db_owner, or db_ddladmin for DDL when `ddl`).
    pub fn may_alter_database(&self, ddl: bool) -> bool {
        match &self.grants {
            None => true,
            Some(g) => ddl && g.ddl_admin,
        }
    }
}

/// The effective permissions of a user who is not an owner of the
/// database: its principals (itself, public, its roles) and every grant
/// and deny to them.
#[derive(Debug, Default)]
pub struct Grants {
    principals: HashSet<i64>,
    /// (class, major_id, permission, denied)
    rows: Vec<(i64, i64, String, bool)>,
    schema_of: HashMap<i64, i64>,
    reader: bool,
    writer: bool,
    deny_reader: bool,
    deny_writer: bool,
    ddl_admin: bool,
}

impl Grants {
    /// Whether `perm` on the table `object_id` is effective: granted (or
    /// implied by CONTROL, a fixed role) on the table, its schema or the
    /// database, and denied at none of them.
    pub fn has(&self, object_id: i64, perm: &str) -> bool {
        let schema = self.schema_of.get(&object_id).copied();
        let levels = [(1, Some(object_id)), (3, schema), (0, Some(0))];
        let covers =
            |class: i64, major: i64| levels.iter().any(|(c, m)| *c == class && *m == Some(major));
        let implies = |p: &str| p == perm || p == "CONTROL";
        let data_write = matches!(perm, "INSERT" | "UPDATE" | "DELETE");
        if (perm == "SELECT" && self.deny_reader) || (data_write && self.deny_writer) {
            return false;
        }
        if self
            .rows
            .iter()
            .any(|(c, m, p, denied)| *denied && covers(*c, *m) && implies(p))
        {
            return false;
        }
        (perm == "SELECT" && self.reader)
            || (data_write && self.writer)
            || self
                .rows
                .iter()
                .any(|(c, m, p, denied)| !denied && covers(*c, *m) && implies(p))
    }

    /// Whether the table's metadata is visible: some permission on it.
    pub fn visible(&self, object_id: i64) -> bool {
        OBJECT_PERMISSIONS.iter().any(|p| self.has(object_id, p))
    }

    /// A database-level permission (`HAS_PERMS_BY_NAME(NULL, 'DATABASE', p)`).
    pub fn has_database(&self, perm: &str) -> bool {
        if perm == "CONNECT" {
            return true;
        }
        let ddl = perm.starts_with("CREATE ") && self.ddl_admin;
        let hit = |denied: bool| {
            self.rows
                .iter()
                .any(|(c, _, p, d)| *c == 0 && *d == denied && (p == perm || p == "CONTROL"))
        };
        !hit(true) && (ddl || hit(false))
    }
}

/// The cell the SQLite functions `__sim_visible`, `__sim_can`,
/// `__sim_can_db` and `__sim_is_me` read: the caller's grants (None for an
/// owner), replaced whenever the session's caller changes.
pub type PermCell = Arc<Mutex<Option<Arc<Grants>>>>;

/// Registers the permission functions on a connection.
pub fn register(conn: &Connection, cell: PermCell) -> rusqlite::Result<()> {
    let get = |cell: &PermCell| cell.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let flags = FunctionFlags::SQLITE_UTF8;
    let c = cell.clone();
    conn.create_scalar_function("__sim_visible", 1, flags, move |ctx| {
        let id: Option<i64> = ctx.get(0)?;
        Ok(match (get(&c), id) {
            (_, None) => 0,
            (None, _) => 1,
            (Some(g), Some(id)) => g.visible(id) as i64,
        })
    })?;
    let c = cell.clone();
    conn.create_scalar_function("__sim_can", 2, flags, move |ctx| {
        let id: Option<i64> = ctx.get(0)?;
        let perm: String = ctx.get(1)?;
        Ok(match (get(&c), id) {
            (_, None) => None,
            (None, _) => Some(1),
            (Some(g), Some(id)) => Some(g.has(id, &perm.to_ascii_uppercase()) as i64),
        })
    })?;
    let c = cell.clone();
    conn.create_scalar_function("__sim_can_db", 1, flags, move |ctx| {
        let perm: String = ctx.get(0)?;
        let perm = perm.to_ascii_uppercase();
        if !OBJECT_PERMISSIONS.contains(&perm.as_str())
            && !DATABASE_PERMISSIONS.contains(&perm.as_str())
        {
            return Ok(None);
        }
        Ok(Some(match get(&c) {
            None => 1,
            Some(g) => g.has_database(&perm) as i64,
        }))
    })?;
    conn.create_scalar_function(
        "__sim_perm_name_ok",
        1,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let p: Option<String> = ctx.get(0)?;
            Ok(p.map(|p| is_object_permission(&p) as i64))
        },
    )?;
    let c = cell;
    conn.create_scalar_function("__sim_is_me", 1, flags, move |ctx| {
        let id: i64 = ctx.get(0)?;
        Ok(match get(&c) {
            None => 1,
            Some(g) => g.principals.contains(&id) as i64,
        })
    })?;
    Ok(())
}

/// Whether a permission name is one `HAS_PERMS_BY_NAME(x, 'OBJECT', p)`
/// knows.
pub fn is_object_permission(perm: &str) -> bool {
    OBJECT_PERMISSIONS.contains(&perm.to_ascii_uppercase().as_str())
}

/// The caller `login` is in `database`: its user there, its roles and
/// grants. `sysadmin` (sa) is dbo everywhere. A login without a user is
/// refused (916) except in master and tempdb, where it is guest.
pub fn caller(
    conn: &Connection,
    login: &str,
    sysadmin: bool,
    database: &str,
) -> Result<Caller, SqlError> {
    if sysadmin {
        return Ok(Caller::sysadmin(login));
    }
    let user: Option<(i64, String)> = conn
        .query_row(
            "SELECT principal_id, name FROM __sim_principals WHERE type = 'S' AND login_name = ?1",
            [login],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let (uid, user) = match user {
        Some(u) => u,
        None if database.eq_ignore_ascii_case("master") || database.eq_ignore_ascii_case("tempdb") => {
            (GUEST, "guest".to_string())
        }
        None => {
            return Err(SqlError::new(
                916,
                14,
                format!(
                    "The server principal \"{login}\" is not able to access the database \"{database}\" under the current security context."
                ),
            ))
        }
    };
    let mut principals: HashSet<i64> = [uid, PUBLIC].into_iter().collect();
    let members: Vec<(i64, i64)> = {
        let mut st = conn
            .prepare("SELECT role_principal_id, member_principal_id FROM __sim_role_members")
            .map_err(err)?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        rows
    };
    // Roles are members of roles: close over membership.
    loop {
        let before = principals.len();
        for (role, member) in &members {
            if principals.contains(member) {
                principals.insert(*role);
            }
        }
        if principals.len() == before {
            break;
        }
    }
    if principals.contains(&DB_OWNER) || uid == DBO {
        return Ok(Caller {
            login: login.to_string(),
            user,
            grants: None,
            sysadmin: false,
        });
    }
    let mut rows = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT class, major_id, grantee_principal_id, permission_name, state FROM __sim_permissions")
            .map_err(err)?;
        let mut q = st.query([]).map_err(err)?;
        while let Some(r) = q.next().map_err(err)? {
            let grantee: i64 = r.get(2).map_err(err)?;
            if principals.contains(&grantee) {
                let state: String = r.get(4).map_err(err)?;
                rows.push((
                    r.get(0).map_err(err)?,
                    r.get(1).map_err(err)?,
                    r.get(3).map_err(err)?,
                    state == "D",
                ));
            }
        }
    }
    let mut schema_of = HashMap::new();
    {
        let mut st = conn
            .prepare("SELECT object_id, schema_id FROM __sim_objects")
            .map_err(err)?;
        let mut q = st.query([]).map_err(err)?;
        while let Some(r) = q.next().map_err(err)? {
            schema_of.insert(r.get(0).map_err(err)?, r.get(1).map_err(err)?);
        }
    }
    let grants = Grants {
        reader: principals.contains(&DB_DATAREADER),
        writer: principals.contains(&DB_DATAWRITER),
        deny_reader: principals.contains(&DB_DENYDATAREADER),
        deny_writer: principals.contains(&DB_DENYDATAWRITER),
        ddl_admin: principals.contains(&DB_DDLADMIN),
        principals,
        rows,
        schema_of,
    };
    Ok(Caller {
        login: login.to_string(),
        user,
        grants: Some(Arc::new(grants)),
        sysadmin: false,
    })
}

/// Error 229: `perm` denied on a table.
pub fn denied(perm: &str, table: &str, schema: &str, database: &str) -> SqlError {
    SqlError::new(
        229,
        14,
        format!("The {perm} permission was denied on the object '{table}', database '{database}', schema '{schema}'."),
    )
}

/// Error 15247, for security statements by a user who may not run them.
pub fn not_permitted() -> SqlError {
    SqlError::new(
        15247,
        16,
        "User does not have permission to perform this action.",
    )
}

use super::catalog::sqlite_err as err;

// ------------------------------------------------------------------ logins

fn hash(salt: &str, password: &str) -> String {
    let d = Sha256::digest(format!("{salt}\u{0}{password}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A login that may connect: its name as created and its default database.
pub struct Login {
    pub name: String,
    pub default_database: String,
}

/// Checks a SQL login's password against master's `__sim_logins` (only a
/// salted hash is stored).
pub fn authenticate(
    master: &Connection,
    user: &str,
    password: &str,
) -> Result<Option<Login>, SqlError> {
    let row: Option<(String, String, String, String)> = master
        .query_row(
            "SELECT name, salt, password_hash, default_database FROM __sim_logins WHERE name = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(err)?;
    Ok(row.and_then(|(name, salt, h, default_database)| {
        (hash(&salt, password) == h).then_some(Login {
            name,
            default_database,
        })
    }))
}

// ------------------------------------------------------------------ statements

/// A token of a security statement, as the batch parser hands it over.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word or identifier (`quoted`: written in brackets or quotes).
    Word(String, bool),
    /// A string literal.
    Str(String),
    /// `,` `.` `=` `::` `(` `)`
    Punct(String),
}

/// What a permission statement is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Securable {
    Database,
    Schema(String),
    /// `[schema.]name`
    Object(Option<String>, String),
}

/// GRANT, DENY or REVOKE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verb {
    Grant,
    Deny,
    Revoke,
}

/// A security statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateLogin {
        name: String,
        password: String,
        default_database: Option<String>,
    },
    AlterLoginPassword {
        name: String,
        password: String,
    },
    DropLogin(String),
    /// `login` None: WITHOUT LOGIN.
    CreateUser {
        name: String,
        login: Option<String>,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
    CreateRole(String),
    DropRole(String),
    RoleMember {
        role: String,
        member: String,
        add: bool,
    },
    Permission {
        verb: Verb,
        permissions: Vec<String>,
        on: Securable,
        principals: Vec<String>,
    },
}

/// Whether the statement starting with these two words is a security
/// statement this module parses.
pub fn starts(first: &str, second: &str) -> bool {
    let f = first.to_ascii_uppercase();
    let s = second.to_ascii_uppercase();
    matches!(f.as_str(), "GRANT" | "DENY" | "REVOKE")
        || (matches!(f.as_str(), "CREATE" | "DROP" | "ALTER")
            && matches!(s.as_str(), "LOGIN" | "USER" | "ROLE"))
}

struct Cursor<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }
    fn near(&self) -> SqlError {
        match self.toks.get(self.i.saturating_sub(1)) {
            Some(Tok::Word(w, _)) | Some(Tok::Str(w)) | Some(Tok::Punct(w)) => {
                SqlError::syntax_near(w)
            }
            None => SqlError::syntax_near(""),
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w, false)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.kw(kw) {
            Ok(())
        } else {
            self.i += 1;
            Err(self.near())
        }
    }
    fn punct(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(x)) if x == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn name(&mut self) -> Result<String, SqlError> {
        match self.next() {
            Some(Tok::Word(w, _)) => Ok(w.clone()),
            _ => Err(self.near()),
        }
    }
    fn string(&mut self) -> Result<String, SqlError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s.clone()),
            _ => Err(self.near()),
        }
    }
    fn end(&self) -> Result<(), SqlError> {
        match self.toks.get(self.i) {
            None => Ok(()),
            Some(_) => {
                let c = Cursor {
                    toks: self.toks,
                    i: self.i + 1,
                };
                Err(c.near())
            }
        }
    }
}

/// Parses one security statement (its tokens, without the semicolon).
pub fn parse(toks: &[Tok]) -> Result<Command, SqlError> {
    let mut c = Cursor { toks, i: 0 };
    let first = match c.next() {
        Some(Tok::Word(w, _)) => w.to_ascii_uppercase(),
        _ => return Err(c.near()),
    };
    let cmd = match first.as_str() {
        "GRANT" | "DENY" | "REVOKE" => {
            let verb = match first.as_str() {
                "GRANT" => Verb::Grant,
                "DENY" => Verb::Deny,
                _ => Verb::Revoke,
            };
            if verb == Verb::Revoke && c.is_kw("GRANT") {
                return Err(SqlError::unsupported("REVOKE GRANT OPTION FOR"));
            }
            let mut permissions = Vec::new();
            loop {
                let mut words = Vec::new();
                while let Some(Tok::Word(w, false)) = c.peek() {
                    if w.eq_ignore_ascii_case("ON")
                        || w.eq_ignore_ascii_case("TO")
                        || w.eq_ignore_ascii_case("FROM")
                    {
                        break;
                    }
                    words.push(w.to_ascii_uppercase());
                    c.i += 1;
                }
                if words.is_empty() {
                    c.i += 1;
                    return Err(c.near());
                }
                if matches!(c.peek(), Some(Tok::Punct(p)) if p == "(") {
                    return Err(SqlError::unsupported("column permissions"));
                }
                let p = words.join(" ");
                if p == "ALL PRIVILEGES" || p == "ALL" {
                    return Err(SqlError::unsupported(
                        "GRANT ALL (deprecated; name the permissions)",
                    ));
                }
                permissions.push(p);
                if !c.punct(",") {
                    break;
                }
            }
            let on = if c.kw("ON") {
                let class = match (c.peek(), c.toks.get(c.i + 1)) {
                    (Some(Tok::Word(w, false)), Some(Tok::Punct(p))) if p == "::" => {
                        let w = w.to_ascii_uppercase();
                        c.i += 2;
                        Some(w)
                    }
                    _ => None,
                };
                let a = c.name()?;
                let b = if c.punct(".") { Some(c.name()?) } else { None };
                match class.as_deref() {
                    None | Some("OBJECT") => match b {
                        Some(b) => Securable::Object(Some(a), b),
                        None => Securable::Object(None, a),
                    },
                    Some("SCHEMA") if b.is_none() => Securable::Schema(a),
                    Some("DATABASE") if b.is_none() => Securable::Database,
                    Some(other) => {
                        return Err(SqlError::unsupported(format!(
                            "permissions on {other}:: securables (OBJECT, SCHEMA and DATABASE are supported)"
                        )))
                    }
                }
            } else {
                Securable::Database
            };
            if !(c.kw("TO") || (verb == Verb::Revoke && c.kw("FROM"))) {
                c.i += 1;
                return Err(c.near());
            }
            let mut principals = vec![c.name()?];
            while c.punct(",") {
                principals.push(c.name()?);
            }
            if c.kw("WITH") {
                return Err(SqlError::unsupported("WITH GRANT OPTION"));
            }
            c.kw("CASCADE");
            Command::Permission {
                verb,
                permissions,
                on,
                principals,
            }
        }
        "CREATE" | "DROP" | "ALTER" => {
            let what = c.name()?.to_ascii_uppercase();
            match (first.as_str(), what.as_str()) {
                ("CREATE", "LOGIN") => {
                    let name = c.name()?;
                    if c.kw("FROM") {
                        return Err(SqlError::unsupported(
                            "Windows, certificate and external logins (CREATE LOGIN ... WITH PASSWORD is supported)",
                        ));
                    }
                    c.expect_kw("WITH")?;
                    let mut password = None;
                    let mut default_database = None;
                    loop {
                        let opt = c.name()?.to_ascii_uppercase();
                        if !c.punct("=") {
                            c.i += 1;
                            return Err(c.near());
                        }
                        match opt.as_str() {
                            "PASSWORD" => {
                                password = Some(c.string()?);
                                if c.is_kw("HASHED") || c.is_kw("MUST_CHANGE") {
                                    return Err(SqlError::unsupported(
                                        "PASSWORD ... HASHED / MUST_CHANGE",
                                    ));
                                }
                            }
                            "DEFAULT_DATABASE" => default_database = Some(c.name()?),
                            "CHECK_POLICY" | "CHECK_EXPIRATION" => {
                                c.name()?;
                            }
                            "DEFAULT_LANGUAGE" => {
                                c.name()?;
                            }
                            other => {
                                return Err(SqlError::unsupported(format!(
                                    "the CREATE LOGIN option {other}"
                                )))
                            }
                        }
                        if !c.punct(",") {
                            break;
                        }
                    }
                    let Some(password) = password else {
                        return Err(SqlError::unsupported("CREATE LOGIN without a password"));
                    };
                    Command::CreateLogin {
                        name,
                        password,
                        default_database,
                    }
                }
                ("ALTER", "LOGIN") => {
                    let name = c.name()?;
                    c.expect_kw("WITH")?;
                    if !c.kw("PASSWORD") || !c.punct("=") {
                        return Err(SqlError::unsupported(
                            "ALTER LOGIN other than WITH PASSWORD = '...'",
                        ));
                    }
                    let password = c.string()?;
                    Command::AlterLoginPassword { name, password }
                }
                ("DROP", "LOGIN") => Command::DropLogin(c.name()?),
                ("CREATE", "USER") => {
                    let name = c.name()?;
                    let login = if c.kw("FOR") || c.kw("FROM") {
                        c.expect_kw("LOGIN")?;
                        Some(c.name()?)
                    } else if c.kw("WITHOUT") {
                        c.expect_kw("LOGIN")?;
                        None
                    } else {
                        // FOR LOGIN omitted: the login of the same name.
                        Some(name.clone())
                    };
                    if c.kw("WITH") {
                        if !c.kw("DEFAULT_SCHEMA") || !c.punct("=") {
                            return Err(SqlError::unsupported(
                                "CREATE USER options other than DEFAULT_SCHEMA",
                            ));
                        }
                        let schema = c.name()?;
                        if !schema.eq_ignore_ascii_case("dbo") {
                            return Err(SqlError::unsupported("a default schema other than dbo"));
                        }
                    }
                    Command::CreateUser { name, login }
                }
                ("DROP", "USER") => {
                    let if_exists = c.kw("IF") && {
                        c.expect_kw("EXISTS")?;
                        true
                    };
                    Command::DropUser {
                        name: c.name()?,
                        if_exists,
                    }
                }
                ("CREATE", "ROLE") => {
                    let name = c.name()?;
                    if c.kw("AUTHORIZATION") {
                        c.name()?;
                    }
                    Command::CreateRole(name)
                }
                ("DROP", "ROLE") => Command::DropRole(c.name()?),
                ("ALTER", "ROLE") => {
                    let role = c.name()?;
                    let add = if c.kw("ADD") {
                        true
                    } else if c.kw("DROP") {
                        false
                    } else {
                        return Err(SqlError::unsupported(
                            "ALTER ROLE other than ADD MEMBER / DROP MEMBER",
                        ));
                    };
                    c.expect_kw("MEMBER")?;
                    Command::RoleMember {
                        role,
                        member: c.name()?,
                        add,
                    }
                }
                _ => return Err(c.near()),
            }
        }
        _ => return Err(c.near()),
    };
    c.end()?;
    Ok(cmd)
}

fn principal(conn: &Connection, name: &str) -> Result<Option<(i64, String, bool)>, SqlError> {
    conn.query_row(
        "SELECT principal_id, type, is_fixed_role FROM __sim_principals WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1)),
    )
    .optional()
    .map_err(err)
}

fn not_found(what: &str, name: &str) -> SqlError {
    SqlError::new(
        15151,
        16,
        format!("Cannot find the {what} '{name}', because it does not exist or you do not have permission."),
    )
}

/// Runs a security statement. `conn` is the current database, `master`
/// the master database (logins); `caller` must be allowed to (checked
/// here: sysadmin for logins, an owner for users, roles and permissions).
pub fn run(
    conn: &Connection,
    master: &Connection,
    cmd: &Command,
    caller: &Caller,
) -> Result<(), SqlError> {
    let server_level = matches!(
        cmd,
        Command::CreateLogin { .. } | Command::AlterLoginPassword { .. } | Command::DropLogin(_)
    );
    if (server_level && !caller.sysadmin) || (!server_level && caller.grants.is_some()) {
        return Err(not_permitted());
    }
    match cmd {
        Command::CreateLogin {
            name,
            password,
            default_database,
        } => {
            if name.eq_ignore_ascii_case("sa")
                || master
                    .query_row("SELECT 1 FROM __sim_logins WHERE name = ?1", [name], |_| Ok(()))
                    .optional()
                    .map_err(err)?
                    .is_some()
            {
                return Err(SqlError::new(
                    15025,
                    16,
                    format!("The server principal '{name}' already exists."),
                ));
            }
            let salt = uuid::Uuid::new_v4().simple().to_string();
            master
                .execute(
                    "INSERT INTO __sim_logins(name, salt, password_hash, default_database) VALUES (?1, ?2, ?3, ?4)",
                    params![name, salt, hash(&salt, password), default_database.as_deref().unwrap_or("master")],
                )
                .map_err(err)?;
        }
        Command::AlterLoginPassword { name, password } => {
            let salt = uuid::Uuid::new_v4().simple().to_string();
            let n = master
                .execute(
                    "UPDATE __sim_logins SET salt = ?2, password_hash = ?3 WHERE name = ?1",
                    params![name, salt, hash(&salt, password)],
                )
                .map_err(err)?;
            if n == 0 {
                return Err(not_found("login", name));
            }
        }
        Command::DropLogin(name) => {
            let n = master
                .execute("DELETE FROM __sim_logins WHERE name = ?1", [name])
                .map_err(err)?;
            if n == 0 {
                return Err(SqlError::new(
                    15151,
                    16,
                    format!("Cannot drop the login '{name}', because it does not exist or you do not have permission."),
                ));
            }
        }
        Command::CreateUser { name, login } => {
            if principal(conn, name)?.is_some() {
                return Err(SqlError::new(
                    15023,
                    16,
                    format!("User, group, or role '{name}' already exists in the current database."),
                ));
            }
            let login_name = match login {
                None => None,
                Some(l) => {
                    let found: Option<String> = master
                        .query_row("SELECT name FROM __sim_logins WHERE name = ?1", [l], |r| r.get(0))
                        .optional()
                        .map_err(err)?;
                    let Some(found) = found else {
                        return Err(SqlError::new(
                            15007,
                            16,
                            format!("'{l}' is not a valid login or you do not have permission."),
                        ));
                    };
                    let mapped = conn
                        .query_row(
                            "SELECT 1 FROM __sim_principals WHERE login_name = ?1",
                            [&found],
                            |_| Ok(()),
                        )
                        .optional()
                        .map_err(err)?;
                    if mapped.is_some() {
                        return Err(SqlError::new(
                            15063,
                            16,
                            "The login already has an account under a different user name.",
                        ));
                    }
                    Some(found)
                }
            };
            conn.execute(
                "INSERT INTO __sim_principals(principal_id, name, type, login_name)
                 VALUES ((SELECT max(5, coalesce(max(principal_id), 4) + 1) FROM __sim_principals WHERE principal_id < 16384), ?1, 'S', ?2)",
                params![name, login_name],
            )
            .map_err(err)?;
        }
        Command::DropUser { name, if_exists } => match principal(conn, name)? {
            Some((id, t, _)) if t == "S" && id > 4 => {
                conn.execute_batch(&format!(
                    "DELETE FROM __sim_permissions WHERE grantee_principal_id = {id};
                     DELETE FROM __sim_role_members WHERE member_principal_id = {id};
                     DELETE FROM __sim_principals WHERE principal_id = {id};"
                ))
                .map_err(err)?;
            }
            None if *if_exists => {}
            _ => {
                return Err(SqlError::new(
                    15151,
                    16,
                    format!("Cannot drop the user '{name}', because it does not exist or you do not have permission."),
                ))
            }
        },
        Command::CreateRole(name) => {
            if principal(conn, name)?.is_some() {
                return Err(SqlError::new(
                    15023,
                    16,
                    format!("User, group, or role '{name}' already exists in the current database."),
                ));
            }
            conn.execute(
                "INSERT INTO __sim_principals(principal_id, name, type) VALUES
                 ((SELECT max(16400, coalesce(max(principal_id), 16399) + 1) FROM __sim_principals), ?1, 'R')",
                [name],
            )
            .map_err(err)?;
        }
        Command::DropRole(name) => match principal(conn, name)? {
            Some((id, t, fixed)) if t == "R" && !fixed && id != PUBLIC => {
                let members: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM __sim_role_members WHERE role_principal_id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                if members > 0 {
                    return Err(SqlError::new(15144, 16, "The role has members. It must be empty before it can be dropped."));
                }
                conn.execute_batch(&format!(
                    "DELETE FROM __sim_permissions WHERE grantee_principal_id = {id};
                     DELETE FROM __sim_role_members WHERE member_principal_id = {id};
                     DELETE FROM __sim_principals WHERE principal_id = {id};"
                ))
                .map_err(err)?;
            }
            _ => return Err(not_found("role", name)),
        },
        Command::RoleMember { role, member, add } => {
            let Some((rid, rt, _)) = principal(conn, role)?.filter(|(id, t, _)| t == "R" && *id != PUBLIC) else {
                return Err(SqlError::new(
                    15151,
                    16,
                    format!("Cannot alter the role '{role}', because it does not exist or you do not have permission."),
                ));
            };
            debug_assert_eq!(rt, "R");
            let Some((mid, _, _)) = principal(conn, member)?.filter(|(id, _, _)| *id != DBO) else {
                return Err(SqlError::new(
                    15151,
                    16,
                    format!(
                        "Cannot {} the principal '{member}', because it does not exist or you do not have permission.",
                        if *add { "add" } else { "drop" }
                    ),
                ));
            };
            let sql = if *add {
                "INSERT OR IGNORE INTO __sim_role_members VALUES (?1, ?2)"
            } else {
                "DELETE FROM __sim_role_members WHERE role_principal_id = ?1 AND member_principal_id = ?2"
            };
            conn.execute(sql, params![rid, mid]).map_err(err)?;
        }
        Command::Permission {
            verb,
            permissions,
            on,
            principals,
        } => {
            let (class, major, allowed): (i64, i64, Vec<&str>) = match on {
                Securable::Database => (
                    0,
                    0,
                    OBJECT_PERMISSIONS
                        .iter()
                        .chain(DATABASE_PERMISSIONS.iter())
                        .copied()
                        .collect(),
                ),
                Securable::Schema(s) => {
                    let id: Option<i64> = conn
                        .query_row("SELECT schema_id FROM __sim_schemas WHERE name = ?1", [s], |r| r.get(0))
                        .optional()
                        .map_err(err)?;
                    let id = id.ok_or_else(|| not_found("schema", s))?;
                    (3, id, OBJECT_PERMISSIONS.to_vec())
                }
                Securable::Object(schema, name) => {
                    let schema = schema.as_deref().unwrap_or("dbo");
                    let id: Option<i64> = conn
                        .query_row(
                            "SELECT o.object_id FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
                             WHERE s.name = ?1 AND o.name = ?2 AND o.type = 'U '",
                            [schema, name.as_str()],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(err)?;
                    let id = id.ok_or_else(|| not_found("object", name))?;
                    (1, id, OBJECT_PERMISSIONS.to_vec())
                }
            };
            for p in permissions {
                if !allowed.contains(&p.as_str()) {
                    return Err(if DATABASE_PERMISSIONS.contains(&p.as_str())
                        || OBJECT_PERMISSIONS.contains(&p.as_str())
                    {
                        SqlError::new(
                            4606,
                            16,
                            format!("Granted or revoked privilege {p} is not compatible with object."),
                        )
                    } else {
                        SqlError::unsupported(format!("the permission {p}"))
                    });
                }
            }
            let mut ids = Vec::new();
            for name in principals {
                let Some((id, _, _)) = principal(conn, name)? else {
                    return Err(not_found("user", name));
                };
                if id == DBO || (id == DB_OWNER) {
                    return Err(SqlError::new(
                        4617,
                        16,
                        "Cannot grant, deny or revoke permissions to or from special roles.",
                    ));
                }
                ids.push(id);
            }
            for id in ids {
                for p in permissions {
                    match verb {
                        Verb::Revoke => conn.execute(
                            "DELETE FROM __sim_permissions WHERE class = ?1 AND major_id = ?2 AND grantee_principal_id = ?3 AND permission_name = ?4",
                            params![class, major, id, p],
                        ),
                        Verb::Grant | Verb::Deny => conn.execute(
                            "INSERT OR REPLACE INTO __sim_permissions VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![class, major, id, p, if *verb == Verb::Deny { "D" } else { "G" }],
                        ),
                    }
                    .map_err(err)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        s.split_whitespace()
            .map(|w| match w {
                "," | "." | "=" | "::" => Tok::Punct(w.into()),
                w if w.starts_with('\'') => Tok::Str(w.trim_matches('\'').into()),
                w => Tok::Word(w.into(), false),
            })
            .collect()
    }

    #[test]
    fn parses_grants() {
        assert_eq!(
            parse(&toks(
                "GRANT SELECT , VIEW CHANGE TRACKING ON OBJECT :: dbo . Besok TO ctferry"
            ))
            .unwrap(),
            Command::Permission {
                verb: Verb::Grant,
                permissions: vec!["SELECT".into(), "VIEW CHANGE TRACKING".into()],
                on: Securable::Object(Some("dbo".into()), "Besok".into()),
                principals: vec!["ctferry".into()],
            }
        );
        assert_eq!(
            parse(&toks("REVOKE VIEW DEFINITION FROM u")).unwrap(),
            Command::Permission {
                verb: Verb::Revoke,
                permissions: vec!["VIEW DEFINITION".into()],
                on: Securable::Database,
                principals: vec!["u".into()],
            }
        );
        assert_eq!(
            parse(&toks("GRANT SELECT ON dbo . T")).unwrap_err().number,
            102
        );
    }

    #[test]
    fn deny_wins_and_control_implies() {
        let mut g = Grants::default();
        g.schema_of.insert(10, 1);
        g.rows.push((3, 1, "SELECT".into(), false));
        assert!(g.has(10, "SELECT"));
        assert!(!g.has(10, "VIEW CHANGE TRACKING"));
        g.rows.push((1, 10, "SELECT".into(), true));
        assert!(!g.has(10, "SELECT"));
        g.rows.push((1, 11, "CONTROL".into(), false));
        assert!(g.has(11, "VIEW CHANGE TRACKING"));
        assert!(g.visible(11) && !g.visible(12));
    }
}
