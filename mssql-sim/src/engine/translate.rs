//! T-SQL → SQLite: rewrites a parsed statement in place so that SQLite runs
//! it with SQL Server's meaning, or refuses it with SQL Server's error.
//!
//! What it does:
//! - resolves every table name case-insensitively against the catalog (208
//!   when unknown), gives every table an alias so `T.col` keeps working, and
//!   drops table hints (`WITH (NOLOCK)`), which have no meaning here;
//! - maps T-SQL functions to SQLite or to the simulator's own functions; an
//!   unknown function is error 195, never passed through to SQLite;
//! - turns CAST/CONVERT into `__sim_cast`, which applies SQL Server's
//!   conversion rules, and `TOP n` into `LIMIT n`;
//! - turns `+` on strings into `||`, and converts a literal compared with a
//!   typed column (date, GUID, ...) to the column's type first;
//! - replaces `@@TRANCOUNT`, `@@ROWCOUNT`, `@@VERSION`, ... by their values.
//!
//! It must never let SQLite run something whose result differs from SQL
//! Server's without saying so: where it cannot tell, it refuses.

use super::catalog::{self, TableDef};
use crate::error::SqlError;
use crate::types::{Len, SqlType};
use rusqlite::Connection;
use sqlparser::ast::{
    BinaryOperator, CastKind, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, LimitClause, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr,
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
}

/// Resolves object names for one statement.
pub struct Resolver<'a> {
    pub conn: &'a Connection,
    pub temp: &'a HashMap<String, TableDef>,
    pub database: &'a str,
}

/// A resolved table reference.
#[derive(Debug, Clone)]
pub enum Resolved {
    Table(TableDef),
    /// A catalog view, by its SQLite name.
    View(String),
}

impl Resolved {
    pub fn sqlite_name(&self) -> String {
        match self {
            Resolved::Table(t) => t.sqlite_name(),
            Resolved::View(v) => v.clone(),
        }
    }
}

pub const CATALOG_VIEWS: &[&str] = &[
    "sys.types",
    "sys.schemas",
    "sys.objects",
    "sys.tables",
    "sys.columns",
    "sys.indexes",
    "sys.index_columns",
    "sys.key_constraints",
    "sys.foreign_keys",
    "sys.foreign_key_columns",
    "sys.change_tracking_tables",
    "sys.databases",
    "sys.change_tracking_databases",
    "INFORMATION_SCHEMA.TABLES",
    "INFORMATION_SCHEMA.COLUMNS",
];

/// The parts of a multi-part name: (database, schema, object).
pub fn name_parts(name: &ObjectName) -> Result<(Option<String>, Option<String>, String), SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
            _ => Err(SqlError::unsupported(format!("the object name {name}"))),
        })
        .collect::<Result<_, _>>()?;
    match parts.len() {
        1 => Ok((None, None, parts[0].clone())),
        2 => Ok((None, Some(parts[0].clone()), parts[1].clone())),
        3 => Ok((
            Some(parts[0].clone()),
            if parts[1].is_empty() {
                None
            } else {
                Some(parts[1].clone())
            },
            parts[2].clone(),
        )),
        4 => Err(SqlError::unsupported(format!(
            "four-part (linked server) names such as {name}"
        ))),
        _ => Err(SqlError::syntax_near(&name.to_string())),
    }
}

