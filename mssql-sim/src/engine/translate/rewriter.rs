//! The statement-wide rewriter (see the module doc of `translate`): one
//! pass resolves the tables, a second rewrites the expressions, as a
//! sqlparser `VisitorMut`.

use super::ast::*;
use super::names::*;
use crate::collation::Collation;
use crate::engine::catalog::TableDef;
use crate::error::SqlError;
use crate::types::SqlType;
use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, LimitClause, ObjectNamePart, Query, SelectItem, SetExpr,
    TableAlias, TableFactor, TopQuantity, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use std::collections::HashMap;
use std::ops::ControlFlow;

/// Values of the session that statements may read (`@@...`, DB_NAME()).
#[derive(Debug, Clone, Default)]
pub struct SessionView {
    pub database: String,
    pub trancount: u32,
    pub rowcount: i64,
    pub spid: u16,
    pub identity: Option<i64>,
    /// Every database on the server (DB_ID, DB_NAME).
    pub databases: Vec<String>,
    /// The current database's collation (string literals, CAST, new
    /// columns, `COLLATE DATABASE_DEFAULT`).
    pub collation: Collation,
    /// The server collation (tempdb's: a `#temp` table's columns).
    pub server_collation: Collation,
    /// The declared type of each variable and parameter, by lower-case
    /// name with its `@`.
    pub variables: HashMap<String, SqlType>,
}

/// The statement-wide rewriter; see the module docs.
pub struct Rewriter<'a> {
    pub res: &'a Resolver<'a>,
    pub session: &'a SessionView,
    /// alias (lower case) → table, for every table named in the statement.
    pub scope: HashMap<String, TableDef>,
    pub err: Option<SqlError>,
    pub(in crate::engine) pass: Pass,
    /// Names of common table expressions seen in the statement.
    pub(in crate::engine) ctes: Vec<String>,
    /// CHANGETABLE sources: (placeholder name, its columns, its SQL), to be
    /// put in front of the statement as common table expressions.
    pub(in crate::engine) ct_sources: Vec<(String, Vec<String>, String)>,
    /// For each comparison being visited, the collation it compares in
    /// (pushed before its operands are rewritten, popped after).
    comparisons: Vec<Option<Collation>>,
}

#[derive(PartialEq, Clone, Copy)]
pub(in crate::engine) enum Pass {
    Tables,
    Expressions,
}

impl<'a> Rewriter<'a> {
    pub fn new(res: &'a Resolver<'a>, session: &'a SessionView) -> Self {
        Rewriter {
            res,
            session,
            scope: HashMap::new(),
            err: None,
            pass: Pass::Tables,
            ctes: Vec::new(),
            ct_sources: Vec::new(),
            comparisons: Vec::new(),
        }
    }

    /// Puts the CHANGETABLE sources the statement needs in front of the
    /// SQL that was rendered from it.
    pub fn finish_sql(&self, sql: String) -> String {
        let Some(ctes) = self.ct_ctes() else {
            return sql;
        };
        let trimmed = sql.trim_start();
        if trimmed.len() >= 5 && trimmed[..5].eq_ignore_ascii_case("WITH ") {
            format!("WITH {ctes}, {}", &trimmed[5..])
        } else {
            format!("WITH {ctes} {sql}")
        }
    }

    /// Rewrites anything visitable (a statement, a query, an expression).
    pub fn rewrite<T: VisitMut>(&mut self, node: &mut T) -> Result<(), SqlError> {
        self.pass = Pass::Tables;
        let _ = node.visit(self);
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.pass = Pass::Expressions;
        let _ = node.visit(self);
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        Ok(())
    }

    pub(in crate::engine) fn fail(&mut self, e: SqlError) -> ControlFlow<()> {
        if self.err.is_none() {
            self.err = Some(e);
        }
        ControlFlow::Break(())
    }
}

/// Functions whose result depends on their arguments' static type.
const BY_ARGUMENT_TYPE: &[&str] = &["DATALENGTH", "HASHBYTES"];

