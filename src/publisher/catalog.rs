//! What a published table looks like at the source, and what it looked
//! like when it was first published.
//!
//! `describe` reads a table's columns, types and primary key from the
//! source catalog (two statements) and builds the select list, with masked
//! columns replaced by their literal. `PublishedSchema` is the typed value
//! the state keeps per table (`t/<table>`): a later cycle compares the
//! source against it (`drift`; `reshape` decides how the copies follow),
//! and delta packages are written with it.

use crate::config::table::MaskValue;
use crate::config::TableConfig;
use crate::format::package::{is_collation_name, ColumnSchema, TableSchema};
use crate::format::value::{ColumnType, Value};
use crate::mssql::client::{self, int_at, text_at, Db, DbError, Param};
use crate::mssql::sql::source::{self as sql, SelectColumn};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a published table cannot be read as configured. None of these goes
/// away by retrying: the configuration or the source must change.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("source database: {0}")]
    Db(#[from] DbError),
    #[error("table {table} does not exist in the source database, or the login holds no permission on it (SQL Server then hides it): GRANT SELECT, VIEW CHANGE TRACKING ON {table} TO <the login's user>; `ctferry check` tells which")]
    NoSuchTable { table: String },
    #[error("{table}.{column} has type {ty}, which ctferry does not carry: leave the column out with exclude = [\"{column}\"] in the table's [[table]] entry (or leave the table out)")]
    UnsupportedType {
        table: String,
        column: String,
        ty: String,
    },
    #[error("{table}: mask {column} = {mask}, but {why}")]
    MaskMisfit {
        table: String,
        column: String,
        mask: String,
        why: String,
    },
    #[error("{table}: the owner column {column} does not exist in the table; fix owner = {{ column = \"...\" }} in its [[table]] entry")]
    NoOwnerColumn { table: String, column: String },
    #[error("{table}: mask names column {column}, which the table does not have")]
    MaskWithoutColumn { table: String, column: String },
    #[error("{table}: exclude names column {column}, which the table does not have")]
    ExcludeWithoutColumn { table: String, column: String },
    #[error("{table}: {column} is part of the primary key and cannot be excluded (a copy needs the key)")]
    ExcludedKey { table: String, column: String },
    #[error("table {table} has no primary key; change tracking and ctferry need one")]
    NoPrimaryKey { table: String },
}

/// A published table as found in the source.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub cfg: TableConfig,
    pub schema: TableSchema,
    pub key_pos: Vec<usize>,
    /// The select list (masks applied); empty for a schema rebuilt from the
    /// state, which is only used to write packages.
    pub select: Vec<SelectColumn>,
    /// Each column's `column_id` at the source (a renamed column keeps
    /// it); empty for a schema rebuilt from the state.
    pub ids: Vec<i64>,
}

impl TableInfo {
    /// The primary key's values of a row read with the table's columns
    /// (`vals` in the schema's column order).
    pub fn key_of(&self, vals: &[Value]) -> Vec<Value> {
        self.key_pos.iter().map(|p| vals[*p].clone()).collect()
    }

    /// The schema to remember (and compare) for this table, with each
    /// masked column's mask as configured.
    pub fn published(&self) -> PublishedSchema {
        let mut p = PublishedSchema::of(&self.schema);
        for (c, id) in p.columns.iter_mut().zip(&self.ids) {
            c.id = Some(*id);
        }
        for c in &mut p.columns {
            c.mask = self
                .cfg
                .masks
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(&c.name))
                .map(|(_, v)| v.text());
        }
        p.masks_recorded = true;
        p
    }

    /// This table without the columns `held` (new at the source, not yet
    /// published): left out of the select list and of every package.
    pub fn without(mut self, held: &[String]) -> TableInfo {
        if held.is_empty() {
            return self;
        }
        let keep: Vec<bool> = self
            .schema
            .columns
            .iter()
            .map(|c| !held.iter().any(|h| h.eq_ignore_ascii_case(&c.name)))
            .collect();
        let mut i = 0;
        self.schema.columns.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        if !self.select.is_empty() {
            let mut i = 0;
            self.select.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        if !self.ids.is_empty() {
            let mut i = 0;
            self.ids.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        self.key_pos = self.schema.key_positions().unwrap_or_default();
        self
    }
}

/// Why a stored schema cannot be read (the state is damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadSchema(pub String);

/// One column as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedColumn {
    pub name: String,
    /// The SQL Server type, as `ColumnType` writes and parses it.
    #[serde(with = "type_text")]
    pub ty: ColumnType,
    pub nullable: bool,
    /// A string column's collation; None in states written before
    /// collations were recorded (see `drift`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
    /// The mask its values are replaced with, as the configuration writes
    /// it (`NULL`, `N'x'`); None: not masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Its `column_id` at the source, which a rename keeps; None in states
    /// written before it was recorded (`drift` completes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

/// A table's columns and key as they were published (stored in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedSchema {
    pub columns: Vec<PublishedColumn>,
    pub key: Vec<String>,
    /// Whether the columns' masks were recorded (false in states written
    /// before they were: `drift` completes them rather than see a change).
    #[serde(default)]
    pub masks_recorded: bool,
}