impl<'a> Resolver<'a> {
    /// Resolves a table or catalog view name.
    pub fn resolve(&self, name: &ObjectName) -> Result<Resolved, SqlError> {
        let (db, schema, object) = name_parts(name)?;
        if let Some(db) = &db {
            if !db.eq_ignore_ascii_case(self.database) && !db.eq_ignore_ascii_case("tempdb") {
                return Err(SqlError::unsupported(format!(
                    "cross-database references ({name})"
                )));
            }
        }
        if object.starts_with('#') {
            return self
                .temp
                .get(&object.to_lowercase())
                .cloned()
                .map(Resolved::Table)
                .ok_or_else(|| SqlError::invalid_object(&object));
        }
        let schema = schema.unwrap_or_else(|| "dbo".to_string());
        if schema.eq_ignore_ascii_case("sys") || schema.eq_ignore_ascii_case("INFORMATION_SCHEMA") {
            let full = format!("{schema}.{object}");
            return CATALOG_VIEWS
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&full))
                .map(|v| Resolved::View(v.to_string()))
                .ok_or_else(|| {
                    if schema.eq_ignore_ascii_case("sys") {
                        SqlError::unsupported(format!("the catalog view {full}"))
                    } else {
                        SqlError::invalid_object(&full)
                    }
                });
        }
        match catalog::load_table(self.conn, &schema, &object).map_err(catalog::sqlite_err)? {
            Some(t) => Ok(Resolved::Table(t)),
            None => Err(SqlError::invalid_object(
                &name.to_string().replace(['[', ']'], ""),
            )),
        }
    }

    pub fn resolve_table(&self, name: &ObjectName) -> Result<TableDef, SqlError> {
        match self.resolve(name)? {
            Resolved::Table(t) => Ok(t),
            Resolved::View(v) => Err(SqlError::new(4406, 16, format!("Update or insert of view or function '{v}' failed because it contains a derived or constant field."))),
        }
    }
}

pub fn ident(s: &str) -> Ident {
    Ident::with_quote('"', s)
}

pub fn sqlite_object_name(s: &str) -> ObjectName {
    ObjectName(vec![ObjectNamePart::Identifier(ident(s))])
}

pub fn string_lit(s: &str) -> Expr {
    Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(s.to_string()),
        span: sqlparser::tokenizer::Span::empty(),
    })
}

pub fn number_lit(n: impl ToString) -> Expr {
    Expr::Value(ValueWithSpan {
        value: Value::Number(n.to_string(), false),
        span: sqlparser::tokenizer::Span::empty(),
    })
}

pub fn null_lit() -> Expr {
    Expr::Value(ValueWithSpan {
        value: Value::Null,
        span: sqlparser::tokenizer::Span::empty(),
    })
}

pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        within_group: vec![],
        filter: None,
        null_treatment: None,
        over: None,
    })
}

fn function_args(f: &Function) -> Result<Vec<Expr>, SqlError> {
    match &f.args {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok(Expr::Wildcard(
                    sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                )),
                _ => Err(SqlError::unsupported(format!("the function call {f}"))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => {
            Err(SqlError::unsupported(format!("the function call {f}")))
        }
    }
}

fn literal_string(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::NationalStringLiteral(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    }
}

fn wrong_args(name: &str, n: usize) -> SqlError {
    SqlError::new(
        174,
        15,
        format!(
            "The {} function requires {n} argument(s).",
            name.to_lowercase()
        ),
    )
}

/// The statement-wide rewriter; see the module docs.
pub struct Rewriter<'a> {
    pub res: &'a Resolver<'a>,
    pub session: &'a SessionView,
    /// alias (lower case) → table, for every table named in the statement.
    pub scope: HashMap<String, TableDef>,
    pub err: Option<SqlError>,
    pass: Pass,
    /// Names of common table expressions seen in the statement.
    ctes: Vec<String>,
    /// CHANGETABLE sources: (placeholder name, its columns, its SQL), to be
    /// put in front of the statement as common table expressions.
    ct_sources: Vec<(String, Vec<String>, String)>,
}

