//! SQLite failures mapped to the SQL Server error for the same condition
//! (number, severity, state, message as SQL Server words it).

use super::catalog::TableDef;
use crate::error::SqlError;

/// Maps a SQLite failure to SQL Server's error for the same condition.
pub fn map_sqlite(e: rusqlite::Error, table: Option<&TableDef>, db: &str, verb: &str) -> SqlError {
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
            let same = |u: &[String]| {
                u.len() == cols.len()
                    && u.iter()
                        .all(|x| cols.iter().any(|c| c.eq_ignore_ascii_case(x)))
            };
            if let Some((name, _)) = t.uniques.iter().find(|(_, u)| same(u)) {
                return SqlError::new(
                    2627,
                    14,
                    format!(
                        "Violation of UNIQUE KEY constraint '{name}'. Cannot insert duplicate key in object '{}'.",
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
