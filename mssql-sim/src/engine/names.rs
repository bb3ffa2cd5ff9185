//! Names as SQL Server reads them: an identifier, `[bracketed]` or
//! `"quoted"`, with or without its schema, resolved case-insensitively.

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart};

/// The column a key or index column names (`[Id]`, `"Id"`, `Id`).
pub(super) fn index_column_name(ic: &sqlparser::ast::IndexColumn) -> String {
    match &ic.column.expr {
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

pub(super) fn column_name_of(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
        _ => name.to_string(),
    }
}