#[derive(PartialEq, Clone, Copy)]
enum Pass {
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
    fn changetable_target(&self, e: &Expr) -> Result<(TableDef, bool), SqlError> {
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
            Ok(Resolved::Table(t)) => {
                match super::ct::table_tracking(self.res.conn, t.object_id)? {
                    Some(track) => Ok((t, track)),
                    None => Err(SqlError::new(
                        22105,
                        16,
                        format!("Change tracking is not enabled on table '{written}'."),
                    )),
                }
            }
            Ok(Resolved::View(_)) => Err(not_table()),
            Err(e) => Err(e),
        }
    }

    /// A scope entry for a CHANGETABLE source: its system columns, then the
    /// table's key columns with their types.
    fn changetable_scope(def: &TableDef, system: &[&str], names: &[String]) -> TableDef {
        let mut columns = Vec::new();
        for (i, s) in system.iter().enumerate() {
            columns.push(catalog::ColumnDef {
                column_id: i as i32 + 1,
                name: s.to_string(),
                ty: super::ct::system_column_type(s).unwrap_or(SqlType::BigInt),
                nullable: true,
                identity: false,
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
            temp: false,
        }
    }

    /// Rewrites a `CHANGETABLE(...) AS alias` table factor into a reference
    /// to a common table expression that computes it.
    fn changetable(&mut self, tf: &mut TableFactor) -> Result<(), SqlError> {
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
                s.strip_prefix(super::parse::CHANGETABLE_MARK)
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
                &super::ct::CHANGES_COLUMNS[..],
                super::ct::changes_sql(&def, track, &last),
            )
        } else if option == "VERSION" {
            // The key conditions were moved into the join by `changetable_joins`.
            (
                &["SYS_CHANGE_VERSION", "SYS_CHANGE_CONTEXT"][..],
                super::ct::version_sql(&def),
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
    fn changetable_joins(&mut self, sel: &mut sqlparser::ast::Select) -> Result<(), SqlError> {
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
    fn version_conditions(&mut self, tf: &mut TableFactor) -> Result<Option<Expr>, SqlError> {
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
            .map(|s| s == format!("{}VERSION", super::parse::CHANGETABLE_MARK))
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

    fn fail(&mut self, e: SqlError) -> ControlFlow<()> {
        if self.err.is_none() {
            self.err = Some(e);
        }
        ControlFlow::Break(())
    }

    /// The SQL type of a column reference, if it names a known column.
    pub fn column_type(&self, e: &Expr) -> Option<SqlType> {
        match e {
            Expr::Identifier(i) => {
                let mut found = None;
                for t in self.scope.values() {
                    if let Some(c) = t.column(&i.value) {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(c.ty);
                    }
                }
                found
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let alias = parts[parts.len() - 2].value.to_lowercase();
                self.scope
                    .get(&alias)
                    .and_then(|t| t.column(&parts[parts.len() - 1].value))
                    .map(|c| c.ty)
            }
            Expr::Nested(inner) => self.column_type(inner),
            _ => None,
        }
    }

    /// A best-effort static type of an expression, used for `+` and for result
    /// columns that SQLite cannot trace to a table column.
    pub fn expr_type(&self, e: &Expr) -> Option<SqlType> {
        if let Some(t) = self.column_type(e) {
            return Some(t);
        }
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => {
                    Some(SqlType::VarChar(Len::N(s.len().clamp(1, 8000) as u16)))
                }
                Value::NationalStringLiteral(s) => Some(SqlType::NVarChar(Len::N(
                    s.encode_utf16().count().clamp(1, 4000) as u16,
                ))),
                Value::Number(n, _) => {
                    if n.contains(['.', 'e', 'E']) {
                        let d = crate::types::Dec::parse(n)?;
                        let digits = d.mantissa.unsigned_abs().to_string().len() as u8;
                        Some(SqlType::Numeric {
                            p: digits.max(d.scale).clamp(1, 38),
                            s: d.scale,
                        })
                    } else if n.parse::<i32>().is_ok() {
                        Some(SqlType::Int)
                    } else if n.parse::<i64>().is_ok() {
                        Some(SqlType::BigInt)
                    } else {
                        Some(SqlType::Numeric {
                            p: n.len().clamp(1, 38) as u8,
                            s: 0,
                        })
                    }
                }
                _ => None,
            },
            Expr::Nested(inner) => self.expr_type(inner),
            Expr::BinaryOp {
                op: BinaryOperator::StringConcat,
                left,
                right,
            } => {
                let l = self.expr_type(left);
                let r = self.expr_type(right);
                if l.map(|t| t.is_unicode()).unwrap_or(false)
                    || r.map(|t| t.is_unicode()).unwrap_or(false)
                {
                    Some(SqlType::NVarChar(Len::N(4000)))
                } else {
                    Some(SqlType::VarChar(Len::N(8000)))
                }
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                match name.as_str() {
                    "__sim_cast" => {
                        let args = function_args(f).ok()?;
                        SqlType::parse(&literal_string(args.get(1)?)?).ok()
                    }
                    "__sim_sysutcdatetime" | "__sim_sysdatetime" => Some(SqlType::DateTime2(7)),
                    "__sim_getdate" => Some(SqlType::DateTime),
                    "__sim_sysdatetimeoffset" => Some(SqlType::DateTimeOffset(7)),
                    "__sim_newid" => Some(SqlType::UniqueIdentifier),
                    "__sim_len" | "__sim_charindex" | "__sim_ct_in_mask" => Some(SqlType::Int),
                    "__sim_bigint" => Some(SqlType::BigInt),
                    "count" => Some(SqlType::Int),
                    "__sim_count_big" => Some(SqlType::BigInt),
                    "upper" | "lower" | "ltrim" | "rtrim" | "trim" | "replace" | "substr" => {
                        let args = function_args(f).ok()?;
                        let t = self.expr_type(args.first()?)?;
                        if t.is_string() {
                            Some(match t {
                                SqlType::Char(n) => SqlType::VarChar(Len::N(n)),
                                SqlType::NChar(n) => SqlType::NVarChar(Len::N(n)),
                                other => other,
                            })
                        } else {
                            None
                        }
                    }
                    "min" | "max" => {
                        let args = function_args(f).ok()?;
                        self.expr_type(args.first()?)
                    }
                    "sum" => {
                        let args = function_args(f).ok()?;
                        match self.expr_type(args.first()?)? {
                            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => {
                                Some(SqlType::Int)
                            }
                            SqlType::BigInt => Some(SqlType::BigInt),
                            SqlType::Decimal { s, .. } | SqlType::Numeric { s, .. } => {
                                Some(SqlType::Decimal { p: 38, s })
                            }
                            SqlType::Money | SqlType::SmallMoney => Some(SqlType::Money),
                            _ => Some(SqlType::Float),
                        }
                    }
                    "ifnull" | "coalesce" => {
                        let args = function_args(f).ok()?;
                        args.iter().find_map(|a| self.expr_type(a))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn is_stringy(&self, e: &Expr) -> bool {
        self.expr_type(e).map(|t| t.is_string()).unwrap_or(false)
    }

    fn session_variable(&self, name: &str) -> Option<Expr> {
        let v = self.session;
        Some(match name.to_ascii_uppercase().as_str() {
            "@@TRANCOUNT" => number_lit(v.trancount),
            "@@ROWCOUNT" => number_lit(v.rowcount),
            "@@SPID" => number_lit(v.spid),
            "@@ERROR" => number_lit(0),
            "@@VERSION" => string_lit(&crate::version_string()),
            "@@SERVERNAME" => string_lit("mssql-sim"),
            "@@SERVICENAME" => string_lit("MSSQLSERVER"),
            "@@LANGUAGE" => string_lit("us_english"),
            "@@IDENTITY" => v.identity.map(number_lit).unwrap_or_else(null_lit),
            "@@OPTIONS" => number_lit(5496),
            "@@MAX_PRECISION" => number_lit(38),
            "@@TEXTSIZE" => number_lit(2147483647),
            _ => return None,
        })
    }

    /// Rewrites one function call; see the module docs for the rules.
    fn function(&mut self, f: &Function) -> Result<Expr, SqlError> {
        if f.over.is_some() {
            let name = f.name.to_string().to_ascii_uppercase();
            if matches!(
                name.as_str(),
                "ROW_NUMBER" | "RANK" | "DENSE_RANK" | "COUNT" | "SUM" | "MIN" | "MAX"
            ) {
                return Ok(Expr::Function(f.clone()));
            }
            return Err(SqlError::unsupported(format!("the window function {name}")));
        }
        let raw = f.name.to_string();
        let name = raw
            .trim_matches(|c| c == '[' || c == ']')
            .to_ascii_uppercase();
        let name = name.strip_prefix("SYS.").unwrap_or(&name).to_string();
        let args = function_args(f)?;
        let n = args.len();
        let need = |k: usize| {
            if n == k {
                Ok(())
            } else {
                Err(wrong_args(&name, k))
            }
        };
        let e = match name.as_str() {
            "COUNT" | "SUM" | "MIN" | "MAX" | "AVG" => {
                if name == "SUM" || name == "AVG" {
                    if let Some(t) = args.first().and_then(|a| self.column_type(a)) {
                        if t.decimal_parts().is_some() && t.sqlite_affinity() != "REAL" {
                            return Err(SqlError::unsupported(format!("{name} over {t} columns (precision above 15 and money are stored exactly, not as numbers)")));
                        }
                    }
                }
                if name == "AVG" {
                    // SQL Server's AVG of an integer column is an integer.
                    if let Some(t) = args.first().and_then(|a| self.expr_type(a)) {
                        if matches!(
                            t,
                            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt
                        ) {
                            let mut g = f.clone();
                            g.name =
                                ObjectName(vec![ObjectNamePart::Identifier(Ident::new("AVG"))]);
                            return Ok(call(
                                "__sim_cast",
                                vec![Expr::Function(g), string_lit(&t.to_string())],
                            ));
                        }
                    }
                }
                Expr::Function(f.clone())
            }
            "COUNT_BIG" => {
                let mut g = f.clone();
                g.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("COUNT"))]);
                call("__sim_cast", vec![Expr::Function(g), string_lit("bigint")])
            }
            "ISNULL" => {
                need(2)?;
                call("ifnull", args)
            }
            "COALESCE" | "NULLIF" => Expr::Function(f.clone()),
            "ABS" => {
                need(1)?;
                call("abs", args)
            }
            "UPPER" | "LOWER" | "LTRIM" | "RTRIM" => {
                need(1)?;
                call(&name.to_lowercase(), args)
            }
            "TRIM" => call("trim", args),
            "REPLACE" => {
                need(3)?;
                call("replace", args)
            }
            "LEN" => {
                need(1)?;
                call("__sim_len", args)
            }
            "SUBSTRING" => {
                need(3)?;
                call("substr", args)
            }
            "LEFT" => {
                need(2)?;
                call(
                    "substr",
                    vec![args[0].clone(), number_lit(1), args[1].clone()],
                )
            }
            "RIGHT" => {
                need(2)?;
                // substr(s, max(len - n + 1, 1))
                let start = call(
                    "max",
                    vec![
                        Expr::BinaryOp {
                            left: Box::new(Expr::BinaryOp {
                                left: Box::new(call("length", vec![args[0].clone()])),
                                op: BinaryOperator::Minus,
                                right: Box::new(args[1].clone()),
                            }),
                            op: BinaryOperator::Plus,
                            right: Box::new(number_lit(1)),
                        },
                        number_lit(1),
                    ],
                );
                call("substr", vec![args[0].clone(), start])
            }
            "CHARINDEX" => {
                need(2)?;
                call("__sim_charindex", args)
            }
            "CONCAT" => {
                if n < 2 {
                    return Err(SqlError::new(
                        189,
                        15,
                        "The concat function requires 2 to 254 arguments.",
                    ));
                }
                let parts: Vec<Expr> = args
                    .into_iter()
                    .map(|a| call("ifnull", vec![a, string_lit("")]))
                    .collect();
                let mut it = parts.into_iter();
                let first = it.next().unwrap();
                it.fold(first, |acc, e| Expr::BinaryOp {
                    left: Box::new(acc),
                    op: BinaryOperator::StringConcat,
                    right: Box::new(e),
                })
            }
            "FLOOR" => {
                need(1)?;
                call("__sim_floor", args)
            }
            "CEILING" => {
                need(1)?;
                call("__sim_ceiling", args)
            }
            "ROUND" => {
                if n != 2 {
                    return Err(SqlError::unsupported("ROUND with a third argument"));
                }
                let t = self.expr_type(&args[0]);
                let r = call("round", args);
                match t {
                    Some(
                        t @ (SqlType::Decimal { .. } | SqlType::Numeric { .. } | SqlType::Money),
                    ) => call("__sim_cast", vec![r, string_lit(&t.to_string())]),
                    Some(SqlType::Int | SqlType::BigInt | SqlType::SmallInt | SqlType::TinyInt) => {
                        call("__sim_cast", vec![r, string_lit("bigint")])
                    }
                    _ => r,
                }
            }
            "GETDATE" | "CURRENT_TIMESTAMP" => {
                need(0)?;
                call("__sim_getdate", vec![])
            }
            "GETUTCDATE" => {
                need(0)?;
                call(
                    "__sim_cast",
                    vec![call("__sim_sysutcdatetime", vec![]), string_lit("datetime")],
                )
            }
            "SYSDATETIME" => {
                need(0)?;
                call("__sim_sysdatetime", vec![])
            }
            "SYSUTCDATETIME" => {
                need(0)?;
                call("__sim_sysutcdatetime", vec![])
            }
            "SYSDATETIMEOFFSET" => {
                need(0)?;
                call("__sim_sysdatetimeoffset", vec![])
            }
            "NEWID" => {
                need(0)?;
                call("__sim_newid", vec![])
            }
            "SCOPE_IDENTITY" => {
                need(0)?;
                self.session
                    .identity
                    .map(number_lit)
                    .unwrap_or_else(null_lit)
            }
            "DB_NAME" => {
                if n > 0 {
                    return Err(SqlError::unsupported("DB_NAME with an argument"));
                }
                string_lit(&self.session.database)
            }
            "DB_ID" => {
                if n > 0 {
                    return Err(SqlError::unsupported("DB_ID with an argument"));
                }
                number_lit(super::catalog::database_id(&self.session.database))
            }
            "SCHEMA_NAME" => {
                if n == 0 {
                    string_lit("dbo")
                } else {
                    Expr::Subquery(Box::new(parse_query(&format!(
                        "SELECT __v FROM __sim_schema_names WHERE __k = ({})",
                        args[0]
                    ))?))
                }
            }
            "SCHEMA_ID" => {
                if n == 0 {
                    number_lit(1)
                } else {
                    Expr::Subquery(Box::new(parse_query(&format!(
                        "SELECT __k FROM __sim_schema_names WHERE __v = ({})",
                        args[0]
                    ))?))
                }
            }
            "OBJECT_NAME" => {
                need(1)?;
                Expr::Subquery(Box::new(parse_query(&format!(
                    "SELECT __v FROM __sim_object_names WHERE __k = ({})",
                    args[0]
                ))?))
            }
            "OBJECT_SCHEMA_NAME" => {
                need(1)?;
                Expr::Subquery(Box::new(parse_query(&format!(
                    "SELECT __v FROM __sim_object_schemas WHERE __k = ({})",
                    args[0]
                ))?))
            }
            "OBJECT_ID" => {
                if n == 0 || n > 2 {
                    return Err(wrong_args(&name, 1));
                }
                match literal_string(&args[0]) {
                    Some(text) => match self.object_id(&text)? {
                        Some(id) => number_lit(id),
                        None => null_lit(),
                    },
                    // A variable or expression: resolved when the statement runs
                    // (permanent objects; temp tables need a literal name).
                    None => Expr::Subquery(Box::new(parse_query(&format!(
                        "SELECT o.object_id FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
                         WHERE s.name = __sim_name_part(({a}), 1) AND o.name = __sim_name_part(({a}), 2)",
                        a = args[0]
                    ))?)),
                }
            }
            "COLUMNPROPERTY" => {
                need(3)?;
                let prop = literal_string(&args[2]).map(|p| p.to_ascii_lowercase());
                match prop.as_deref() {
                    Some("columnid") => Expr::Subquery(Box::new(parse_query(&format!(
                        "SELECT column_id FROM __sim_columns WHERE object_id = ({}) AND name = ({})",
                        args[0], args[1]
                    ))?)),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "COLUMNPROPERTY({})",
                            args[2]
                        )))
                    }
                }
            }
            "CHANGE_TRACKING_CURRENT_VERSION" => {
                need(0)?;
                call(
                    "__sim_bigint",
                    vec![Expr::Subquery(Box::new(parse_query(
                        &super::ct::current_version_sql(),
                    )?))],
                )
            }
            "CHANGE_TRACKING_MIN_VALID_VERSION" => {
                need(1)?;
                call(
                    "__sim_bigint",
                    vec![Expr::Subquery(Box::new(parse_query(
                        &super::ct::min_valid_sql(&args[0].to_string()),
                    )?))],
                )
            }
            "CHANGE_TRACKING_IS_COLUMN_IN_MASK" => {
                need(2)?;
                call("__sim_ct_in_mask", args)
            }
            "SERVERPROPERTY" => {
                need(1)?;
                let Some(p) = literal_string(&args[0]) else {
                    return Err(SqlError::unsupported(
                        "SERVERPROPERTY with a non-literal argument",
                    ));
                };
                match p.to_ascii_lowercase().as_str() {
                    "productversion" => string_lit(crate::tds::login::PRODUCT_VERSION_STRING),
                    "productlevel" => string_lit("RTM"),
                    "edition" => string_lit("Developer Edition (64-bit)"),
                    "engineedition" => number_lit(3),
                    "servername" | "machinename" => string_lit("mssql-sim"),
                    "collation" => string_lit("SQL_Latin1_General_CP1_CI_AS"),
                    "productmajorversion" => string_lit("16"),
                    "ishadrenabled" => number_lit(0),
                    _ => null_lit(),
                }
            }
            "IIF" => {
                need(3)?;
                Expr::Case {
                    case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    operand: None,
                    conditions: vec![sqlparser::ast::CaseWhen {
                        condition: args[0].clone(),
                        result: args[1].clone(),
                    }],
                    else_result: Some(Box::new(args[2].clone())),
                }
            }
            _ => {
                return Err(SqlError::new(
                    195,
                    15,
                    format!("'{raw}' is not a recognized built-in function name."),
                ));
            }
        };
        Ok(e)
    }

    /// OBJECT_ID('schema.name') resolved now (the argument is a literal).
    fn object_id(&self, text: &str) -> Result<Option<i64>, SqlError> {
        let name = parse_object_name(text)?;
        let (_, schema, object) = name_parts(&name)?;
        if object.starts_with('#') {
            return Ok(self
                .res
                .temp
                .get(&object.to_lowercase())
                .map(|t| t.object_id));
        }
        let schema = schema.unwrap_or_else(|| "dbo".into());
        Ok(catalog::find_object(self.res.conn, &schema, &object)
            .map_err(catalog::sqlite_err)?
            .map(|(id, _)| id))
    }

    fn coerce_against(&self, column: &Expr, other: &mut Expr) {
        let Some(t) = self.column_type(column) else {
            return;
        };
        let text_decimal = t.decimal_parts().is_some() && t.sqlite_affinity() != "REAL";
        let needs = text_decimal
            || matches!(
                t,
                SqlType::Date
                    | SqlType::Time(_)
                    | SqlType::DateTime
                    | SqlType::SmallDateTime
                    | SqlType::DateTime2(_)
                    | SqlType::DateTimeOffset(_)
                    | SqlType::UniqueIdentifier
            );
        if !needs {
            return;
        }
        let is_literal_or_param = matches!(other, Expr::Value(_))
            || matches!(other, Expr::Identifier(i) if i.value.starts_with('@'));
        if is_literal_or_param {
            let inner = std::mem::replace(other, null_lit());
            *other = call("__sim_cast", vec![inner, string_lit(&t.to_string())]);
        }
    }
}

