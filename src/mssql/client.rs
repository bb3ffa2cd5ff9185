//! The connection to a SQL Server (the region's source, or a caregiver's
//! target), behind a small synchronous interface over tiberius.
//!
//! Rows are handed to a callback one at a time as they arrive, so memory
//! does not grow with a table's size. Errors say whether retrying can help
//! (network trouble, deadlock, snapshot conflict) or not (a SQL error in what
//! we sent, a permission, a missing table). The password is never logged.

use crate::config::Secret;
use crate::format::value::{ColumnType, Decimal, Value};
use futures_util::TryStreamExt;
use tiberius::{AuthMethod, Client, Config, Query, QueryItem, Row};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// What went wrong talking to SQL Server.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}{hint}", hint = if *.retryable { " (temporary: `ctferry run` tries again at its next cycle; after `once`, run it again)" } else { "" })]
pub struct DbError {
    pub what: String,
    pub message: String,
    /// SQL Server's error number, if it was a server error.
    pub number: Option<u32>,
    /// Whether trying again later can help.
    pub retryable: bool,
}

fn db_err(what: &str, e: tiberius::error::Error) -> DbError {
    use tiberius::error::Error as E;
    let (number, retryable) = match &e {
        E::Server(t) => {
            let n = t.code();
            // Deadlock, lock timeout, snapshot conflict, database unavailable.
            (
                Some(n),
                matches!(n, 1205 | 1222 | 3960 | 3961 | 40613 | 4060 | 40501 | 49918),
            )
        }
        E::Io { .. } | E::Tls(_) | E::Routing { .. } => (None, true),
        _ => (None, false),
    };
    DbError {
        what: what.to_string(),
        message: e.to_string(),
        number,
        retryable,
    }
}

/// A statement parameter.
#[derive(Debug, Clone)]
pub enum Param {
    Str(String),
    I64(i64),
    /// A bigint that may be NULL.
    OptI64(Option<i64>),
    /// A value of a column of this type (a row key in a key set).
    Value(Value, ColumnType),
}

/// A query with its parameters bound as `@P1, @P2, ...`.
fn bound<'a>(sql: &'a str, params: &[Param]) -> Query<'a> {
    let mut q = Query::new(sql);
    for p in params {
        match p {
            Param::Str(s) => q.bind(s.clone()),
            Param::I64(i) => q.bind(*i),
            Param::OptI64(i) => q.bind(*i),
            Param::Value(v, ty) => q.bind(column_data(v, &stage_type(ty))),
        }
    }
    q
}

/// An integer column of any integer (or bit) type, as i64.
pub fn int_at(row: &Row, idx: usize) -> Option<i64> {
    if let Ok(Some(v)) = row.try_get::<i64, _>(idx) {
        return Some(v);
    }
    if let Ok(Some(v)) = row.try_get::<i32, _>(idx) {
        return Some(v as i64);
    }
    if let Ok(Some(v)) = row.try_get::<i16, _>(idx) {
        return Some(v as i64);
    }
    if let Ok(Some(v)) = row.try_get::<u8, _>(idx) {
        return Some(v as i64);
    }
    if let Ok(Some(v)) = row.try_get::<bool, _>(idx) {
        return Some(v as i64);
    }
    None
}

/// A string column, or an integer column as text.
pub fn text_at(row: &Row, idx: usize) -> Option<String> {
    if let Ok(Some(v)) = row.try_get::<&str, _>(idx) {
        return Some(v.to_string());
    }
    int_at(row, idx).map(|v| v.to_string())
}