mod type_text {
    use crate::format::value::ColumnType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ty: &ColumnType, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ty)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ColumnType, D::Error> {
        let text = String::deserialize(d)?;
        ColumnType::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// As operators read it in messages: `Id bigint, Note nvarchar(400) NULL; key Id`.
impl fmt::Display for PublishedSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.name,
                    c.ty,
                    if c.nullable { " NULL" } else { "" }
                )
            })
            .collect();
        write!(f, "{}; key {}", cols.join(", "), self.key.join(","))
    }
}

impl PublishedSchema {
    /// The columns and key of `schema`.
    pub fn of(schema: &TableSchema) -> PublishedSchema {
        PublishedSchema {
            columns: schema
                .columns
                .iter()
                .map(|c| PublishedColumn {
                    name: c.name.clone(),
                    ty: c.ty,
                    nullable: c.nullable,
                    collation: c.collation.clone(),
                    mask: None,
                    id: None,
                })
                .collect(),
            key: schema.key.clone(),
            masks_recorded: false,
        }
    }

    /// As stored in the state (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored schema: JSON, or the text form that states written
    /// before this type existed hold (`Id bigint, N nvarchar(40) NULL; key Id`).
    pub fn from_bytes(bytes: &[u8]) -> Result<PublishedSchema, BadSchema> {
        if bytes.first() == Some(&b'{') {
            return serde_json::from_slice(bytes).map_err(|e| BadSchema(e.to_string()));
        }
        let text = String::from_utf8_lossy(bytes);
        let (cols, key) = text.split_once("; key ").unwrap_or((&text, ""));
        let mut columns = Vec::new();
        for c in cols.split(", ") {
            let nullable = c.ends_with(" NULL");
            let c = c.trim_end_matches(" NULL");
            let (name, ty) = c
                .rsplit_once(' ')
                .ok_or_else(|| BadSchema(format!("column '{c}' has no type")))?;
            columns.push(PublishedColumn {
                name: name.to_string(),
                ty: ColumnType::parse(ty).map_err(|e| BadSchema(e.to_string()))?,
                nullable,
                collation: None,
                mask: None,
                id: None,
            });
        }
        Ok(PublishedSchema {
            columns,
            key: key.split(',').map(str::to_string).collect(),
            masks_recorded: false,
        })
    }

    /// Table `name` as a package describes it, without the configuration
    /// (a table no longer published, dropped at the copies).
    pub fn table_schema(&self, name: &str) -> TableSchema {
        TableSchema {
            name: name.to_string(),
            columns: self
                .columns
                .iter()
                .map(|c| ColumnSchema {
                    name: c.name.clone(),
                    ty: c.ty,
                    nullable: c.nullable,
                    masked: c.mask.is_some(),
                    collation: c.collation.clone(),
                })
                .collect(),
            key: self.key.clone(),
        }
    }

    /// The table schema packages are written with (masks from `t`).
    pub fn table_info(&self, t: &TableConfig) -> TableInfo {
        let schema = TableSchema {
            name: t.name.to_string(),
            columns: self
                .columns
                .iter()
                .map(|c| ColumnSchema {
                    name: c.name.clone(),
                    ty: c.ty,
                    nullable: c.nullable,
                    masked: t.masks.keys().any(|m| m.eq_ignore_ascii_case(&c.name)),
                    collation: c.collation.clone(),
                })
                .collect(),
            key: self.key.clone(),
        };
        TableInfo {
            cfg: t.clone(),
            key_pos: schema.key_positions().unwrap_or_default(),
            select: vec![],
            ids: vec![],
            schema,
        }
    }
}

/// How a table found at the source compares with what was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Not published before: remember it.
    New,
    /// As published.
    Same,
    /// As published, in a state written before collations or masks were
    /// recorded: remember the completed schema, nothing else.
    Completed,
    /// Changed: `was` is what was published (completed as above).
    Changed { was: PublishedSchema },
}

