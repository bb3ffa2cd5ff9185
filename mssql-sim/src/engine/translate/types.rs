//! What SQL Server type an expression has (for result columns, and to
//! convert a literal compared with a typed column to that type first).

use super::ast::*;
use super::rewriter::*;
use crate::engine::catalog::ColumnDef;
use crate::error::SqlError;
use crate::types::{Len, SqlType};
use sqlparser::ast::{BinaryOperator, Expr, Value};

impl<'a> Rewriter<'a> {
    /// The column a column reference names, if it names a known one.
    pub(in crate::engine) fn column_def(&self, e: &Expr) -> Option<&ColumnDef> {
        match e {
            Expr::Identifier(i) => {
                let mut found = None;
                for t in self.scope.values() {
                    if let Some(c) = t.column(&i.value) {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(c);
                    }
                }
                found
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let alias = parts[parts.len() - 2].value.to_lowercase();
                self.scope
                    .get(&alias)
                    .and_then(|t| t.column(&parts[parts.len() - 1].value))
            }
            Expr::Nested(inner) => self.column_def(inner),
            _ => None,
        }
    }

    /// The SQL type of a column reference, if it names a known column.
    pub fn column_type(&self, e: &Expr) -> Option<SqlType> {
        self.column_def(e).map(|c| c.ty)
    }

