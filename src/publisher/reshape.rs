//! A table's shape changing while ctferry runs (issue "change without
//! starting over"): what changed at the source or in the configuration, how
//! each caregiver's copy follows, and which rows must travel again.
//!
//! The copy's shape is what the caregiver's last package gave it. While it
//! differs from the published shape (`t/`), the state keeps it per caregiver
//! (`k/<hsa>\0<table>`, a `CopyTable`): the cycle that notices a change
//! records it for every caregiver that receives changes, and the caregiver's
//! next delta carries the table change (format 2) that brings the copy to
//! the published shape, then forgets it in the same commit. So a change made
//! while a caregiver waits for its interval, or several changes in a row,
//! reach it as one change computed from its copy's real shape.
//!
//! What travels:
//! - columns added (nullable), dropped, or widened (every value fits:
//!   `varchar(50)` → `varchar(200)`, `int` → `bigint`, more decimal digits,
//!   NOT NULL → NULL): `alter` steps, and no rows — unless an added column
//!   already holds values, then the table's rows travel again (`reload`);
//! - anything else (a key, a narrowed or changed type, a collation, a NOT
//!   NULL column added, columns reordered): the table is re-created and its
//!   rows travel again;
//! - a mask added, changed or removed: the rows travel again (`reset`), with
//!   the values as they must now be;
//! - a table added to the configuration: created and loaded; a table
//!   removed: dropped.
//!
//! Staged rows are kept in the published shape: when it changes, the cycle
//! rewrites the table's staged rows (`convert_op`) in the same commit.

use crate::config::NewColumns;
use crate::format::change::{AlterStep, TableAction, TableChange};
use crate::format::value::{ColumnType, Decimal, Len, Value};
use crate::publisher::catalog::{PublishedColumn, PublishedSchema, TableInfo};
use crate::publisher::stage::{BadOp, Op};
use serde::{Deserialize, Serialize};

/// Whether a table's rows travel again, and how the copy's rows go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reload {
    /// The copy's rows are deleted; the table's rows follow whole.
    Reset,
    /// The copy's table is re-created; its rows follow whole.
    Create,
}

/// A table of one caregiver's copy whose shape is not the published one
/// (stored as `k/<hsa>\0<table>`), until its next delta changes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CopyTable {
    /// The table as the copy has it; None: the copy has no such table.
    pub schema: Option<PublishedSchema>,
    /// The table's rows are staged whole (the copy's go first).
    pub reload: Option<Reload>,
    /// Why, each reason once, in order.
    pub why: Vec<String>,
}

impl CopyTable {
    /// Adds a later change to one not yet delivered: the copy's shape stays
    /// what it is, the stronger reload wins, reasons accumulate.
    pub fn merge(mut self, reload: Option<Reload>, why: &str) -> CopyTable {
        self.reload = self.reload.max(reload);
        if !self.why.iter().any(|w| w == why) {
            self.why.push(why.to_string());
        }
        self
    }
}

/// One in-place change of a column, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Add(String),
    Widen(String),
    Drop(String),
}

/// The column of `now` that column `c` of an earlier shape became under
/// another name (same source `column_id`), if any.
fn renamed_to<'a>(c: &PublishedColumn, now: &'a PublishedSchema) -> Option<&'a PublishedColumn> {
    let id = c.id?;
    now.columns
        .iter()
        .find(|n| n.id == Some(id) && n.name != c.name)
}

fn same_column(a: &PublishedColumn, b: &PublishedColumn) -> bool {
    a.name == b.name && a.ty == b.ty && a.nullable == b.nullable && a.collation == b.collation
}

/// Whether every value of column `from` fits column `to` unchanged: a
/// wider type of the same family, in the same collation, NOT NULL → NULL
/// allowed, NULL → NOT NULL not.
pub fn widens(from: &PublishedColumn, to: &PublishedColumn) -> bool {
    use ColumnType as T;
    if from.collation != to.collation || (from.nullable && !to.nullable) {
        return false;
    }
    let len = |a: &Len, b: &Len| match (a, b) {
        (_, Len::Max) => true,
        (Len::N(x), Len::N(y)) => y >= x,
        (Len::Max, Len::N(_)) => false,
    };
    let rank = |t: &ColumnType| match t {
        T::TinyInt => Some(1),
        T::SmallInt => Some(2),
        T::Int => Some(3),
        T::BigInt => Some(4),
        _ => None,
    };
    match (&from.ty, &to.ty) {
        (a, b) if a == b => true,
        (a, b) if rank(a).is_some() && rank(b).is_some() => rank(b) >= rank(a),
        (T::Decimal { p, s }, T::Decimal { p: p2, s: s2 })
        | (T::Numeric { p, s }, T::Numeric { p: p2, s: s2 }) => s2 >= s && (p2 - s2) >= (p - s),
        (T::SmallMoney, T::Money) | (T::Real, T::Float) => true,
        (T::VarChar(a), T::VarChar(b))
        | (T::NVarChar(a), T::NVarChar(b))
        | (T::VarBinary(a), T::VarBinary(b)) => len(a, b),
        (T::Char(a), T::Char(b)) | (T::NChar(a), T::NChar(b)) | (T::Binary(a), T::Binary(b)) => {
            b >= a
        }
        (T::DateTime2(a), T::DateTime2(b))
        | (T::Time(a), T::Time(b))
        | (T::DateTimeOffset(a), T::DateTimeOffset(b)) => b >= a,
        _ => false,
    }
}

