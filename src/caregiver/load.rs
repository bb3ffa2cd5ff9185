//! Loading a verified-as-it-streams package into the copy, inside the
//! package's transaction (opened and committed by the caller, which commits
//! only after the reader verified the whole package).
//!
//! Rows arrive one at a time; every `CHUNK` rows of one table and section
//! are bulk-loaded into a temp table and merged with a few set-based
//! statements (`mssql::sql::target::merge_chunk`): memory stays bounded
//! whatever the package's size. A snapshot's rows, all new to a table
//! created empty in the same transaction, are bulk-loaded straight into it
//! when every column can be loaded as its own type. The first part of a snapshot (re)creates
//! the copy's tables; a delta's table changes (format 2) create, alter,
//! empty or drop one table each before any row is loaded.

use super::log::ensure_schema;
use crate::format::change::{AlterStep, TableAction};
use crate::format::package::{Kind, Manifest, SectionKind, TableSchema};
use crate::format::value::{ColumnType, Value};
use crate::mssql::client::{self, int_at, Db, DbError, Param};
use crate::mssql::sql::qualified;
use crate::mssql::sql::target as sql;

/// Rows per bulk load.
pub const CHUNK: usize = 10_000;

/// Creates (or re-creates, empty) every table of snapshot `m` in the copy.
pub fn create_tables(db: &mut Db, m: &Manifest) -> Result<(), DbError> {
    for t in &m.tables {
        let target = qualified(&t.schema.name);
        if let Some((s, _)) = t.schema.name.split_once('.') {
            ensure_schema(db, s)?;
        }
        if exists(db, &t.schema.name)? {
            db.execute(&sql::drop_table(&target))?;
        }
        db.execute(&sql::create_table(&t.schema, &target, false))?;
    }
    Ok(())
}

/// Whether the copy has table `name` (`schema.table`).
fn exists(db: &mut Db, name: &str) -> Result<bool, DbError> {
    let rows = db.rows(
        "looking for a table",
        sql::table_exists(),
        &[Param::Str(name.to_string())],
    )?;
    Ok(rows.first().and_then(|r| int_at(r, 0)).unwrap_or(0) > 0)
}

/// Makes the table changes of delta `m` (format 2) in the copy, in
/// manifest order, before any row: create (dropping a table of that name
/// first), alter step by step then empty it when it reloads, empty it,
/// or drop it. Returns what was done, one line per table, for the log.
/// Inside the package's transaction: a failure (a caregiver's own index
/// on a dropped column, say) rolls the whole package back.
pub fn change_tables(db: &mut Db, m: &Manifest) -> Result<Vec<String>, DbError> {
    let mut done = Vec::new();
    for t in &m.tables {
        let Some(change) = &t.change else { continue };
        let name = &t.schema.name;
        let target = qualified(name);
        match &change.action {
            TableAction::Create => {
                if let Some((s, _)) = name.split_once('.') {
                    ensure_schema(db, s)?;
                }
                if exists(db, name)? {
                    db.execute(&sql::drop_table(&target))?;
                }
                db.execute(&sql::create_table(&t.schema, &target, false))?;
            }
            TableAction::Alter { steps, reset } => {
                for s in steps {
                    db.execute(&match s {
                        AlterStep::Add(c) => sql::add_column(&target, c),
                        AlterStep::Alter(c) => sql::alter_column(&target, c),
                        AlterStep::Drop(n) => sql::drop_column(&target, n),
                    })?;
                }
                if *reset {
                    db.execute(&sql::truncate_table(&target))?;
                }
            }
            TableAction::Reset => db.execute(&sql::truncate_table(&target))?,
            TableAction::Drop => {
                if exists(db, name)? {
                    db.execute(&sql::drop_table(&target))?;
                }
            }
        }
        done.push(format!("{name}: {}", change.describe()));
    }
    Ok(done)
}

/// Moves chunks of one package's rows into the copy through temp tables.
pub struct Loader<'a> {
    pub db: &'a mut Db,
    seq: u64,
    temps: Vec<String>,
    created: std::collections::HashSet<(usize, bool)>,
}

impl<'a> Loader<'a> {
    /// A loader for package `seq`.
    pub fn new(db: &'a mut Db, seq: u64) -> Loader<'a> {
        Loader {
            db,
            seq,
            temps: vec![],
            created: Default::default(),
        }
    }

    /// Drops the temp tables (at the end of a package).
    pub fn finish(mut self) -> Result<(), DbError> {
        for t in std::mem::take(&mut self.temps) {
            self.db.execute(&sql::drop_table(&t))?;
        }
        Ok(())
    }
    fn stage_name(&self, table: usize, keys: bool) -> String {
        format!(
            "#ctf_{}_{}_{}",
            self.seq,
            table,
            if keys { "k" } else { "r" }
        )
    }

    /// Loads `rows` of section `kind` of table `table` and empties `rows`.
    pub fn flush(
        &mut self,
        m: &Manifest,
        table: usize,
        kind: SectionKind,
        rows: &mut Vec<Vec<Value>>,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let t = &m.tables[table].schema;
        let target = qualified(&t.name);
        let keys_only = kind == SectionKind::Deletes;
        // A snapshot's rows go into the table it created empty in this
        // transaction, each key once: straight in by bulk load, when every
        // column can be bulk-loaded as its own type (else through a stage).
        let direct = m.kind == Kind::Snapshot
            && !keys_only
            && t.columns.iter().all(|c| client::stage_type(&c.ty) == c.ty);
        if direct {
            let types: Vec<ColumnType> = t.columns.iter().map(|c| c.ty).collect();
            self.db.bulk_load(&target, &types, rows)?;
            rows.clear();
            return Ok(());
        }
        let stage = self.stage_name(table, keys_only);
        let kp = t.key_positions().unwrap_or_default();
        let mut schema_for_stage = if keys_only {
            TableSchema {
                name: t.name.clone(),
                columns: kp.iter().map(|p| t.columns[*p].clone()).collect(),
                key: t.key.clone(),
            }
        } else {
            t.clone()
        };
        if self.created.insert((table, keys_only)) {
            // The stage's string columns in the copy's columns' collations,
            // whatever the package says: the merge compares the two.
            let copy: Vec<(String, String)> = self
                .db
                .rows(
                    "reading the copy's collations",
                    sql::column_collations(),
                    &[Param::Str(t.name.clone())],
                )?
                .iter()
                .filter_map(|r| Some((client::text_at(r, 0)?, client::text_at(r, 1)?)))
                .collect();
            for c in &mut schema_for_stage.columns {
                c.collation = copy
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&c.name))
                    .map(|(_, k)| k.clone())
                    .filter(|k| crate::format::package::is_collation_name(k));
            }
            self.db
                .execute(&sql::create_table(&schema_for_stage, &stage, true))?;
            self.temps.push(stage.clone());
        }
        let types: Vec<ColumnType> = schema_for_stage
            .columns
            .iter()
            .map(|c| client::stage_type(&c.ty))
            .collect();
        self.db.bulk_load(&stage, &types, rows)?;
        let batch = sql::merge_chunk(
            t,
            &target,
            &stage,
            keys_only || m.kind == Kind::Delta,
            !keys_only,
        );
        self.db.execute(&batch)?;
        rows.clear();
        Ok(())
    }
}
