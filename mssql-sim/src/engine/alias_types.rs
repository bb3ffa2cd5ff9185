//! Alias types (`CREATE TYPE dbo.Personnummer FROM char(12) NOT NULL`), as
//! SQL Server documents them ("CREATE TYPE", "sys.types"): a name in a
//! schema for a system type with its length, precision and scale, and a
//! default nullability for the columns declared with it. sys.types shows
//! each with `is_user_defined = 1`, the base type's `system_type_id` and
//! its own `user_type_id` (from 257); sys.columns gives a column declared
//! with it that `user_type_id`. A column stores and sends the base type.

use super::catalog::{schema_id, sqlite_err};
use crate::error::SqlError;
use crate::types::SqlType;
use rusqlite::{params, Connection, OptionalExtension};

/// The first user_type_id SQL Server gives a user-defined type.
const FIRST_USER_TYPE_ID: i64 = 257;

/// An alias type as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasType {
    pub user_type_id: i64,
    pub schema: String,
    pub name: String,
    pub base: SqlType,
    pub nullable: bool,
}

fn display(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// CREATE TYPE schema.name FROM base [NULL | NOT NULL].
pub fn create(
    conn: &Connection,
    schema: &str,
    name: &str,
    base: SqlType,
    nullable: bool,
) -> Result<(), SqlError> {
    let Some(sid) = schema_id(conn, schema).map_err(sqlite_err)? else {
        return Err(SqlError::new(
            2760,
            16,
            format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."),
        ));
    };
    if find(conn, Some(schema), name)?.is_some() || SqlType::parse(name).is_ok() {
        return Err(SqlError::new(
            219,
            16,
            format!(
                "The type '{}' already exists, or you do not have permission to create it.",
                display(schema, name)
            ),
        ));
    }
    let (max_length, precision, scale) = base.catalog_sizes();
    conn.execute(
        "INSERT INTO __sim_alias_types VALUES ((SELECT coalesce(max(user_type_id) + 1, ?1) FROM __sim_alias_types),
             ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            FIRST_USER_TYPE_ID,
            sid,
            name,
            base.to_string(),
            base.system_type_id(),
            max_length,
            precision,
            scale,
            nullable
        ],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// DROP TYPE: refused (3732) while a column is declared with it.
pub fn drop(
    conn: &Connection,
    schema: Option<&str>,
    name: &str,
    if_exists: bool,
) -> Result<(), SqlError> {
    let Some(t) = find(conn, schema, name)? else {
        if if_exists {
            return Ok(());
        }
        return Err(SqlError::new(
            218,
            16,
            format!("Cannot find the type '{name}', because it does not exist or you do not have permission."),
        ));
    };
    let user: Option<String> = conn
        .query_row(
            "SELECT o.name FROM __sim_columns c JOIN __sim_objects o ON o.object_id = c.object_id
             WHERE c.user_type_id = ?1 ORDER BY o.name LIMIT 1",
            [t.user_type_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    if let Some(table) = user {
        return Err(SqlError::new(
            3732,
            16,
            format!(
                "Cannot drop type '{}' because it is being referenced by object '{table}'. There may be other objects that reference this type.",
                display(&t.schema, &t.name)
            ),
        ));
    }
    conn.execute(
        "DELETE FROM __sim_alias_types WHERE user_type_id = ?1",
        [t.user_type_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// The alias type `name` in `schema` (dbo when None).
pub fn find(
    conn: &Connection,
    schema: Option<&str>,
    name: &str,
) -> Result<Option<AliasType>, SqlError> {
    let schema = schema.unwrap_or("dbo");
    let row: Option<(i64, String, String, String, bool)> = conn
        .query_row(
            "SELECT a.user_type_id, s.name, a.name, a.base, a.is_nullable FROM __sim_alias_types a
             JOIN __sim_schemas s ON s.schema_id = a.schema_id WHERE s.name = ?1 AND a.name = ?2",
            [schema, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(sqlite_err)?;
    row.map(|(id, schema, name, base, nullable)| {
        Ok(AliasType {
            user_type_id: id,
            schema,
            name,
            base: SqlType::parse(&base)?,
            nullable,
        })
    })
    .transpose()
}

/// A type as written in DDL, DECLARE or CAST: a system type, or else an
/// alias type (`Personnummer`, `dbo.Personnummer`, `[dbo].[Personnummer]`),
/// or SQL Server's 2715 when it is neither.
pub fn resolve(conn: &Connection, text: &str) -> Result<(SqlType, Option<AliasType>), SqlError> {
    match SqlType::parse(text) {
        Ok(t) => Ok((t, None)),
        Err(e) if e.number == 2715 => {
            let unquote = |s: &str| s.trim().trim_matches(['[', ']', '"']).to_string();
            let (schema, name) = match text.rsplit_once('.') {
                Some((s, n)) => (Some(unquote(s)), unquote(n)),
                None => (None, unquote(text)),
            };
            match find(conn, schema.as_deref(), &name)? {
                Some(a) => Ok((a.base, Some(a))),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
