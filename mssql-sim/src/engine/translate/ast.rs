//! Small builders and readers of sqlparser's AST that the rewriter uses:
//! identifiers, literals, function calls and their arguments, and parsing a
//! query or an object name with SQL Server's syntax error.

use crate::error::SqlError;
use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Query, Value, ValueWithSpan,
};

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

pub(in crate::engine) fn function_args(f: &Function) -> Result<Vec<Expr>, SqlError> {
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

pub(in crate::engine) fn literal_string(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s) | Value::NationalStringLiteral(s),
            ..
        }) => Some(s.clone()),
        _ => None,
    }
}

pub(in crate::engine) fn wrong_args(name: &str, n: usize) -> SqlError {
    SqlError::new(
        174,
        15,
        format!(
            "The {} function requires {n} argument(s).",
            name.to_lowercase()
        ),
    )
}

/// Parses a SQL fragment the rewriter builds itself.
pub fn parse_query(sql: &str) -> Result<Query, SqlError> {
    let dialect = sqlparser::dialect::MsSqlDialect {};
    let mut p = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| crate::engine::parse::syntax_error(&e))?;
    p.parse_query()
        .map(|q| *q)
        .map_err(|e| crate::engine::parse::syntax_error(&e))
}

pub fn parse_object_name(text: &str) -> Result<ObjectName, SqlError> {
    let dialect = sqlparser::dialect::MsSqlDialect {};
    let mut p = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| crate::engine::parse::syntax_error(&e))?;
    p.parse_object_name(false)
        .map_err(|e| crate::engine::parse::syntax_error(&e))
}
