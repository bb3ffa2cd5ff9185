//! INSERT, UPDATE, DELETE and TRUNCATE TABLE, with SQL Server's
//! conversions, constraint errors and change tracking.

use super::catalog::{q, ColumnDef, TableDef};
use super::errors::*;
use super::names::*;
use super::session::*;
use super::translate::Rewriter;
use super::{catalog, ct};
use crate::error::SqlError;
use crate::types::SqlType;
use sqlparser::ast::{
    AssignmentTarget, Expr, FromTable, JoinConstraint, JoinOperator, ObjectName, SetExpr,
    TableFactor, TableObject, UpdateTableFromKind,
};

impl Session {
    /// Runs one INSERT/UPDATE/DELETE. Outside a transaction the statement
    /// is its own transaction, so that the change tracking version it draws
    /// commits with it.
    pub(super) fn dml(
        &mut self,
        f: impl FnOnce(&mut Session) -> Result<u64, SqlError>,
    ) -> Result<u64, SqlError> {
        let auto = self.tran.count == 0;
        if auto {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
        }
        ct::begin_statement(&self.ct_stmt, self.ct_context.take(), None);
        self.dbts_start = None;
        let r = f(self).and_then(|n| {
            // The rowversions this statement drew (`draw_rowversions`):
            // @@DBTS now.
            if let Some(start) = self.dbts_start.take() {
                let now = self.rowversion.load(std::sync::atomic::Ordering::SeqCst);
                if now != start {
                    catalog::set_option(&self.conn, "dbts", &now.to_string())
                        .map_err(catalog::sqlite_err)?;
                }
            }
            Ok(n)
        });
        ct::end_statement(&self.ct_stmt);
        if !auto {
            return r;
        }
        let r = r.and_then(|n| {
            ct::on_commit(&self.conn, &self.now_text())?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))?;
            Ok(n)
        });
        if r.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        r
    }

    /// Executes a write statement built by this module, in a savepoint so it
    /// is atomic, and returns the rows it changed.
    pub(super) fn write(
        &self,
        sql: &str,
        table: Option<&TableDef>,
        verb: &str,
    ) -> Result<u64, SqlError> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| map_sqlite(e, table, &self.database, verb))?;
        self.bind_params(&mut stmt)?;
        match stmt.raw_execute() {
            Ok(n) => Ok(n as u64),
            Err(e) if e.to_string().contains("FOREIGN KEY constraint failed") => Err(self
                .foreign_key_conflict(&mut stmt, table, verb)
                .unwrap_or_else(|| map_sqlite(e, table, &self.database, verb))),
            Err(e) => Err(map_sqlite(e, table, &self.database, verb)),
        }
    }

    /// SQL Server's error 547 for a write SQLite refused with "FOREIGN KEY
    /// constraint failed", which does not say which constraint: the
    /// statement runs again in a savepoint with the check deferred,
    /// `PRAGMA foreign_key_check` names the table and the constraint the
    /// rows it left break, and the savepoint is rolled back. A row of the
    /// statement's own table that references nothing breaks its FOREIGN KEY
    /// constraint (named with the referenced table and column); a row of
    /// another table, or any row after a DELETE, that references what the
    /// statement removed breaks that table's constraint, which SQL Server
    /// calls the REFERENCE constraint (named with the referencing table and
    /// column). The column is named when the key has one column. None
    /// when the constraint cannot be found (the caller falls back).
    fn foreign_key_conflict(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        table: Option<&TableDef>,
        verb: &str,
    ) -> Option<SqlError> {
        self.conn
            .execute_batch("SAVEPOINT __sim_fk; PRAGMA defer_foreign_keys = ON")
            .ok()?;
        let found = (|| -> Option<(String, i64)> {
            stmt.raw_execute().ok()?;
            self.conn
                .query_row("PRAGMA foreign_key_check", [], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(3)?))
                })
                .ok()
        })();
        let _ = self.conn.execute_batch(
            "ROLLBACK TO __sim_fk; RELEASE __sim_fk; PRAGMA defer_foreign_keys = OFF",
        );
        let (child, fk_id) = found?;
        let mut from = Vec::new();
        let mut list = self
            .conn
            .prepare(&format!("PRAGMA foreign_key_list({})", q(&child)))
            .ok()?;
        let mut rows = list.query([]).ok()?;
        while let Some(r) = rows.next().ok()? {
            if r.get::<_, i64>(0).ok()? == fk_id {
                from.push((r.get::<_, i64>(1).ok()?, r.get::<_, String>(3).ok()?));
            }
        }
        from.sort();
        let from: Vec<String> = from.into_iter().map(|(_, c)| c).collect();
        let (schema, name) = child.split_once('.')?;
        let def = catalog::load_table(&self.conn, schema, name).ok()??;
        let fk = def.foreign_keys.iter().find(|f| {
            f.columns.len() == from.len()
                && f.columns
                    .iter()
                    .zip(&from)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })?;
        let own = table.is_some_and(|t| t.object_id == def.object_id);
        let (kind, where_, cols) = if own && verb != "DELETE" {
            (
                "FOREIGN KEY",
                format!("{}.{}", fk.ref_schema, fk.ref_table),
                &fk.ref_columns,
            )
        } else {
            ("REFERENCE", def.display_name(), &fk.columns)
        };
        let column = match cols.as_slice() {
            [one] => format!(", column '{one}'"),
            _ => String::new(),
        };
        Some(SqlError::new(
            547,
            16,
            format!(
                "The {verb} statement conflicted with the {kind} constraint \"{}\". The conflict occurred in database \"{}\", table \"{where_}\"{column}.",
                fk.name, self.database
            ),
        ))
    }

    pub(super) fn atomic<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        self.conn
            .execute_batch("SAVEPOINT __sim_stmt")
            .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE __sim_stmt")
                    .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO __sim_stmt; RELEASE __sim_stmt");
                Err(e)
            }
        }
    }

    // ------------------------------------------------------------------ DML

    /// Before a statement writes a table with a timestamp column: the
    /// counter starts from the database's @@DBTS (only then is it read, so
    /// other writes cost nothing). Values this session drew in a
    /// transaction that rolled back are not given again (@@DBTS went back).
    pub(super) fn draw_rowversions(&mut self, def: &TableDef) -> Result<(), SqlError> {
        if self.dbts_start.is_some() || !def.columns.iter().any(|c| c.ty == SqlType::RowVersion) {
            return Ok(());
        }
        let counter = self.rowversion.load(std::sync::atomic::Ordering::SeqCst);
        let dbts = catalog::dbts(&self.conn)?.max(counter);
        self.rowversion
            .store(dbts, std::sync::atomic::Ordering::SeqCst);
        self.dbts_start = Some(dbts);
        Ok(())
    }

    pub(super) fn conv_expr(def: &TableDef, col: &ColumnDef, expr: &str) -> String {
        format!(
            "__sim_conv({expr}, '{}', '{}', '{}')",
            col.ty,
            def.display_name().replace('\'', "''"),
            col.name.replace('\'', "''")
        )
    }

    pub(super) fn insert(&mut self, ins: sqlparser::ast::Insert) -> Result<u64, SqlError> {
        if ins.output.is_some() || ins.returning.is_some() {
            return Err(SqlError::unsupported("INSERT ... OUTPUT"));
        }
        let name = match &ins.table {
            TableObject::TableName(n) => n.clone(),
            _ => return Err(SqlError::unsupported("INSERT into a table function")),
        };
        let view = self.view();
        let (def, source_sql, target_cols) = {
            let res = self.resolver();
            let def = res.resolve_table(&name)?;
            res.require(&def, "INSERT")?;
            let target_cols: Vec<ColumnDef> = if ins.columns.is_empty() {
                def.columns
                    .iter()
                    .filter(|c| !c.identity || self.identity_insert == Some(def.object_id))
                    .filter(|c| c.ty != SqlType::RowVersion && c.computed.is_none())
                    .cloned()
                    .collect()
            } else {
                let mut v = Vec::new();
                for c in &ins.columns {
                    let n = column_name_of(c);
                    let cd = def.column(&n).ok_or_else(|| SqlError::invalid_column(&n))?;
                    if cd.computed.is_some() {
                        return Err(computed_written(&cd.name));
                    }
                    if cd.ty == SqlType::RowVersion {
                        return Err(SqlError::new(273, 16, "Cannot insert an explicit value into a timestamp column. Use INSERT with a column list to exclude the timestamp column, or insert a DEFAULT into the timestamp column."));
                    }
                    if v.iter().any(|x: &ColumnDef| x.column_id == cd.column_id) {
                        return Err(SqlError::new(264, 16, format!("The column name '{}' is specified more than once in the SET clause or column list of an INSERT. A column cannot be assigned more than one value in the same clause. Modify the clause to make sure that a column is updated only once.", cd.name)));
                    }
                    v.push(cd.clone());
                }
                v
            };
            if target_cols.iter().any(|c| c.identity) && self.identity_insert != Some(def.object_id)
            {
                {
                    return Err(SqlError::new(
                        544,
                        16,
                        format!("Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.", def.name),
                    ));
                }
            }
            let source_sql = match ins.source {
                None => None,
                Some(mut src) => {
                    if let SetExpr::Values(v) = src.body.as_ref() {
                        for row in &v.rows {
                            if row.len() > target_cols.len() {
                                return Err(SqlError::new(110, 15, "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement."));
                            }
                            if row.len() < target_cols.len() {
                                return Err(SqlError::new(109, 15, "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement."));
                            }
                        }
                    }
                    let mut rw = Rewriter::new(&res, &view);
                    rw.rewrite(src.as_mut())?;
                    Some((src.to_string(), rw.ct_ctes()))
                }
            };
            (def, source_sql, target_cols)
        };
        self.draw_rowversions(&def)?;
        let table = q(&def.sqlite_name());
        let sql = match source_sql {
            None => format!("INSERT INTO {table} DEFAULT VALUES"),
            Some((src, ct_ctes)) => {
                let ct_ctes = ct_ctes.map(|c| format!("{c}, ")).unwrap_or_default();
                let src_cols: Vec<String> = (1..=target_cols.len())
                    .map(|i| format!("\"__c{i}\""))
                    .collect();
                let convs: Vec<String> = target_cols
                    .iter()
                    .zip(&src_cols)
                    .map(|(c, s)| Self::conv_expr(&def, c, s))
                    .collect();
                let names: Vec<String> = target_cols.iter().map(|c| q(&c.name)).collect();
                format!(
                    "WITH {ct_ctes}\"__src\"({}) AS ({src}) INSERT INTO {table} ({}) SELECT {} FROM \"__src\"",
                    src_cols.join(", "),
                    names.join(", "),
                    convs.join(", ")
                )
            }
        };
        let n = self.write(&sql, Some(&def), "INSERT")?;
        if def.columns.iter().any(|c| c.identity) && n > 0 {
            self.last_identity = Some(self.conn.last_insert_rowid());
        }
        Ok(n)
    }

    pub(super) fn update(&mut self, upd: sqlparser::ast::Update) -> Result<u64, SqlError> {
        if upd.output.is_some() || upd.returning.is_some() {
            return Err(SqlError::unsupported("UPDATE ... OUTPUT"));
        }
        if !upd.table.joins.is_empty() {
            return Err(SqlError::syntax_near("JOIN"));
        }
        let view = self.view();
        let res = self.resolver();
        let mut rw = Rewriter::new(&res, &view);
        let TableFactor::Table {
            name: target_name,
            alias: target_alias,
            ..
        } = &upd.table.relation
        else {
            return Err(SqlError::unsupported("UPDATE of a derived table"));
        };
        let target_ref = column_name_of(target_name);
        // T-SQL's UPDATE alias SET ... FROM t alias JOIN ...: find the target in FROM.
        let from = match upd.from {
            Some(UpdateTableFromKind::AfterSet(f)) | Some(UpdateTableFromKind::BeforeSet(f)) => f,
            None => vec![],
        };
        let mut extra_from: Vec<String> = vec![];
        let mut extra_where: Vec<Expr> = vec![];
        // UPDATE needs SELECT too when it reads the table (a WHERE, a join).
        let reads = upd.selection.is_some() || !from.is_empty();
        let (def, alias) = if from.is_empty() {
            let def = res.resolve_table(target_name)?;
            let alias = target_alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| def.name.clone());
            (def, alias)
        } else {
            let mut from = from;
            // The target is the first table of FROM whose alias or name matches.
            let first = &from[0].relation;
            let matches = match first {
                TableFactor::Table { name, alias, .. } => {
                    alias
                        .as_ref()
                        .map(|a| a.name.value.eq_ignore_ascii_case(&target_ref))
                        .unwrap_or(false)
                        || column_name_of(name).eq_ignore_ascii_case(&target_ref)
                }
                _ => false,
            };
            if !matches {
                return Err(SqlError::unsupported(
                    "UPDATE ... FROM where the target is not the first table of FROM",
                ));
            }
            let TableFactor::Table { name, alias, .. } = first.clone() else {
                unreachable!()
            };
            let def = res.resolve_table(&name)?;
            let alias = alias
                .map(|a| a.name.value)
                .unwrap_or_else(|| def.name.clone());
            let twj = from.remove(0);
            let mut rest_rel = Vec::new();
            for j in twj.joins {
                match j.join_operator {
                    JoinOperator::Join(JoinConstraint::On(on))
                    | JoinOperator::Inner(JoinConstraint::On(on)) => {
                        rest_rel.push(j.relation);
                        extra_where.push(on);
                    }
                    _ => return Err(SqlError::unsupported("UPDATE ... FROM with outer joins")),
                }
            }
            for mut tf in rest_rel {
                rw.rewrite(&mut tf)?;
                extra_from.push(tf.to_string());
            }
            for mut t in from {
                rw.rewrite(&mut t)?;
                extra_from.push(t.to_string());
            }
            (def, alias)
        };
        res.require(&def, "UPDATE")?;
        if reads {
            res.require(&def, "SELECT")?;
        }
        rw.scope.insert(alias.to_lowercase(), def.clone());
        let mut sets = Vec::new();
        // Each set column's new value (SQL), for `update_by_reinsert`.
        let mut new_values: Vec<(i32, String)> = Vec::new();
        let mut set_ids: Vec<i32> = Vec::new();
        let mut key_set = false;
        for a in upd.assignments {
            let col_name = match &a.target {
                AssignmentTarget::ColumnName(n) => column_name_of(n),
                AssignmentTarget::Tuple(_) => return Err(SqlError::syntax_near("(")),
            };
            let col = def
                .column(&col_name)
                .ok_or_else(|| SqlError::invalid_column(&col_name))?
                .clone();
            if col.identity {
                return Err(SqlError::new(
                    8102,
                    16,
                    format!("Cannot update identity column '{}'.", col.name),
                ));
            }
            if col.ty == SqlType::RowVersion {
                return Err(SqlError::new(272, 16, "Cannot update a timestamp column."));
            }
            if col.computed.is_some() {
                return Err(computed_written(&col.name));
            }
            if !set_ids.contains(&col.column_id) {
                set_ids.push(col.column_id);
            }
            key_set |= def.pk.iter().any(|k| k.eq_ignore_ascii_case(&col.name));
            let mut v = a.value;
            rw.rewrite(&mut v)?;
            let value = Self::conv_expr(&def, &col, &v.to_string());
            sets.push(format!("{} = {}", q(&col.name), value));
            new_values.push((col.column_id, value));
        }
        // Every update of a row gives its timestamp column a new value.
        if let Some(rv) = def.columns.iter().find(|c| c.ty == SqlType::RowVersion) {
            sets.push(format!("{} = __sim_next_rowversion()", q(&rv.name)));
        }
        let mut conds = Vec::new();
        for mut e in extra_where {
            rw.rewrite(&mut e)?;
            conds.push(format!("({e})"));
        }
        if let Some(mut w) = upd.selection {
            rw.rewrite(&mut w)?;
            conds.push(format!("({w})"));
        }
        let mut sql = format!(
            "UPDATE {} AS {} SET {}",
            q(&def.sqlite_name()),
            q(&alias),
            sets.join(", ")
        );
        let mut tail = String::new();
        if !extra_from.is_empty() {
            tail.push_str(&format!(" FROM {}", extra_from.join(", ")));
        }
        if !conds.is_empty() {
            tail.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        sql.push_str(&tail);
        let sql = rw.finish_sql(sql);
        // The rows as the UPDATE makes them, read before it changes any:
        // what `update_by_reinsert` writes back.
        let kept: Vec<&ColumnDef> = def
            .columns
            .iter()
            .filter(|c| c.computed.is_none() && c.ty != SqlType::RowVersion)
            .collect();
        let select = rw.finish_sql(format!(
            "SELECT {}.rowid AS \"__rid\", {} FROM {} AS {}{tail}",
            q(&alias),
            kept.iter()
                .map(|c| {
                    let v = new_values
                        .iter()
                        .find(|(id, _)| *id == c.column_id)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| format!("{}.{}", q(&alias), q(&c.name)));
                    format!("{v} AS {}", q(&c.name))
                })
                .collect::<Vec<_>>()
                .join(", "),
            q(&def.sqlite_name()),
            q(&alias)
        ));
        drop(rw);
        self.draw_rowversions(&def)?;
        ct::set_update(&self.ct_stmt, def.object_id, set_ids, key_set);
        match self.write(&sql, Some(&def), "UPDATE") {
            // SQLite checks a key row by row; SQL Server at the statement's
            // end, so `SET id = id + 1` over consecutive keys succeeds there.
            Err(e) if matches!(e.number, 2627 | 2601) && key_set => {
                let referenced = !catalog::referencing_tables(&self.conn, def.object_id)
                    .map_err(catalog::sqlite_err)?
                    .is_empty();
                if referenced || def.temp {
                    return Err(e);
                }
                self.update_by_reinsert(&def, &kept, &select)
            }
            r => r,
        }
    }

    /// An UPDATE of key columns done as SQL Server checks it, at the end of
    /// the statement: the rows as the UPDATE makes them are read first,
    /// then deleted and inserted again, so that only the final keys are
    /// checked (a duplicate among them is still 2627). Change tracking sees
    /// a key update as SQL Server reports it, a delete and an insert. Not
    /// used for a table other tables reference (their foreign keys would
    /// see the delete), which keeps the row-by-row check.
    fn update_by_reinsert(
        &mut self,
        def: &TableDef,
        kept: &[&ColumnDef],
        select: &str,
    ) -> Result<u64, SqlError> {
        let table = q(&def.sqlite_name());
        let cols = kept
            .iter()
            .map(|c| q(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        ct::set_update(&self.ct_stmt, def.object_id, vec![], false);
        self.atomic(|s| {
            s.write(
                &format!("CREATE TEMP TABLE \"__sim_upd\" AS {select}"),
                Some(def),
                "UPDATE",
            )?;
            let r = (|| {
                s.write(
                    &format!("DELETE FROM {table} WHERE rowid IN (SELECT \"__rid\" FROM temp.\"__sim_upd\")"),
                    Some(def),
                    "UPDATE",
                )?;
                s.write(
                    &format!("INSERT INTO {table} ({cols}) SELECT {cols} FROM temp.\"__sim_upd\""),
                    Some(def),
                    "UPDATE",
                )
            })();
            let _ = s.conn.execute_batch("DROP TABLE IF EXISTS temp.\"__sim_upd\"");
            r
        })
    }

    pub(super) fn delete(&mut self, del: sqlparser::ast::Delete) -> Result<u64, SqlError> {
        if del.output.is_some() || del.returning.is_some() {
            return Err(SqlError::unsupported("DELETE ... OUTPUT"));
        }
        if del.limit.is_some() || !del.order_by.is_empty() || del.using.is_some() {
            return Err(SqlError::unsupported("DELETE TOP / ORDER BY / USING"));
        }
        let view = self.view();
        let res = self.resolver();
        let mut rw = Rewriter::new(&res, &view);
        let from = match del.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        let (def, sql) = if del.tables.is_empty() {
            if from.len() != 1 || !from[0].joins.is_empty() {
                return Err(SqlError::syntax_near("JOIN"));
            }
            let TableFactor::Table { name, alias, .. } = &from[0].relation else {
                return Err(SqlError::unsupported("DELETE from a derived table"));
            };
            let def = res.resolve_table(name)?;
            res.require(&def, "DELETE")?;
            if del.selection.is_some() {
                res.require(&def, "SELECT")?;
            }
            let alias = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| def.name.clone());
            rw.scope.insert(alias.to_lowercase(), def.clone());
            let mut sql = format!("DELETE FROM {} AS {}", q(&def.sqlite_name()), q(&alias));
            if let Some(mut w) = del.selection {
                rw.rewrite(&mut w)?;
                sql.push_str(&format!(" WHERE {w}"));
            }
            (def, sql)
        } else {
            // DELETE t FROM <from> WHERE ...: delete the rows of t that the FROM yields.
            if del.tables.len() != 1 {
                return Err(SqlError::syntax_near(","));
            }
            let target = column_name_of(&del.tables[0]);
            let mut found: Option<(TableDef, String)> = None;
            let mut from = from;
            for twj in from.iter() {
                let rels =
                    std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation));
                for r in rels {
                    if let TableFactor::Table { name, alias, .. } = r {
                        let a = alias
                            .as_ref()
                            .map(|a| a.name.value.clone())
                            .unwrap_or_else(|| column_name_of(name));
                        if a.eq_ignore_ascii_case(&target) {
                            found = Some((res.resolve_table(name)?, a));
                        }
                    }
                }
            }
            let Some((def, alias)) = found else {
                return Err(SqlError::invalid_object(&target));
            };
            res.require(&def, "DELETE")?;
            for twj in from.iter_mut() {
                rw.rewrite(twj)?;
            }
            let from_sql: Vec<String> = from.iter().map(|t| t.to_string()).collect();
            let mut inner = format!("SELECT {}.rowid FROM {}", q(&alias), from_sql.join(", "));
            if let Some(mut w) = del.selection {
                rw.rewrite(&mut w)?;
                inner.push_str(&format!(" WHERE {w}"));
            }
            let sql = format!(
                "DELETE FROM {} WHERE rowid IN ({inner})",
                q(&def.sqlite_name())
            );
            (def, sql)
        };
        let sql = rw.finish_sql(sql);
        drop(rw);
        self.write(&sql, Some(&def), "DELETE")
    }

    pub(super) fn truncate(&mut self, name: &ObjectName) -> Result<(), SqlError> {
        let def = {
            let res = self.resolver();
            res.resolve_table(name)?
        };
        if !def.temp {
            let refs = catalog::referencing_tables(&self.conn, def.object_id)
                .map_err(catalog::sqlite_err)?;
            if !refs.is_empty() {
                return Err(SqlError::new(
                    4712,
                    16,
                    format!("Cannot truncate table '{}' because it is being referenced by a FOREIGN KEY constraint.", def.display_name()),
                ));
            }
        }
        self.atomic(|s| {
            s.write(
                &format!("DELETE FROM {}", q(&def.sqlite_name())),
                Some(&def),
                "TRUNCATE",
            )?;
            let _ = s.conn.execute(
                "DELETE FROM sqlite_sequence WHERE name = ?1",
                [def.sqlite_name()],
            );
            if !def.temp {
                ct::truncated(&s.conn, def.object_id)?;
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------------ DDL
}

/// 271: a computed column written by INSERT or UPDATE.
pub(super) fn computed_written(name: &str) -> SqlError {
    SqlError::new(
        271,
        16,
        format!("The column \"{name}\" cannot be modified because it is either a computed column or is the result of a UNION operator."),
    )
}
