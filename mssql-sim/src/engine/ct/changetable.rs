//! `CHANGETABLE(CHANGES t, @v)` and `CHANGETABLE(VERSION t, ...)` in a
//! query: the table factor becomes a common table expression over the
//! change tracking tables this module's parent keeps, with SQL Server's
//! columns and errors (22105, 22107, ...).

use crate::engine::catalog::{self, TableDef};
use crate::engine::translate::ast::*;
use crate::engine::translate::builtins::Call;
use crate::engine::translate::names::Resolved;
use crate::engine::translate::rewriter::Rewriter;
use crate::error::SqlError;
use crate::types::SqlType;
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, ObjectNamePart,
    TableFactor, Value, ValueWithSpan,
};

impl<'a> Rewriter<'a> {
    /// The common table expressions of the CHANGETABLE sources, if any
    /// (`name(cols) AS (...), ...`).
    pub fn ct_ctes(&self) -> Option<String> {
        if self.ct_sources.is_empty() {
            return None;
        }
        let ctes: Vec<String> = self
            .ct_sources
            .iter()
            .map(|(name, cols, body)| {
                let cols: Vec<String> = cols.iter().map(|c| catalog::q(c)).collect();
                format!("{}({}) AS ({body})", catalog::q(name), cols.join(", "))
            })
            .collect();
        Some(ctes.join(", "))
    }

    /// Resolves the table named in a CHANGETABLE call, with CHANGETABLE's
    /// errors: 22107 for views and temp tables, 22105 when untracked.
    pub(in crate::engine) fn changetable_target(
        &self,
        e: &Expr,
    ) -> Result<(TableDef, bool), SqlError> {
        let name = match e {
            Expr::Identifier(i) => ObjectName(vec![ObjectNamePart::Identifier(i.clone())]),
            Expr::CompoundIdentifier(parts) => ObjectName(
                parts
                    .iter()
                    .map(|i| ObjectNamePart::Identifier(i.clone()))
                    .collect(),
            ),
            other => return Err(SqlError::syntax_near(&other.to_string())),
        };
        let written: Vec<String> = match e {
            Expr::Identifier(i) => vec![i.value.clone()],
            Expr::CompoundIdentifier(p) => p.iter().map(|i| i.value.clone()).collect(),
            _ => vec![],
        };
        let written = written.join(".");
        let not_table = || {
            SqlError::new(22107, 16, format!("Object '{written}' is of a data type that is not supported by the CHANGETABLE function. The object must be a user-defined table."))
        };
        match self.res.resolve(&name) {
            Ok(Resolved::Table(t)) if t.temp => Err(not_table()),
            Ok(Resolved::Table(t)) => match super::table_tracking(self.res.conn, t.object_id)? {
                // CHANGETABLE needs SELECT (on the key columns) and VIEW
                // CHANGE TRACKING on the table ("Manage change tracking").
                Some(_) if !self.res.caller.may(t.object_id, "SELECT") => {
                    Err(crate::engine::security::denied(
                        "SELECT",
                        &t.name,
                        &t.schema,
                        self.res.database,
                    ))
                }
                Some(_) if !self.res.caller.may(t.object_id, "VIEW CHANGE TRACKING") => {
                    Err(crate::engine::security::denied(
                        "VIEW CHANGE TRACKING",
                        &t.name,
                        &t.schema,
                        self.res.database,
                    ))
                }
                Some(track) => Ok((t, track)),
                None => Err(SqlError::new(
                    22105,
                    16,
                    format!("Change tracking is not enabled on table '{written}'."),
                )),
            },
            Ok(Resolved::View(_)) => Err(not_table()),
            Err(e) => Err(e),
        }
    }