/// Every cell of a row in tiberius's own rendering (type and value), for
/// comparing two result sets exactly.
pub fn row_debug(row: &Row) -> String {
    row.cells()
        .map(|(_, d)| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// One open connection.
pub struct Db {
    rt: tokio::runtime::Runtime,
    client: Client<Compat<TcpStream>>,
}

enum LoginError {
    Routed { host: String, port: u16 },
    Db(DbError),
}

/// Connects and logs in once; a routing answer is returned, not followed.
async fn login(
    config: Config,
    plaintext: bool,
    integrated: bool,
) -> Result<Client<Compat<TcpStream>>, LoginError> {
    let addr = config.get_addr();
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        TcpStream::connect(addr.clone()),
    )
    .await
    .map_err(|_| {
        LoginError::Db(DbError {
            what: format!("connecting to {addr}"),
            message: "timed out after 30 s".into(),
            number: None,
            retryable: true,
        })
    })?
    .map_err(|e| {
        LoginError::Db(DbError {
            what: format!("connecting to {addr}"),
            message: e.to_string(),
            number: None,
            retryable: true,
        })
    })?;
    tcp.set_nodelay(true).ok();
    match Client::connect(config, tcp.compat_write()).await {
        Ok(c) => Ok(c),
        Err(tiberius::error::Error::Routing { host, port }) => Err(LoginError::Routed { host, port }),
        Err(tiberius::error::Error::Tls(m)) => {
            // tiberius's text goes on with advice for programs that use it
            // directly; the operator needs the cause and ctferry's setting.
            let cause = m.split(". To connect anyway").next().unwrap_or(&m);
            Err(LoginError::Db(DbError {
                what: format!("TLS with {addr}"),
                message: format!("{cause}; set TrustServerCertificateCA=<the CA or certificate file the DBA exports> in the connection string, and connect with the host name the certificate was issued for"),
                number: None,
                retryable: false,
            }))
        }
        Err(tiberius::error::Error::Io { message, .. }) if integrated => Err(LoginError::Db(DbError {
            what: format!("signing in to {addr} with Windows authentication (SSPI)"),
            message: format!("{message}: Windows could not sign in as the account ctferry runs as; run it as an account the SQL Server has a login for (CREATE LOGIN [DOMAIN\\account] FROM WINDOWS), or use user id=... with password_env"),
            number: None,
            retryable: false,
        })),
        Err(tiberius::error::Error::Io { message, .. }) if plaintext => Err(LoginError::Db(DbError {
            what: format!("logging in to {addr}"),
            message: format!("{message}: the server closed the connection when ctferry did not encrypt; it requires encryption (SQL Server's Force Encryption): use encrypt=true"),
            number: None,
            retryable: false,
        })),
        Err(e) => Err(LoginError::Db(db_err(&format!("logging in to {addr}"), e))),
    }
}

/// The `user id` of an ADO connection string.
fn ado_user(conn: &str) -> Option<String> {
    conn.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        if k == "user id" || k == "uid" || k == "user" {
            Some(v.trim().trim_matches('"').trim_matches('\'').to_string())
        } else {
            None
        }
    })
}

/// How the connection string signs in: the process's Windows identity
/// (`integrated security=true`, `trusted_connection=yes`; SSPI, on Windows
/// builds), or SQL Server authentication with `user id` and `password`.
pub fn authentication(connection: &str, password: &Secret) -> Result<AuthMethod, DbError> {
    if crate::config::connection::asks_integrated(connection) {
        #[cfg(windows)]
        return Ok(AuthMethod::Integrated);
        #[cfg(not(windows))]
        return Err(DbError {
            what: "the connection string".into(),
            message: "integrated security (Windows sign-in) works with ctferry.exe on Windows only; here give user id=... and password_env or password_file".into(),
            number: None,
            retryable: false,
        });
    }
    let user = ado_user(connection).ok_or_else(|| DbError {
        what: "the connection string".into(),
        message: "it has no `user id=...`: give one (SQL Server authentication, with password_env or password_file), or integrated security=true for Windows sign-in on Windows".into(),
        number: None,
        retryable: false,
    })?;
    Ok(AuthMethod::sql_server(user, password.expose()))
}

