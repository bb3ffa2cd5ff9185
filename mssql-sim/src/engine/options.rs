//! SET options, ALTER DATABASE (snapshot isolation, change tracking) and
//! enabling change tracking on a table.

use super::session::*;
use super::{catalog, ct};
use crate::error::SqlError;
use sqlparser::ast::ObjectName;

/// SET options whose OFF would change what statements mean: accepted ON
/// (SQL Server's default for clients), refused OFF.
const ON_ONLY: [&str; 6] = [
    "ANSI_NULLS",
    "ANSI_PADDING",
    "ANSI_WARNINGS",
    "CONCAT_NULL_YIELDS_NULL",
    "QUOTED_IDENTIFIER",
    "ARITHABORT",
];

impl Session {
    /// `ALTER TABLE t ENABLE|DISABLE CHANGE_TRACKING`.
    pub(super) fn alter_table_change_tracking(
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

    /// UPDATE STATISTICS: SQLite's ANALYZE of the table, whose statistics
    /// its planner then uses as SQL Server's optimizer uses the table's
    /// (which index serves a filter with ORDER BY and TOP, for one).
    pub(super) fn update_statistics(&mut self, table: &ObjectName) -> Result<(), SqlError> {
        let def = self.resolver().resolve_table(table)?;
        self.conn
            .execute_batch(&format!(
                "ANALYZE \"{}\"",
                def.sqlite_name().replace('"', "\"\"")
            ))
            .map_err(|e| SqlError::new(50000, 16, format!("UPDATE STATISTICS failed: {e}")))
    }

    pub(super) fn set_option(&mut self, name: &str, value: &str) -> Result<(), SqlError> {
        let on = value == "ON";
        match name {
            "NOCOUNT" => self.nocount = on,
            "XACT_ABORT" => self.xact_abort = on,
            "IMPLICIT_TRANSACTIONS" if on => {
                return Err(SqlError::unsupported("SET IMPLICIT_TRANSACTIONS ON"))
            }
            _ if ON_ONLY.contains(&name) && !on => {
                return Err(SqlError::unsupported(format!("SET {name} OFF")));
            }
            _ if ON_ONLY.contains(&name) => {}
            "ANSI_NULL_DFLT_ON"
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

    pub(super) fn alter_database(
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
}
