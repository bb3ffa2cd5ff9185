//! SQLite user functions and the collation that give SQLite SQL Server's
//! behaviour where the translated SQL needs it.
//!
//! - one collation per SQL Server collation the simulator has, named as
//!   SQL Server names it (see `crate::collation`), and `SQLSRV` (the
//!   default, SQL_Latin1_General_CP1_CI_AS) for the simulator's own
//!   catalog tables.
//! - `__sim_conv(v, type, table, column)`: convert a value for storage in a
//!   column, raising SQL Server's error on failure.
//! - `__sim_cast(v, type)`: CAST/CONVERT.
//! - the clock and NEWID.
//!
//! Errors leave these functions encoded (see `SqlError::encode`) so that the
//! statement fails with the right SQL Server number.

use crate::collation::{Collation, DEFAULT};
use crate::error::SqlError;
use crate::types::{convert, from_sqlite_untyped, to_storage, SqlType, Target, Value};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::Value as SqliteValue;
use rusqlite::Connection;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;

fn user_err(e: SqlError) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(e.encode().into())
}

fn type_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<SqlType> {
    let t: String = ctx.get(i)?;
    SqlType::parse(&t).map_err(user_err)
}

/// The simulator's clock: real time plus an offset that tests may move
/// (see `SimClock`).
#[derive(Clone, Default)]
pub struct SimClock {
    offset_seconds: Arc<AtomicI64>,
}

impl SimClock {
    pub fn now_utc(&self) -> chrono::NaiveDateTime {
        chrono::Utc::now().naive_utc()
            + chrono::Duration::seconds(self.offset_seconds.load(AtomicOrdering::Relaxed))
    }
    pub fn advance(&self, seconds: i64) {
        self.offset_seconds
            .fetch_add(seconds, AtomicOrdering::Relaxed);
    }
}

/// The database's rowversion counter as one connection's statements draw
/// from it: loaded from the database (`@@DBTS`) when a write statement
/// starts and written back when it ends (`Session::dml`). Values that a
/// rolled-back transaction drew are not given again by the same session
/// (as in SQL Server); another session may give them again (only rows that
/// were rolled back ever had them).
pub type RowVersionCounter = Arc<AtomicI64>;

/// `__sim_next_rowversion()`: the next rowversion, 8 bytes big-endian (the
/// SQLite default of every timestamp column, and what UPDATE sets it to).
/// `__sim_rowversion_bytes(n)`: a counter value as those 8 bytes.
pub fn register_rowversion(conn: &Connection, counter: RowVersionCounter) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "__sim_next_rowversion",
        0,
        FunctionFlags::SQLITE_UTF8,
        move |_| {
            let v = counter.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            Ok(v.to_be_bytes().to_vec())
        },
    )?;
    conn.create_scalar_function(
        "__sim_rowversion_bytes",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let v: Option<i64> = ctx.get(0)?;
            Ok(v.map(|v| v.to_be_bytes().to_vec()))
        },
    )
}