    /// A scope entry for a CHANGETABLE source: its system columns, then the
    /// table's key columns with their types.
    pub(in crate::engine) fn changetable_scope(
        def: &TableDef,
        system: &[&str],
        names: &[String],
    ) -> TableDef {
        let mut columns = Vec::new();
        for (i, s) in system.iter().enumerate() {
            columns.push(catalog::ColumnDef {
                column_id: i as i32 + 1,
                name: s.to_string(),
                ty: super::system_column_type(s).unwrap_or(SqlType::BigInt),
                nullable: true,
                identity: false,
                collation: None,
                user_type_id: None,
                computed: None,
            });
        }
        for k in &def.pk {
            if let Some(c) = def.column(k) {
                let mut c = c.clone();
                c.column_id = columns.len() as i32 + 1;
                columns.push(c);
            }
        }
        for (c, n) in columns.iter_mut().zip(names) {
            c.name = n.clone();
        }
        TableDef {
            object_id: def.object_id,
            schema: def.schema.clone(),
            name: def.name.clone(),
            columns,
            pk_name: None,
            pk: vec![],
            foreign_keys: vec![],
            uniques: vec![],
            temp: false,
        }
    }

    /// Rewrites a `CHANGETABLE(...) AS alias` table factor into a reference
    /// to a common table expression that computes it.
    pub(in crate::engine) fn changetable(&mut self, tf: &mut TableFactor) -> Result<(), SqlError> {
        let TableFactor::Table {
            args, alias, name, ..
        } = tf
        else {
            return Ok(());
        };
        let list: Vec<Expr> = args
            .as_ref()
            .map(|a| {
                a.args
                    .iter()
                    .map(|x| match x {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                        _ => Err(SqlError::syntax_near("=")),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let option = list
            .first()
            .and_then(literal_string)
            .and_then(|s| {
                s.strip_prefix(crate::engine::parse::CHANGETABLE_MARK)
                    .map(str::to_string)
            })
            .ok_or_else(|| SqlError::syntax_near("CHANGETABLE"))?;
        let Some(a) = alias.as_mut() else {
            return Err(SqlError::new(
                22104,
                16,
                "A table returned by the CHANGETABLE function must be aliased.",
            ));
        };
        let target = list.get(1).ok_or_else(|| SqlError::syntax_near(")"))?;
        let (def, track) = self.changetable_target(target)?;
        let (system, body): (&[&str], String) = if option == "CHANGES" {
            if list.len() != 3 {
                return Err(SqlError::new(22102, 16, "The arguments supplied are not valid for the CHANGES option of the CHANGETABLE function."));
            }
            let last = match &list[2] {
                Expr::Identifier(i) if i.value.starts_with('@') && !i.value.starts_with("@@") => {
                    i.value.clone()
                }
                Expr::Value(ValueWithSpan {
                    value: Value::Null, ..
                }) => "NULL".into(),
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) if n.parse::<i64>().is_ok() => n.clone(),
                Expr::UnaryOp {
                    op: sqlparser::ast::UnaryOperator::Minus,
                    expr,
                } => match expr.as_ref() {
                    Expr::Value(ValueWithSpan {
                        value: Value::Number(n, _),
                        ..
                    }) if n.parse::<i64>().is_ok() => format!("-{n}"),
                    other => return Err(SqlError::syntax_near(&other.to_string())),
                },
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) => return Err(SqlError::syntax_near(n)),
                other => {
                    let text = other.to_string();
                    let near = text
                        .split(|c: char| !(c.is_alphanumeric() || c == '@' || c == '_'))
                        .find(|w| !w.is_empty() && !w.starts_with('@'))
                        .unwrap_or("(")
                        .to_string();
                    return Err(SqlError::syntax_near(&near));
                }
            };
            (
                &super::CHANGES_COLUMNS[..],
                super::changes_sql(&def, track, &last),
            )
        } else if option == "VERSION" {
            // The key conditions were moved into the join by `changetable_joins`.
            (
                &["SYS_CHANGE_VERSION", "SYS_CHANGE_CONTEXT"][..],
                super::version_sql(&def),
            )
        } else {
            return Err(SqlError::syntax_near(&option));
        };
        let ncols = system.len() + def.pk.len();
        let mut names: Vec<String> = system.iter().map(|s| s.to_string()).collect();
        names.extend(def.pk.iter().cloned());
        if !a.columns.is_empty() {
            if a.columns.len() != ncols {
                return Err(SqlError::new(
                    8158,
                    16,
                    format!(
                        "'{}' has more columns than were specified in the column list.",
                        a.name.value
                    ),
                ));
            }
            names = a.columns.iter().map(|c| c.name.value.clone()).collect();
            a.columns.clear();
        }
        let placeholder = format!("__sim_ctq_{}", self.ct_sources.len());
        self.ct_sources
            .push((placeholder.clone(), names.clone(), body));
        a.name.quote_style = Some('"');
        a.explicit = true;
        self.scope.insert(
            a.name.value.to_lowercase(),
            Self::changetable_scope(&def, system, &names),
        );
        *name = sqlite_object_name(&placeholder);
        *args = None;
        Ok(())
    }

    /// CHANGETABLE(VERSION t, (k1, k2), (v1, v2)) AS a: checks the key
    /// columns and turns the values into join conditions `a.k1 = v1 AND ...`
    /// (CROSS APPLY becomes an inner join, OUTER APPLY a left join; a
    /// CHANGETABLE first in FROM gets them in WHERE).
    pub(in crate::engine) fn changetable_joins(
        &mut self,
        sel: &mut sqlparser::ast::Select,
    ) -> Result<(), SqlError> {
        use sqlparser::ast::{JoinConstraint, JoinOperator};
        let mut where_conds: Vec<Expr> = Vec::new();
        for twj in sel.from.iter_mut() {
            if let Some(c) = self.version_conditions(&mut twj.relation)? {
                where_conds.push(c);
            }
            for j in twj.joins.iter_mut() {
                let Some(cond) = self.version_conditions(&mut j.relation)? else {
                    continue;
                };
                let and = |on: Expr| Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(on))),
                    op: BinaryOperator::And,
                    right: Box::new(cond.clone()),
                };
                j.join_operator =
                    match std::mem::replace(&mut j.join_operator, JoinOperator::CrossApply) {
                        JoinOperator::CrossApply
                        | JoinOperator::CrossJoin(JoinConstraint::None) => {
                            JoinOperator::Inner(JoinConstraint::On(cond.clone()))
                        }
                        JoinOperator::OuterApply => {
                            JoinOperator::LeftOuter(JoinConstraint::On(cond.clone()))
                        }
                        JoinOperator::Join(JoinConstraint::On(on)) => {
                            JoinOperator::Join(JoinConstraint::On(and(on)))
                        }
                        JoinOperator::Inner(JoinConstraint::On(on)) => {
                            JoinOperator::Inner(JoinConstraint::On(and(on)))
                        }
                        JoinOperator::Left(JoinConstraint::On(on)) => {
                            JoinOperator::Left(JoinConstraint::On(and(on)))
                        }
                        JoinOperator::LeftOuter(JoinConstraint::On(on)) => {
                            JoinOperator::LeftOuter(JoinConstraint::On(and(on)))
                        }
                        _ => {
                            return Err(SqlError::unsupported(
                                "this join with CHANGETABLE(VERSION ...)",
                            ))
                        }
                    };
            }
        }
        for c in where_conds {
            sel.selection = Some(match sel.selection.take() {
                Some(w) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(w))),
                    op: BinaryOperator::And,
                    right: Box::new(c),
                },
                None => c,
            });
        }
        Ok(())
    }

    /// For a CHANGETABLE(VERSION ...) factor: validates its column list,
    /// strips the lists from the call and returns the key conditions.
    pub(in crate::engine) fn version_conditions(
        &mut self,
        tf: &mut TableFactor,
    ) -> Result<Option<Expr>, SqlError> {
        let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = tf
        else {
            return Ok(None);
        };
        if !name.to_string().eq_ignore_ascii_case("CHANGETABLE") {
            return Ok(None);
        }
        let is_version = args
            .args
            .first()
            .and_then(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => literal_string(e),
                _ => None,
            })
            .map(|s| s == format!("{}VERSION", crate::engine::parse::CHANGETABLE_MARK))
            .unwrap_or(false);
        if !is_version {
            return Ok(None);
        }
        let Some(alias) = alias else {
            return Err(SqlError::new(
                22104,
                16,
                "A table returned by the CHANGETABLE function must be aliased.",
            ));
        };
        let bad = || {
            SqlError::new(22103, 16, "The arguments supplied are not valid for the VERSION option of the CHANGETABLE function.")
        };
        if args.args.len() != 4 {
            return Err(bad());
        }
        let exprs: Vec<Expr> = args
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?;
        let (def, _) = self.changetable_target(&exprs[1])?;
        let list = |e: &Expr| -> Vec<Expr> {
            match e {
                Expr::Tuple(v) => v.clone(),
                Expr::Nested(x) => vec![x.as_ref().clone()],
                other => vec![other.clone()],
            }
        };
        let cols = list(&exprs[2]);
        let vals = list(&exprs[3]);
        let written = def.display_name();
        let mut names: Vec<String> = Vec::new();
        for c in &cols {
            let n = match c {
                Expr::Identifier(i) => i.value.clone(),
                Expr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                _ => return Err(bad()),
            };
            let Some(col) = def.column(&n) else {
                return Err(SqlError::invalid_column(&n));
            };
            if !def.pk.iter().any(|k| k.eq_ignore_ascii_case(&col.name)) {
                return Err(SqlError::new(22111, 16, format!("The column '{n}' specified in the CHANGETABLE(VERSION ...) function is not part of the primary key for table '{written}'.")));
            }
            if names.iter().any(|m| m.eq_ignore_ascii_case(&col.name)) {
                return Err(SqlError::new(22112, 16, format!("Each primary key column must be specified once in the CHANGETABLE(VERSION ...) function. The column '{n}' is specified more than once.")));
            }
            names.push(col.name.clone());
        }
        if names.len() != def.pk.len() {
            return Err(SqlError::new(22110, 16, format!("The number of columns specified in the CHANGETABLE(VERSION ...) function does not match the number of primary key columns for table '{written}'.")));
        }
        if vals.len() != names.len() {
            return Err(bad());
        }
        let a = alias.name.value.clone();
        let mut cond: Option<Expr> = None;
        for (n, v) in names.iter().zip(vals) {
            let eq = Expr::BinaryOp {
                left: Box::new(Expr::CompoundIdentifier(vec![
                    Ident::new(&a),
                    Ident::new(n),
                ])),
                op: BinaryOperator::Eq,
                right: Box::new(v),
            };
            cond = Some(match cond {
                Some(c) => Expr::BinaryOp {
                    left: Box::new(c),
                    op: BinaryOperator::And,
                    right: Box::new(eq),
                },
                None => eq,
            });
        }
        args.args.truncate(2);
        Ok(cond)
    }

    /// CHANGE_TRACKING_CURRENT_VERSION(), CHANGE_TRACKING_MIN_VALID_VERSION(),
    /// CHANGE_TRACKING_IS_COLUMN_IN_MASK().
    pub(in crate::engine) fn change_tracking_function(
        &mut self,
        c: &Call<'_>,
    ) -> Result<Option<Expr>, SqlError> {
        let (name, args) = (c.name.as_str(), c.args.clone());
        let need = |k: usize| c.need(k);
        Ok(Some(match name {
            "CHANGE_TRACKING_CURRENT_VERSION" => {
                need(0)?;
                call(
                    "__sim_bigint",
                    vec![Expr::Subquery(Box::new(parse_query(
                        &crate::engine::ct::current_version_sql(),
                    )?))],
                )
            }
            "CHANGE_TRACKING_MIN_VALID_VERSION" => {
                need(1)?;
                call(
                    "__sim_bigint",
                    vec![Expr::Subquery(Box::new(parse_query(
                        &crate::engine::ct::min_valid_sql(&args[0].to_string()),
                    )?))],
                )
            }
            "CHANGE_TRACKING_IS_COLUMN_IN_MASK" => {
                need(2)?;
                call("__sim_ct_in_mask", args)
            }
            _ => return Ok(None),
        }))
    }
}