/// Compares `now` with the `stored` schema. A state written before
/// collations (or masks) were recorded is completed from `now`, column by
/// column (same name and type), rather than taken for a change.
pub fn drift(stored: Option<PublishedSchema>, now: &PublishedSchema) -> Drift {
    let Some(was) = stored else {
        return Drift::New;
    };
    if was == *now {
        return Drift::Same;
    }
    let mut completed = was.clone();
    let older = was.columns.iter().all(|c| c.collation.is_none());
    for c in &mut completed.columns {
        let Some(n) = now.columns.iter().find(|n| n.name == c.name) else {
            continue;
        };
        if older && n.ty == c.ty {
            c.collation = n.collation.clone();
        }
        if !was.masks_recorded {
            c.mask = n.mask.clone();
        }
        if c.id.is_none() {
            c.id = n.id;
        }
    }
    completed.masks_recorded = true;
    if completed == *now {
        Drift::Completed
    } else {
        Drift::Changed { was: completed }
    }
}

/// Why a mask cannot stand for a column's values (every command that
/// publishes checks this; `check` also has SQL Server convert it).
fn mask_misfit(v: &MaskValue, column: &str, ty: &ColumnType, nullable: bool) -> Option<String> {
    use ColumnType as T;
    let binary = matches!(ty, T::Binary(_) | T::VarBinary(_));
    match v {
        MaskValue::Null if !nullable => {
            Some(format!("{column} is NOT NULL; give a literal of type {ty}"))
        }
        MaskValue::Binary(_) if !binary => {
            Some(format!("a binary value for a column of type {ty}"))
        }
        MaskValue::Number(_) if binary || *ty == T::UniqueIdentifier => {
            Some(format!("a number for a column of type {ty}"))
        }
        MaskValue::Text(_) if binary => Some(format!(
            "text for a column of type {ty}; give 0x and hex digits"
        )),
        _ => None,
    }
}