/// Registers the collation and functions on a new connection.
pub fn register(conn: &Connection, clock: SimClock) -> rusqlite::Result<()> {
    conn.create_collation("SQLSRV", |a, b| DEFAULT.compare(a, b))?;
    for c in Collation::ALL {
        conn.create_collation(c.sqlite_name(), move |a, b| c.compare(a, b))?;
    }
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__sim_conv", 4, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let table: String = ctx.get(2)?;
        let column: String = ctx.get(3)?;
        let v = from_sqlite_untyped(ctx.get_raw(0));
        let target = Target {
            table: &table,
            column: &column,
        };
        let c = convert(&v, &ty, Some(&target)).map_err(user_err)?;
        Ok(to_storage(&c, &ty))
    })?;
    conn.create_scalar_function("__sim_cast", 2, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let v = from_sqlite_untyped(ctx.get_raw(0));
        let c = convert(&v, &ty, None).map_err(user_err)?;
        Ok(to_storage(&c, &ty))
    })?;
    // LEN: characters, trailing spaces excluded.
    conn.create_scalar_function("__sim_len", 1, det, |ctx| {
        Ok(match from_sqlite_untyped(ctx.get_raw(0)) {
            Value::Null => SqliteValue::Null,
            Value::Str(s) => SqliteValue::Integer(s.trim_end_matches(' ').chars().count() as i64),
            Value::Bytes(b) => SqliteValue::Integer(b.len() as i64),
            Value::Int(i) => SqliteValue::Integer(i.to_string().len() as i64),
            Value::Float(f) => SqliteValue::Integer(f.to_string().len() as i64),
            other => SqliteValue::Integer(format!("{other:?}").len() as i64),
        })
    })?;
    // DATALENGTH: bytes as SQL Server stores the value; the second argument
    // is the static type's family, or a fixed type's size.
    conn.create_scalar_function("__sim_datalength", 2, det, |ctx| {
        let family: String = ctx.get(1)?;
        let v = from_sqlite_untyped(ctx.get_raw(0));
        if matches!(v, Value::Null) {
            return Ok(None);
        }
        if let Ok(size) = family.parse::<i64>() {
            return Ok(Some(size));
        }
        Ok(match (v, family.as_str()) {
            // Single-byte code pages: a character the page lacks was
            // stored as '?', so one byte per character.
            (Value::Str(s), "varchar") => Some(s.chars().count() as i64),
            (Value::Str(s), "nvarchar") => Some(2 * s.encode_utf16().count() as i64),
            (Value::Bytes(b), _) => Some(b.len() as i64),
            (other, f) => {
                return Err(user_err(SqlError::unsupported(format!(
                    "DATALENGTH of {other:?} as {f}"
                ))))
            }
        })
    })?;
    // QUOTENAME(s, q): NULL above 128 characters or for a delimiter SQL
    // Server does not take; the closing delimiter doubled inside.
    // CAST/CONVERT of a date/time or binary value to text (crate::styles).
    conn.create_scalar_function("__sim_styled_text", 3, det, |ctx| {
        let ty = type_arg(ctx, 1)?;
        let style: i64 = ctx.get(2)?;
        let v = crate::types::from_storage(ctx.get_raw(0), &ty).map_err(user_err)?;
        if matches!(v, Value::Null) {
            return Ok(None);
        }
        crate::styles::text(&v, &ty, style as u32)
            .map(Some)
            .map_err(user_err)
    })?;
    // CONVERT(xml, s, 1): parsed keeping whitespace (crate::xml).
    conn.create_scalar_function("__sim_xml_preserve", 1, det, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        s.map(|s| crate::xml::normalize(&s, true))
            .transpose()
            .map_err(user_err)
    })?;
    // CONVERT(binary, string, 1 | 2): hex digits to bytes.
    conn.create_scalar_function("__sim_hex_bytes", 2, det, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        let style: i64 = ctx.get(1)?;
        let Some(s) = s else { return Ok(None) };
        crate::styles::hex_bytes(s.trim_end(), style as u32)
            .map(Some)
            .ok_or_else(|| {
                user_err(SqlError::new(
                    8114,
                    16,
                    "Error converting data type varchar to varbinary.",
                ))
            })
    })?;
    // value LIKE pattern [ESCAPE e] under a collation (see Collation::like).
    conn.create_scalar_function("__sim_like", 4, det, |ctx| {
        fn text(v: rusqlite::types::ValueRef<'_>) -> Option<String> {
            use rusqlite::types::ValueRef as V;
            match v {
                V::Null => None,
                V::Integer(i) => Some(i.to_string()),
                V::Real(f) => Some(f.to_string()),
                V::Text(t) | V::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
            }
        }
        let (Some(value), Some(pattern)) = (text(ctx.get_raw(0)), text(ctx.get_raw(1))) else {
            return Ok(None);
        };
        let escape = match text(ctx.get_raw(2)) {
            None => None,
            Some(e) if e.chars().count() == 1 => e.chars().next(),
            Some(e) => {
                return Err(user_err(SqlError::new(
                    506,
                    16,
                    format!(
                        "The invalid escape character \"{e}\" was specified in a LIKE predicate."
                    ),
                )))
            }
        };
        let name: String = ctx.get(3)?;
        let c = Collation::parse(&name).map_err(user_err)?;
        Ok(Some(c.like(&value, &pattern, escape)))
    })?;
    conn.create_scalar_function("__sim_quotename", 2, det, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        let q: Option<String> = ctx.get(1)?;
        let (Some(s), Some(q)) = (s, q) else {
            return Ok(None);
        };
        if s.chars().count() > 128 || q.chars().count() != 1 {
            return Ok(None);
        }
        let (open, close) = match q.chars().next().unwrap() {
            '[' | ']' => ('[', ']'),
            '(' | ')' => ('(', ')'),
            '<' | '>' => ('<', '>'),
            '{' | '}' => ('{', '}'),
            c @ ('\'' | '"' | '`') => (c, c),
            _ => return Ok(None),
        };
        let doubled = s.replace(close, &format!("{close}{close}"));
        Ok(Some(format!("{open}{doubled}{close}")))
    })?;
    // STRING_AGG's result, typed; over 8000 bytes for a non-max input: 9829.
    conn.create_scalar_function("__sim_string_agg", 2, det, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        let ty = type_arg(ctx, 1)?;
        let Some(s) = s else { return Ok(None) };
        let bytes = if ty.is_unicode() {
            2 * s.encode_utf16().count()
        } else {
            s.chars().count()
        };
        if !ty.is_max() && bytes > 8000 {
            return Err(user_err(SqlError::new(
                9829,
                16,
                "STRING_AGG aggregation result exceeded the limit of 8000 bytes. Use LOB types to avoid result truncation.",
            )));
        }
        Ok(Some(s))
    })?;
    // HASHBYTES(alg, x, family): NULL for NULL or an algorithm SQL Server
    // does not name; MD2 and MD4 (deprecated) are not simulated.
    conn.create_scalar_function("__sim_hashbytes", 3, det, |ctx| {
        use sha2::Digest;
        let alg: Option<String> = ctx.get(0)?;
        let family: String = ctx.get(2)?;
        let v = from_sqlite_untyped(ctx.get_raw(1));
        let bytes: Vec<u8> = match (v, family.as_str()) {
            (Value::Null, _) => return Ok(None),
            (Value::Str(s), "nvarchar") => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            (Value::Str(s), "varchar") => encoding_rs::WINDOWS_1252.encode(&s).0.into_owned(),
            (Value::Bytes(b), _) => b,
            (Value::Str(s), _) => s.into_bytes(),
            (Value::Int(i), n) => {
                let size: usize = n.parse().unwrap_or(8);
                i.to_be_bytes()[8 - size.min(8)..].to_vec()
            }
            (other, _) => {
                return Err(user_err(SqlError::unsupported(format!(
                    "HASHBYTES of {other:?}"
                ))))
            }
        };
        let Some(alg) = alg else { return Ok(None) };
        Ok(match alg.to_ascii_uppercase().as_str() {
            "MD5" => Some(md5::Md5::digest(&bytes).to_vec()),
            "SHA" | "SHA1" => Some(sha1::Sha1::digest(&bytes).to_vec()),
            "SHA2_256" => Some(sha2::Sha256::digest(&bytes).to_vec()),
            "SHA2_512" => Some(sha2::Sha512::digest(&bytes).to_vec()),
            "MD2" | "MD4" => {
                return Err(user_err(SqlError::unsupported(format!(
                    "HASHBYTES('{alg}')"
                ))))
            }
            _ => None,
        })
    })?;
    let nondet = FunctionFlags::SQLITE_UTF8;
    let c1 = clock.clone();
    conn.create_scalar_function("__sim_sysutcdatetime", 0, nondet, move |_| {
        let v = Value::DateTime(c1.now_utc());
        Ok(to_storage(&v, &SqlType::DateTime2(7)))
    })?;
    let c2 = clock.clone();
    conn.create_scalar_function("__sim_sysdatetime", 0, nondet, move |_| {
        // The simulator's local time zone is UTC.
        let v = Value::DateTime(c2.now_utc());
        Ok(to_storage(&v, &SqlType::DateTime2(7)))
    })?;
    let c3 = clock.clone();
    conn.create_scalar_function("__sim_getdate", 0, nondet, move |_| {
        let v =
            convert(&Value::DateTime(c3.now_utc()), &SqlType::DateTime, None).map_err(user_err)?;
        Ok(to_storage(&v, &SqlType::DateTime))
    })?;
    let c4 = clock;
    conn.create_scalar_function("__sim_sysdatetimeoffset", 0, nondet, move |_| {
        let v = Value::DateTimeOffset(c4.now_utc(), 0);
        Ok(to_storage(&v, &SqlType::DateTimeOffset(7)))
    })?;
    conn.create_scalar_function("__sim_newid", 0, nondet, |_| {
        let v = Value::Guid(uuid::Uuid::new_v4());
        Ok(to_storage(&v, &SqlType::UniqueIdentifier))
    })?;
    // __sim_name_part('[dbo].[T]', 1) = 'dbo', ..., 2) = 'T': a name given at
    // run time to OBJECT_ID, split as SQL Server reads it (schema defaults to dbo).
    conn.create_scalar_function("__sim_name_part", 2, det, |ctx| {
        let text: Option<String> = ctx.get(0)?;
        let part: i64 = ctx.get(1)?;
        let Some(text) = text else { return Ok(None) };
        let Ok(name) = super::translate::parse_object_name(&text) else {
            return Ok(None);
        };
        let Ok((_, schema, object)) = super::translate::name_parts(&name) else {
            return Ok(None);
        };
        Ok(Some(if part == 1 {
            schema.unwrap_or_else(|| "dbo".to_string())
        } else {
            object
        }))
    })?;
    // T-SQL CHARINDEX(needle, haystack): 1-based, 0 when absent, case-insensitive.
    conn.create_scalar_function("__sim_charindex", 2, det, |ctx| {
        let n = from_sqlite_untyped(ctx.get_raw(0));
        let h = from_sqlite_untyped(ctx.get_raw(1));
        Ok(match (n, h) {
            (Value::Str(n), Value::Str(h)) => {
                let hl: Vec<char> = h.chars().flat_map(char::to_lowercase).collect();
                let nl: Vec<char> = n.chars().flat_map(char::to_lowercase).collect();
                if nl.is_empty() {
                    SqliteValue::Integer(0)
                } else {
                    let pos = hl.windows(nl.len()).position(|w| w == nl.as_slice());
                    SqliteValue::Integer(pos.map(|p| p as i64 + 1).unwrap_or(0))
                }
            }
            _ => SqliteValue::Null,
        })
    })?;
    conn.create_scalar_function("__sim_floor", 1, det, |ctx| {
        Ok(match from_sqlite_untyped(ctx.get_raw(0)) {
            Value::Int(i) => SqliteValue::Integer(i),
            Value::Float(f) => SqliteValue::Real(f.floor()),
            Value::Null => SqliteValue::Null,
            _ => {
                return Err(user_err(SqlError::new(
                    8117,
                    16,
                    "Operand data type is invalid for floor function.",
                )))
            }
        })
    })?;
    conn.create_scalar_function("__sim_ceiling", 1, det, |ctx| {
        Ok(match from_sqlite_untyped(ctx.get_raw(0)) {
            Value::Int(i) => SqliteValue::Integer(i),
            Value::Float(f) => SqliteValue::Real(f.ceil()),
            Value::Null => SqliteValue::Null,
            _ => {
                return Err(user_err(SqlError::new(
                    8117,
                    16,
                    "Operand data type is invalid for ceiling function.",
                )))
            }
        })
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collation_is_registered_under_its_sql_server_name() {
        let c = Connection::open_in_memory().unwrap();
        register(&c, SimClock::default()).unwrap();
        let eq = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(
            eq("SELECT 'ABC' = 'abc  ' COLLATE Finnish_Swedish_CI_AS"),
            1
        );
        assert_eq!(
            eq("SELECT 'ABC' = 'abc' COLLATE \"Finnish_Swedish_CS_AS\""),
            0
        );
        assert_eq!(eq("SELECT 'å' > 'z' COLLATE Finnish_Swedish_CI_AS"), 1);
        assert_eq!(eq("SELECT 'å' > 'z' COLLATE Latin1_General_CI_AS"), 0);
    }

    #[test]
    fn conv_raises_sql_errors() {
        let c = Connection::open_in_memory().unwrap();
        register(&c, SimClock::default()).unwrap();
        let e = c
            .query_row(
                "SELECT __sim_conv('abcdef', 'nvarchar(3)', 'dbo.t', 'c')",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap_err();
        let se = SqlError::decode(&e.to_string()).unwrap();
        assert_eq!(se.number, 2628);
        let v: String = c
            .query_row("SELECT __sim_cast('2024-01-02', 'datetime2(0)')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, "2024-01-02 00:00:00.0000000");
        let n: i64 = c
            .query_row("SELECT 'ABC' = 'abc  ' COLLATE SQLSRV", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
