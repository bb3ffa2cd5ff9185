//! Name resolution for one statement: a table, temp table or catalog view
//! named as T-SQL allows (`db.schema.name`, brackets, any case), resolved
//! against the catalog, or SQL Server's error 208.

use crate::engine::catalog::{self, TableDef};
use crate::engine::security::{self, Caller};
use crate::error::SqlError;
use rusqlite::Connection;
use sqlparser::ast::{ObjectName, ObjectNamePart};
use std::collections::HashMap;

/// Resolves object names for one statement.
pub struct Resolver<'a> {
    pub conn: &'a Connection,
    pub temp: &'a HashMap<String, TableDef>,
    pub database: &'a str,
    /// The data folder (sys.databases lists every database in it).
    pub data_dir: &'a std::path::Path,
    /// Who runs the statement, and what it may do (engine::security).
    pub caller: &'a Caller,
}

/// A resolved table reference.
#[derive(Debug, Clone)]
pub enum Resolved {
    Table(TableDef),
    /// A catalog view, by its SQLite name.
    View(String),
}

impl Resolved {
    pub fn sqlite_name(&self) -> String {
        match self {
            Resolved::Table(t) => t.sqlite_name(),
            Resolved::View(v) => v.clone(),
        }
    }
}

pub const CATALOG_VIEWS: &[&str] = &[
    "sys.types",
    "sys.schemas",
    "sys.objects",
    "sys.tables",
    "sys.columns",
    "sys.computed_columns",
    "sys.indexes",
    "sys.index_columns",
    "sys.key_constraints",
    "sys.foreign_keys",
    "sys.foreign_key_columns",
    "sys.change_tracking_tables",
    "sys.databases",
    "sys.change_tracking_databases",
    "sys.database_principals",
    "sys.database_role_members",
    "sys.database_permissions",
    "INFORMATION_SCHEMA.TABLES",
    "INFORMATION_SCHEMA.COLUMNS",
    "INFORMATION_SCHEMA.TABLE_CONSTRAINTS",
];

/// The parts of a multi-part name: (database, schema, object).
pub fn name_parts(name: &ObjectName) -> Result<(Option<String>, Option<String>, String), SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
            _ => Err(SqlError::unsupported(format!("the object name {name}"))),
        })
        .collect::<Result<_, _>>()?;
    match parts.len() {
        1 => Ok((None, None, parts[0].clone())),
        2 => Ok((None, Some(parts[0].clone()), parts[1].clone())),
        3 => Ok((
            Some(parts[0].clone()),
            if parts[1].is_empty() {
                None
            } else {
                Some(parts[1].clone())
            },
            parts[2].clone(),
        )),
        4 => Err(SqlError::unsupported(format!(
            "four-part (linked server) names such as {name}"
        ))),
        _ => Err(SqlError::syntax_near(&name.to_string())),
    }
}

impl<'a> Resolver<'a> {
    /// Resolves a table or catalog view name.
    pub fn resolve(&self, name: &ObjectName) -> Result<Resolved, SqlError> {
        let (db, schema, object) = name_parts(name)?;
        if let Some(db) = &db {
            if !db.eq_ignore_ascii_case(self.database) && !db.eq_ignore_ascii_case("tempdb") {
                return Err(SqlError::unsupported(format!(
                    "cross-database references ({name})"
                )));
            }
        }
        if object.starts_with('#') || object.starts_with('@') {
            return self
                .temp
                .get(&object.to_lowercase())
                .cloned()
                .map(Resolved::Table)
                .ok_or_else(|| {
                    if object.starts_with('@') {
                        SqlError::new(
                            1087,
                            15,
                            format!("Must declare the table variable \"{object}\"."),
                        )
                    } else {
                        SqlError::invalid_object(&object)
                    }
                });
        }
        let schema = schema.unwrap_or_else(|| "dbo".to_string());
        if schema.eq_ignore_ascii_case("sys") || schema.eq_ignore_ascii_case("INFORMATION_SCHEMA") {
            let full = format!("{schema}.{object}");
            if full.eq_ignore_ascii_case("sys.databases") {
                catalog::refresh_databases(self.conn, self.data_dir, self.database)?;
            }
            if full.eq_ignore_ascii_case("sys.types") {
                catalog::refresh_types(self.conn)?;
            }
            return CATALOG_VIEWS
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&full))
                .map(|v| Resolved::View(v.to_string()))
                .ok_or_else(|| {
                    if schema.eq_ignore_ascii_case("sys") {
                        SqlError::unsupported(format!("the catalog view {full}"))
                    } else {
                        SqlError::invalid_object(&full)
                    }
                });
        }
        match catalog::load_table(self.conn, &schema, &object).map_err(catalog::sqlite_err)? {
            Some(t) => Ok(Resolved::Table(t)),
            None => Err(SqlError::invalid_object(
                &name.to_string().replace(['[', ']'], ""),
            )),
        }
    }

    /// Refuses with 229 unless the caller holds `perm` (SELECT, INSERT,
    /// UPDATE, DELETE, VIEW CHANGE TRACKING) on the table; temp tables and
    /// table variables are the session's own.
    pub fn require(&self, t: &TableDef, perm: &str) -> Result<(), SqlError> {
        if t.temp || self.caller.may(t.object_id, perm) {
            Ok(())
        } else {
            Err(security::denied(perm, &t.name, &t.schema, self.database))
        }
    }

    pub fn resolve_table(&self, name: &ObjectName) -> Result<TableDef, SqlError> {
        match self.resolve(name)? {
            Resolved::Table(t) => Ok(t),
            Resolved::View(v) => Err(SqlError::new(4406, 16, format!("Update or insert of view or function '{v}' failed because it contains a derived or constant field."))),
        }
    }
}
