//! SELECT: translation to SQLite, parameters, and result columns typed as
//! SQL Server would type them.

use super::catalog::TableDef;
use super::errors::*;
use super::session::*;
use super::translate::Rewriter;
use super::{catalog, ct, translate};
use crate::collation::Collation;
use crate::error::SqlError;
use crate::tds::token::Column;
use crate::types::{from_storage, to_storage, Len, SqlType, Value};
use rusqlite::types::{Value as SqliteValue, ValueRef};
use sqlparser::ast::{Query, SetExpr};
use std::collections::HashMap;

impl Session {
    pub(super) fn run_query(&mut self, mut q: Query, out: &mut Vec<Out>) -> Result<u64, SqlError> {
        let view = self.view();
        let (sql, hints, info_views) = {
            let res = self.resolver();
            let mut rw = Rewriter::new(&res, &view);
            rw.rewrite(&mut q)?;
            let hints = if translate::projection_is_explicit(&q) {
                translate::projection_hints(&rw, &q)
            } else {
                vec![]
            };
            let sql = rw.finish_sql(q.to_string());
            let info = sql.contains("\"INFORMATION_SCHEMA.");
            (sql, hints, info)
        };
        if let SetExpr::Select(sel) = q.body.as_ref() {
            if sel.into.is_some() {
                return Err(SqlError::unsupported("SELECT ... INTO"));
            }
        }
        let (columns, rows) = self.select(&sql, &hints, info_views)?;
        let n = rows.len() as u64;
        out.push(Out::Rows { columns, rows });
        Ok(n)
    }

    pub(super) fn bind_params(&self, stmt: &mut rusqlite::Statement<'_>) -> Result<(), SqlError> {
        for i in 1..=stmt.parameter_count() {
            let Some(name) = stmt.parameter_name(i).map(str::to_string) else {
                return Err(SqlError::unsupported("positional '?' parameters"));
            };
            let Some((ty, v)) = self.vars.get(&name.to_lowercase()) else {
                return Err(SqlError::new(
                    137,
                    15,
                    format!("Must declare the scalar variable \"{name}\"."),
                ));
            };
            let sv = to_storage(v, ty);
            stmt.raw_bind_parameter(i, sv)
                .map_err(catalog::sqlite_err)?;
        }
        Ok(())
    }