/// The in-place steps that turn a table shaped `copy` into one shaped
/// `now`, or None when it cannot be done in place (the key changed, a
/// column narrowed or changed type or collation, a NOT NULL column was
/// added, or the columns that stay are in another order).
pub fn steps(copy: &PublishedSchema, now: &PublishedSchema) -> Option<Vec<Step>> {
    if copy.key != now.key {
        return None;
    }
    let mut out = Vec::new();
    let mut kept = Vec::new();
    for c in &copy.columns {
        match now
            .columns
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(&c.name))
        {
            None => out.push(Step::Drop(c.name.clone())),
            Some(n) if n.name != c.name => return None,
            Some(n) if same_column(c, n) => kept.push(n.name.clone()),
            Some(n) if widens(c, n) && !now.key.contains(&n.name) => {
                out.push(Step::Widen(n.name.clone()));
                kept.push(n.name.clone());
            }
            Some(_) => return None,
        }
    }
    // The columns that stay come first, in the copy's order; added ones
    // follow (ALTER TABLE ADD puts a column last).
    if now.columns.len() < kept.len()
        || now.columns[..kept.len()]
            .iter()
            .zip(&kept)
            .any(|(n, k)| &n.name != k)
    {
        return None;
    }
    for n in &now.columns[kept.len()..] {
        if !n.nullable {
            return None;
        }
        out.push(Step::Add(n.name.clone()));
    }
    Some(out)
}

/// The columns of table `info` new at the source (not in `stored`) that
/// nobody decided on: not `new_columns = "publish"`, not masked, not in
/// `accepted` (`ctferry schema accept`), and not all accepted at once
/// (`accept_all`, `snapshot --all`). These are held back.
pub fn undecided(
    info: &TableInfo,
    stored: &PublishedSchema,
    accepted: &[String],
    accept_all: bool,
) -> Vec<String> {
    let t = &info.cfg;
    if t.new_columns == NewColumns::Publish || accept_all {
        return Vec::new();
    }
    let named = |c: &str, n: &String| n.eq_ignore_ascii_case(c);
    // A column renamed at the source (same column_id) is not new.
    let known = |i: usize| {
        info.ids
            .get(i)
            .is_some_and(|id| stored.columns.iter().any(|p| p.id == Some(*id)))
    };
    info.schema
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !known(*i))
        .map(|(_, c)| c)
        .filter(|c| !stored.columns.iter().any(|p| named(&c.name, &p.name)))
        .filter(|c| !t.masks.keys().any(|m| named(&c.name, m)))
        .filter(|c| !accepted.iter().any(|a| named(&c.name, a)))
        .map(|c| c.name.clone())
        .collect()
}

/// What the copies of a table published as `was` and now as `now` get:
/// whether its rows travel again, and why, in words. `has_values(column)`
/// says whether an added column already holds a value in some row (the
/// cycle asks the source, `sql::source::any_value`).
pub fn assess<E>(
    was: &PublishedSchema,
    now: &PublishedSchema,
    mut has_values: impl FnMut(&str) -> Result<bool, E>,
) -> Result<(Option<Reload>, String), E> {
    let mut why = Vec::new();
    let mut reload = None;
    match steps(was, now) {
        None => {
            reload = Some(Reload::Create);
            why.push(format!(
                "{}: the table is re-created and its rows travel again",
                describe(was, now)
            ));
        }
        Some(st) => {
            if !st.is_empty() {
                why.push(describe(was, now));
            }
            for s in &st {
                let Step::Add(c) = s else { continue };
                if has_values(c)? {
                    reload = reload.max(Some(Reload::Reset));
                    why.push(format!("{c} already holds values: the rows travel again"));
                }
            }
        }
    }
    let masks = masks_changed(was, now);
    if !masks.is_empty() {
        reload = reload.max(Some(Reload::Reset));
        why.push(format!(
            "the mask of {} changed: the rows travel again, as masked now",
            masks.join(", ")
        ));
    }
    Ok((reload, why.join("; ")))
}

