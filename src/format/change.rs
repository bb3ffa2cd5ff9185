//! Table changes (format 2): what a package does to one of the copy's
//! tables before that table's rows, so that a change of shape at the source
//! (a table added or removed, a column added, widened or dropped, a table
//! re-sent whole) travels as part of the package sequence instead of
//! starting a new epoch. docs/FORMAT.md §3.1 specifies the encoding; this
//! module encodes, decodes and checks it against the table it belongs to.
//!
//! A package carrying no table change is written as format 1, so a
//! caregiver still on a ctferry that reads only format 1 keeps applying
//! until the first change of shape reaches it, and is then told to upgrade.

use crate::format::cbor::{Encoder, Item};
use crate::format::schema::{encode_column, ColumnSchema, TableSchema};

/// What happens to the copy's table before its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum TableAction {
    /// Create the table as the manifest describes it, dropping a table of
    /// that name first: a table new to the copy, or one re-created (a
    /// column renamed, a type narrowed or changed, the key changed). Its
    /// rows follow whole.
    Create,
    /// Alter the table, step by step in order; then, with `reset`, delete
    /// every row (the table's rows follow whole).
    Alter { steps: Vec<AlterStep>, reset: bool },
    /// Delete every row of the table: its rows follow whole (re-sent).
    Reset,
    /// Drop the table: it is no longer published. No rows follow.
    Drop,
}

/// One step of an `Alter`.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterStep {
    /// Add this (nullable) column, at the end.
    Add(ColumnSchema),
    /// Change this column to this type (a widening: every value fits).
    Alter(ColumnSchema),
    /// Drop the column of this name.
    Drop(String),
}

/// A table change with the reason the operator and the caregiver read.
#[derive(Debug, Clone, PartialEq)]
pub struct TableChange {
    pub action: TableAction,
    /// Why, in words: "added to the configuration", "column Kommentar
    /// added", "re-sent: change tracking restarted".
    pub why: String,
}

impl TableChange {
    /// Whether the copy's rows of the table are all replaced (no delete
    /// section may accompany it).
    pub fn reloads(&self) -> bool {
        matches!(
            self.action,
            TableAction::Create | TableAction::Reset | TableAction::Alter { reset: true, .. }
        )
    }

    /// The action's name in a manifest.
    pub fn name(&self) -> &'static str {
        match self.action {
            TableAction::Create => "create",
            TableAction::Alter { .. } => "alter",
            TableAction::Reset => "reset",
            TableAction::Drop => "drop",
        }
    }

    /// As the caregiver's log and `inspect` show it: `alter (add
    /// Kommentar; widen Namn nvarchar(200)), reset: why`.
    pub fn describe(&self) -> String {
        let what = match &self.action {
            TableAction::Alter { steps, reset } => {
                let steps: Vec<String> = steps
                    .iter()
                    .map(|s| match s {
                        AlterStep::Add(c) => format!("add {} {}", c.name, c.ty),
                        AlterStep::Alter(c) => format!("widen {} to {}", c.name, c.ty),
                        AlterStep::Drop(n) => format!("drop {n}"),
                    })
                    .collect();
                format!(
                    "alter ({}){}",
                    steps.join("; "),
                    if *reset { ", then reload" } else { "" }
                )
            }
            TableAction::Create => "create and load".to_string(),
            TableAction::Reset => "reload".to_string(),
            TableAction::Drop => "drop".to_string(),
        };
        format!("{what}: {}", self.why)
    }
}

/// Writes the `change` map of a table.
pub fn encode(e: &mut Encoder, c: &TableChange) {
    let alter = match &c.action {
        TableAction::Alter { steps, reset } => Some((steps, *reset)),
        _ => None,
    };
    e.map(if alter.is_some() { 4 } else { 2 });
    e.text("action");
    e.text(c.name());
    if let Some((steps, reset)) = alter {
        e.text("steps");
        e.array(steps.len());
        for s in steps {
            e.map(1);
            match s {
                AlterStep::Add(col) => {
                    e.text("add");
                    encode_column(e, col);
                }
                AlterStep::Alter(col) => {
                    e.text("alter");
                    encode_column(e, col);
                }
                AlterStep::Drop(name) => {
                    e.text("drop");
                    e.text(name);
                }
            }
        }
        e.text("reset");
        e.bool(reset);
    }
    e.text("why");
    e.text(&c.why);
}