    /// Runs a SELECT and types its columns: from the catalog column it comes
    /// from, else from the rewriter's hint, else from the values.
    pub(super) fn select(
        &self,
        sql: &str,
        hints: &[Option<SqlType>],
        information_schema: bool,
    ) -> Result<(Vec<Column>, Vec<Vec<Value>>), SqlError> {
        let changetable = sql.contains("\"__sim_ctq_");
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| map_sqlite(e, None, &self.database, "SELECT"))?;
        self.bind_params(&mut stmt)?;
        let ncols = stmt.column_count();
        let mut columns: Vec<Traced> = Vec::with_capacity(ncols);
        {
            let meta: Vec<_> = stmt.columns_with_metadata().collect();
            let mut table_cache: HashMap<String, Option<TableDef>> = HashMap::new();
            for (i, m) in meta.iter().enumerate() {
                let name = m.name().to_string();
                let mut ty = None;
                let mut nullable = true;
                let mut identity = false;
                let mut collation = None;
                let mut source_table = None;
                if let (Some(db), Some(table), Some(origin)) =
                    (m.database_name(), m.table_name(), m.origin_name())
                {
                    let side_of = table
                        .strip_prefix(ct::SIDE_PREFIX)
                        .and_then(|id| id.parse::<i64>().ok());
                    if let Some(object_id) = side_of {
                        // A key column of a CHANGETABLE(CHANGES ...) source.
                        if let Ok(Some(def)) =
                            catalog::load_table_by_object_id(&self.conn, object_id)
                        {
                            if let Some(c) = def.column(origin) {
                                ty = Some(c.ty);
                                collation = c.collation;
                            }
                        }
                    } else if table.starts_with("__sim_") {
                        ty = Some(catalog::internal_column_type(origin));
                        nullable = false;
                    } else {
                        let def = table_cache
                            .entry(format!("{db}/{table}"))
                            .or_insert_with(|| {
                                if db == "temp" {
                                    self.temp
                                        .values()
                                        .find(|t| t.sqlite_name() == table)
                                        .cloned()
                                } else {
                                    let (s, n) = table.split_once('.').unwrap_or(("dbo", table));
                                    catalog::load_table(&self.conn, s, n).ok().flatten()
                                }
                            })
                            .clone();
                        if let Some(c) = def.as_ref().and_then(|d| d.column(origin)) {
                            ty = Some(c.ty);
                            nullable = c.nullable;
                            identity = c.identity;
                            collation = c.collation;
                            source_table = def.as_ref().map(|d| d.display_name());
                        }
                    }
                }
                // A column traced to a table keeps that column's type; otherwise
                // the rewriter's static type of the expression, if it has one.
                if ty.is_none() {
                    ty = hints.get(i).copied().flatten();
                }
                if ty.is_none() && changetable {
                    ty = ct::system_column_type(&name);
                }
                if ty.is_none() {
                    if information_schema {
                        ty = Some(catalog::information_schema_column_type(&name));
                    }
                }
                columns.push(Traced {
                    name,
                    ty,
                    nullable,
                    identity,
                    collation,
                    table: source_table,
                });
            }
        }
        let mut raw_rows: Vec<Vec<SqliteValue>> = Vec::new();
        {
            let mut rows = stmt.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        let mut r = Vec::with_capacity(ncols);
                        for i in 0..ncols {
                            let v: ValueRef<'_> = row.get_ref(i).map_err(catalog::sqlite_err)?;
                            r.push(match v {
                                ValueRef::Null => SqliteValue::Null,
                                ValueRef::Integer(i) => SqliteValue::Integer(i),
                                ValueRef::Real(f) => SqliteValue::Real(f),
                                ValueRef::Text(t) => {
                                    SqliteValue::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                ValueRef::Blob(b) => SqliteValue::Blob(b.to_vec()),
                            });
                        }
                        raw_rows.push(r);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(map_sqlite(e, None, &self.database, "SELECT")),
                }
            }
        }
        let cols: Vec<Column> = columns
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let Traced {
                    name,
                    ty,
                    nullable,
                    identity,
                    collation,
                    table,
                } = t;
                let ty = ty.unwrap_or_else(|| {
                    let vals: Vec<&SqliteValue> = raw_rows.iter().map(|r| &r[i]).collect();
                    infer_from_values(&vals)
                });
                Column {
                    name,
                    ty,
                    nullable,
                    identity,
                    // A computed string takes the database's collation.
                    collation: collation.unwrap_or(self.collation),
                    table,
                }
            })
            .collect();
        let mut rows = Vec::with_capacity(raw_rows.len());
        for r in &raw_rows {
            let mut vals = Vec::with_capacity(ncols);
            for (c, v) in cols.iter().zip(r) {
                vals.push(from_storage(ValueRef::from(v), &c.ty)?);
            }
            rows.push(vals);
        }
        Ok((cols, rows))
    }
}

/// What is known of a result column before its values are seen.
struct Traced {
    name: String,
    ty: Option<SqlType>,
    nullable: bool,
    identity: bool,
    collation: Option<Collation>,
    table: Option<String>,
}

/// Infers a type from values when nothing else is known.
pub(super) fn infer_from_values(values: &[&SqliteValue]) -> SqlType {
    let mut ty: Option<SqlType> = None;
    for v in values {
        let t = match v {
            SqliteValue::Null => continue,
            SqliteValue::Integer(i) => {
                if i32::try_from(*i).is_ok() {
                    SqlType::Int
                } else {
                    SqlType::BigInt
                }
            }
            SqliteValue::Real(_) => SqlType::Float,
            SqliteValue::Text(s) => {
                if s.encode_utf16().count() > 4000 {
                    SqlType::NVarChar(Len::Max)
                } else {
                    SqlType::NVarChar(Len::N(4000))
                }
            }
            SqliteValue::Blob(b) => {
                if b.len() > 8000 {
                    SqlType::VarBinary(Len::Max)
                } else {
                    SqlType::VarBinary(Len::N(8000))
                }
            }
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(SqlType::Int), SqlType::BigInt) => SqlType::BigInt,
            (Some(SqlType::Int | SqlType::BigInt), SqlType::Float) => SqlType::Float,
            (Some(SqlType::NVarChar(_)), SqlType::NVarChar(Len::Max)) => {
                SqlType::NVarChar(Len::Max)
            }
            (Some(SqlType::VarBinary(_)), SqlType::VarBinary(Len::Max)) => {
                SqlType::VarBinary(Len::Max)
            }
            (Some(prev), _) => prev,
        });
    }
    ty.unwrap_or(SqlType::Int)
}