/// Parses a SQL fragment the rewriter builds itself.
pub fn parse_query(sql: &str) -> Result<Query, SqlError> {
    let dialect = sqlparser::dialect::MsSqlDialect {};
    let mut p = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| super::parse::syntax_error(&e))?;
    p.parse_query()
        .map(|q| *q)
        .map_err(|e| super::parse::syntax_error(&e))
}

pub fn parse_object_name(text: &str) -> Result<ObjectName, SqlError> {
    let dialect = sqlparser::dialect::MsSqlDialect {};
    let mut p = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| super::parse::syntax_error(&e))?;
    p.parse_object_name(false)
        .map_err(|e| super::parse::syntax_error(&e))
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
                let ty = match SqlType::parse(&data_type.to_string()) {
                    Ok(t) => t,
                    Err(err) => return self.fail(err),
                };
                *e = call(
                    "__sim_cast",
                    vec![(**expr).clone(), string_lit(&ty.to_string())],
                );
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
                let ty = match SqlType::parse(&dt.to_string()) {
                    Ok(t) => t,
                    Err(err) => return self.fail(err),
                };
                // Styles other than the ISO ones change string formats; refuse those.
                if let Some(Expr::Value(v)) = styles.first() {
                    let ok = matches!(&v.value, Value::Number(n, _) if ["0", "20", "120", "21", "121", "126", "127", "23", "112", "1", "2"].contains(&n.as_str()));
                    if !ok {
                        return self
                            .fail(SqlError::unsupported(format!("CONVERT style {}", v.value)));
                    }
                } else if !styles.is_empty() {
                    return self.fail(SqlError::unsupported("CONVERT with a non-literal style"));
                }
                *e = call(
                    "__sim_cast",
                    vec![(**expr).clone(), string_lit(&ty.to_string())],
                );
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
            Expr::Collate { .. } => {
                return self.fail(SqlError::unsupported("COLLATE in expressions"))
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