/// Reads a published table's columns and key from the source catalog.
pub fn describe(db: &mut Db, t: &TableConfig) -> Result<TableInfo, CatalogError> {
    let name = t.name.to_string();
    let cols = db.rows(
        &format!("reading the columns of {name}"),
        sql::columns(),
        &[Param::Str(name.clone())],
    )?;
    if cols.is_empty() {
        return Err(CatalogError::NoSuchTable { table: name });
    }
    let mut columns = Vec::new();
    let mut select = Vec::new();
    let mut ids = Vec::new();
    for r in &cols {
        let cname = text_at(r, 0).unwrap_or_default();
        if t.excludes(&cname) {
            continue;
        }
        ids.push(int_at(r, 6).unwrap_or(0));
        let tname = text_at(r, 1).unwrap_or_default();
        let max_len = int_at(r, 2).unwrap_or(0) as i16;
        let prec = int_at(r, 3).unwrap_or(0) as u8;
        let scale = int_at(r, 4).unwrap_or(0) as u8;
        let nullable = int_at(r, 5).unwrap_or(1) != 0;
        let collation = text_at(r, 7);
        if let Some(c) = collation.as_deref().filter(|c| !is_collation_name(c)) {
            return Err(CatalogError::UnsupportedType {
                table: name.clone(),
                column: cname.clone(),
                ty: format!("{tname} COLLATE {c}"),
            });
        }
        let ty = client::column_type(&tname, max_len, prec, scale).ok_or_else(|| {
            CatalogError::UnsupportedType {
                table: name.clone(),
                column: cname.clone(),
                ty: tname.clone(),
            }
        })?;
        let mask = t
            .masks
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(&cname))
            .map(|(_, v)| v);
        if let Some(v) = mask {
            if let Some(why) = mask_misfit(v, &cname, &ty, nullable) {
                return Err(CatalogError::MaskMisfit {
                    table: name.clone(),
                    column: cname.clone(),
                    mask: v.to_string(),
                    why,
                });
            }
        }
        let mask = mask.map(sql::mask_literal);
        columns.push(ColumnSchema {
            name: cname.clone(),
            ty,
            nullable,
            masked: mask.is_some(),
            collation,
        });
        select.push(SelectColumn {
            name: cname,
            ty,
            mask,
            cast: client::is_legacy_type(&tname),
        });
    }
    for c in t.masks.keys() {
        if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
            return Err(CatalogError::MaskWithoutColumn {
                table: name,
                column: c.clone(),
            });
        }
    }
    let exists = |c: &str| {
        cols.iter()
            .any(|r| text_at(r, 0).is_some_and(|n| n.eq_ignore_ascii_case(c)))
    };
    if let crate::config::Owner::Column(c) = &t.owner {
        if !exists(c) {
            return Err(CatalogError::NoOwnerColumn {
                table: name,
                column: c.clone(),
            });
        }
    }
    if let Some(c) = t.exclude.iter().find(|c| !exists(c)) {
        return Err(CatalogError::ExcludeWithoutColumn {
            table: name,
            column: c.clone(),
        });
    }
    let key: Vec<String> = db
        .rows(
            &format!("reading the primary key of {name}"),
            sql::primary_key(),
            &[Param::Str(name.clone())],
        )?
        .iter()
        .filter_map(|r| text_at(r, 0))
        .collect();
    if key.is_empty() {
        return Err(CatalogError::NoPrimaryKey { table: name });
    }
    if let Some(k) = key.iter().find(|k| t.excludes(k)) {
        return Err(CatalogError::ExcludedKey {
            table: name,
            column: k.clone(),
        });
    }
    let schema = TableSchema { name, columns, key };
    let key_pos = schema.key_positions().unwrap_or_default();
    Ok(TableInfo {
        cfg: t.clone(),
        schema,
        key_pos,
        select,
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> PublishedSchema {
        PublishedSchema {
            columns: vec![
                PublishedColumn {
                    name: "Id".into(),
                    ty: ColumnType::parse("bigint").unwrap(),
                    nullable: false,
                    collation: None,
                    mask: None,
                    id: None,
                },
                PublishedColumn {
                    name: "Note".into(),
                    ty: ColumnType::parse("nvarchar(400)").unwrap(),
                    nullable: true,
                    collation: None,
                    mask: None,
                    id: None,
                },
            ],
            key: vec!["Id".into()],
            masks_recorded: false,
        }
    }

    #[test]
    fn stored_as_json_and_read_from_the_older_text_form() {
        let s = schema();
        assert_eq!(PublishedSchema::from_bytes(&s.to_bytes()).unwrap(), s);
        assert_eq!(s.to_string(), "Id bigint, Note nvarchar(400) NULL; key Id");
        // A state written before the schema was a typed value.
        let legacy = PublishedSchema::from_bytes(b"Id bigint, Note nvarchar(400) NULL; key Id");
        assert_eq!(legacy.unwrap(), s);
        assert!(PublishedSchema::from_bytes(b"Id; key Id").is_err());
        assert!(PublishedSchema::from_bytes(b"{\"columns\": 1}").is_err());
    }

    #[test]
    fn drift_tells_a_change_from_a_state_to_complete() {
        let s = schema();
        assert_eq!(drift(None, &s), Drift::New);
        assert_eq!(drift(Some(s.clone()), &s), Drift::Same);
        let mut wider = s.clone();
        wider.columns[1].ty = ColumnType::parse("nvarchar(800)").unwrap();
        assert_eq!(
            drift(Some(s.clone()), &wider),
            Drift::Changed {
                was: PublishedSchema {
                    masks_recorded: true,
                    ..s.clone()
                }
            }
        );
    }

    #[test]
    fn collations_and_masks_are_completed_once_then_a_change_of_them_is_a_change() {
        let older = schema();
        let mut now = older.clone();
        now.columns[1].collation = Some("Finnish_Swedish_CI_AS".into());
        now.columns[1].mask = Some("NULL".into());
        now.masks_recorded = true;
        // A state from before collations and masks were recorded: completed.
        assert_eq!(drift(Some(older.clone()), &now), Drift::Completed);
        assert_eq!(PublishedSchema::from_bytes(&now.to_bytes()).unwrap(), now);
        assert!(!String::from_utf8(older.to_bytes())
            .unwrap()
            .contains("collation"));
        // Then a changed collation or mask is a change.
        let mut cs = now.clone();
        cs.columns[1].collation = Some("Finnish_Swedish_CS_AS".into());
        assert_eq!(
            drift(Some(now.clone()), &cs),
            Drift::Changed { was: now.clone() }
        );
        let mut unmasked = now.clone();
        unmasked.columns[1].mask = None;
        assert_eq!(
            drift(Some(now.clone()), &unmasked),
            Drift::Changed { was: now.clone() }
        );
        // A state from before, with a column added: completed by name, and
        // the addition is the only change.
        let mut added = now.clone();
        added.columns.push(PublishedColumn {
            name: "Ny".into(),
            ty: ColumnType::Int,
            nullable: true,
            collation: None,
            mask: None,
            id: None,
        });
        assert_eq!(
            drift(Some(older.clone()), &added),
            Drift::Changed { was: now }
        );
    }
}