impl Db {
    /// Connects with an ADO-style connection string (without password) and
    /// the password from the configuration.
    pub fn connect(connection: &str, password: &Secret) -> Result<Db, DbError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError {
                what: "starting the database client".into(),
                message: e.to_string(),
                number: None,
                retryable: false,
            })?;
        let mut config = Config::from_ado_string(connection).map_err(|e| DbError {
            what: "the connection string".into(),
            message: e.to_string(),
            number: None,
            retryable: false,
        })?;
        config.authentication(authentication(connection, password)?);
        let plaintext = connection
            .to_ascii_lowercase()
            .contains("encrypt=danger_plaintext");
        let client = rt.block_on(async {
            match login(config.clone(), plaintext, crate::config::connection::asks_integrated(connection)).await {
                // Azure SQL's gateway (and a failover partner) sends the
                // client to another server: follow that once.
                Err(LoginError::Routed { host, port }) => {
                    config.host(&host);
                    config.port(port);
                    match login(config, plaintext, crate::config::connection::asks_integrated(connection)).await {
                        Err(LoginError::Routed { host, port }) => Err(DbError {
                            what: format!("logging in to {host}:{port}"),
                            message: "the server redirected the login a second time; ctferry follows one redirect".into(),
                            number: None,
                            retryable: false,
                        }),
                        Err(LoginError::Db(e)) => Err(e),
                        Ok(c) => Ok(c),
                    }
                }
                Err(LoginError::Db(e)) => Err(e),
                Ok(c) => Ok(c),
            }
        })?;
        let mut db = Db { rt, client };
        db.execute(super::sql::session_settings())?;
        Ok(db)
    }

    /// Runs a batch and discards any results.
    pub fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let client = &mut self.client;
        self.rt.block_on(async {
            let s = client
                .simple_query(sql)
                .await
                .map_err(|e| db_err("running a statement", e))?;
            s.into_results()
                .await
                .map_err(|e| db_err("running a statement", e))?;
            Ok(())
        })
    }

    /// Runs a parameterised query and calls `f` with each row as it arrives.
    pub fn query<F>(
        &mut self,
        what: &str,
        sql: &str,
        params: &[Param],
        mut f: F,
    ) -> Result<(), DbError>
    where
        F: FnMut(&Row) -> Result<(), DbError>,
    {
        let client = &mut self.client;
        self.rt.block_on(async {
            let q = bound(sql, params);
            let mut stream = q.query(client).await.map_err(|e| db_err(what, e))?;
            while let Some(item) = stream.try_next().await.map_err(|e| db_err(what, e))? {
                if let QueryItem::Row(row) = item {
                    f(&row)?;
                }
            }
            Ok(())
        })
    }

    /// Bulk-loads `rows` into `table` (tiberius `bulk_insert`: INSERT BULK and
    /// one bulk-load message). Values must be of the stage types
    /// (`stage_type`). Returns the rows loaded.
    pub fn bulk_load(
        &mut self,
        table: &str,
        types: &[ColumnType],
        rows: &[Vec<Value>],
    ) -> Result<u64, DbError> {
        let client = &mut self.client;
        self.rt.block_on(async {
            let what = format!("bulk-loading {} rows into {table}", rows.len());
            let mut req = client
                .bulk_insert(table)
                .await
                .map_err(|e| db_err(&what, e))?;
            for r in rows {
                let mut row = tiberius::TokenRow::new();
                for (v, t) in r.iter().zip(types) {
                    row.push(column_data(v, t));
                }
                req.send(row).await.map_err(|e| db_err(&what, e))?;
            }
            let res = req.finalize().await.map_err(|e| db_err(&what, e))?;
            Ok(res.total())
        })
    }

    /// Runs a query and collects its rows (for small catalog results).
    pub fn rows(&mut self, what: &str, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
        let mut out = Vec::new();
        let client = &mut self.client;
        self.rt.block_on(async {
            let q = bound(sql, params);
            let stream = q.query(client).await.map_err(|e| db_err(what, e))?;
            out = stream
                .into_first_result()
                .await
                .map_err(|e| db_err(what, e))?;
            Ok::<(), DbError>(())
        })?;
        Ok(out)
    }
}