/// Reads a `change` map and checks it against its table (`schema`, with
/// `upserts` and `deletes` rows in this package); `Err` says what is wrong.
pub fn decode(
    item: &Item,
    schema: &TableSchema,
    upserts: u64,
    deletes: u64,
    column: impl Fn(&Item) -> Result<ColumnSchema, String>,
) -> Result<TableChange, String> {
    let why = item
        .get("why")
        .and_then(Item::as_text)
        .ok_or("'why' is not text")?
        .to_string();
    let action = match item.get("action").and_then(Item::as_text) {
        Some("create") => TableAction::Create,
        Some("reset") => TableAction::Reset,
        Some("drop") => TableAction::Drop,
        Some("alter") => {
            let mut steps = Vec::new();
            for s in item
                .get("steps")
                .and_then(Item::as_array)
                .ok_or("'steps' is not an array")?
            {
                let step = if let Some(c) = s.get("add") {
                    let c = column(c)?;
                    if !c.nullable {
                        return Err(format!("column {} is added NOT NULL", c.name));
                    }
                    AlterStep::Add(c)
                } else if let Some(c) = s.get("alter") {
                    AlterStep::Alter(column(c)?)
                } else if let Some(n) = s.get("drop") {
                    AlterStep::Drop(
                        n.as_text()
                            .ok_or("a dropped column is not text")?
                            .to_string(),
                    )
                } else {
                    return Err("a step is not add, alter or drop".into());
                };
                steps.push(step);
            }
            if steps.is_empty() {
                return Err("an alter without steps".into());
            }
            let reset = item
                .get("reset")
                .and_then(Item::as_bool)
                .ok_or("'reset' is not a boolean")?;
            TableAction::Alter { steps, reset }
        }
        Some(other) => return Err(format!("unknown action '{other}'")),
        None => return Err("'action' is not text".into()),
    };
    let change = TableChange { action, why };
    if let TableAction::Alter { steps, .. } = &change.action {
        for s in steps {
            match s {
                AlterStep::Add(c) | AlterStep::Alter(c) => {
                    let now = schema.columns.iter().find(|t| t.name == c.name);
                    if now != Some(c) {
                        return Err(format!(
                            "column {} is not as the table's columns say",
                            c.name
                        ));
                    }
                    if schema.key.contains(&c.name) {
                        return Err(format!("key column {} is altered", c.name));
                    }
                }
                AlterStep::Drop(n) => {
                    if schema.columns.iter().any(|t| &t.name == n) {
                        return Err(format!("column {n} is dropped but still listed"));
                    }
                }
            }
        }
    }
    if change.action == TableAction::Drop && (upserts > 0 || deletes > 0) {
        return Err("a dropped table has rows".into());
    }
    if change.reloads() && deletes > 0 {
        return Err("a table whose rows are all replaced has deletes".into());
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::cbor::{Decoder, Limits};
    use crate::format::value::ColumnType;

    fn col(name: &str, ty: &str, nullable: bool) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            ty: ColumnType::parse(ty).unwrap(),
            nullable,
            masked: false,
            collation: None,
        }
    }

    fn table() -> TableSchema {
        TableSchema {
            name: "dbo.Besok".into(),
            columns: vec![col("Id", "int", false), col("Note", "nvarchar(200)", true)],
            key: vec!["Id".into()],
        }
    }

    fn round(c: &TableChange, up: u64, del: u64) -> Result<TableChange, String> {
        let mut e = Encoder::new();
        encode(&mut e, c);
        let item = Decoder::new(&e.buf[..], Limits::default())
            .next_item()
            .unwrap();
        decode(&item, &table(), up, del, |i| {
            let name = i.get("name").and_then(Item::as_text).unwrap_or_default();
            let ty = i.get("type").and_then(Item::as_text).unwrap_or("int");
            let nullable = i.get("nullable").and_then(Item::as_bool).unwrap_or(false);
            Ok(col(name, ty, nullable))
        })
    }

    fn alter(steps: Vec<AlterStep>, reset: bool) -> TableChange {
        TableChange {
            action: TableAction::Alter { steps, reset },
            why: "w".into(),
        }
    }

    #[test]
    fn a_change_reads_back_and_a_change_that_contradicts_its_table_is_refused() {
        let ok = alter(
            vec![
                AlterStep::Add(col("Note", "nvarchar(200)", true)),
                AlterStep::Drop("Old".into()),
            ],
            true,
        );
        assert_eq!(round(&ok, 5, 0).unwrap(), ok);
        let refused = |c: TableChange, up, del| round(&c, up, del).unwrap_err();
        assert!(refused(ok.clone(), 5, 1).contains("has deletes"));
        assert!(refused(
            alter(
                vec![AlterStep::Add(col("Note", "nvarchar(100)", true))],
                false
            ),
            0,
            0
        )
        .contains("not as the table's columns say"));
        assert!(refused(
            alter(
                vec![AlterStep::Add(col("Note", "nvarchar(200)", false))],
                false
            ),
            0,
            0
        )
        .contains("NOT NULL"));
        assert!(
            refused(alter(vec![AlterStep::Drop("Note".into())], false), 0, 0)
                .contains("still listed")
        );
        assert!(refused(
            alter(vec![AlterStep::Alter(col("Id", "int", false))], false),
            0,
            0
        )
        .contains("key column"));
        assert!(refused(alter(vec![], false), 0, 0).contains("without steps"));
        let drop = TableChange {
            action: TableAction::Drop,
            why: "w".into(),
        };
        assert!(refused(drop, 1, 0).contains("has rows"));
    }
}
