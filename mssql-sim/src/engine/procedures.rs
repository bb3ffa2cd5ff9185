//! System procedures (`sp_executesql`, `sp_prepare`, ...) and the
//! bulk-load (`INSERT BULK`) path.

use super::catalog::{q, ColumnDef};
use super::errors::*;
use super::session::*;
use super::{catalog, ct, translate};
use crate::error::SqlError;
use crate::tds::token::CMD_INSERT;
use crate::types::{to_storage, SqlType, Value};
use sqlparser::ast::{Expr, ObjectName};

impl Session {
    /// EXEC of the system procedures the simulator implements.
    pub(super) fn execute_procedure(
        &mut self,
        name: &ObjectName,
        parameters: Vec<Expr>,
        out: &mut Vec<Out>,
    ) -> Result<(), SqlError> {
        let proc = name.to_string().replace(['[', ']', '"'], "");
        let lower = proc.to_ascii_lowercase();
        // (parameter name or None, value expression)
        let mut args: Vec<(Option<String>, Expr)> = Vec::new();
        for p in parameters {
            match p {
                Expr::BinaryOp {
                    left,
                    op: sqlparser::ast::BinaryOperator::Eq,
                    right,
                } if matches!(left.as_ref(), Expr::Identifier(i) if i.value.starts_with('@')) => {
                    let Expr::Identifier(i) = *left else {
                        unreachable!()
                    };
                    args.push((Some(i.value.to_ascii_lowercase()), *right));
                }
                other => args.push((None, other)),
            }
        }
        let arg = |args: &[(Option<String>, Expr)], pos: usize, named: &str| -> Option<Expr> {
            args.iter()
                .find(|(n, _)| n.as_deref() == Some(named))
                .or_else(|| args.get(pos).filter(|(n, _)| n.is_none()))
                .map(|(_, e)| e.clone())
        };
        match lower.as_str() {
            "sys.sp_flush_ct_internal_table_on_demand" | "sp_flush_ct_internal_table_on_demand" => {
                let table = match arg(&args, 0, "@tabletoclean") {
                    Some(e) => match self.eval_scalar(e)? {
                        Value::Str(s) => Some(s),
                        Value::Null => None,
                        _ => {
                            return Err(SqlError::new(
                                8114,
                                16,
                                "Error converting data type to nvarchar.",
                            ))
                        }
                    },
                    None => None,
                };
                let only = match &table {
                    Some(t) => {
                        let def = self
                            .resolver()
                            .resolve_table(&translate::parse_object_name(t)?)?;
                        if def.temp || ct::table_tracking(&self.conn, def.object_id)?.is_none() {
                            return Err(SqlError::new(
                                22105,
                                16,
                                format!("Change tracking is not enabled on table '{t}'."),
                            ));
                        }
                        Some(def.object_id)
                    }
                    None => None,
                };
                self.before_write()?;
                let now = self.now_text();
                let deleted = self.dml(|s| ct::cleanup(&s.conn, &now, only).map(|n| n as u64))?;
                if let Some(Expr::Identifier(v)) = arg(&args, 1, "@deletedrowcount") {
                    let key = v.value.to_lowercase();
                    match self.vars.get(&key).cloned() {
                        Some((ty, _)) => {
                            let val =
                                crate::types::convert(&Value::Int(deleted as i64), &ty, None)?;
                            self.vars.insert(key, (ty, val));
                        }
                        None => {
                            return Err(SqlError::new(
                                137,
                                15,
                                format!("Must declare the scalar variable \"{}\".", v.value),
                            ))
                        }
                    }
                }
                Ok(())
            }
            "sys.sp_rename" | "sp_rename" => {
                let mut text = |pos: usize, named: &str| -> Result<Option<String>, SqlError> {
                    match arg(&args, pos, named) {
                        None => Ok(None),
                        Some(e) => match self.eval_scalar(e)? {
                            Value::Str(s) => Ok(Some(s)),
                            Value::Null => Ok(None),
                            _ => Err(SqlError::new(
                                8114,
                                16,
                                "Error converting data type to nvarchar.",
                            )),
                        },
                    }
                };
                let objname = text(0, "@objname")?;
                let newname = text(1, "@newname")?;
                let objtype = text(2, "@objtype")?;
                let (Some(objname), Some(newname)) = (objname, newname) else {
                    return Err(SqlError::new(201, 16, "Procedure or function 'sp_rename' expects parameter '@newname', which was not supplied."));
                };
                if !objtype
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("COLUMN"))
                {
                    return Err(SqlError::unsupported(
                        "sp_rename of anything but a column (@objtype = 'COLUMN')",
                    ));
                }
                self.rename_column(&objname, &newname)?;
                out.push(Out::Info(
                    15477,
                    "Caution: Changing any part of an object name could break scripts and stored procedures.".into(),
                ));
                Ok(())
            }
            "mssql_sim.advance_clock" => {
                let Some(e) = arg(&args, 0, "@seconds") else {
                    return Err(SqlError::new(201, 16, "Procedure or function 'mssql_sim.advance_clock' expects parameter '@seconds', which was not supplied."));
                };
                match self.eval_scalar(e)? {
                    Value::Int(n) => {
                        self.shared.clock.advance(n);
                        Ok(())
                    }
                    _ => Err(SqlError::new(
                        8114,
                        16,
                        "Error converting data type to bigint.",
                    )),
                }
            }
            _ if lower.starts_with("sys.")
                || lower.starts_with("sp_")
                || lower.starts_with("xp_") =>
            {
                Err(SqlError::unsupported(format!(
                    "the system procedure {proc}"
                )))
            }
            _ => Err(SqlError::new(
                2812,
                16,
                format!("Could not find stored procedure '{proc}'."),
            )),
        }
    }

    /// `sp_rename 'schema.table.column', 'new', 'COLUMN'`: the column keeps
    /// its column_id, type and values under its new name (SQLite's RENAME
    /// COLUMN rewrites the change tracking triggers with it). As SQL Server:
    /// an unknown column is 15248, a name in use 15335. Refused
    /// (unsupported): a key column of a tracked table, or a table with
    /// computed columns (whose definitions would have to be rewritten).
    fn rename_column(&mut self, objname: &str, newname: &str) -> Result<(), SqlError> {
        let ambiguous = || {
            SqlError::new(15248, 11, "Either the parameter @objname is ambiguous or the claimed @objtype (COLUMN) is wrong.")
        };
        let Some((table, column)) = objname.rsplit_once('.') else {
            return Err(ambiguous());
        };
        let column = column.trim_matches(['[', ']']).to_string();
        let name = translate::parse_object_name(table)?;
        self.require_alter(&name)?;
        let def = self
            .resolver()
            .resolve_table(&name)
            .map_err(|_| ambiguous())?;
        let Some(c) = def.column(&column).cloned() else {
            return Err(ambiguous());
        };
        if def
            .columns
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(newname) && o.column_id != c.column_id)
        {
            return Err(SqlError::new(15335, 11, format!("Error: The new name '{newname}' is already in use as a COLUMN name and would cause a duplicate that is not permitted.")));
        }
        let tracked = ct::table_tracking(&self.conn, def.object_id)?.is_some();
        if tracked && def.pk.iter().any(|k| k.eq_ignore_ascii_case(&c.name)) {
            return Err(SqlError::unsupported(
                "sp_rename of a primary key column of a change-tracked table",
            ));
        }
        if def.columns.iter().any(|o| o.computed.is_some()) {
            return Err(SqlError::unsupported(
                "sp_rename of a column of a table with computed columns",
            ));
        }
        self.before_write()?;
        let sql = format!(
            "ALTER TABLE {} RENAME COLUMN {} TO {}",
            q(&def.sqlite_name()),
            q(&c.name),
            q(newname)
        );
        self.atomic(|se| {
            se.conn.execute_batch(&sql).map_err(catalog::sqlite_err)?;
            se.conn
                .execute(
                    "UPDATE __sim_columns SET name = ?3 WHERE object_id = ?1 AND column_id = ?2",
                    rusqlite::params![def.object_id, c.column_id, newname],
                )
                .map_err(catalog::sqlite_err)?;
            Ok(())
        })
    }

    /// Loads the rows of a bulk-load message into the table named by the
    /// preceding `INSERT BULK`, converting each value to its column's type
    /// as SQL Server does; all rows or none (one statement).
    pub fn bulk_load(
        &mut self,
        columns: Vec<(String, SqlType)>,
        rows: Vec<Vec<Value>>,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let r = self.bulk_load_inner(columns, rows);
        match r {
            Ok(n) => {
                self.rowcount = n as i64;
                self.done_count(CMD_INSERT, n, &mut out);
            }
            Err(e) => {
                let abort = abort_kind(&e) == Abort::BatchAndTransaction || self.xact_abort;
                out.push(Out::Error(e));
                out.push(Out::Done {
                    cmd: 0,
                    count: None,
                    error: true,
                });
                if abort && self.tran.count > 0 {
                    self.rollback_all(&mut out);
                }
            }
        }
        out
    }

    pub(super) fn bulk_load_inner(
        &mut self,
        columns: Vec<(String, SqlType)>,
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, SqlError> {
        let Some((def, declared)) = self.bulk.take() else {
            return Err(SqlError::new(4804, 16, "While reading current row from host, a premature end-of-message was encountered--an incoming data stream was interrupted when the server expected to see more data. The host program may have terminated. Ensure that you are using a supported client application programming interface (API)."));
        };
        let bad_colid = |i: usize| {
            SqlError::new(
                4816,
                16,
                format!("Invalid column type from bcp client for colid {}.", i + 1),
            )
        };
        if columns.len() != declared.len() {
            return Err(bad_colid(columns.len().min(declared.len())));
        }
        // A column declared `max` in INSERT BULK but sent in the bulk
        // COLMETADATA as a sized type (or the other way round) is refused, as
        // SQL Server refuses it (the shape tiberius issue #322 reports).
        for (i, ((_, decl), (_, wire))) in declared.iter().zip(&columns).enumerate() {
            if let Ok(d) = SqlType::parse(decl) {
                if d.is_max() != wire.is_max() {
                    return Err(bad_colid(i));
                }
            }
        }
        let names: Vec<String> = declared.into_iter().map(|(n, _)| n).collect();
        let targets: Vec<ColumnDef> = names
            .iter()
            .map(|n| {
                def.column(n)
                    .cloned()
                    .ok_or_else(|| SqlError::invalid_column(n))
            })
            .collect::<Result<_, _>>()?;
        let cols: Vec<String> = targets.iter().map(|c| q(&c.name)).collect();
        let vals: Vec<String> = targets
            .iter()
            .enumerate()
            .map(|(i, c)| Self::conv_expr(&def, c, &format!("?{}", i + 1)))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(&def.sqlite_name()),
            cols.join(", "),
            vals.join(", ")
        );
        self.before_write()?;
        let wire_types: Vec<SqlType> = columns.iter().map(|(_, t)| *t).collect();
        self.dml(|s| {
            s.draw_rowversions(&def)?;
            s.atomic(|s| {
                let mut stmt = s
                    .conn
                    .prepare(&sql)
                    .map_err(|e| map_sqlite(e, Some(&def), &s.database, "INSERT"))?;
                let mut n = 0u64;
                for row in &rows {
                    for (i, (v, t)) in row.iter().zip(&wire_types).enumerate() {
                        stmt.raw_bind_parameter(i + 1, to_storage(v, t))
                            .map_err(catalog::sqlite_err)?;
                    }
                    n += stmt
                        .raw_execute()
                        .map_err(|e| map_sqlite(e, Some(&def), &s.database, "INSERT"))?
                        as u64;
                }
                Ok(n)
            })
        })
    }
}