/// The type a value is staged as for bulk loading: what tiberius sends for
/// it exactly (money as decimal, date-times with 7 fractional digits).
pub fn stage_type(ty: &ColumnType) -> ColumnType {
    use crate::format::value::Len;
    match ty {
        // tiberius declares nvarchar/nchar columns in INSERT BULK with their
        // length in bytes, as nvarchar(max) above 4000 bytes, while it sends
        // the values sized: SQL Server refuses that (4816, tiberius issue
        // #322). Such columns are staged as nvarchar(max) (declared and sent
        // as max) and cast back on insert.
        ColumnType::NVarChar(Len::N(n)) if *n > 2000 => ColumnType::NVarChar(Len::Max),
        ColumnType::NChar(n) if *n > 2000 => ColumnType::NVarChar(Len::Max),
        ColumnType::Money => ColumnType::Decimal { p: 19, s: 4 },
        ColumnType::SmallMoney => ColumnType::Decimal { p: 10, s: 4 },
        ColumnType::DateTime | ColumnType::SmallDateTime | ColumnType::DateTime2(_) => {
            ColumnType::DateTime2(7)
        }
        ColumnType::Time(_) => ColumnType::Time(7),
        ColumnType::DateTimeOffset(_) => ColumnType::DateTimeOffset(7),
        // xml is staged as its text and cast to xml on insert.
        ColumnType::Xml => ColumnType::NVarChar(Len::Max),
        other => *other,
    }
}

/// A value as tiberius sends it for a column of (stage) type `ty`.
fn column_data(v: &Value, ty: &ColumnType) -> tiberius::ColumnData<'static> {
    use tiberius::{ColumnData as C, IntoSql};
    use ColumnType as T;
    match v {
        Value::Null => match ty {
            T::Bit => C::Bit(None),
            T::TinyInt => C::U8(None),
            T::SmallInt => C::I16(None),
            T::Int => C::I32(None),
            T::BigInt => C::I64(None),
            T::Decimal { .. } | T::Numeric { .. } | T::Money | T::SmallMoney => C::Numeric(None),
            T::Float => C::F64(None),
            T::Real => C::F32(None),
            T::Char(_) | T::VarChar(_) | T::NChar(_) | T::NVarChar(_) | T::Xml => C::String(None),
            T::Binary(_) | T::VarBinary(_) => C::Binary(None),
            T::UniqueIdentifier => C::Guid(None),
            T::Date => C::Date(None),
            T::Time(_) => C::Time(None),
            T::DateTime | T::SmallDateTime | T::DateTime2(_) => C::DateTime2(None),
            T::DateTimeOffset(_) => C::DateTimeOffset(None),
        },
        Value::Bool(b) => C::Bit(Some(*b)),
        Value::Int(i) => match ty {
            T::TinyInt => C::U8(Some(*i as u8)),
            T::SmallInt => C::I16(Some(*i as i16)),
            T::Int => C::I32(Some(*i as i32)),
            _ => C::I64(Some(*i)),
        },
        Value::Decimal(d) => C::Numeric(Some(tiberius::numeric::Numeric::new_with_scale(
            d.mantissa, d.scale,
        ))),
        Value::Float(f) => C::F64(Some(*f)),
        Value::Real(f) => C::F32(Some(*f)),
        Value::Text(s) => C::String(Some(s.clone().into())),
        Value::Bytes(b) => C::Binary(Some(b.clone().into())),
        Value::Guid(g) => C::Guid(Some(tiberius::Uuid::from_bytes(*g))),
        Value::Date(d) => d.into_sql(),
        Value::Time(t) => t.into_sql(),
        Value::DateTime(d) => d.into_sql(),
        Value::DateTimeOffset(d, o) => {
            let off = chrono::FixedOffset::east_opt(*o as i32 * 60)
                .unwrap_or(chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
            match d.and_local_timezone(off) {
                chrono::LocalResult::Single(t) => t.into_sql(),
                _ => C::I32(None),
            }
        }
    }
}

