//! Every T-SQL statement ctferry sends, one function each with a doc
//! comment, written for real SQL Server (2016 and later) first: `source`
//! for the region's source database (read only), `target` for a caregiver's
//! copy. Parameters are `@P1, @P2, ...` (sp_executesql, as tiberius sends
//! them); identifiers are always quoted with `quote`. Nothing here runs a
//! statement (`mssql::client` does), and no other module builds SQL text.

pub mod source;
pub mod target;

use crate::config::TableName;

/// Sent once after every login: SQL Server's default `TEXTSIZE` (the most
/// bytes of a `varchar(max)`, `nvarchar(max)`, `varbinary(max)`, `text`,
/// `ntext` or `image` value a SELECT returns) is 4096, and Microsoft's own
/// drivers set 2147483647 when they connect ("SET TEXTSIZE"); tiberius
/// does not, so ctferry does, and no long value is cut short.
pub fn session_settings() -> &'static str {
    "SET TEXTSIZE 2147483647"
}

/// `[name]` with `]` doubled.
pub fn quote(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// `[schema].[table]`
pub fn table(t: &TableName) -> String {
    format!("{}.{}", quote(&t.schema), quote(&t.name))
}

/// `schema.table` as a package names it, quoted: `[schema].[table]` (or
/// `[table]` without a schema).
pub fn qualified(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote(s), quote(t)),
        None => quote(name),
    }
}

/// A string literal `N'...'` with quotes doubled.
pub fn literal(s: &str) -> String {
    format!("N'{}'", s.replace('\'', "''"))
}

/// Rolls back a failed transaction (a cycle's read, a package's apply), if
/// it is still open; either side.
pub fn rollback_if_open() -> &'static str {
    "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("a]b"), "[a]]b]");
        assert_eq!(qualified("dbo.T"), "[dbo].[T]");
        assert_eq!(qualified("T"), "[T]");
    }
}
