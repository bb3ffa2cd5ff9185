//! The catalog: what SQL Server knows about tables, columns, keys and
//! schemas, kept in `__sim_*` tables inside each database's SQLite file, and
//! exposed through views named as SQL Server's catalog views (`sys.tables`,
//! `sys.columns`, ..., `INFORMATION_SCHEMA.COLUMNS`).
//!
//! SQLite stores a table `dbo.Besok` under the single name `"dbo.Besok"`;
//! names are resolved case-insensitively here, once, and the translator
//! always emits the stored spelling.

use crate::collation::Collation;
use crate::error::SqlError;
use crate::types::{Len, SqlType};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// The first object_id handed out, so ids look like SQL Server's.
const FIRST_OBJECT_ID: i64 = 245_575_913;

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub column_id: i32,
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// A string column's collation (None for other types).
    pub collation: Option<Collation>,
    /// The alias type the column was declared with (engine::alias_types).
    pub user_type_id: Option<i64>,
    /// A computed column's definition: `(T-SQL as written, PERSISTED)`.
    pub computed: Option<(String, bool)>,
}

impl ColumnDef {
    /// The SQLite column declaration after the name: affinity, then the
    /// collation of a string column.
    pub fn sqlite_type(&self) -> String {
        match self.collation {
            Some(c) => format!(
                "{} COLLATE {}",
                self.ty.sqlite_affinity(),
                q(c.sqlite_name())
            ),
            None => self.ty.sqlite_affinity().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKeyDef {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// 0 NO ACTION, 1 CASCADE, 2 SET NULL, 3 SET DEFAULT.
    pub on_delete: i32,
    pub on_update: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub object_id: i64,
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub pk_name: Option<String>,
    pub pk: Vec<String>,
    pub foreign_keys: Vec<ForeignKeyDef>,
    /// UNIQUE constraints: name and columns (2627 names them).
    pub uniques: Vec<(String, Vec<String>)>,
    pub temp: bool,
}

impl TableDef {
    /// The name SQLite knows the table by.
    pub fn sqlite_name(&self) -> String {
        if self.temp {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }

    /// The name SQL Server prints in messages (`dbo.T`).
    pub fn display_name(&self) -> String {
        if self.temp {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Quotes an identifier for SQLite.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the catalog tables in a new database file.
pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS __sim_schemas(schema_id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE SQLSRV UNIQUE);
         CREATE TABLE IF NOT EXISTS __sim_objects(object_id INTEGER PRIMARY KEY, schema_id INTEGER NOT NULL, name TEXT NOT NULL COLLATE SQLSRV,
             type TEXT NOT NULL, parent_object_id INTEGER NOT NULL DEFAULT 0, create_date TEXT NOT NULL, modify_date TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS __sim_objects_name ON __sim_objects(name);
         CREATE TABLE IF NOT EXISTS __sim_columns(object_id INTEGER NOT NULL, column_id INTEGER NOT NULL, name TEXT NOT NULL COLLATE SQLSRV,
             type TEXT NOT NULL, system_type_id INTEGER NOT NULL, max_length INTEGER NOT NULL, precision INTEGER NOT NULL, scale INTEGER NOT NULL,
             is_nullable INTEGER NOT NULL, is_identity INTEGER NOT NULL, collation_name TEXT, default_sql TEXT, PRIMARY KEY(object_id, column_id));
         CREATE TABLE IF NOT EXISTS __sim_alias_types(user_type_id INTEGER PRIMARY KEY, schema_id INTEGER NOT NULL,
             name TEXT NOT NULL COLLATE SQLSRV, base TEXT NOT NULL, system_type_id INTEGER NOT NULL, max_length INTEGER NOT NULL,
             precision INTEGER NOT NULL, scale INTEGER NOT NULL, is_nullable INTEGER NOT NULL, UNIQUE(schema_id, name));
         CREATE TABLE IF NOT EXISTS __sim_indexes(object_id INTEGER NOT NULL, index_id INTEGER NOT NULL, name TEXT COLLATE SQLSRV, type INTEGER NOT NULL,
             type_desc TEXT NOT NULL, is_unique INTEGER NOT NULL, is_primary_key INTEGER NOT NULL, is_unique_constraint INTEGER NOT NULL,
             sqlite_name TEXT, PRIMARY KEY(object_id, index_id));
         CREATE TABLE IF NOT EXISTS __sim_index_columns(object_id INTEGER NOT NULL, index_id INTEGER NOT NULL, index_column_id INTEGER NOT NULL,
             column_id INTEGER NOT NULL, key_ordinal INTEGER NOT NULL, is_descending_key INTEGER NOT NULL, is_included_column INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE IF NOT EXISTS __sim_foreign_keys(object_id INTEGER PRIMARY KEY, parent_object_id INTEGER NOT NULL, referenced_object_id INTEGER NOT NULL,
             delete_referential_action INTEGER NOT NULL, update_referential_action INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS __sim_foreign_key_columns(constraint_object_id INTEGER NOT NULL, constraint_column_id INTEGER NOT NULL,
             parent_object_id INTEGER NOT NULL, parent_column_id INTEGER NOT NULL, referenced_object_id INTEGER NOT NULL, referenced_column_id INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS __sim_options(name TEXT PRIMARY KEY, value TEXT);",
    )?;
    // Written only when missing: a write would wait for another session's
    // open write transaction, and so would the login (SQL Server lets a
    // login in while others write).
    let schemas: i64 = conn.query_row("SELECT count(*) FROM __sim_schemas", [], |r| r.get(0))?;
    if schemas == 0 {
        conn.execute_batch(
            "INSERT OR IGNORE INTO __sim_schemas(schema_id, name) VALUES (1, 'dbo'), (2, 'guest'), (3, 'INFORMATION_SCHEMA'), (4, 'sys');",
        )?;
    }
    // A column declared with an alias type (engine::alias_types) records
    // it; files made before alias types get the column now.
    let has: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('__sim_columns') WHERE name = 'user_type_id'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch("ALTER TABLE __sim_columns ADD COLUMN user_type_id INTEGER")?;
    }
    // So does a computed column its definition (files made before).
    let has: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('__sim_columns') WHERE name = 'computed_definition'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch(
            "ALTER TABLE __sim_columns ADD COLUMN computed_definition TEXT;
             ALTER TABLE __sim_columns ADD COLUMN is_persisted INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE __sim_columns ADD COLUMN is_computed INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

/// The SQL Server type of a column of one of the `__sim_*` tables, so that
/// catalog views return SQL Server's column types.
pub fn internal_column_type(column: &str) -> SqlType {
    let c = column.to_ascii_lowercase();
    match c.as_str() {
        "type" => SqlType::Char(2),
        "type_desc" | "retention_period_units_desc" => SqlType::NVarChar(Len::N(60)),
        "create_date" | "modify_date" => SqlType::DateTime,
        "max_length" => SqlType::SmallInt,
        "precision" | "scale" | "system_type_id" => SqlType::TinyInt,
        "default_sql" | "value" | "computed_definition" => SqlType::NVarChar(Len::Max),
        "delete_referential_action"
        | "update_referential_action"
        | "retention_period_units"
        | "key_ordinal"
        | "index_column_id"
        | "type_id" => SqlType::TinyInt,
        "retention_period" => SqlType::Int,
        "class" => SqlType::TinyInt,
        "class_desc" | "state_desc" => SqlType::NVarChar(Len::N(60)),
        c if c.starts_with("is_") => SqlType::Bit,
        c if c.ends_with("_version") => SqlType::BigInt,
        c if c.ends_with("_id") => SqlType::Int,
        _ => SqlType::NVarChar(Len::N(128)),
    }
}

/// Views named as SQL Server's catalog views. They are TEMP views, created
/// on every connection, so their definitions always match this build.
pub fn create_views(conn: &Connection, database: &str) -> rusqlite::Result<()> {
    let db = database.replace('\'', "''");
    let types_rows = [
        ("bit", 104, 104, 1, 1, 0),
        ("tinyint", 48, 48, 1, 3, 0),
        ("smallint", 52, 52, 2, 5, 0),
        ("int", 56, 56, 4, 10, 0),
        ("bigint", 127, 127, 8, 19, 0),
        ("decimal", 106, 106, 17, 38, 38),
        ("numeric", 108, 108, 17, 38, 38),
        ("money", 60, 60, 8, 19, 4),
        ("smallmoney", 122, 122, 4, 10, 4),
        ("float", 62, 62, 8, 53, 0),
        ("real", 59, 59, 4, 24, 0),
        ("char", 175, 175, 8000, 0, 0),
        ("varchar", 167, 167, 8000, 0, 0),
        ("nchar", 239, 239, 8000, 0, 0),
        ("nvarchar", 231, 231, 8000, 0, 0),
        ("sysname", 231, 256, 256, 0, 0),
        ("binary", 173, 173, 8000, 0, 0),
        ("varbinary", 165, 165, 8000, 0, 0),
        ("uniqueidentifier", 36, 36, 16, 0, 0),
        ("date", 40, 40, 3, 10, 0),
        ("time", 41, 41, 5, 16, 7),
        ("datetime", 61, 61, 8, 23, 3),
        ("smalldatetime", 58, 58, 4, 16, 0),
        ("datetime2", 42, 42, 8, 27, 7),
        ("datetimeoffset", 43, 43, 10, 34, 7),
        ("timestamp", 189, 189, 8, 0, 0),
        ("text", 35, 35, 16, 0, 0),
        ("ntext", 99, 99, 16, 0, 0),
        ("image", 34, 34, 16, 0, 0),
        ("xml", 241, 241, -1, 0, 0),
    ];
    let types_values: Vec<String> = types_rows
        .iter()
        .map(|(n, s, u, l, p, sc)| format!("('{n}', {s}, {u}, 4, {l}, {p}, {sc}, 1, 0)"))
        .collect();
    let sql = format!(
        "DROP TABLE IF EXISTS temp.__sim_types;
         CREATE TEMP TABLE __sim_types(name TEXT COLLATE SQLSRV, system_type_id INTEGER, user_type_id INTEGER, schema_id INTEGER, max_length INTEGER,
             precision INTEGER, scale INTEGER, is_nullable INTEGER, is_user_defined INTEGER);
         INSERT INTO temp.__sim_types VALUES {types};
         CREATE TEMP VIEW IF NOT EXISTS \"sys.types\" AS SELECT name, system_type_id, user_type_id, schema_id, max_length, precision, scale,
             is_nullable, is_user_defined FROM temp.__sim_types;
         CREATE TEMP VIEW IF NOT EXISTS __sim_schema_names(__k, __v) AS SELECT schema_id, name FROM __sim_schemas;
         CREATE TEMP VIEW IF NOT EXISTS __sim_object_names(__k, __v) AS SELECT object_id, name FROM __sim_objects
             WHERE __sim_visible(CASE WHEN coalesce(parent_object_id, 0) = 0 THEN object_id ELSE parent_object_id END) = 1;
         CREATE TEMP VIEW IF NOT EXISTS __sim_object_schemas(__k, __v) AS SELECT o.object_id, s.name FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
             WHERE __sim_visible(CASE WHEN coalesce(o.parent_object_id, 0) = 0 THEN o.object_id ELSE o.parent_object_id END) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.schemas\" AS SELECT name, schema_id, 1 AS principal_id FROM __sim_schemas;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.objects\" AS SELECT name, object_id, NULL AS principal_id, schema_id, parent_object_id, type,
             CASE type WHEN 'U ' THEN 'USER_TABLE' WHEN 'PK' THEN 'PRIMARY_KEY_CONSTRAINT' WHEN 'F ' THEN 'FOREIGN_KEY_CONSTRAINT'
                       WHEN 'UQ' THEN 'UNIQUE_CONSTRAINT' WHEN 'D ' THEN 'DEFAULT_CONSTRAINT' ELSE 'USER_TABLE' END AS type_desc,
             create_date, modify_date, 0 AS is_ms_shipped, 0 AS is_published, 0 AS is_schema_published FROM __sim_objects
             WHERE __sim_visible(CASE WHEN coalesce(parent_object_id, 0) = 0 THEN object_id ELSE parent_object_id END) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.tables\" AS SELECT name, object_id, NULL AS principal_id, schema_id, parent_object_id, type,
             'USER_TABLE' AS type_desc, create_date, modify_date, 0 AS is_ms_shipped, 0 AS is_published, 0 AS is_schema_published,
             0 AS is_tracked_by_cdc, 0 AS temporal_type, 0 AS is_memory_optimized FROM __sim_objects WHERE type = 'U '
             AND __sim_visible(object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.columns\" AS SELECT c.object_id, c.name, c.column_id, c.system_type_id,
             coalesce(c.user_type_id, c.system_type_id) AS user_type_id,
             c.max_length, c.precision, c.scale, c.collation_name, c.is_nullable, 0 AS is_ansi_padded, 0 AS is_rowguidcol, c.is_identity,
             c.is_computed, 0 AS is_sparse, 0 AS is_column_set, 0 AS default_object_id FROM __sim_columns c WHERE __sim_visible(c.object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.computed_columns\" AS SELECT c.object_id, c.name, c.column_id, c.system_type_id,
             coalesce(c.user_type_id, c.system_type_id) AS user_type_id, c.max_length, c.precision, c.scale, c.collation_name, c.is_nullable,
             c.is_computed, c.computed_definition AS definition, c.is_persisted, 0 AS uses_database_collation
             FROM __sim_columns c WHERE c.computed_definition IS NOT NULL AND __sim_visible(c.object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.indexes\" AS SELECT object_id, name, index_id, type, type_desc, is_unique, 1 AS data_space_id,
             0 AS ignore_dup_key, is_primary_key, is_unique_constraint, 0 AS is_disabled, 0 AS is_hypothetical, 0 AS has_filter FROM __sim_indexes
             WHERE __sim_visible(object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.index_columns\" AS SELECT object_id, index_id, index_column_id, column_id, key_ordinal,
             0 AS partition_ordinal, is_descending_key, is_included_column FROM __sim_index_columns WHERE __sim_visible(object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.key_constraints\" AS SELECT o.name, o.object_id, o.schema_id, o.parent_object_id, o.type,
             CASE o.type WHEN 'PK' THEN 'PRIMARY_KEY_CONSTRAINT' ELSE 'UNIQUE_CONSTRAINT' END AS type_desc, o.create_date, o.modify_date,
             i.index_id AS unique_index_id, 0 AS is_system_named FROM __sim_objects o
             JOIN __sim_indexes i ON i.object_id = o.parent_object_id AND i.name = o.name WHERE o.type IN ('PK', 'UQ')
             AND __sim_visible(o.parent_object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.foreign_keys\" AS SELECT o.name, f.object_id, o.schema_id, f.parent_object_id, 'F ' AS type,
             'FOREIGN_KEY_CONSTRAINT' AS type_desc, o.create_date, o.modify_date, f.referenced_object_id, 1 AS key_index_id, 0 AS is_disabled,
             0 AS is_not_trusted, f.delete_referential_action,
             CASE f.delete_referential_action WHEN 0 THEN 'NO_ACTION' WHEN 1 THEN 'CASCADE' WHEN 2 THEN 'SET_NULL' ELSE 'SET_DEFAULT' END AS delete_referential_action_desc,
             f.update_referential_action,
             CASE f.update_referential_action WHEN 0 THEN 'NO_ACTION' WHEN 1 THEN 'CASCADE' WHEN 2 THEN 'SET_NULL' ELSE 'SET_DEFAULT' END AS update_referential_action_desc
             FROM __sim_foreign_keys f JOIN __sim_objects o ON o.object_id = f.object_id WHERE __sim_visible(f.parent_object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.foreign_key_columns\" AS SELECT constraint_object_id, constraint_column_id, parent_object_id,
             parent_column_id, referenced_object_id, referenced_column_id FROM __sim_foreign_key_columns WHERE __sim_visible(parent_object_id) = 1;
         CREATE TEMP TABLE IF NOT EXISTS __sim_databases(name TEXT COLLATE SQLSRV, database_id INTEGER, allow_snapshot_isolation TEXT,
             read_committed_snapshot TEXT, collation_name TEXT);
         CREATE TEMP VIEW IF NOT EXISTS \"sys.databases\" AS SELECT name, database_id,
             CASE WHEN allow_snapshot_isolation = 'ON' THEN 1 ELSE 0 END AS snapshot_isolation_state,
             CASE WHEN allow_snapshot_isolation = 'ON' THEN 'ON' ELSE 'OFF' END AS snapshot_isolation_state_desc,
             CASE WHEN read_committed_snapshot = 'ON' THEN 1 ELSE 0 END AS is_read_committed_snapshot_on,
             160 AS compatibility_level, 0 AS state, 'ONLINE' AS state_desc, collation_name FROM temp.__sim_databases;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.change_tracking_tables\" AS SELECT object_id, is_track_columns_updated_on, begin_version,
             cleanup_version, min_valid_version FROM __sim_ct_tables WHERE __sim_visible(object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"sys.change_tracking_databases\" AS SELECT {dbid} AS database_id, is_auto_cleanup_on, retention_period,
             retention_period_units, CASE retention_period_units WHEN 1 THEN 'MINUTES' WHEN 2 THEN 'HOURS' ELSE 'DAYS' END AS retention_period_units_desc
             FROM __sim_ct_database WHERE is_enabled = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"INFORMATION_SCHEMA.TABLES\" AS SELECT '{db}' AS TABLE_CATALOG, s.name AS TABLE_SCHEMA, o.name AS TABLE_NAME,
             'BASE TABLE' AS TABLE_TYPE FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id WHERE o.type = 'U '
             AND __sim_visible(o.object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"INFORMATION_SCHEMA.TABLE_CONSTRAINTS\" AS SELECT '{db}' AS CONSTRAINT_CATALOG,
             s.name AS CONSTRAINT_SCHEMA, o.name AS CONSTRAINT_NAME, '{db}' AS TABLE_CATALOG, ts.name AS TABLE_SCHEMA, t.name AS TABLE_NAME,
             CASE o.type WHEN 'PK' THEN 'PRIMARY KEY' WHEN 'UQ' THEN 'UNIQUE' ELSE 'FOREIGN KEY' END AS CONSTRAINT_TYPE,
             'NO' AS IS_DEFERRABLE, 'NO' AS INITIALLY_DEFERRED
             FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
             JOIN __sim_objects t ON t.object_id = o.parent_object_id JOIN __sim_schemas ts ON ts.schema_id = t.schema_id
             WHERE o.type IN ('PK', 'UQ', 'F ') AND __sim_visible(t.object_id) = 1;
         CREATE TEMP VIEW IF NOT EXISTS \"INFORMATION_SCHEMA.COLUMNS\" AS SELECT '{db}' AS TABLE_CATALOG, s.name AS TABLE_SCHEMA, o.name AS TABLE_NAME,
             c.name AS COLUMN_NAME, c.column_id AS ORDINAL_POSITION, c.default_sql AS COLUMN_DEFAULT,
             CASE c.is_nullable WHEN 1 THEN 'YES' ELSE 'NO' END AS IS_NULLABLE,
             CASE WHEN instr(c.type, '(') > 0 THEN substr(c.type, 1, instr(c.type, '(') - 1) ELSE c.type END AS DATA_TYPE,
             CASE WHEN c.system_type_id IN (167, 175, 165, 173) THEN c.max_length WHEN c.system_type_id IN (231, 239) THEN
                  CASE WHEN c.max_length = -1 THEN -1 ELSE c.max_length / 2 END END AS CHARACTER_MAXIMUM_LENGTH,
             CASE WHEN c.system_type_id IN (48, 52, 56, 127, 106, 108, 60, 122, 62, 59) THEN c.precision END AS NUMERIC_PRECISION,
             CASE WHEN c.system_type_id IN (48, 52, 56, 127, 106, 108, 60, 122) THEN c.scale END AS NUMERIC_SCALE,
             CASE WHEN c.system_type_id IN (40, 41, 42, 43, 58, 61) THEN c.scale END AS DATETIME_PRECISION,
             CASE WHEN c.system_type_id IN (231, 239) THEN 'UNICODE' WHEN c.system_type_id IN (167, 175) THEN 'iso_1' END AS CHARACTER_SET_NAME,
             c.collation_name AS COLLATION_NAME
             FROM __sim_columns c JOIN __sim_objects o ON o.object_id = c.object_id JOIN __sim_schemas s ON s.schema_id = o.schema_id
             WHERE o.type = 'U ' AND __sim_visible(o.object_id) = 1;",
        types = types_values.join(", "),
        dbid = database_id(database)
    );
    conn.execute_batch(&sql)
}

/// The SQL Server type of an INFORMATION_SCHEMA view column that SQLite
/// cannot trace to a `__sim_*` column (computed ones such as IS_NULLABLE).
pub fn information_schema_column_type(column: &str) -> SqlType {
    match column.to_ascii_lowercase().as_str() {
        "ordinal_position" | "character_maximum_length" | "numeric_scale" => SqlType::Int,
        "numeric_precision" | "datetime_precision" => SqlType::TinyInt,
        "is_nullable" => SqlType::VarChar(Len::N(3)),
        "table_type" => SqlType::VarChar(Len::N(10)),
        "constraint_type" => SqlType::VarChar(Len::N(11)),
        "is_deferrable" | "initially_deferred" => SqlType::VarChar(Len::N(2)),
        "column_default" => SqlType::NVarChar(Len::N(4000)),
        _ => SqlType::NVarChar(Len::N(128)),
    }
}

pub fn schema_id(conn: &Connection, schema: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT schema_id FROM __sim_schemas WHERE name = ?1",
        [schema],
        |r| r.get(0),
    )
    .optional()
}

pub fn schema_name(conn: &Connection, schema: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT name FROM __sim_schemas WHERE name = ?1",
        [schema],
        |r| r.get(0),
    )
    .optional()
}

pub fn create_schema(conn: &Connection, name: &str) -> Result<(), SqlError> {
    if schema_id(conn, name).map_err(sqlite_err)?.is_some() {
        return Err(SqlError::new(
            2714,
            16,
            format!("There is already an object named '{name}' in the database."),
        ));
    }
    conn.execute("INSERT INTO __sim_schemas(schema_id, name) VALUES ((SELECT max(schema_id) + 1 FROM __sim_schemas WHERE schema_id < 16384), ?1)", [name])
        .map_err(sqlite_err)?;
    Ok(())
}

pub fn sqlite_err(e: rusqlite::Error) -> SqlError {
    if let Some(se) = SqlError::decode(&e.to_string()) {
        return se;
    }
    SqlError::new(40001, 16, format!("mssql-sim internal storage error: {e}"))
}

fn next_object_id(conn: &Connection) -> rusqlite::Result<i64> {
    let max: Option<i64> =
        conn.query_row("SELECT max(object_id) FROM __sim_objects", [], |r| r.get(0))?;
    Ok(max.map(|m| m + 16_001).unwrap_or(FIRST_OBJECT_ID))
}

/// Finds an object (any type) by schema and name; returns (object_id, type).
pub fn find_object(
    conn: &Connection,
    schema: &str,
    name: &str,
) -> rusqlite::Result<Option<(i64, String)>> {
    conn.query_row(
        "SELECT o.object_id, o.type FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id WHERE s.name = ?1 AND o.name = ?2",
        [schema, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Finds any object by name in any schema (constraint names are unique per schema).
pub fn object_name_exists(conn: &Connection, schema_id: i64, name: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM __sim_objects WHERE schema_id = ?1 AND name = ?2",
            params![schema_id, name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Loads a user table's definition, resolving the names case-insensitively.
pub fn load_table(
    conn: &Connection,
    schema: &str,
    name: &str,
) -> rusqlite::Result<Option<TableDef>> {
    let found: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT o.object_id, s.name, o.name FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
             WHERE s.name = ?1 AND o.name = ?2 AND o.type = 'U '",
            [schema, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((object_id, schema, name)) = found else {
        return Ok(None);
    };
    load_table_by_id(conn, object_id, schema, name).map(Some)
}

/// Loads a user table's definition by object id.
pub fn load_table_by_object_id(
    conn: &Connection,
    object_id: i64,
) -> rusqlite::Result<Option<TableDef>> {
    let found: Option<(String, String)> = conn
        .query_row(
            "SELECT s.name, o.name FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
             WHERE o.object_id = ?1 AND o.type = 'U '",
            [object_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match found {
        Some((schema, name)) => load_table_by_id(conn, object_id, schema, name).map(Some),
        None => Ok(None),
    }
}

fn load_table_by_id(
    conn: &Connection,
    object_id: i64,
    schema: String,
    name: String,
) -> rusqlite::Result<TableDef> {
    let mut stmt = conn.prepare_cached("SELECT column_id, name, type, is_nullable, is_identity, collation_name, user_type_id, computed_definition, is_persisted FROM __sim_columns WHERE object_id = ?1 ORDER BY column_id")?;
    let columns = stmt
        .query_map([object_id], |r| {
            let t: String = r.get(2)?;
            Ok(ColumnDef {
                column_id: r.get(0)?,
                name: r.get(1)?,
                ty: SqlType::parse(&t).unwrap_or(SqlType::NVarChar(Len::Max)),
                nullable: r.get(3)?,
                identity: r.get(4)?,
                collation: r
                    .get::<_, Option<String>>(5)?
                    .and_then(|n| Collation::parse(&n).ok()),
                user_type_id: r.get(6)?,
                computed: r
                    .get::<_, Option<String>>(7)?
                    .map(|d| (d, r.get::<_, bool>(8).unwrap_or(false))),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let pk_name: Option<String> = conn
        .query_row(
            "SELECT name FROM __sim_indexes WHERE object_id = ?1 AND is_primary_key = 1",
            [object_id],
            |r| r.get(0),
        )
        .optional()?;
    let mut stmt = conn.prepare_cached(
        "SELECT c.name FROM __sim_index_columns ic JOIN __sim_indexes i ON i.object_id = ic.object_id AND i.index_id = ic.index_id
         JOIN __sim_columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
         WHERE i.object_id = ?1 AND i.is_primary_key = 1 ORDER BY ic.key_ordinal",
    )?;
    let pk = stmt
        .query_map([object_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT f.object_id, o.name, rs.name, ro.name, f.delete_referential_action, f.update_referential_action FROM __sim_foreign_keys f
         JOIN __sim_objects o ON o.object_id = f.object_id JOIN __sim_objects ro ON ro.object_id = f.referenced_object_id
         JOIN __sim_schemas rs ON rs.schema_id = ro.schema_id WHERE f.parent_object_id = ?1 ORDER BY f.object_id",
    )?;
    let fk_heads = stmt
        .query_map([object_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<(i64, String, String, String, i32, i32)>>>()?;
    let mut foreign_keys = Vec::new();
    for (fid, fname, rschema, rtable, on_delete, on_update) in fk_heads {
        let mut stmt = conn.prepare_cached(
            "SELECT pc.name, rc.name FROM __sim_foreign_key_columns k
             JOIN __sim_columns pc ON pc.object_id = k.parent_object_id AND pc.column_id = k.parent_column_id
             JOIN __sim_columns rc ON rc.object_id = k.referenced_object_id AND rc.column_id = k.referenced_column_id
             WHERE k.constraint_object_id = ?1 ORDER BY k.constraint_column_id",
        )?;
        let pairs = stmt
            .query_map([fid], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        foreign_keys.push(ForeignKeyDef {
            name: fname,
            columns: pairs.iter().map(|p| p.0.clone()).collect(),
            ref_schema: rschema,
            ref_table: rtable,
            ref_columns: pairs.iter().map(|p| p.1.clone()).collect(),
            on_delete,
            on_update,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT i.name, c.name FROM __sim_indexes i
         JOIN __sim_index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
         JOIN __sim_columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
         WHERE i.object_id = ?1 AND i.is_unique_constraint = 1 ORDER BY i.index_id, ic.key_ordinal",
    )?;
    let mut uniques: Vec<(String, Vec<String>)> = Vec::new();
    for row in stmt.query_map([object_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })? {
        let (index, column) = row?;
        match uniques.last_mut() {
            Some((n, cols)) if *n == index => cols.push(column),
            _ => uniques.push((index, vec![column])),
        }
    }
    Ok(TableDef {
        object_id,
        schema,
        name,
        columns,
        pk_name,
        pk,
        foreign_keys,
        uniques,
        temp: false,
    })
}

/// All user tables that have a foreign key referencing `object_id`.
pub fn referencing_tables(conn: &Connection, object_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT o.name FROM __sim_foreign_keys f JOIN __sim_objects o ON o.object_id = f.object_id
         WHERE f.referenced_object_id = ?1 AND f.parent_object_id <> ?1",
    )?;
    let r = stmt.query_map([object_id], |r| r.get(0))?.collect();
    r
}

/// Error 1767: a foreign key names a table that does not exist.
pub fn invalid_fk_table(fk: &ForeignKeyDef) -> SqlError {
    SqlError::new(
        1767,
        16,
        format!(
            "Foreign key '{}' references invalid table '{}.{}'.",
            fk.name, fk.ref_schema, fk.ref_table
        ),
    )
}

/// Records a new table (its columns, primary key and foreign keys) in the catalog.
pub fn register_table(
    conn: &Connection,
    def: &mut TableDef,
    now: &str,
    defaults: &[Option<String>],
) -> Result<(), SqlError> {
    let schema_id = schema_id(conn, &def.schema).map_err(sqlite_err)?.ok_or_else(|| {
        SqlError::new(2760, 16, format!("The specified schema name \"{}\" either does not exist or you do not have permission to use it.", def.schema))
    })?;
    let object_id = next_object_id(conn).map_err(sqlite_err)?;
    def.object_id = object_id;
    conn.execute(
        "INSERT INTO __sim_objects(object_id, schema_id, name, type, parent_object_id, create_date, modify_date) VALUES (?1, ?2, ?3, 'U ', 0, ?4, ?4)",
        params![object_id, schema_id, def.name, now],
    )
    .map_err(sqlite_err)?;
    for (i, c) in def.columns.iter().enumerate() {
        add_column(conn, object_id, c, defaults.get(i).cloned().flatten())?;
    }
    if !def.pk.is_empty() {
        let pk_name = def.pk_name.clone().unwrap_or_else(|| {
            format!(
                "PK__{}__{:016X}",
                truncate(&def.name, 8),
                object_id as u64 * 2654435761
            )
        });
        if object_name_exists(conn, schema_id, &pk_name).map_err(sqlite_err)? {
            return Err(SqlError::new(
                2714,
                16,
                format!("There is already an object named '{pk_name}' in the database."),
            ));
        }
        def.pk_name = Some(pk_name.clone());
        let pk_id = next_object_id(conn).map_err(sqlite_err)?;
        conn.execute(
            "INSERT INTO __sim_objects(object_id, schema_id, name, type, parent_object_id, create_date, modify_date) VALUES (?1, ?2, ?3, 'PK', ?4, ?5, ?5)",
            params![pk_id, schema_id, pk_name, object_id, now],
        )
        .map_err(sqlite_err)?;
        conn.execute(
            "INSERT INTO __sim_indexes VALUES (?1, 1, ?2, 1, 'CLUSTERED', 1, 1, 0, NULL)",
            params![object_id, pk_name],
        )
        .map_err(sqlite_err)?;
        for (k, col) in def.pk.iter().enumerate() {
            let cid = def.column(col).map(|c| c.column_id).unwrap_or(0);
            conn.execute(
                "INSERT INTO __sim_index_columns VALUES (?1, 1, ?2, ?3, ?2, 0, 0)",
                params![object_id, k as i64 + 1, cid],
            )
            .map_err(sqlite_err)?;
        }
    } else {
        conn.execute(
            "INSERT INTO __sim_indexes VALUES (?1, 0, NULL, 0, 'HEAP', 0, 0, 0, NULL)",
            params![object_id],
        )
        .map_err(sqlite_err)?;
    }
    for fk in &def.foreign_keys {
        register_foreign_key(conn, def, fk, now)?;
    }
    Ok(())
}

/// Records foreign key `fk` of table `def` (registered, with the key's
/// columns among its columns).
pub fn register_foreign_key(
    conn: &Connection,
    def: &TableDef,
    fk: &ForeignKeyDef,
    now: &str,
) -> Result<(), SqlError> {
    let schema_id = schema_id(conn, &def.schema)
        .map_err(sqlite_err)?
        .unwrap_or(1);
    let object_id = def.object_id;
    {
        let referenced = load_table(conn, &fk.ref_schema, &fk.ref_table)
            .map_err(sqlite_err)?
            .ok_or_else(|| invalid_fk_table(fk))?;
        if object_name_exists(conn, schema_id, &fk.name).map_err(sqlite_err)? {
            return Err(SqlError::new(
                2714,
                16,
                format!(
                    "There is already an object named '{}' in the database.",
                    fk.name
                ),
            ));
        }
        let fk_id = next_object_id(conn).map_err(sqlite_err)?;
        conn.execute(
            "INSERT INTO __sim_objects(object_id, schema_id, name, type, parent_object_id, create_date, modify_date) VALUES (?1, ?2, ?3, 'F ', ?4, ?5, ?5)",
            params![fk_id, schema_id, fk.name, object_id, now],
        )
        .map_err(sqlite_err)?;
        conn.execute(
            "INSERT INTO __sim_foreign_keys VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                fk_id,
                object_id,
                referenced.object_id,
                fk.on_delete,
                fk.on_update
            ],
        )
        .map_err(sqlite_err)?;
        for (k, (pc, rc)) in fk.columns.iter().zip(&fk.ref_columns).enumerate() {
            let pcid = def.column(pc).map(|c| c.column_id).unwrap_or(0);
            let rcid = referenced.column(rc).map(|c| c.column_id).unwrap_or(0);
            conn.execute(
                "INSERT INTO __sim_foreign_key_columns VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    fk_id,
                    k as i64 + 1,
                    object_id,
                    pcid,
                    referenced.object_id,
                    rcid
                ],
            )
            .map_err(sqlite_err)?;
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Adds a column to a table's catalog entry.
pub fn add_column(
    conn: &Connection,
    object_id: i64,
    c: &ColumnDef,
    default_sql: Option<String>,
) -> Result<(), SqlError> {
    let (max_length, precision, scale) = c.ty.catalog_sizes();
    let collation = c.collation.map(|c| c.name());
    conn.execute(
        "INSERT INTO __sim_columns(object_id, column_id, name, type, system_type_id, max_length, precision, scale,
             is_nullable, is_identity, collation_name, default_sql, user_type_id, computed_definition, is_persisted, is_computed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            object_id,
            c.column_id,
            c.name,
            c.ty.to_string(),
            c.ty.system_type_id(),
            max_length,
            precision,
            scale,
            c.nullable,
            c.identity,
            collation,
            default_sql,
            c.user_type_id,
            c.computed.as_ref().map(|(d, _)| d.clone()),
            c.computed.as_ref().is_some_and(|(_, p)| *p),
            c.computed.is_some()
        ],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Records column `c`'s new type, nullability and collation (ALTER COLUMN).
pub fn alter_column(conn: &Connection, object_id: i64, c: &ColumnDef) -> Result<(), SqlError> {
    let (max_length, precision, scale) = c.ty.catalog_sizes();
    conn.execute(
        "UPDATE __sim_columns SET type = ?3, system_type_id = ?4, max_length = ?5, precision = ?6, scale = ?7,
             is_nullable = ?8, collation_name = ?9, user_type_id = ?10 WHERE object_id = ?1 AND column_id = ?2",
        params![
            object_id,
            c.column_id,
            c.ty.to_string(),
            c.ty.system_type_id(),
            max_length,
            precision,
            scale,
            c.nullable,
            c.collation.map(|c| c.name()),
            c.user_type_id
        ],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

pub fn drop_column(conn: &Connection, object_id: i64, column_id: i32) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sim_columns WHERE object_id = ?1 AND column_id = ?2",
        params![object_id, column_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Removes a table and everything that hangs off it from the catalog.
pub fn drop_table(conn: &Connection, object_id: i64) -> Result<(), SqlError> {
    conn.execute_batch(&format!(
        "DELETE FROM __sim_foreign_key_columns WHERE parent_object_id = {object_id};
         DELETE FROM __sim_foreign_keys WHERE parent_object_id = {object_id};
         DELETE FROM __sim_index_columns WHERE object_id = {object_id};
         DELETE FROM __sim_indexes WHERE object_id = {object_id};
         DELETE FROM __sim_columns WHERE object_id = {object_id};
         DELETE FROM __sim_objects WHERE object_id = {object_id} OR parent_object_id = {object_id};"
    ))
    .map_err(sqlite_err)
}

/// Records a CREATE INDEX.
/// A UNIQUE constraint of a new table: a 'UQ' object (sys.objects,
/// sys.key_constraints, INFORMATION_SCHEMA.TABLE_CONSTRAINTS) and its
/// unique index (`is_unique_constraint = 1`). `name` None: SQL Server's
/// system-generated `UQ__<table>__<hex>`.
pub fn register_unique_constraint(
    conn: &Connection,
    table: &TableDef,
    name: Option<&str>,
    columns: &[String],
    now: &str,
) -> Result<(), SqlError> {
    let schema_id = schema_id(conn, &table.schema)
        .map_err(sqlite_err)?
        .unwrap_or(1);
    let uq_id = next_object_id(conn).map_err(sqlite_err)?;
    let name = name.map(str::to_string).unwrap_or_else(|| {
        format!(
            "UQ__{}__{:016X}",
            truncate(&table.name, 8),
            uq_id as u64 * 2654435761
        )
    });
    if object_name_exists(conn, schema_id, &name).map_err(sqlite_err)? {
        return Err(SqlError::new(
            2714,
            16,
            format!("There is already an object named '{name}' in the database."),
        ));
    }
    conn.execute(
        "INSERT INTO __sim_objects(object_id, schema_id, name, type, parent_object_id, create_date, modify_date) VALUES (?1, ?2, ?3, 'UQ', ?4, ?5, ?5)",
        params![uq_id, schema_id, name, table.object_id, now],
    )
    .map_err(sqlite_err)?;
    let cols: Vec<(String, bool)> = columns.iter().map(|c| (c.clone(), false)).collect();
    register_index_as(conn, table, &name, true, true, &cols, "")
}

pub fn register_index(
    conn: &Connection,
    table: &TableDef,
    name: &str,
    unique: bool,
    columns: &[(String, bool)],
    sqlite_name: &str,
) -> Result<(), SqlError> {
    register_index_as(conn, table, name, unique, false, columns, sqlite_name)
}

fn register_index_as(
    conn: &Connection,
    table: &TableDef,
    name: &str,
    unique: bool,
    constraint: bool,
    columns: &[(String, bool)],
    sqlite_name: &str,
) -> Result<(), SqlError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT index_id FROM __sim_indexes WHERE object_id = ?1 AND name = ?2",
            params![table.object_id, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    if exists.is_some() {
        return Err(SqlError::new(
            1913,
            16,
            format!("The operation failed because an index or statistics with name '{name}' already exists on table '{}'.", table.display_name()),
        ));
    }
    let index_id: i64 = conn
        .query_row(
            "SELECT max(max(index_id) + 1, 2) FROM __sim_indexes WHERE object_id = ?1",
            [table.object_id],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    conn.execute(
        "INSERT INTO __sim_indexes VALUES (?1, ?2, ?3, 2, 'NONCLUSTERED', ?4, 0, ?5, ?6)",
        params![
            table.object_id,
            index_id,
            name,
            unique,
            constraint,
            sqlite_name
        ],
    )
    .map_err(sqlite_err)?;
    for (k, (col, desc)) in columns.iter().enumerate() {
        let cid = table
            .column(col)
            .map(|c| c.column_id)
            .ok_or_else(|| SqlError::invalid_column(col))?;
        conn.execute(
            "INSERT INTO __sim_index_columns VALUES (?1, ?2, ?3, ?4, ?3, ?5, 0)",
            params![table.object_id, index_id, k as i64 + 1, cid, desc],
        )
        .map_err(sqlite_err)?;
    }
    Ok(())
}

/// (sqlite index name, is unique) of an index, for DROP INDEX.
pub fn find_index(
    conn: &Connection,
    object_id: i64,
    name: &str,
) -> rusqlite::Result<Option<(i64, Option<String>)>> {
    conn.query_row(
        "SELECT index_id, sqlite_name FROM __sim_indexes WHERE object_id = ?1 AND name = ?2",
        params![object_id, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

pub fn drop_index(conn: &Connection, object_id: i64, index_id: i64) -> Result<(), SqlError> {
    conn.execute_batch(&format!(
        "DELETE FROM __sim_index_columns WHERE object_id = {object_id} AND index_id = {index_id};
         DELETE FROM __sim_indexes WHERE object_id = {object_id} AND index_id = {index_id};"
    ))
    .map_err(sqlite_err)
}

pub fn get_option(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT value FROM __sim_options WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

pub fn set_option(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO __sim_options(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value", [name, value])?;
    Ok(())
}

/// The SQLite file of every database in the data folder, by name, master
/// first, then in database_id order.
pub fn database_files(data_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(data_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("sqlite"))
                .filter_map(|p| {
                    let stem = p.file_stem().and_then(|s| s.to_str())?.to_string();
                    Some((stem, p))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_by_key(|(n, _)| (database_id(n), n.to_lowercase()));
    files
}

/// Fills the rows of `sys.databases` (a table of this connection) with
/// every database of the data folder as it is now: the current one read
/// through `conn`, the others from their own files, read-only.
pub fn refresh_databases(
    conn: &Connection,
    data_dir: &Path,
    current: &str,
) -> Result<(), SqlError> {
    let mut rows = Vec::new();
    for (name, path) in database_files(data_dir) {
        let other;
        let c = if name.eq_ignore_ascii_case(current) {
            conn
        } else {
            match Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
                Ok(o) => {
                    other = o;
                    &other
                }
                // A file another process is creating: not a database yet.
                Err(_) => continue,
            }
        };
        let opt = |k: &str| get_option(c, k).ok().flatten();
        rows.push((
            database_id(&name),
            opt("allow_snapshot_isolation"),
            opt("read_committed_snapshot"),
            opt("collation").unwrap_or_else(|| crate::collation::DEFAULT.name().to_string()),
            name,
        ));
    }
    conn.execute("DELETE FROM temp.__sim_databases", [])
        .map_err(sqlite_err)?;
    for (id, snapshot, rcsi, collation, name) in rows {
        conn.execute(
            "INSERT INTO temp.__sim_databases VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, id, snapshot, rcsi, collation],
        )
        .map_err(sqlite_err)?;
    }
    Ok(())
}

/// @@DBTS: the last rowversion the database gave out (SQL Server starts a
/// new database at 2000, 0x07D0).
pub fn dbts(conn: &Connection) -> Result<i64, SqlError> {
    Ok(get_option(conn, "dbts")
        .map_err(sqlite_err)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000))
}

/// Brings the alias types (engine::alias_types) into this connection's
/// rows of `sys.types`, as they are now.
pub fn refresh_types(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(
        "DELETE FROM temp.__sim_types WHERE is_user_defined = 1;
         INSERT INTO temp.__sim_types SELECT name, system_type_id, user_type_id, schema_id, max_length, precision, scale,
             is_nullable, 1 FROM __sim_alias_types;",
    )
    .map_err(sqlite_err)
}

/// The collation of another database, read from its file.
pub fn database_file_collation(data_dir: &Path, name: &str) -> Result<Collation, SqlError> {
    let Some((_, path)) = database_files(data_dir)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    else {
        return Err(SqlError::new(
            911,
            16,
            format!("Database '{name}' does not exist."),
        ));
    };
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite_err)?;
    database_collation(&conn)
}

/// The collation a database was created with (SQL Server's default for
/// a file made before the simulator recorded one).
pub fn database_collation(conn: &Connection) -> Result<Collation, SqlError> {
    match get_option(conn, "collation").map_err(sqlite_err)? {
        Some(name) => Collation::parse(&name),
        None => Ok(crate::collation::DEFAULT),
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
