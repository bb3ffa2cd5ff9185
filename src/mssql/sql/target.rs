//! The statements sent to a caregiver's copy database by `ctferry apply`,
//! one function each.
//!
//! Permissions the caregiver's login needs: CREATE SCHEMA and CREATE TABLE
//! in the copy database (first snapshot), and ownership of the tables it
//! creates (DROP, DELETE, INSERT, ALTER and TRUNCATE, for table changes
//! and temp tables).

use super::quote;
use crate::format::package::{ColumnSchema, TableSchema};
use crate::mssql::client::stage_type;

/// Whether the apply log `ctferry.applied` exists (one row: its count).
pub fn applied_log_exists() -> &'static str {
    "SELECT COUNT(*) FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name = N'ctferry' AND t.name = N'applied'"
}

/// Whether schema @P1 exists (one row: its count).
pub fn schema_exists() -> &'static str {
    "SELECT COUNT(*) FROM sys.schemas WHERE name = @P1"
}

/// Creates schema `name`.
pub fn create_schema(name: &str) -> String {
    format!("CREATE SCHEMA {}", quote(name))
}

/// Creates the apply log: one row per applied package, written in the
/// package's own transaction, so the copy's data and its log cannot
/// disagree.
pub fn create_applied_log() -> &'static str {
    "CREATE TABLE ctferry.applied (sequence bigint NOT NULL PRIMARY KEY, epoch bigint NOT NULL, kind nvarchar(10) NOT NULL,
            file_name nvarchar(260) NOT NULL, sha256 char(64) NOT NULL, ct_from bigint NULL, ct_to bigint NOT NULL,
            data_as_of nvarchar(40) NULL, applied_at datetime2(3) NOT NULL, rows_applied bigint NOT NULL)"
}

/// The last applied package: sequence, epoch, sha256, ct_to, data_as_of,
/// file_name.
pub fn last_applied() -> &'static str {
    "SELECT TOP 1 sequence, epoch, sha256, ct_to, data_as_of, file_name FROM ctferry.applied ORDER BY sequence DESC"
}

/// Records an applied package: @P1 sequence, @P2 epoch, @P3 kind, @P4 file,
/// @P5 sha256, @P6 ct_from (NULL for a snapshot), @P7 ct_to, @P8 data as of,
/// @P9 rows applied.
pub fn record_applied() -> &'static str {
    "INSERT INTO ctferry.applied (sequence, epoch, kind, file_name, sha256, ct_from, ct_to, data_as_of, applied_at, rows_applied)
                   VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, SYSUTCDATETIME(), @P9)"
}

/// The collation of each string column of the copy's table @P1
/// (`schema.table`), by name (the temp tables `apply` loads through take
/// them).
pub fn column_collations() -> &'static str {
    "SELECT name, collation_name FROM sys.columns WHERE object_id = OBJECT_ID(@P1) AND collation_name IS NOT NULL"
}

/// Whether table @P1 (`schema.table`) exists (one row: its count).
pub fn table_exists() -> &'static str {
    "SELECT COUNT(*) FROM sys.tables WHERE object_id = OBJECT_ID(@P1)"
}

/// Drops table `quoted` (already quoted, e.g. by `super::qualified`).
pub fn drop_table(quoted: &str) -> String {
    format!("DROP TABLE {quoted}")
}

/// Creates table `quoted` with the columns of `t`: the copy's table (with
/// its primary key) or, with `stage`, a temp table to bulk-load into (types
/// as `stage_type` loads them, no key).
///
/// A string column is created in its collation (`t`'s, which names the
/// source column's for the copy's table and the copy column's for a
/// stage), else in the database's (`COLLATE DATABASE_DEFAULT`): a temp
/// table lives in tempdb, whose collation is the server's and may differ
/// from the copy database's, and comparing the two is error 468.
/// `package::is_collation_name` has checked every name.
pub fn create_table(t: &TableSchema, quoted: &str, stage: bool) -> String {
    let mut cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| column_definition(c, stage))
        .collect();
    if !stage {
        cols.push(format!(
            "PRIMARY KEY ({})",
            t.key
                .iter()
                .map(|k| quote(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!("CREATE TABLE {quoted} ({})", cols.join(", "))
}

/// A column as `create_table` and `add_column` write it:
/// `[Name] nvarchar(200) COLLATE Finnish_Swedish_CI_AS NULL`.
fn column_definition(c: &ColumnSchema, stage: bool) -> String {
    let ty = if stage { stage_type(&c.ty) } else { c.ty };
    let collate = if ty.is_string() {
        format!(
            " COLLATE {}",
            c.collation.as_deref().unwrap_or("DATABASE_DEFAULT")
        )
    } else {
        String::new()
    };
    format!(
        "{} {}{collate} {}",
        quote(&c.name),
        ty,
        if c.nullable { "NULL" } else { "NOT NULL" }
    )
}

/// Adds column `c` (nullable: the copy's rows get NULL) at the end of the
/// copy's table `quoted` (a package's table change, format 2).
pub fn add_column(quoted: &str, c: &ColumnSchema) -> String {
    format!("ALTER TABLE {quoted} ADD {}", column_definition(c, false))
}

/// Changes column `c` of the copy's table `quoted` to `c`'s type,
/// collation and nullability (a widening: every value the copy holds fits).
pub fn alter_column(quoted: &str, c: &ColumnSchema) -> String {
    format!(
        "ALTER TABLE {quoted} ALTER COLUMN {}",
        column_definition(c, false)
    )
}

/// Drops column `name` of the copy's table `quoted`.
pub fn drop_column(quoted: &str, name: &str) -> String {
    format!("ALTER TABLE {quoted} DROP COLUMN {}", quote(name))
}

/// Deletes every row of the copy's table `quoted` before the package
/// loads it whole (a table re-sent). TRUNCATE, not DELETE: minimally
/// logged, and rolled back with the package's transaction like any other
/// statement in it.
pub fn truncate_table(quoted: &str) -> String {
    format!("TRUNCATE TABLE {quoted}")
}

/// Moves one bulk-loaded chunk from temp table `stage` into the copy's table
/// `target` (schema `t`), as one batch: with `delete`, the copy's rows with
/// the same keys go first (a delta, or a delete section); with `insert`, the
/// staged rows are inserted (cast back to their column type where the stage
/// holds them differently); then the stage is emptied for the next chunk.
pub fn merge_chunk(
    t: &TableSchema,
    target: &str,
    stage: &str,
    delete: bool,
    insert: bool,
) -> String {
    let mut batch = String::new();
    if delete {
        let on = t
            .key
            .iter()
            .map(|k| format!("t.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        batch.push_str(&format!(
            "DELETE t FROM {target} AS t JOIN {stage} AS s ON {on}; "
        ));
    }
    if insert {
        let cols = t
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let sel = t
            .columns
            .iter()
            .map(|c| {
                if stage_type(&c.ty) != c.ty {
                    format!("CAST(s.{} AS {})", quote(&c.name), c.ty)
                } else {
                    format!("s.{}", quote(&c.name))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        batch.push_str(&format!(
            "INSERT INTO {target} ({cols}) SELECT {sel} FROM {stage} AS s; "
        ));
    }
    batch.push_str(&format!("TRUNCATE TABLE {stage};"));
    batch
}

/// Starts a package's transaction; any error aborts it whole.
pub fn begin_transaction() -> &'static str {
    "SET XACT_ABORT ON; BEGIN TRANSACTION"
}

/// Commits a package's transaction.
pub fn commit_transaction() -> &'static str {
    "COMMIT TRANSACTION"
}
