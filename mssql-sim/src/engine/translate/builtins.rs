//! T-SQL's built-in functions and `@@` variables, mapped to SQLite or to
//! the simulator's own functions; an unknown function is error 195, never
//! passed through to SQLite.

use super::ast::*;
use super::names::*;
use super::rewriter::*;
use crate::engine::catalog::{self};
use crate::error::SqlError;
use crate::types::SqlType;
use sqlparser::ast::{BinaryOperator, Expr, Function, Ident, ObjectName, ObjectNamePart};

/// A function call being rewritten: its name (upper case, without `sys.`),
/// as written, and its arguments already rewritten.
pub(in crate::engine) struct Call<'f> {
    pub f: &'f Function,
    pub raw: String,
    pub name: String,
    pub args: Vec<Expr>,
}

impl Call<'_> {
    /// Error 174 unless the call has `k` arguments.
    pub fn need(&self, k: usize) -> Result<(), SqlError> {
        if self.args.len() == k {
            Ok(())
        } else {
            Err(wrong_args(&self.name, k))
        }
    }
}

/// One family of built-in functions: the rewritten call, or `None` when
/// the function is not of this family.
type Family<'a> = fn(&mut Rewriter<'a>, &Call<'_>) -> Result<Option<Expr>, SqlError>;

impl<'a> Rewriter<'a> {
    pub(in crate::engine) fn session_variable(&self, name: &str) -> Option<Expr> {
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
            // The last rowversion the database gave out, varbinary(8).
            "@@DBTS" => call(
                "__sim_cast",
                vec![
                    call("__sim_rowversion_bytes", vec![dbts_subquery()]),
                    string_lit("varbinary(8)"),
                ],
            ),
            _ => return None,
        })
    }

    /// Rewrites one function call; see the module docs for the rules.
    pub(in crate::engine) fn function(&mut self, f: &Function) -> Result<Expr, SqlError> {
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
        let c = Call {
            f,
            args: function_args(f)?,
            raw,
            name,
        };
        let families: [Family<'a>; 6] = [
            Self::general_function,
            Self::string_function,
            Self::math_function,
            Self::time_function,
            Self::metadata_function,
            Self::change_tracking_function,
        ];
        for family in families {
            if let Some(e) = family(self, &c)? {
                return Ok(e);
            }
        }
        Err(SqlError::new(
            195,
            15,
            format!("'{}' is not a recognized built-in function name.", c.raw),
        ))
    }

    /// Aggregates, NULL handling and IIF.
    fn general_function(&mut self, c: &Call<'_>) -> Result<Option<Expr>, SqlError> {
        let f = c.f;
        let (name, args) = (c.name.as_str(), c.args.clone());
        let need = |k: usize| c.need(k);
        Ok(Some(match name {
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
                            return Ok(Some(call(
                                "__sim_cast",
                                vec![Expr::Function(g), string_lit(&t.to_string())],
                            )));
                        }
                    }
                }
                Expr::Function(f.clone())
            }
            // STRING_AGG(s, sep) [WITHIN GROUP (ORDER BY ...)]: SQLite's
            // group_concat (NULLs skipped, NULL when none), ordered as asked;
            // a result over 8000 bytes of a non-max input is 9829, as in
            // SQL Server.
            "STRING_AGG" => {
                need(2)?;
                let family = match self.expr_type(&args[0]) {
                    Some(SqlType::NVarChar(crate::types::Len::Max)) => "nvarchar(max)",
                    Some(SqlType::VarChar(crate::types::Len::Max)) => "varchar(max)",
                    Some(t) if t.is_unicode() => "nvarchar(4000)",
                    Some(t) if t.is_string() => "varchar(8000)",
                    _ => {
                        return Err(SqlError::unsupported(
                            "STRING_AGG of anything but a string expression (CAST it to nvarchar first)",
                        ))
                    }
                };
                let mut g = f.clone();
                g.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("group_concat"))]);
                let order = std::mem::take(&mut g.within_group);
                if !order.is_empty() {
                    if let sqlparser::ast::FunctionArguments::List(l) = &mut g.args {
                        l.clauses
                            .push(sqlparser::ast::FunctionArgumentClause::OrderBy(order));
                    }
                }
                call(
                    "__sim_string_agg",
                    vec![Expr::Function(g), string_lit(family)],
                )
            }
            // Their hash is not documented: refused rather than emulated wrongly.
            "CHECKSUM" | "BINARY_CHECKSUM" | "CHECKSUM_AGG" => {
                return Err(SqlError::unsupported(format!(
                    "{name} (SQL Server does not document its hash; use HASHBYTES)"
                )))
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
            _ => return Ok(None),
        }))
    }

    /// String functions.
    fn string_function(&mut self, c: &Call<'_>) -> Result<Option<Expr>, SqlError> {
        let (name, args, n) = (c.name.as_str(), c.args.clone(), c.args.len());
        let need = |k: usize| c.need(k);
        Ok(Some(match name {
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
            // HASHBYTES(alg, x): the digest of x's bytes as SQL Server stores
            // them (nvarchar UTF-16LE, varchar in code page 1252, integers
            // big-endian as they convert to varbinary).
            "HASHBYTES" => {
                need(2)?;
                let family = match self.expr_type(&args[1]) {
                    Some(SqlType::VarChar(_) | SqlType::Char(_)) => "varchar",
                    Some(SqlType::NVarChar(_) | SqlType::NChar(_)) => "nvarchar",
                    Some(SqlType::VarBinary(_) | SqlType::Binary(_)) => "varbinary",
                    Some(SqlType::TinyInt) => "1",
                    Some(SqlType::SmallInt) => "2",
                    Some(SqlType::Int) => "4",
                    Some(SqlType::BigInt) => "8",
                    _ => {
                        return Err(SqlError::unsupported(
                            "HASHBYTES of anything but a string, binary or integer expression",
                        ))
                    }
                };
                call(
                    "__sim_hashbytes",
                    vec![args[0].clone(), args[1].clone(), string_lit(family)],
                )
            }
            // QUOTENAME(s [, q]): s delimited by q (default brackets), the
            // closing delimiter doubled inside; NULL for more than 128
            // characters or a delimiter SQL Server does not accept.
            "QUOTENAME" => {
                if !(1..=2).contains(&n) {
                    return Err(wrong_args("QUOTENAME", 1));
                }
                let q = args.get(1).cloned().unwrap_or_else(|| string_lit("["));
                call("__sim_quotename", vec![args[0].clone(), q])
            }
            // DATALENGTH(x): the bytes of the value as SQL Server stores it
            // (fixed types their size, whatever the value; NULL for NULL);
            // bigint for the max types.
            "DATALENGTH" => {
                need(1)?;
                let Some(t) = self.expr_type(&args[0]) else {
                    return Err(SqlError::unsupported(
                        "DATALENGTH of an expression whose type it cannot tell",
                    ));
                };
                // The UDF reads the family, or a fixed type's size.
                let family = match t {
                    SqlType::VarChar(_) | SqlType::Text => "varchar".to_string(),
                    SqlType::NVarChar(_) | SqlType::NText => "nvarchar".to_string(),
                    SqlType::VarBinary(_) | SqlType::Image => "varbinary".to_string(),
                    fixed => fixed.catalog_sizes().0.to_string(),
                };
                let len = call(
                    "__sim_datalength",
                    vec![args[0].clone(), string_lit(&family)],
                );
                if t.is_max() {
                    call("__sim_cast", vec![len, string_lit("bigint")])
                } else {
                    len
                }
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
            _ => return Ok(None),
        }))
    }

    /// Arithmetic functions.
    fn math_function(&mut self, c: &Call<'_>) -> Result<Option<Expr>, SqlError> {
        let (name, args, n) = (c.name.as_str(), c.args.clone(), c.args.len());
        let need = |k: usize| c.need(k);
        Ok(Some(match name {
            "ABS" => {
                need(1)?;
                call("abs", args)
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
            _ => return Ok(None),
        }))
    }

    /// Dates and times of the simulated clock, NEWID, SCOPE_IDENTITY.
    fn time_function(&mut self, c: &Call<'_>) -> Result<Option<Expr>, SqlError> {
        let (name, need) = (c.name.as_str(), |k: usize| c.need(k));
        Ok(Some(match name {
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
            _ => return Ok(None),
        }))
    }

    /// Catalog and server metadata (DB_NAME, OBJECT_ID, COLUMNPROPERTY, SERVERPROPERTY, ...).
    fn metadata_function(&mut self, c: &Call<'_>) -> Result<Option<Expr>, SqlError> {
        let (name, args, n) = (c.name.as_str(), c.args.clone(), c.args.len());
        let need = |k: usize| c.need(k);
        Ok(Some(match name {
            // @@DBTS + 1 as committed: a writer's uncommitted rowversions
            // come after it (SQLite has one writer at a time).
            "MIN_ACTIVE_ROWVERSION" => {
                need(0)?;
                call(
                    "__sim_cast",
                    vec![
                        call(
                            "__sim_rowversion_bytes",
                            vec![Expr::BinaryOp {
                                left: Box::new(dbts_subquery()),
                                op: sqlparser::ast::BinaryOperator::Plus,
                                right: Box::new(number_lit(1)),
                            }],
                        ),
                        string_lit("binary(8)"),
                    ],
                )
            }
            "DB_NAME" => match args.first() {
                None => string_lit(&self.session.database),
                Some(a) => {
                    let id: i64 = a
                        .to_string()
                        .trim_matches(['(', ')'])
                        .parse()
                        .map_err(|_| SqlError::unsupported("DB_NAME of anything but a number"))?;
                    self.session
                        .databases
                        .iter()
                        .find(|d| crate::engine::catalog::database_id(d) == id)
                        .map(|d| string_lit(d))
                        // DB_NAME returns nvarchar(128), NULL included.
                        .unwrap_or_else(|| {
                            call("__sim_cast", vec![null_lit(), string_lit("nvarchar(128)")])
                        })
                }
            },
            // The login of the session.
            "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" => {
                if n != 0 {
                    return Err(SqlError::unsupported(format!("{name} of a login id")));
                }
                call(
                    "__sim_cast",
                    vec![
                        string_lit(&self.res.caller.login),
                        string_lit("nvarchar(128)"),
                    ],
                )
            }
            // The database user of the session (dbo for sa and db owners
            // mapped to dbo).
            "USER_NAME" => {
                if n != 0 {
                    return Err(SqlError::unsupported("USER_NAME of a user id"));
                }
                call(
                    "__sim_cast",
                    vec![
                        string_lit(&self.res.caller.user),
                        string_lit("nvarchar(128)"),
                    ],
                )
            }
            // The caller's effective permission: 1, 0, or NULL when the
            // securable is not found or the permission is not one of its
            // class (HAS_PERMS_BY_NAME). OBJECT and DATABASE classes.
            "HAS_PERMS_BY_NAME" => {
                if n != 3 {
                    return Err(if n > 3 {
                        SqlError::unsupported("HAS_PERMS_BY_NAME of a sub-securable (column)")
                    } else {
                        wrong_args(name, 3)
                    });
                }
                let class = literal_string(&args[1]).map(|c| c.to_ascii_uppercase());
                match class.as_deref() {
                    Some("OBJECT") => Expr::Subquery(Box::new(parse_query(&format!(
                        "SELECT CASE WHEN __sim_perm_name_ok(({p})) = 1 THEN __sim_can(o.object_id, ({p})) END
                         FROM __sim_objects o JOIN __sim_schemas s ON s.schema_id = o.schema_id
                         WHERE s.name = __sim_name_part(({a}), 1) AND o.name = __sim_name_part(({a}), 2) AND o.type = 'U '",
                        a = args[0],
                        p = args[2]
                    ))?)),
                    Some("DATABASE") => call("__sim_can_db", vec![args[2].clone()]),
                    _ => {
                        return Err(SqlError::unsupported(format!(
                            "HAS_PERMS_BY_NAME for the class {} (OBJECT and DATABASE are supported)",
                            args[1]
                        )))
                    }
                }
            }
            "DB_ID" => match args.first() {
                None => number_lit(crate::engine::catalog::database_id(&self.session.database)),
                Some(a) => {
                    let name = literal_string(a).ok_or_else(|| {
                        SqlError::unsupported("DB_ID of anything but a string literal")
                    })?;
                    self.session
                        .databases
                        .iter()
                        .find(|d| d.eq_ignore_ascii_case(name.trim_matches(['[', ']'])))
                        .map(|d| number_lit(crate::engine::catalog::database_id(d)))
                        .unwrap_or_else(null_lit)
                }
            },
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
                    return Err(wrong_args(name, 1));
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
                         WHERE s.name = __sim_name_part(({a}), 1) AND o.name = __sim_name_part(({a}), 2)
                         AND __sim_visible(CASE WHEN coalesce(o.parent_object_id, 0) = 0 THEN o.object_id ELSE o.parent_object_id END) = 1",
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
            // SQL Server returns sql_variant; the simulator, which has no
            // sql_variant, returns the value's own type (README).
            "DATABASEPROPERTYEX" => {
                need(2)?;
                let (Some(db), Some(p)) = (literal_string(&args[0]), literal_string(&args[1]))
                else {
                    return Err(SqlError::unsupported(
                        "DATABASEPROPERTYEX with non-literal arguments",
                    ));
                };
                let Some(db) = self
                    .session
                    .databases
                    .iter()
                    .find(|d| d.eq_ignore_ascii_case(&db))
                else {
                    return Ok(Some(null_lit()));
                };
                match p.to_ascii_lowercase().as_str() {
                    "collation" => {
                        let c = if db.eq_ignore_ascii_case(&self.session.database) {
                            self.session.collation
                        } else {
                            catalog::database_file_collation(self.res.data_dir, db)?
                        };
                        call("__sim_cast", vec![string_lit(c.name()), string_lit("nvarchar(128)")])
                    }
                    "status" => string_lit("ONLINE"),
                    "updateability" => string_lit("READ_WRITE"),
                    "useraccess" => string_lit("MULTI_USER"),
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "DATABASEPROPERTYEX property '{other}' (it has Collation, Status, Updateability, UserAccess)"
                        )))
                    }
                }
            }
            "COLLATIONPROPERTY" => {
                need(2)?;
                let (Some(name), Some(p)) = (literal_string(&args[0]), literal_string(&args[1]))
                else {
                    return Err(SqlError::unsupported(
                        "COLLATIONPROPERTY with non-literal arguments",
                    ));
                };
                // An unknown collation or property gives NULL, as in SQL Server.
                let Ok(c) = crate::collation::Collation::parse(&name) else {
                    return Ok(Some(null_lit()));
                };
                match p.to_ascii_lowercase().as_str() {
                    "codepage" => number_lit(c.code_page()),
                    "lcid" => number_lit(c.lcid()),
                    "comparisonstyle" => number_lit(c.comparison_style()),
                    "version" => number_lit(0),
                    _ => null_lit(),
                }
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
                    "collation" => string_lit(self.session.server_collation.name()),
                    "productmajorversion" => string_lit("16"),
                    "ishadrenabled" => number_lit(0),
                    _ => null_lit(),
                }
            }
            _ => return Ok(None),
        }))
    }

    /// OBJECT_ID('schema.name') resolved now (the argument is a literal).
    pub(in crate::engine) fn object_id(&self, text: &str) -> Result<Option<i64>, SqlError> {
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
        // Metadata visibility: an object the caller holds no permission on
        // has no id (a constraint is seen through its table).
        let found =
            catalog::find_object(self.res.conn, &schema, &object).map_err(catalog::sqlite_err)?;
        let Some((id, _)) = found else {
            return Ok(None);
        };
        let Some(grants) = &self.res.caller.grants else {
            return Ok(Some(id));
        };
        let parent: Option<i64> = self
            .res
            .conn
            .query_row(
                "SELECT parent_object_id FROM __sim_objects WHERE object_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(catalog::sqlite_err)?;
        let owner = parent.filter(|p| *p != 0).unwrap_or(id);
        Ok(grants.visible(owner).then_some(id))
    }
}

/// `(SELECT coalesce(value, 2000) ...)`: @@DBTS as a number (see
/// `catalog::dbts`).
fn dbts_subquery() -> Expr {
    Expr::Subquery(Box::new(
        parse_query(
            "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM __sim_options WHERE name = 'dbts'), 2000)",
        )
        .expect("a fixed query parses"),
    ))
}
