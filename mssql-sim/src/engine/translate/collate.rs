//! Which collation a string comparison uses, by SQL Server's collation
//! precedence ("Collation precedence", learn.microsoft.com/sql/t-sql/
//! statements/collation-precedence-transact-sql):
//!
//! - an expression with a `COLLATE` clause is *explicit*;
//! - a column reference is *implicit* with the column's collation, and so
//!   is a string function of it (UPPER, LTRIM, ...);
//! - a literal, variable, parameter or CAST is *coercible-default*: the
//!   current database's collation;
//! - two implicit operands of different collations (a `#temp` column in
//!   the server collation joined to a column of a database with another),
//!   or two different explicit ones, cannot be compared: error 468.
//!
//! The rewriter asks `comparison_collation` of each comparison on the
//! statement as written, before its operands are translated, and then
//! gives the left operand that collation explicitly, which is the one
//! SQLite then uses (the left operand's explicit collation wins there).

use super::ast::*;
use super::rewriter::Rewriter;
use crate::collation::Collation;
use crate::error::SqlError;
use sqlparser::ast::{BinaryOperator, Expr, ObjectName, Value};

/// A string expression's collation label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::engine) enum Label {
    Explicit(Collation),
    Implicit(Collation),
    /// Two implicit collations met (in a concatenation): the result has
    /// none, and comparing it fails.
    Conflict(Collation, Collation),
    /// Coercible-default: the database's collation; `string` says whether
    /// the expression is known to be a string at all.
    Default {
        string: bool,
    },
}

fn conflict(a: Collation, b: Collation, operation: &str) -> SqlError {
    SqlError::new(
        468,
        16,
        format!("Cannot resolve the collation conflict between \"{a}\" and \"{b}\" in the {operation} operation."),
    )
}