/// The columns whose mask differs between `was` and `now` (same name).
pub fn masks_changed(was: &PublishedSchema, now: &PublishedSchema) -> Vec<String> {
    now.columns
        .iter()
        .filter(|n| {
            was.columns
                .iter()
                .any(|c| c.name == n.name && c.mask != n.mask)
        })
        .map(|n| n.name.clone())
        .collect()
}

/// In words, for the cycle's log and the package: "column Kommentar added;
/// Namn widened to nvarchar(200); Gammal dropped".
pub fn describe(copy: &PublishedSchema, now: &PublishedSchema) -> String {
    let mut parts = Vec::new();
    match steps(copy, now) {
        Some(st) => {
            for s in st {
                parts.push(match s {
                    Step::Add(n) => format!("column {n} added"),
                    Step::Drop(n) => format!("column {n} dropped"),
                    Step::Widen(n) => {
                        let ty = now
                            .columns
                            .iter()
                            .find(|c| c.name == n)
                            .map(|c| c.ty.to_string())
                            .unwrap_or_default();
                        format!("column {n} widened to {ty}")
                    }
                });
            }
        }
        None => {
            let renamed: Vec<String> = copy
                .columns
                .iter()
                .filter_map(|c| {
                    renamed_to(c, now).map(|n| format!("column {} renamed to {}", c.name, n.name))
                })
                .collect();
            if renamed.is_empty() {
                parts.push(format!("columns changed from ({copy}) to ({now})"));
            } else {
                parts.extend(renamed);
            }
        }
    }
    parts.join("; ")
}

/// The table change a delta carries for a table whose copy is `copy` and
/// whose published shape is `now` (None: no longer published). None: no
/// change (the copy already has the shape, and its rows stay). Err: the
/// shape cannot be reached in place and the rows were not staged whole
/// (the state contradicts itself).
pub fn table_change(
    copy: &CopyTable,
    now: Option<&TableInfo>,
) -> Result<Option<TableChange>, String> {
    let why = copy.why.join("; ");
    let change = |action| {
        Ok(Some(TableChange {
            action,
            why: why.clone(),
        }))
    };
    let Some(now) = now else {
        return match copy.schema {
            Some(_) => change(TableAction::Drop),
            None => Ok(None),
        };
    };
    let Some(was) = &copy.schema else {
        return change(TableAction::Create);
    };
    if copy.reload == Some(Reload::Create) {
        return change(TableAction::Create);
    }
    let published = now.published();
    let reset = copy.reload == Some(Reload::Reset);
    match steps(was, &published) {
        Some(st) if st.is_empty() => {
            if reset {
                change(TableAction::Reset)
            } else {
                Ok(None)
            }
        }
        Some(st) => {
            let column = |n: &str| {
                now.schema
                    .columns
                    .iter()
                    .find(|c| c.name == n)
                    .cloned()
                    .ok_or_else(|| format!("column {n} is not published"))
            };
            let mut out = Vec::new();
            for s in st {
                out.push(match s {
                    Step::Add(n) => AlterStep::Add(column(&n)?),
                    Step::Widen(n) => AlterStep::Alter(column(&n)?),
                    Step::Drop(n) => AlterStep::Drop(n),
                });
            }
            change(TableAction::Alter { steps: out, reset })
        }
        None if copy.reload.is_some() => change(TableAction::Create),
        None => Err(format!(
            "the copy's {} ({was}) cannot become ({published}) in place, and its rows were not staged whole",
            now.schema.name
        )),
    }
}

/// A value of a column of type `from` as a column of the wider type `to`
/// holds it (a decimal's scale grows, a real becomes a float).
fn widen_value(v: Value, to: &ColumnType) -> Value {
    match (v, to.decimal_scale()) {
        (Value::Decimal(d), Some(s)) if s > d.scale => Value::Decimal(Decimal {
            mantissa: d.mantissa * 10i128.pow(u32::from(s - d.scale)),
            scale: s,
        }),
        (Value::Real(f), _) if *to == ColumnType::Float => Value::Float(f64::from(f)),
        (v, _) => v,
    }
}

