//! Tables and columns as a package describes them (docs/FORMAT.md §3):
//! the typed values, and the column map that manifests and table changes
//! both write.

use crate::format::cbor::{Encoder, Item};
use crate::format::value::ColumnType;

/// A column as the package describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// The column's values are replaced at the source (masked) before packaging.
    pub masked: bool,
    /// A string column's collation at the source (`Finnish_Swedish_CI_AS`),
    /// which the copy's column takes; None for other types, and in
    /// packages written before collations were carried.
    pub collation: Option<String>,
}

/// A table as the package describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// `schema.table`
    pub name: String,
    pub columns: Vec<ColumnSchema>,
    /// Primary key column names, in key order.
    pub key: Vec<String>,
}

impl TableSchema {
    /// Positions of the key columns.
    pub fn key_positions(&self) -> Option<Vec<usize>> {
        self.key
            .iter()
            .map(|k| self.columns.iter().position(|c| &c.name == k))
            .collect()
    }
}

/// Whether `s` can be a SQL Server collation name: letters, digits and
/// underscores (it is written into the copy's CREATE TABLE unquoted, so
/// nothing else may pass).
pub fn is_collation_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// Writes a column map as the manifest's `columns` do.
pub fn encode_column(e: &mut Encoder, c: &ColumnSchema) {
    e.map(4 + usize::from(c.collation.is_some()));
    e.text("name");
    e.text(&c.name);
    e.text("type");
    e.text(&c.ty.to_string());
    e.text("nullable");
    e.bool(c.nullable);
    e.text("masked");
    e.bool(c.masked);
    if let Some(coll) = &c.collation {
        e.text("collation");
        e.text(coll);
    }
}

/// Reads a column map (`name`, `type`, `nullable`, `masked`, `collation`).
pub fn decode_column(c: &Item) -> Result<ColumnSchema, String> {
    let cname = c
        .get("name")
        .and_then(Item::as_text)
        .ok_or("a column without a name")?;
    let ty = c
        .get("type")
        .and_then(Item::as_text)
        .ok_or_else(|| format!("column {cname} has no type"))?;
    let ty = ColumnType::parse(ty).map_err(|e| e.to_string())?;
    let flag = |k: &str| {
        c.get(k)
            .and_then(Item::as_bool)
            .ok_or_else(|| format!("column {cname}: '{k}' is not a boolean"))
    };
    let collation = match c.get("collation") {
        None => None,
        Some(v) => Some(
            v.as_text()
                .filter(|s| is_collation_name(s))
                .ok_or_else(|| format!("column {cname}: 'collation' is not a collation name"))?
                .to_string(),
        ),
    };
    Ok(ColumnSchema {
        name: cname.to_string(),
        ty,
        nullable: flag("nullable")?,
        masked: flag("masked")?,
        collation,
    })
}