impl Rewriter<'_> {
    /// The SQL Server name of a comparison operator, as error 468 prints it.
    pub(in crate::engine) fn comparison_name(op: &BinaryOperator) -> Option<&'static str> {
        Some(match op {
            BinaryOperator::Eq => "equal to",
            BinaryOperator::NotEq => "not equal to",
            BinaryOperator::Lt => "less than",
            BinaryOperator::LtEq => "less than or equal to",
            BinaryOperator::Gt => "greater than",
            BinaryOperator::GtEq => "greater than or equal to",
            _ => return None,
        })
    }

    /// `e COLLATE c`, in the SQLite collation's name.
    pub(in crate::engine) fn with_collation(e: Expr, c: Collation) -> Expr {
        Expr::Collate {
            expr: Box::new(e),
            collation: sqlite_object_name(c.sqlite_name()),
        }
    }

    /// The collation a `COLLATE` clause names (`DATABASE_DEFAULT` is the
    /// current database's).
    pub(in crate::engine) fn named_collation(
        &self,
        name: &ObjectName,
    ) -> Result<Collation, SqlError> {
        Collation::named(&name.to_string(), self.session.collation)
    }

    /// The collation label of an expression as written.
    pub(in crate::engine) fn label(&self, e: &Expr) -> Result<Label, SqlError> {
        if let Some(c) = self.column_def(e) {
            return Ok(match c.collation {
                Some(k) => Label::Implicit(k),
                None => Label::Default { string: false },
            });
        }
        Ok(match e {
            Expr::Nested(inner) => self.label(inner)?,
            Expr::Collate { collation, .. } => Label::Explicit(self.named_collation(collation)?),
            Expr::Value(v) => Label::Default {
                string: matches!(
                    v.value,
                    Value::SingleQuotedString(_) | Value::NationalStringLiteral(_)
                ),
            },
            // A conversion between string types keeps its input's label;
            // to a string from anything else it is coercible-default.
            Expr::Cast {
                expr, data_type, ..
            }
            | Expr::Convert {
                expr,
                data_type: Some(data_type),
                ..
            } => {
                let to_string = crate::types::SqlType::parse(&data_type.to_string())
                    .map(|t| t.is_string())
                    .unwrap_or(false);
                match self.label(expr)? {
                    l @ (Label::Explicit(_) | Label::Implicit(_) | Label::Conflict(..))
                        if to_string =>
                    {
                        l
                    }
                    _ => Label::Default { string: to_string },
                }
            }
            Expr::BinaryOp {
                op: BinaryOperator::Plus | BinaryOperator::StringConcat,
                left,
                right,
            } => {
                let (l, r) = (self.label(left)?, self.label(right)?);
                match (l, r) {
                    (Label::Explicit(a), Label::Explicit(b)) if a != b => {
                        return Err(conflict(a, b, "add"))
                    }
                    (Label::Explicit(_), _) | (Label::Conflict(..), _) => l,
                    (_, Label::Explicit(_)) | (_, Label::Conflict(..)) => r,
                    (Label::Implicit(a), Label::Implicit(b)) if a != b => Label::Conflict(a, b),
                    (Label::Implicit(_), _) => l,
                    (_, Label::Implicit(_)) => r,
                    (Label::Default { string: a }, Label::Default { string: b }) => {
                        Label::Default { string: a || b }
                    }
                }
            }
            // A string function of a string keeps its argument's label.
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_uppercase();
                let keeps = [
                    "UPPER",
                    "LOWER",
                    "LTRIM",
                    "RTRIM",
                    "TRIM",
                    "REPLACE",
                    "SUBSTRING",
                    "LEFT",
                    "RIGHT",
                    "ISNULL",
                    "COALESCE",
                    "REVERSE",
                ];
                match function_args(f).ok().and_then(|a| a.into_iter().next()) {
                    Some(first) if keeps.contains(&name.as_str()) => self.label(&first)?,
                    _ => Label::Default { string: false },
                }
            }
            Expr::Trim { expr, .. } | Expr::Substring { expr, .. } => self.label(expr)?,
            // Variables and parameters, by their declared type.
            _ => Label::Default {
                string: self.expr_type(e).map(|t| t.is_string()).unwrap_or(false),
            },
        })
    }

    /// The collation a comparison `left op right` uses, or None when no
    /// operand is a string; error 468 when the operands' collations
    /// conflict.
    pub(in crate::engine) fn comparison_collation(
        &self,
        left: &Expr,
        right: &Expr,
        operation: &str,
    ) -> Result<Option<Collation>, SqlError> {
        let (l, r) = (self.label(left)?, self.label(right)?);
        let database = self.session.collation;
        Ok(match (l, r) {
            (Label::Explicit(a), Label::Explicit(b)) => {
                if a != b {
                    return Err(conflict(a, b, operation));
                }
                Some(a)
            }
            (Label::Explicit(a), _) | (_, Label::Explicit(a)) => Some(a),
            (Label::Conflict(a, b), _) | (_, Label::Conflict(a, b)) => {
                return Err(conflict(a, b, operation))
            }
            (Label::Implicit(a), Label::Implicit(b)) => {
                if a != b {
                    return Err(conflict(a, b, operation));
                }
                Some(a)
            }
            (Label::Implicit(a), _) | (_, Label::Implicit(a)) => Some(a),
            (Label::Default { string: a }, Label::Default { string: b }) => {
                (a || b).then_some(database)
            }
        })
    }

    /// A translated CAST or CONVERT of `inner` to `ty`: a string result
    /// sorts and compares in its input's collation when the input is a
    /// string, in the database's otherwise (never byte by byte).
    pub(in crate::engine) fn collated_cast(
        &self,
        inner: &Expr,
        cast: Expr,
        ty: &crate::types::SqlType,
    ) -> Expr {
        if !ty.is_string() {
            return cast;
        }
        let c = match self.label(inner) {
            Ok(Label::Explicit(c) | Label::Implicit(c)) => c,
            _ => self.session.collation,
        };
        Self::with_collation(cast, c)
    }

    /// Whether the left operand is a column that already has `c`, so SQLite
    /// uses it without being told (and keeps using the column's index).
    pub(in crate::engine) fn left_has(&self, left: &Expr, c: Collation) -> bool {
        self.column_def(left).and_then(|d| d.collation) == Some(c)
    }
}