/// A staged op of a table published as `old`, rewritten for the table now
/// published as `new`: values of the columns that stay (widened where the
/// type grew), NULL for columns added, none for columns dropped. Deletes
/// (keys) stay as they are: a key change re-sends the table instead.
pub fn convert_op(op: &[u8], old: &TableInfo, new: &TableInfo) -> Result<Vec<u8>, BadOp> {
    match Op::decode(op, old)? {
        Op::Delete(k) => Ok(Op::Delete(k).encode()),
        Op::Upsert(vals) => {
            let row = new
                .schema
                .columns
                .iter()
                .map(|c| {
                    old.schema
                        .columns
                        .iter()
                        .position(|o| o.name == c.name)
                        .map(|i| widen_value(vals[i].clone(), &c.ty))
                        .unwrap_or(Value::Null)
                })
                .collect();
            Ok(Op::Upsert(row).encode())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> PublishedColumn {
        PublishedColumn {
            name: name.into(),
            ty: ColumnType::parse(ty).unwrap(),
            nullable,
            collation: None,
            mask: None,
            id: None,
        }
    }

    fn schema(cols: Vec<PublishedColumn>) -> PublishedSchema {
        PublishedSchema {
            columns: cols,
            key: vec!["Id".into()],
            masks_recorded: true,
        }
    }

    #[test]
    fn widenings_are_told_from_other_changes() {
        let w = |a: &str, b: &str| widens(&col("C", a, true), &col("C", b, true));
        for (a, b) in [
            ("varchar(50)", "varchar(200)"),
            ("varchar(50)", "varchar(max)"),
            ("nvarchar(10)", "nvarchar(10)"),
            ("int", "bigint"),
            ("tinyint", "int"),
            ("decimal(9,2)", "decimal(12,2)"),
            ("decimal(9,2)", "decimal(12,4)"),
            ("datetime2(3)", "datetime2(7)"),
            ("char(3)", "char(6)"),
            ("real", "float"),
        ] {
            assert!(w(a, b), "{a} -> {b}");
        }
        for (a, b) in [
            ("varchar(200)", "varchar(50)"),
            ("varchar(max)", "varchar(50)"),
            ("bigint", "int"),
            ("decimal(9,2)", "decimal(9,4)"),
            ("int", "varchar(20)"),
            ("varchar(20)", "nvarchar(20)"),
            ("datetime2(7)", "datetime2(3)"),
        ] {
            assert!(!w(a, b), "{a} -> {b}");
        }
        assert!(widens(&col("C", "int", false), &col("C", "int", true)));
        assert!(!widens(&col("C", "int", true), &col("C", "int", false)));
        let mut cs = col("C", "varchar(10)", true);
        cs.collation = Some("Finnish_Swedish_CS_AS".into());
        assert!(!widens(&col("C", "varchar(10)", true), &cs));
    }

    #[test]
    fn in_place_steps_or_none() {
        let copy = schema(vec![
            col("Id", "int", false),
            col("Namn", "varchar(50)", true),
            col("Gammal", "int", true),
        ]);
        let now = schema(vec![
            col("Id", "int", false),
            col("Namn", "varchar(200)", true),
            col("Ny", "int", true),
        ]);
        assert_eq!(
            steps(&copy, &now),
            Some(vec![
                Step::Widen("Namn".into()),
                Step::Drop("Gammal".into()),
                Step::Add("Ny".into())
            ])
        );
        assert_eq!(steps(&copy, &copy), Some(vec![]));
        // A NOT NULL column added, a key widened, a narrowing, a reorder.
        let mut nn = now.clone();
        nn.columns[2].nullable = false;
        assert_eq!(steps(&copy, &nn), None);
        let mut key = copy.clone();
        key.columns[0].ty = ColumnType::BigInt;
        assert_eq!(steps(&copy, &key), None);
        assert_eq!(steps(&now, &copy), None);
        let mut reordered = copy.clone();
        reordered.columns.swap(1, 2);
        assert_eq!(steps(&copy, &reordered), None);
        // A rename is a drop and an add.
        let mut renamed = copy.clone();
        renamed.columns[2].name = "Nyare".into();
        assert_eq!(
            steps(&copy, &renamed),
            Some(vec![Step::Drop("Gammal".into()), Step::Add("Nyare".into())])
        );
    }

    #[test]
    fn a_later_change_merges_into_one_not_yet_delivered() {
        let c = CopyTable {
            schema: None,
            reload: Some(Reload::Reset),
            why: vec!["a".into()],
        };
        let m = c.merge(Some(Reload::Create), "b").merge(None, "a");
        assert_eq!(m.reload, Some(Reload::Create));
        assert_eq!(m.why, vec!["a".to_string(), "b".to_string()]);
    }
}