fn conv_err(column: &str, ty: &ColumnType, e: impl std::fmt::Display) -> DbError {
    DbError {
        what: format!("reading column {column} ({ty})"),
        message: e.to_string(),
        number: None,
        retryable: false,
    }
}

/// Reads column `idx` of `row` as a value of type `ty`, exactly.
/// The values of `columns` in `row`, the first at index `first` (the
/// columns a published table's SELECT lists after what comes before them).
pub fn values(
    row: &Row,
    first: usize,
    columns: &[crate::format::schema::ColumnSchema],
) -> Result<Vec<Value>, DbError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| value(row, first + i, &c.name, &c.ty))
        .collect()
}

pub fn value(row: &Row, idx: usize, name: &str, ty: &ColumnType) -> Result<Value, DbError> {
    use ColumnType as T;
    let e = |err: tiberius::error::Error| conv_err(name, ty, err);
    Ok(match ty {
        T::Bit => row.try_get::<bool, _>(idx).map_err(e)?.map(Value::Bool),
        T::TinyInt => row
            .try_get::<u8, _>(idx)
            .map_err(e)?
            .map(|v| Value::Int(v as i64)),
        T::SmallInt => row
            .try_get::<i16, _>(idx)
            .map_err(e)?
            .map(|v| Value::Int(v as i64)),
        T::Int => row
            .try_get::<i32, _>(idx)
            .map_err(e)?
            .map(|v| Value::Int(v as i64)),
        T::BigInt => row.try_get::<i64, _>(idx).map_err(e)?.map(Value::Int),
        T::Decimal { .. } | T::Numeric { .. } | T::Money | T::SmallMoney => row
            .try_get::<tiberius::numeric::Numeric, _>(idx)
            .map_err(e)?
            .map(|n| {
                let want = ty.decimal_scale().unwrap_or(0);
                let mut m = n.value();
                let mut s = n.scale();
                // The server sends the column's scale; rescale defensively.
                while s < want {
                    m *= 10;
                    s += 1;
                }
                Value::Decimal(Decimal {
                    mantissa: m,
                    scale: s,
                })
            }),
        T::Float => row.try_get::<f64, _>(idx).map_err(e)?.map(Value::Float),
        T::Real => row.try_get::<f32, _>(idx).map_err(e)?.map(Value::Real),
        // xml is read as its text (`sql::source` selects it so).
        T::Char(_) | T::VarChar(_) | T::NChar(_) | T::NVarChar(_) | T::Xml => row
            .try_get::<&str, _>(idx)
            .map_err(e)?
            .map(|s| Value::Text(s.to_string())),
        T::Binary(_) | T::VarBinary(_) => row
            .try_get::<&[u8], _>(idx)
            .map_err(e)?
            .map(|b| Value::Bytes(b.to_vec())),
        T::UniqueIdentifier => row
            .try_get::<tiberius::Uuid, _>(idx)
            .map_err(e)?
            .map(|u| Value::Guid(*u.as_bytes())),
        T::Date => row
            .try_get::<chrono::NaiveDate, _>(idx)
            .map_err(e)?
            .map(Value::Date),
        T::Time(_) => row
            .try_get::<chrono::NaiveTime, _>(idx)
            .map_err(e)?
            .map(Value::Time),
        T::DateTime | T::SmallDateTime | T::DateTime2(_) => row
            .try_get::<chrono::NaiveDateTime, _>(idx)
            .map_err(e)?
            .map(Value::DateTime),
        T::DateTimeOffset(_) => row
            .try_get::<chrono::DateTime<chrono::FixedOffset>, _>(idx)
            .map_err(e)?
            .map(|d| {
                Value::DateTimeOffset(d.naive_local(), (d.offset().local_minus_utc() / 60) as i16)
            }),
    }
    .unwrap_or(Value::Null))
}

/// The column type from sys.columns/sys.types (name, max_length in bytes,
/// precision, scale); None for types ctferry does not carry.
/// Whether ctferry reads a source column of this SQL Server type with a
/// CAST to the type it carries it as (see `column_type`).
pub fn is_legacy_type(type_name: &str) -> bool {
    matches!(
        type_name.to_ascii_lowercase().as_str(),
        "text" | "ntext" | "image" | "timestamp" | "xml"
    )
}