/// Gives each N'...' literal argument of `f` its type, nvarchar of its
/// length, as a CAST.
fn type_national_literals(f: &mut sqlparser::ast::Function) {
    use sqlparser::ast::{
        CharacterLength, DataType, FunctionArg, FunctionArgExpr, FunctionArguments,
    };
    let FunctionArguments::List(l) = &mut f.args else {
        return;
    };
    for a in &mut l.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a else {
            continue;
        };
        let Expr::Value(ValueWithSpan {
            value: Value::NationalStringLiteral(s),
            ..
        }) = x
        else {
            continue;
        };
        let units = s.encode_utf16().count();
        let length = if units > 4000 {
            CharacterLength::Max
        } else {
            CharacterLength::IntegerLength {
                length: units.max(1) as u64,
                unit: None,
            }
        };
        *x = Expr::Cast {
            kind: sqlparser::ast::CastKind::Cast,
            expr: Box::new(x.clone()),
            data_type: DataType::Nvarchar(Some(length)),
            format: None,
        };
    }
}

impl<'a> VisitorMut for Rewriter<'a> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        if self.pass != Pass::Tables {
            return ControlFlow::Continue(());
        }
        let is_changetable = matches!(tf, TableFactor::Table { name, args: Some(_), .. }
            if name.to_string().eq_ignore_ascii_case("CHANGETABLE"));
        if is_changetable {
            if let Err(e) = self.changetable(tf) {
                return self.fail(e);
            }
            return ControlFlow::Continue(());
        }
        if let TableFactor::Table {
            name,
            alias,
            with_hints,
            args,
            version,
            ..
        } = tf
        {
            if args.is_some() {
                return self.fail(SqlError::unsupported(format!(
                    "the table-valued function {name}"
                )));
            }
            if version.is_some() {
                return self.fail(SqlError::unsupported("FOR SYSTEM_TIME"));
            }
            // A CTE name is not a table.
            if name.0.len() == 1 {
                if let Some(ObjectNamePart::Identifier(i)) = name.0.first() {
                    if self.ctes.iter().any(|c| c.eq_ignore_ascii_case(&i.value)) {
                        if let Some(a) = alias {
                            self.scope.remove(&a.name.value.to_lowercase());
                        }
                        return ControlFlow::Continue(());
                    }
                }
            }
            let resolved = match self.res.resolve(name) {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            if let Resolved::Table(t) = &resolved {
                if let Err(e) = self.res.require(t, "SELECT") {
                    return self.fail(e);
                }
            }
            let last = match name.0.last() {
                Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
                _ => String::new(),
            };
            *name = sqlite_object_name(&resolved.sqlite_name());
            let a = alias.get_or_insert_with(|| TableAlias {
                explicit: true,
                name: ident(&last),
                columns: vec![],
                at: None,
            });
            a.name.quote_style = Some('"');
            a.explicit = true;
            with_hints.clear();
            if let Resolved::Table(t) = resolved {
                self.scope.insert(a.name.value.to_lowercase(), t);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.push(cte.alias.name.value.clone());
            }
        }
        if self.pass == Pass::Tables {
            if let SetExpr::Select(sel) = q.body.as_mut() {
                if let Err(e) = self.changetable_joins(sel) {
                    return self.fail(e);
                }
            }
        }
        if self.pass == Pass::Expressions {
            if let Err(e) = self.check_legacy_lob_use(q) {
                return self.fail(e);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if self.pass != Pass::Expressions {
            return ControlFlow::Continue(());
        }
        if let SetExpr::Select(sel) = q.body.as_mut() {
            if let Some(top) = sel.top.take() {
                if top.percent || top.with_ties {
                    return self.fail(SqlError::unsupported("TOP ... PERCENT / WITH TIES"));
                }
                let n = match top.quantity {
                    Some(TopQuantity::Constant(n)) => number_lit(n),
                    Some(TopQuantity::Expr(e)) => e,
                    None => return self.fail(SqlError::syntax_near("TOP")),
                };
                if q.limit_clause.is_some() || q.fetch.is_some() {
                    return self.fail(SqlError::new(1060, 15, "The number of rows provided for a TOP or FETCH clauses row count parameter must be an integer."));
                }
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(n),
                    offset: None,
                    limit_by: vec![],
                });
            }
        }
        // OFFSET n ROWS FETCH NEXT m ROWS ONLY → LIMIT m OFFSET n
        if let Some(fetch) = q.fetch.take() {
            if fetch.percent || fetch.with_ties {
                return self.fail(SqlError::unsupported("FETCH ... PERCENT / WITH TIES"));
            }
            let offset = match q.limit_clause.take() {
                Some(LimitClause::LimitOffset {
                    limit: None,
                    offset,
                    ..
                }) => offset,
                None => None,
                Some(other) => {
                    q.limit_clause = Some(other);
                    return self.fail(SqlError::syntax_near("FETCH"));
                }
            };
            q.limit_clause = Some(LimitClause::LimitOffset {
                limit: fetch.quantity,
                offset,
                limit_by: vec![],
            });
        } else if let Some(LimitClause::LimitOffset {
            limit: None,
            offset: Some(_),
            ..
        }) = &q.limit_clause
        {
            // OFFSET without FETCH: SQLite needs a LIMIT.
            if let Some(LimitClause::LimitOffset { offset, .. }) = q.limit_clause.take() {
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(number_lit(-1)),
                    offset,
                    limit_by: vec![],
                });
            }
        }
        if q.for_clause.is_some() {
            return self.fail(SqlError::unsupported("FOR XML / FOR JSON"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        // A comparison's collation, decided on its operands as written.
        if self.pass == Pass::Expressions {
            if let Expr::BinaryOp { left, op, right } = e {
                if let Some(operation) = Self::comparison_name(op) {
                    if let Err(err) = self.check_legacy_lob_comparison(left, right, operation) {
                        return self.fail(err);
                    }
                    match self.comparison_collation(left, right, operation) {
                        Ok(c) => self.comparisons.push(c),
                        Err(err) => return self.fail(err),
                    }
                }
            }
            if let Expr::Like {
                any, expr, pattern, ..
            } = e
            {
                if *any {
                    return self.fail(SqlError::unsupported("LIKE ANY"));
                }
                match self.comparison_collation(expr, pattern, "like") {
                    Ok(c) => self
                        .comparisons
                        .push(Some(c.unwrap_or(self.session.collation))),
                    Err(err) => return self.fail(err),
                }
            }
        }
        // Functions whose result depends on their arguments' static type
        // (the bytes SQL Server stores) see an N'...' literal typed: the
        // translation later turns it into a plain SQLite string.
        if self.pass == Pass::Expressions {
            if let Expr::Function(f) = e {
                let name = f.name.to_string();
                if BY_ARGUMENT_TYPE
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&name))
                {
                    type_national_literals(f);
                }
            }
        }
        // Fold a minus into a numeric literal so that the most negative bigint stays an integer.
        if self.pass == Pass::Expressions {
            if let Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Minus,
                expr,
            } = e
            {
                if let Expr::Value(ValueWithSpan {
                    value: Value::Number(n, long),
                    span,
                }) = expr.as_ref()
                {
                    if !n.starts_with('-') {
                        *e = Expr::Value(ValueWithSpan {
                            value: Value::Number(format!("-{n}"), *long),
                            span: *span,
                        });
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.pass != Pass::Expressions {
            return ControlFlow::Continue(());
        }
        match e {
            Expr::BinaryOp { left, op, right } if Self::comparison_name(op).is_some() => {
                if let Some(Some(c)) = self.comparisons.pop() {
                    // SQLite prefers any explicit COLLATE over a column's
                    // own, so a right operand translated with one (a CAST
                    // to a string type, in the database's collation) makes
                    // the left one explicit too, even when it is the column.
                    if !self.left_has(left, c) || explicitly_collated(right) {
                        let l = std::mem::replace(left.as_mut(), null_lit());
                        **left = Self::with_collation(l, c);
                    }
                }
            }
            // LIKE matches as the collation does: case, accents, `[...]`.
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char,
                ..
            } => {
                let c = self
                    .comparisons
                    .pop()
                    .flatten()
                    .unwrap_or(self.session.collation);
                let escape = escape_char.take().map(|b| *b).unwrap_or_else(null_lit);
                let like = call(
                    "__sim_like",
                    vec![
                        std::mem::replace(expr.as_mut(), null_lit()),
                        std::mem::replace(pattern.as_mut(), null_lit()),
                        escape,
                        string_lit(c.name()),
                    ],
                );
                *e = if *negated {
                    Expr::UnaryOp {
                        op: sqlparser::ast::UnaryOperator::Not,
                        expr: Box::new(like),
                    }
                } else {
                    like
                };
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 3 => {
                let keep = parts.split_off(parts.len() - 2);
                *parts = keep;
            }
            Expr::Identifier(i) if i.value.starts_with("@@") => {
                match self.session_variable(&i.value) {
                    Some(v) => *e = v,
                    None => {
                        return self.fail(SqlError::unsupported(format!(
                            "the system function {}",
                            i.value
                        )))
                    }
                }
            }
            Expr::Value(v) => match &v.value {
                Value::NationalStringLiteral(s) => v.value = Value::SingleQuotedString(s.clone()),
                Value::Number(n, _) => {
                    // SQLite would read a literal of more than 15 significant
                    // digits as a double and lose digits; keep it exact.
                    let digits = n.chars().filter(|c| c.is_ascii_digit()).count();
                    let is_int = !n.contains(['.', 'e', 'E']);
                    let fits_i64 = is_int && n.parse::<i64>().is_ok();
                    if digits > 15 && !fits_i64 && !n.contains(['e', 'E']) {
                        if let Some(d) = crate::types::Dec::parse(n) {
                            let p = (d.mantissa.unsigned_abs().to_string().len() as u8)
                                .max(d.scale)
                                .clamp(1, 38);
                            let ty = SqlType::Numeric { p, s: d.scale };
                            *e = call(
                                "__sim_cast",
                                vec![string_lit(n), string_lit(&ty.to_string())],
                            );
                        }
                    }
                }
                _ => {}
            },
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return self.fail(SqlError::unsupported("CAST ... FORMAT"));
                }
                if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                    return self.fail(SqlError::unsupported("TRY_CAST"));
                }
                let ty = match crate::engine::alias_types::resolve(
                    self.res.conn,
                    &data_type.to_string(),
                )
                .map(|(t, _)| t)
                {
                    Ok(t) => t,
                    Err(err) => return self.fail(err),
                };
                let cast = match self.styled_cast(expr, &ty, 0) {
                    Ok(c) => c,
                    Err(err) => return self.fail(err),
                };
                *e = self.collated_cast(expr, cast, &ty);
            }
            Expr::Convert {
                is_try,
                expr,
                data_type,
                styles,
                ..
            } => {
                if *is_try {
                    return self.fail(SqlError::unsupported("TRY_CONVERT"));
                }
                let Some(dt) = data_type else {
                    return self.fail(SqlError::unsupported("CONVERT ... USING"));
                };
                let ty = match crate::engine::alias_types::resolve(self.res.conn, &dt.to_string())
                    .map(|(t, _)| t)
                {
                    Ok(t) => t,
                    Err(err) => return self.fail(err),
                };
                // The style: a literal number (crate::styles has the ones
                // the simulator does).
                let style = match styles.first() {
                    None => 0,
                    Some(Expr::Value(v)) => match &v.value {
                        Value::Number(n, _) => match n.parse::<u32>() {
                            Ok(s) => s,
                            Err(_) => {
                                return self
                                    .fail(SqlError::unsupported(format!("CONVERT style {n}")))
                            }
                        },
                        other => {
                            return self
                                .fail(SqlError::unsupported(format!("CONVERT style {other}")))
                        }
                    },
                    Some(_) => {
                        return self.fail(SqlError::unsupported("CONVERT with a non-literal style"))
                    }
                };
                let cast = match self.styled_cast(expr, &ty, style) {
                    Ok(c) => c,
                    Err(err) => return self.fail(err),
                };
                *e = self.collated_cast(expr, cast, &ty);
            }
            Expr::Function(f) => {
                let lower = f.name.to_string().to_ascii_lowercase();
                if lower.starts_with("__sim_") {
                    // Built by this rewriter (possibly in a previous pass).
                    return ControlFlow::Continue(());
                }
                match self.function(f) {
                    Ok(new) => *e = new,
                    Err(err) => return self.fail(err),
                }
            }
            Expr::BinaryOp { left, op, right } => {
                if *op == BinaryOperator::Plus && (self.is_stringy(left) || self.is_stringy(right))
                {
                    *op = BinaryOperator::StringConcat;
                }
                if matches!(
                    op,
                    BinaryOperator::Eq
                        | BinaryOperator::NotEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                        | BinaryOperator::Gt
                        | BinaryOperator::GtEq
                ) {
                    let l = (**left).clone();
                    let r = (**right).clone();
                    self.coerce_against(&l, right);
                    self.coerce_against(&r, left);
                }
            }
            Expr::In {
                expr,
                target: sqlparser::ast::InTarget::List(list),
                ..
            } => {
                let col = (**expr).clone();
                for item in list.iter_mut() {
                    self.coerce_against(&col, item);
                }
            }
            Expr::Floor { field, .. } | Expr::Ceil { field, .. } => {
                if !matches!(
                    field,
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime
                    )
                ) {
                    return self.fail(SqlError::new(
                        174,
                        15,
                        "The floor/ceiling function requires 1 argument(s).",
                    ));
                }
                let f = if matches!(e, Expr::Floor { .. }) {
                    "__sim_floor"
                } else {
                    "__sim_ceiling"
                };
                let inner = match e {
                    Expr::Floor { expr, .. } | Expr::Ceil { expr, .. } => (**expr).clone(),
                    _ => unreachable!(),
                };
                *e = call(f, vec![inner]);
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let col = (**expr).clone();
                self.coerce_against(&col, low);
                self.coerce_against(&col, high);
            }
            Expr::Collate { expr, collation } => {
                if let Some(t) = self.expr_type(expr) {
                    if !t.is_string() {
                        return self.fail(Collation::not_collatable(t.base_name()));
                    }
                }
                let c = match self.named_collation(collation) {
                    Ok(c) => c,
                    Err(err) => return self.fail(err),
                };
                let inner = std::mem::replace(expr.as_mut(), null_lit());
                *e = Self::with_collation(inner, c);
            }
            Expr::AtTimeZone { .. } => return self.fail(SqlError::unsupported("AT TIME ZONE")),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The result-column type hints of a rewritten query's top-level projection
/// (None where the type must come from SQLite or the values).
pub fn projection_hints(rw: &Rewriter<'_>, q: &Query) -> Vec<Option<SqlType>> {
    match q.body.as_ref() {
        SetExpr::Select(sel) => sel
            .projection
            .iter()
            .flat_map(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    vec![rw.expr_type(e)]
                }
                _ => vec![None; 0],
            })
            .collect(),
        _ => vec![],
    }
}

/// Whether the projection is free of `*`, so hints line up with columns.
pub fn projection_is_explicit(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(sel) => sel.projection.iter().all(|i| {
            matches!(
                i,
                SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
            )
        }),
        _ => false,
    }
}

/// Whether a translated expression carries an explicit COLLATE (SQLite's
/// postfix operator) at its top.
fn explicitly_collated(e: &Expr) -> bool {
    match e {
        Expr::Collate { .. } => true,
        Expr::Nested(inner) => explicitly_collated(inner),
        _ => false,
    }
}