    /// A best-effort static type of an expression, used for `+` and for result
    /// columns that SQLite cannot trace to a table column.
    pub fn expr_type(&self, e: &Expr) -> Option<SqlType> {
        if let Some(t) = self.column_type(e) {
            return Some(t);
        }
        match e {
            Expr::Identifier(i) if i.value.starts_with('@') && !i.value.starts_with("@@") => {
                self.session.variables.get(&i.value.to_lowercase()).copied()
            }
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => {
                    Some(SqlType::VarChar(Len::N(s.len().clamp(1, 8000) as u16)))
                }
                Value::HexStringLiteral(h) => Some(SqlType::VarBinary(Len::N(
                    h.len().div_ceil(2).clamp(1, 8000) as u16,
                ))),
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
            // The collation the translation gives a CAST to a string type.
            Expr::Collate { expr, .. } => self.expr_type(expr),
            Expr::BinaryOp {
                op: BinaryOperator::StringConcat,
                left,
                right,
            } => {
                let l = self.expr_type(left);
                let r = self.expr_type(right);
                let unicode = l.map(|t| t.is_unicode()).unwrap_or(false)
                    || r.map(|t| t.is_unicode()).unwrap_or(false);
                // The sum of the two lengths, up to 8000 bytes; max if
                // either is ("+ (String Concatenation)").
                let len = |t: Option<SqlType>| match t? {
                    SqlType::Char(n) | SqlType::NChar(n) => Some(Len::N(n)),
                    SqlType::VarChar(l) | SqlType::NVarChar(l) => Some(l),
                    _ => None,
                };
                let cap = if unicode { 4000 } else { 8000 };
                let sum = match (len(l), len(r)) {
                    (Some(Len::Max), _) | (_, Some(Len::Max)) => Len::Max,
                    (Some(Len::N(a)), Some(Len::N(b))) => {
                        Len::N((a as u32 + b as u32).min(cap) as u16)
                    }
                    _ => Len::N(cap as u16),
                };
                Some(if unicode {
                    SqlType::NVarChar(sum)
                } else {
                    SqlType::VarChar(sum)
                })
            }
            // Integer and floating arithmetic: the operand type of higher
            // precedence ("Data type precedence"); decimals are not typed
            // here (their precision rules are the server's).
            Expr::BinaryOp {
                op:
                    BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo,
                left,
                right,
            } => {
                let rank = |t: SqlType| match t {
                    SqlType::TinyInt => Some(1),
                    SqlType::SmallInt => Some(2),
                    SqlType::Int => Some(3),
                    SqlType::BigInt => Some(4),
                    SqlType::Real => Some(5),
                    SqlType::Float => Some(6),
                    _ => None,
                };
                let (l, r) = (self.expr_type(left)?, self.expr_type(right)?);
                let (a, b) = (rank(l)?, rank(r)?);
                Some(if a >= b { l } else { r })
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
                    "__sim_len" | "__sim_charindex" | "__sim_ct_in_mask" | "__sim_datalength" => {
                        Some(SqlType::Int)
                    }
                    "__sim_quotename" => Some(SqlType::NVarChar(Len::N(258))),
                    "__sim_hashbytes" => Some(SqlType::VarBinary(Len::N(8000))),
                    "__sim_string_agg" => {
                        let args = function_args(f).ok()?;
                        SqlType::parse(&literal_string(args.get(1)?)?).ok()
                    }
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

    /// `__sim_cast(inner, ty)` with CONVERT's `style` (0 for CAST): a date,
    /// time or binary value becomes text as SQL Server writes it
    /// (crate::styles), hex text becomes bytes with styles 1 and 2, and a
    /// style the simulator does not do, or one on a value whose type it
    /// cannot tell, is refused.
    pub(in crate::engine) fn styled_cast(
        &self,
        inner: &Expr,
        ty: &crate::types::SqlType,
        style: u32,
    ) -> Result<Expr, SqlError> {
        let from = self.expr_type(inner);
        let mut value = inner.clone();
        let binary_target = matches!(ty, SqlType::Binary(_) | SqlType::VarBinary(_));
        match from {
            Some(f) if ty.is_string() && crate::styles::has_styles(&f) => {
                value = call(
                    "__sim_styled_text",
                    vec![value, string_lit(&f.to_string()), number_lit(style)],
                );
            }
            Some(f) if binary_target && f.is_string() && matches!(style, 1 | 2) => {
                value = call("__sim_hex_bytes", vec![value, number_lit(style)]);
            }
            // CONVERT(xml, s, 1): insignificant whitespace kept.
            _ if *ty == SqlType::Xml && style == 1 => {
                value = call("__sim_xml_preserve", vec![value]);
            }
            // Date and time styles also name the input's format; the
            // simulator reads the ISO and yyyymmdd forms those styles use.
            Some(f)
                if f.is_string()
                    && matches!(style, 20 | 120 | 21 | 121 | 23 | 112 | 126 | 127)
                    && !ty.is_string()
                    && !binary_target => {}
            _ if style == 0 => {}
            _ => {
                return Err(SqlError::unsupported(format!(
                    "CONVERT style {style} to {ty} from {}",
                    from.map(|f| f.to_string())
                        .unwrap_or_else(|| "an expression whose type it cannot tell".into())
                )))
            }
        }
        Ok(call("__sim_cast", vec![value, string_lit(&ty.to_string())]))
    }

    /// 402: text, ntext and image cannot be compared with `=`, `<` and
    /// the like (only IS NULL and LIKE take them).
    pub(in crate::engine) fn check_legacy_lob_comparison(
        &self,
        left: &Expr,
        right: &Expr,
        operation: &str,
    ) -> Result<(), SqlError> {
        let (l, r) = (self.expr_type(left), self.expr_type(right));
        if l == Some(SqlType::Xml) || r == Some(SqlType::Xml) {
            return Err(xml_unsortable());
        }
        if l.is_some_and(|t| t.is_legacy_lob()) || r.is_some_and(|t| t.is_legacy_lob()) {
            let name = |t: Option<SqlType>| t.map(|t| t.base_name()).unwrap_or("varchar");
            return Err(SqlError::new(
                402,
                16,
                format!(
                    "The data types {} and {} are incompatible in the {operation} operator.",
                    name(l),
                    name(r)
                ),
            ));
        }
        Ok(())
    }

    /// 306 for text, ntext or image in ORDER BY or GROUP BY, 421 in a
    /// SELECT DISTINCT list.
    pub(in crate::engine) fn check_legacy_lob_use(
        &self,
        q: &sqlparser::ast::Query,
    ) -> Result<(), SqlError> {
        use sqlparser::ast::{GroupByExpr, OrderByKind, SelectItem, SetExpr};
        let lob = |e: &Expr| {
            self.expr_type(e)
                .filter(|t| t.is_legacy_lob() || *t == SqlType::Xml)
        };
        let unsortable = |t: SqlType| {
            if t == SqlType::Xml {
                return xml_unsortable();
            }
            SqlError::new(
                306,
                16,
                "The text, ntext, and image data types cannot be compared or sorted, except when using IS NULL or LIKE operator.",
            )
        };
        if let Some(ob) = &q.order_by {
            if let OrderByKind::Expressions(list) = &ob.kind {
                if let Some(t) = list.iter().find_map(|o| lob(&o.expr)) {
                    return Err(unsortable(t));
                }
            }
        }
        if let SetExpr::Select(sel) = q.body.as_ref() {
            if let GroupByExpr::Expressions(list, _) = &sel.group_by {
                if let Some(t) = list.iter().find_map(lob) {
                    return Err(unsortable(t));
                }
            }
            if sel.distinct.is_some() {
                for item in &sel.projection {
                    if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } =
                        item
                    {
                        if let Some(t) = lob(e) {
                            return Err(SqlError::new(
                                421,
                                16,
                                format!("The {} data type cannot be selected as DISTINCT because it is not comparable.", t.base_name()),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub(in crate::engine) fn is_stringy(&self, e: &Expr) -> bool {
        self.expr_type(e).map(|t| t.is_string()).unwrap_or(false)
    }

    pub(in crate::engine) fn coerce_against(&self, column: &Expr, other: &mut Expr) {
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

/// 305: xml compared or sorted.
fn xml_unsortable() -> SqlError {
    SqlError::new(
        305,
        16,
        "The XML data type cannot be compared or sorted, except when using the IS NULL operator.",
    )
}