pub fn column_type(
    type_name: &str,
    max_length: i16,
    precision: u8,
    scale: u8,
) -> Option<ColumnType> {
    use crate::format::value::Len;
    let len = |bytes: i16, unicode: bool| {
        if bytes == -1 {
            Len::Max
        } else {
            Len::N(if unicode {
                (bytes / 2) as u16
            } else {
                bytes as u16
            })
        }
    };
    Some(match type_name.to_ascii_lowercase().as_str() {
        "bit" => ColumnType::Bit,
        "tinyint" => ColumnType::TinyInt,
        "smallint" => ColumnType::SmallInt,
        "int" => ColumnType::Int,
        "bigint" => ColumnType::BigInt,
        "decimal" => ColumnType::Decimal {
            p: precision,
            s: scale,
        },
        "numeric" => ColumnType::Numeric {
            p: precision,
            s: scale,
        },
        "money" => ColumnType::Money,
        "smallmoney" => ColumnType::SmallMoney,
        "float" => ColumnType::Float,
        "real" => ColumnType::Real,
        "char" => ColumnType::Char(max_length as u16),
        "varchar" => ColumnType::VarChar(len(max_length, false)),
        "nchar" => ColumnType::NChar((max_length / 2) as u16),
        "nvarchar" | "sysname" => ColumnType::NVarChar(len(max_length, true)),
        "binary" => ColumnType::Binary(max_length as u16),
        // A timestamp (rowversion) column's value is set by its own server:
        // the copy keeps the source row's version as the 8 bytes it is.
        "timestamp" => ColumnType::Binary(8),
        // The legacy large types travel as the max types that replace them
        // (read with a CAST, `is_legacy_type`).
        "text" => ColumnType::VarChar(Len::Max),
        "ntext" => ColumnType::NVarChar(Len::Max),
        "image" => ColumnType::VarBinary(Len::Max),
        // xml travels as its text (SQL Server's serialization of it) and is
        // xml again in the copy.
        "xml" => ColumnType::Xml,
        "varbinary" => ColumnType::VarBinary(len(max_length, false)),
        "uniqueidentifier" => ColumnType::UniqueIdentifier,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time(scale),
        "datetime" => ColumnType::DateTime,
        "smalldatetime" => ColumnType::SmallDateTime,
        "datetime2" => ColumnType::DateTime2(scale),
        "datetimeoffset" => ColumnType::DateTimeOffset(scale),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_from_ado_string() {
        assert_eq!(
            ado_user("server=tcp:h,1433;database=PMO;user id=ctferry;encrypt=true").as_deref(),
            Some("ctferry")
        );
        assert_eq!(ado_user("Server=h;UID=x"), Some("x".into()));
        assert_eq!(ado_user("server=h"), None);
        assert_eq!(
            column_type("nvarchar", 40, 0, 0).unwrap().to_string(),
            "nvarchar(20)"
        );
        assert_eq!(
            column_type("varbinary", -1, 0, 0).unwrap().to_string(),
            "varbinary(max)"
        );
        assert_eq!(
            column_type("datetime2", 8, 27, 7).unwrap().to_string(),
            "datetime2(7)"
        );
        // The legacy and special types travel as the types that replace them.
        for (legacy, carried) in [
            ("xml", "xml"),
            ("text", "varchar(max)"),
            ("ntext", "nvarchar(max)"),
            ("image", "varbinary(max)"),
            ("timestamp", "binary(8)"),
        ] {
            assert_eq!(column_type(legacy, 16, 0, 0).unwrap().to_string(), carried);
            assert!(is_legacy_type(legacy));
        }
        assert!(!is_legacy_type("nvarchar"));
        assert!(column_type("sql_variant", 8016, 0, 0).is_none());
        assert!(column_type("geography", -1, 0, 0).is_none());
    }
}
