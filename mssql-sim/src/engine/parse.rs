//! Splits a T-SQL batch into statements.
//!
//! sqlparser's `MsSqlDialect` parses most of what clients send. The
//! statements it cannot parse, or parses into something too generic
//! (transactions with names, SAVE TRAN, SET options, DECLARE, ALTER DATABASE),
//! are recognised here first, on the same token stream, so that a batch is
//! parsed in one pass and a syntax error anywhere fails the whole batch
//! before any statement runs, as in SQL Server.

use super::security::{self, Tok};
use crate::error::SqlError;
use crate::types::SqlType;
use sqlparser::ast::{Expr, ObjectName, Statement};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError, ParserOptions};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

/// One statement of a batch.
#[derive(Debug, Clone)]
pub enum Stmt {
    Sql(Box<Statement>),
    BeginTran(Option<String>),
    CommitTran(Option<String>),
    RollbackTran(Option<String>),
    SaveTran(String),
    /// `SET <option>[, <option>...] <value>` for session options.
    SetOption {
        names: Vec<String>,
        value: String,
    },
    SetIsolation(String),
    SetIdentityInsert {
        table: ObjectName,
        on: bool,
    },
    SetVariable {
        name: String,
        value: Expr,
    },
    Declare(Vec<(String, VarType, Option<Expr>)>),
    /// `DECLARE @t TABLE (columns and constraints)`, as the CREATE TABLE
    /// of the table that holds it (named `@t`).
    DeclareTable(Box<Statement>),
    AlterDatabase {
        database: Option<String>,
        words: Vec<String>,
    },
    /// `ALTER TABLE t ENABLE|DISABLE CHANGE_TRACKING [WITH (TRACK_COLUMNS_UPDATED = ON|OFF)]`.
    AlterTableChangeTracking {
        table: ObjectName,
        enable: bool,
        track_columns: Option<bool>,
    },
    /// `ALTER TABLE t ALTER COLUMN c type [COLLATE name] [NULL | NOT NULL]`
    /// (T-SQL's form, which sqlparser does not read).
    AlterColumn {
        table: ObjectName,
        column: String,
        /// The type as written (`nvarchar(200)`, `dbo.Personnummer`).
        ty: String,
        collation: Option<String>,
        /// None: not said (SQL Server then makes the column nullable).
        nullable: Option<bool>,
    },
    /// `ALTER TABLE t SWITCH [PARTITION n] TO target [PARTITION n]`.
    AlterTableSwitch {
        table: ObjectName,
        target: Option<ObjectName>,
    },
    /// `INSERT BULK table (col type, ...) [WITH (...)]`: the bulk-load
    /// message that follows carries the rows.
    InsertBulk {
        table: ObjectName,
        /// Each column with the type the statement declares for it (as
        /// written, without COLLATE / NULL).
        columns: Vec<(String, String)>,
    },
    /// `CREATE DATABASE name [COLLATE collation]`.
    CreateDatabase {
        name: String,
        collation: Option<String>,
    },
    /// `CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL]`.
    CreateType {
        name: ObjectName,
        base: String,
        nullable: Option<bool>,
    },
    /// `UPDATE STATISTICS table [index | (names)] [WITH options]`: the
    /// table's statistics, which the query optimizer plans with.
    UpdateStatistics {
        table: ObjectName,
    },
    /// `DROP TYPE [IF EXISTS] [schema.]name`.
    DropType {
        name: ObjectName,
        if_exists: bool,
    },
    /// GRANT/DENY/REVOKE, CREATE/ALTER/DROP LOGIN, USER or ROLE
    /// (engine::security).
    Security(security::Command),
    /// `WITH CHANGE_TRACKING_CONTEXT (context) <statement>`.
    WithChangeTrackingContext {
        context: Expr,
        stmt: Box<Statement>,
    },
}

/// A variable's declared type: a system type, known when the batch is
/// parsed, or a name that may be an alias type, resolved when it runs.
#[derive(Debug, Clone)]
pub enum VarType {
    System(SqlType),
    Named(String),
}

/// The first argument that marks `CHANGETABLE(CHANGES ...)` and
/// `CHANGETABLE(VERSION ...)` after `mark_changetable` (T-SQL writes the
/// option as a bare word, which no expression parser accepts).
pub const CHANGETABLE_MARK: &str = "\u{1}CHANGETABLE:";

/// Rewrites `CHANGETABLE ( CHANGES` / `CHANGETABLE ( VERSION` into
/// `CHANGETABLE ( '<mark>CHANGES' ,` so that sqlparser reads the call as a
/// table-valued function with ordinary arguments.
fn mark_changetable(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        let is_option = word_is(&t.token, "CHANGES") || word_is(&t.token, "VERSION");
        if is_option {
            let mut prev = out.iter().rev().filter(|x| significant(x));
            let p1 = prev.next().map(|x| x.token.clone());
            let p2 = prev.next().map(|x| x.token.clone());
            if p1 == Some(Token::LParen)
                && p2
                    .as_ref()
                    .map(|t| word_is(t, "CHANGETABLE"))
                    .unwrap_or(false)
            {
                let option = word_value(&t.token)
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                out.push(TokenWithSpan {
                    token: Token::SingleQuotedString(format!("{CHANGETABLE_MARK}{option}")),
                    span: t.span,
                });
                out.push(TokenWithSpan {
                    token: Token::Comma,
                    span: t.span,
                });
                continue;
            }
        }
        out.push(t);
    }
    out
}

/// The data type a computed column is given for sqlparser (see
/// `mark_computed_columns`); `table_spec` gives it its real type.
pub const COMPUTED_TYPE: &str = "__sim_computed";

/// Rewrites T-SQL's computed column `name AS (expr) [PERSISTED]` in a
/// CREATE TABLE column list into `name __sim_computed GENERATED ALWAYS AS
/// (expr) [STORED]`, which sqlparser reads as a generated column (and
/// the same after ALTER TABLE ... ADD, which `ddl` then refuses).
fn mark_computed_columns(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = |value: &str, keyword: Keyword| {
        Token::Word(Word {
            value: value.to_string(),
            quote_style: None,
            keyword,
        })
    };
    // The significant tokens' positions, to look back and ahead.
    let sig: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let at = |k: usize| sig.get(k).map(|&j| &tokens[j].token);
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    // Depth of parentheses inside the current CREATE TABLE (None outside one).
    let mut depth: Option<usize> = None;
    let mut k = 0usize; // index in `sig` of the next significant token
    for t in &tokens {
        if matches!(t.token, Token::Whitespace(_)) {
            out.push(t.clone());
            continue;
        }
        let prev = k.checked_sub(1).and_then(at);
        let (next1, next2) = (at(k + 1), at(k + 2));
        k += 1;
        if word_is(&t.token, "TABLE") && prev.is_some_and(|p| word_is(p, "CREATE")) {
            depth = Some(0);
        }
        match (&t.token, depth) {
            (Token::LParen, Some(d)) => depth = Some(d + 1),
            (Token::RParen, Some(d)) => depth = d.checked_sub(1).filter(|&d| d > 0),
            _ => {}
        }
        if depth == Some(1) && word_is(&t.token, "PERSISTED") && prev == Some(&Token::RParen) {
            out.push(TokenWithSpan {
                token: word("STORED", Keyword::STORED),
                span: t.span,
            });
            continue;
        }
        out.push(t.clone());
        let column_starts = (depth == Some(1)
            && matches!(prev, Some(Token::LParen | Token::Comma)))
            || prev.is_some_and(|p| word_is(p, "ADD"));
        if column_starts
            && matches!(t.token, Token::Word(_))
            && next1.is_some_and(|n| word_is(n, "AS"))
            && next2 == Some(&Token::LParen)
        {
            for (v, kw) in [
                (COMPUTED_TYPE, Keyword::NoKeyword),
                ("GENERATED", Keyword::GENERATED),
                ("ALWAYS", Keyword::ALWAYS),
            ] {
                out.push(TokenWithSpan {
                    token: word(v, kw),
                    span: t.span,
                });
            }
        }
    }
    out
}

fn word_is(t: &Token, kw: &str) -> bool {
    matches!(t, Token::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(kw))
}

fn word_value(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

/// Converts a parser error into SQL Server's syntax error.
pub fn syntax_error(e: &ParserError) -> SqlError {
    let msg = e.to_string();
    // "... found: X at Line: 1, Column: 5"
    let near = msg
        .split("found: ")
        .nth(1)
        .map(|s| s.split(" at Line").next().unwrap_or(s).trim().to_string())
        .unwrap_or_default();
    if near.is_empty() || near == "EOF" {
        return SqlError::new(
            102,
            15,
            "Incorrect syntax near the end of the batch.".to_string(),
        );
    }
    let bare = near.trim_matches(|c| c == '\'' || c == '"');
    let is_keyword = sqlparser::keywords::ALL_KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(bare))
        && bare.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    if is_keyword {
        SqlError::new(
            156,
            15,
            format!(
                "Incorrect syntax near the keyword '{}'.",
                bare.to_ascii_uppercase()
            ),
        )
    } else {
        SqlError::new(102, 15, format!("Incorrect syntax near '{bare}'."))
    }
}

/// A `@name` token: MsSqlDialect reads it as a word, others as a placeholder.
fn variable_name(t: &Token) -> Option<String> {
    match t {
        Token::Placeholder(s) if s.starts_with('@') => Some(s.clone()),
        Token::Word(w) if w.value.starts_with('@') && w.quote_style.is_none() => {
            Some(w.value.clone())
        }
        _ => None,
    }
}

fn tran_name(p: &mut Parser<'_>) -> Option<String> {
    match p.peek_token().token {
        Token::Word(w) if w.keyword == Keyword::NoKeyword || w.quote_style.is_some() => {
            p.next_token();
            Some(w.value)
        }
        Token::Placeholder(s) => {
            p.next_token();
            Some(s)
        }
        _ => None,
    }
}

fn is_tran_word(t: &Token) -> bool {
    word_is(t, "TRAN") || word_is(t, "TRANSACTION")
}

/// Parses a whole batch.
pub fn parse_batch(sql: &str) -> Result<Vec<Stmt>, SqlError> {
    let dialect = MsSqlDialect {};
    let options = ParserOptions::new().with_unescape(true);
    let options = ParserOptions {
        require_semicolon_stmt_delimiter: false,
        ..options
    };
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| syntax_error(&ParserError::TokenizerError(e.to_string())))?;
    let mut p = Parser::new(&dialect)
        .with_options(options)
        .with_tokens_with_locations(mark_computed_columns(mark_changetable(tokens)));
    let mut out = Vec::new();
    loop {
        while p.peek_token().token == Token::SemiColon {
            p.next_token();
        }
        let t0 = p.peek_token().token;
        if t0 == Token::EOF {
            break;
        }
        let t1 = p.peek_nth_token(1).token;
        let stmt = if word_is(&t0, "BEGIN") && (is_tran_word(&t1) || word_is(&t1, "DISTRIBUTED")) {
            if word_is(&t1, "DISTRIBUTED") {
                return Err(SqlError::unsupported("distributed transactions"));
            }
            p.next_token();
            p.next_token();
            Stmt::BeginTran(tran_name(&mut p))
        } else if word_is(&t0, "COMMIT") || word_is(&t0, "ROLLBACK") {
            let commit = word_is(&t0, "COMMIT");
            p.next_token();
            let mut name = None;
            if is_tran_word(&t1) {
                p.next_token();
                name = tran_name(&mut p);
            } else if word_is(&t1, "WORK") {
                p.next_token();
            }
            if commit {
                Stmt::CommitTran(name)
            } else {
                Stmt::RollbackTran(name)
            }
        } else if word_is(&t0, "SAVE") && is_tran_word(&t1) {
            p.next_token();
            p.next_token();
            match tran_name(&mut p) {
                Some(n) => Stmt::SaveTran(n),
                None => {
                    return Err(syntax_error(&ParserError::ParserError(format!(
                        "found: {} at Line",
                        p.peek_token().token
                    ))))
                }
            }
        } else if word_is(&t0, "SET") {
            p.next_token();
            parse_set(&mut p)?
        } else if word_is(&t0, "DECLARE") {
            p.next_token();
            parse_declare(&mut p)?
        } else if word_is(&t0, "INSERT") && word_is(&t1, "BULK") {
            p.next_token();
            p.next_token();
            let table = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            p.expect_token(&Token::LParen)
                .map_err(|e| syntax_error(&e))?;
            let mut columns = Vec::new();
            loop {
                let name = match p.next_token().token {
                    Token::Word(w) => w.value,
                    other => {
                        return Err(syntax_error(&ParserError::ParserError(format!(
                            "found: {other} at Line"
                        ))))
                    }
                };
                // The type, then (skipped) COLLATE / NULL, up to the next column.
                let mut ty = String::new();
                let mut in_type = true;
                let mut depth = 0;
                let last = loop {
                    let tok = p.next_token().token;
                    if let Token::Word(w) = &tok {
                        if ["COLLATE", "NULL", "NOT"]
                            .iter()
                            .any(|k| w.value.eq_ignore_ascii_case(k))
                        {
                            in_type = false;
                        }
                    }
                    let ends = matches!(tok, Token::RParen if depth == 0)
                        || matches!(tok, Token::Comma if depth == 0);
                    if in_type && !ends {
                        ty.push_str(&tok.to_string());
                    }
                    match tok {
                        Token::LParen => depth += 1,
                        Token::RParen if depth > 0 => depth -= 1,
                        Token::RParen => break true,
                        Token::Comma if depth == 0 => break false,
                        Token::EOF => {
                            return Err(syntax_error(&ParserError::ParserError(
                                "found: EOF at Line".into(),
                            )))
                        }
                        _ => {}
                    }
                };
                columns.push((name, ty));
                if last {
                    break;
                }
            }
            // WITH (TABLOCK, CHECK_CONSTRAINTS, ...): accepted, without effect here.
            if word_is(&p.peek_token().token, "WITH") {
                p.next_token();
                let mut depth = 0;
                loop {
                    match p.next_token().token {
                        Token::LParen => depth += 1,
                        Token::RParen => {
                            depth -= 1;
                            if depth <= 0 {
                                break;
                            }
                        }
                        Token::EOF => break,
                        _ => {}
                    }
                }
            }
            Stmt::InsertBulk { table, columns }
        } else if word_is(&t0, "WITH") && word_is(&t1, "CHANGE_TRACKING_CONTEXT") {
            p.next_token();
            p.next_token();
            p.expect_token(&Token::LParen)
                .map_err(|e| syntax_error(&e))?;
            let context = p.parse_expr().map_err(|e| syntax_error(&e))?;
            p.expect_token(&Token::RParen)
                .map_err(|e| syntax_error(&e))?;
            let stmt = p.parse_statement().map_err(|e| syntax_error(&e))?;
            Stmt::WithChangeTrackingContext {
                context,
                stmt: Box::new(stmt),
            }
        } else if word_is(&t0, "ALTER")
            && word_is(&t1, "TABLE")
            && alter_table_ct_word(&p).is_some()
        {
            p.next_token();
            p.next_token();
            let table = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            let verb = p.next_token().token;
            if word_is(&verb, "ALTER") {
                p.next_token(); // COLUMN
                let column = p.parse_identifier().map_err(|e| syntax_error(&e))?.value;
                let mut ty = String::new();
                let mut collation = None;
                let mut nullable = None;
                loop {
                    let t = p.peek_token().token;
                    if t == Token::EOF || t == Token::SemiColon || starts_statement(&t) {
                        break;
                    }
                    p.next_token();
                    if word_is(&t, "COLLATE") {
                        let c = p.next_token().token;
                        collation = Some(word_value(&c).ok_or_else(|| {
                            syntax_error(&ParserError::ParserError(format!("found: {c} at Line")))
                        })?);
                    } else if word_is(&t, "NULL") {
                        nullable = Some(true);
                    } else if word_is(&t, "NOT") {
                        let n = p.next_token().token;
                        if !word_is(&n, "NULL") {
                            return Err(SqlError::syntax_near(&n.to_string()));
                        }
                        nullable = Some(false);
                    } else if collation.is_some() || nullable.is_some() {
                        return Err(SqlError::syntax_near(&t.to_string()));
                    } else if !matches!(t, Token::Whitespace(_)) {
                        ty.push_str(&t.to_string());
                    }
                }
                if ty.is_empty() {
                    return Err(SqlError::syntax_near(&column));
                }
                Stmt::AlterColumn {
                    table,
                    column,
                    ty,
                    collation,
                    nullable,
                }
            } else if word_is(&verb, "SWITCH") {
                // SWITCH [PARTITION n] TO target [PARTITION n]
                let mut target = None;
                loop {
                    let t = p.peek_token().token;
                    if t == Token::EOF || t == Token::SemiColon || starts_statement(&t) {
                        break;
                    }
                    p.next_token();
                    if word_is(&t, "TO") {
                        target = Some(p.parse_object_name(false).map_err(|e| syntax_error(&e))?);
                    }
                }
                Stmt::AlterTableSwitch { table, target }
            } else {
                let enable = word_is(&verb, "ENABLE");
                p.next_token(); // CHANGE_TRACKING
                let mut track_columns = None;
                if enable && word_is(&p.peek_token().token, "WITH") {
                    p.next_token();
                    p.expect_token(&Token::LParen)
                        .map_err(|e| syntax_error(&e))?;
                    let opt = p.next_token().token;
                    if !word_is(&opt, "TRACK_COLUMNS_UPDATED") {
                        return Err(syntax_error(&ParserError::ParserError(format!(
                            "found: {opt} at Line"
                        ))));
                    }
                    p.expect_token(&Token::Eq).map_err(|e| syntax_error(&e))?;
                    let v = p.next_token().token;
                    track_columns = if word_is(&v, "ON") {
                        Some(true)
                    } else if word_is(&v, "OFF") {
                        Some(false)
                    } else {
                        return Err(syntax_error(&ParserError::ParserError(format!(
                            "found: {v} at Line"
                        ))));
                    };
                    p.expect_token(&Token::RParen)
                        .map_err(|e| syntax_error(&e))?;
                }
                Stmt::AlterTableChangeTracking {
                    table,
                    enable,
                    track_columns,
                }
            }
        } else if word_is(&t0, "ALTER") && word_is(&t1, "DATABASE") {
            p.next_token();
            p.next_token();
            let db = p.next_token().token;
            let database = if word_is(&db, "CURRENT") {
                None
            } else {
                Some(word_value(&db).ok_or_else(|| {
                    syntax_error(&ParserError::ParserError(format!("found: {db} at Line")))
                })?)
            };
            let mut words = Vec::new();
            loop {
                let t = p.peek_token().token;
                if t == Token::EOF || t == Token::SemiColon {
                    break;
                }
                // Stop at the start of the next statement when there is no semicolon.
                if !words.is_empty() && starts_statement(&t) && !prev_is_set_context(&words) {
                    break;
                }
                p.next_token();
                words.push(t.to_string());
            }
            Stmt::AlterDatabase { database, words }
        } else if word_is(&t0, "CREATE") && word_is(&t1, "TYPE") {
            p.next_token();
            p.next_token();
            let name = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            let next = p.next_token().token;
            if word_is(&next, "AS") || word_is(&next, "EXTERNAL") {
                return Err(SqlError::unsupported(
                    "CREATE TYPE ... AS TABLE and CLR types (alias types, CREATE TYPE ... FROM, are supported)",
                ));
            }
            if !word_is(&next, "FROM") {
                return Err(SqlError::syntax_near(&next.to_string()));
            }
            let base = p
                .parse_data_type()
                .map_err(|e| syntax_error(&e))?
                .to_string();
            let nullable = if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                Some(false)
            } else if p.parse_keyword(Keyword::NULL) {
                Some(true)
            } else {
                None
            };
            Stmt::CreateType {
                name,
                base,
                nullable,
            }
        } else if word_is(&t0, "UPDATE") && word_is(&t1, "STATISTICS") {
            p.next_token();
            p.next_token();
            let table = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            // Which statistics and how (FULLSCAN, SAMPLE ...): all of the
            // table's, always fully.
            loop {
                let next = p.peek_token().token;
                if next == Token::EOF || next == Token::SemiColon || starts_statement(&next) {
                    break;
                }
                p.next_token();
            }
            Stmt::UpdateStatistics { table }
        } else if word_is(&t0, "DROP") && word_is(&t1, "TYPE") {
            p.next_token();
            p.next_token();
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            Stmt::DropType { name, if_exists }
        } else if word_is(&t0, "CREATE") && word_is(&t1, "DATABASE") {
            p.next_token();
            p.next_token();
            let name = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
            let name = match name.0.as_slice() {
                [part] => part
                    .as_ident()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| part.to_string()),
                _ => return Err(SqlError::syntax_near(&name.to_string())),
            };
            let collation = if word_is(&p.peek_token().token, "COLLATE") {
                p.next_token();
                let t = p.next_token().token;
                Some(word_value(&t).ok_or_else(|| SqlError::syntax_near(&t.to_string()))?)
            } else {
                None
            };
            let next = p.peek_token().token;
            if !(next == Token::EOF || next == Token::SemiColon || starts_statement(&next)) {
                return Err(SqlError::unsupported(format!(
                    "CREATE DATABASE ... {next} (only COLLATE is supported)"
                )));
            }
            Stmt::CreateDatabase { name, collation }
        } else if security::starts(
            &word_value(&t0).unwrap_or_default(),
            &word_value(&t1).unwrap_or_default(),
        ) {
            Stmt::Security(security::parse(&security_tokens(&mut p)?)?)
        } else {
            Stmt::Sql(Box::new(p.parse_statement().map_err(|e| syntax_error(&e))?))
        };
        out.push(stmt);
    }
    Ok(out)
}

/// The tokens of a security statement, up to its end: a semicolon, the end
/// of the batch, or a word that starts the next statement (not a
/// permission such as SELECT before TO, nor ALTER ROLE's ADD/DROP).
fn security_tokens(p: &mut Parser<'_>) -> Result<Vec<Tok>, SqlError> {
    let grant = ["GRANT", "DENY", "REVOKE"]
        .iter()
        .any(|k| word_is(&p.peek_token().token, k));
    let alter_role =
        word_is(&p.peek_token().token, "ALTER") && word_is(&p.peek_nth_token(1).token, "ROLE");
    let mut toks: Vec<Tok> = Vec::new();
    let mut seen_to = false;
    loop {
        let t = p.peek_token().token;
        if t == Token::EOF || t == Token::SemiColon {
            break;
        }
        let role_verb = alter_role && toks.len() == 3;
        if !toks.is_empty()
            && starts_statement(&t)
            && !role_verb
            && !matches!(toks.last(), Some(Tok::Punct(_)))
            && (!grant || seen_to)
        {
            break;
        }
        p.next_token();
        toks.push(match t {
            Token::Word(w) => {
                if w.quote_style.is_none()
                    && (w.value.eq_ignore_ascii_case("TO") || w.value.eq_ignore_ascii_case("FROM"))
                {
                    seen_to = true;
                }
                Tok::Word(w.value, w.quote_style.is_some())
            }
            Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) => Tok::Str(s),
            Token::Comma => Tok::Punct(",".into()),
            Token::Period => Tok::Punct(".".into()),
            Token::Eq => Tok::Punct("=".into()),
            Token::DoubleColon => Tok::Punct("::".into()),
            Token::LParen => Tok::Punct("(".into()),
            Token::RParen => Tok::Punct(")".into()),
            Token::Whitespace(_) => continue,
            other => return Err(SqlError::syntax_near(&other.to_string())),
        });
    }
    Ok(toks)
}

/// For `ALTER TABLE <name> ENABLE|DISABLE CHANGE_TRACKING` and
/// `ALTER TABLE <name> SWITCH`: the verb after the table name.
fn alter_table_ct_word(p: &Parser<'_>) -> Option<&'static str> {
    let mut i = 2;
    if !matches!(p.peek_nth_token(i).token, Token::Word(_)) {
        return None;
    }
    while p.peek_nth_token(i + 1).token == Token::Period {
        i += 2;
    }
    let verb = p.peek_nth_token(i + 1).token;
    if word_is(&verb, "SWITCH") {
        return Some("SWITCH");
    }
    if word_is(&verb, "ALTER") && word_is(&p.peek_nth_token(i + 2).token, "COLUMN") {
        return Some("ALTER COLUMN");
    }
    let ct = word_is(&p.peek_nth_token(i + 2).token, "CHANGE_TRACKING");
    if ct && word_is(&verb, "ENABLE") {
        Some("ENABLE")
    } else if ct && word_is(&verb, "DISABLE") {
        Some("DISABLE")
    } else {
        None
    }
}

fn starts_statement(t: &Token) -> bool {
    [
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "BEGIN", "COMMIT",
        "ROLLBACK", "USE", "DECLARE", "EXEC", "EXECUTE",
    ]
    .iter()
    .any(|k| word_is(t, k))
}

fn prev_is_set_context(words: &[String]) -> bool {
    words
        .last()
        .map(|w| w == "=" || w == "(" || w == ",")
        .unwrap_or(false)
}

fn parse_set(p: &mut Parser<'_>) -> Result<Stmt, SqlError> {
    let t = p.peek_token().token;
    // SET @var = expr
    if let Some(name) = variable_name(&t) {
        p.next_token();
        p.expect_token(&Token::Eq).map_err(|e| syntax_error(&e))?;
        let value = p.parse_expr().map_err(|e| syntax_error(&e))?;
        return Ok(Stmt::SetVariable { name, value });
    }
    if word_is(&t, "TRANSACTION") {
        p.next_token();
        for kw in ["ISOLATION", "LEVEL"] {
            let t = p.next_token().token;
            if !word_is(&t, kw) {
                return Err(syntax_error(&ParserError::ParserError(format!(
                    "found: {t} at Line"
                ))));
            }
        }
        let mut level = Vec::new();
        while let Some(w) = word_value(&p.peek_token().token) {
            if starts_statement(&p.peek_token().token) || word_is(&p.peek_token().token, "SET") {
                break;
            }
            p.next_token();
            level.push(w.to_ascii_uppercase());
        }
        return Ok(Stmt::SetIsolation(level.join(" ")));
    }
    if word_is(&t, "IDENTITY_INSERT") {
        p.next_token();
        let table = p.parse_object_name(false).map_err(|e| syntax_error(&e))?;
        let v = p.next_token().token;
        let on = word_is(&v, "ON");
        if !on && !word_is(&v, "OFF") {
            return Err(syntax_error(&ParserError::ParserError(format!(
                "found: {v} at Line"
            ))));
        }
        return Ok(Stmt::SetIdentityInsert { table, on });
    }
    let mut names = Vec::new();
    loop {
        let t = p.next_token().token;
        match word_value(&t) {
            Some(w) => names.push(w.to_ascii_uppercase()),
            None => {
                return Err(syntax_error(&ParserError::ParserError(format!(
                    "found: {t} at Line"
                ))))
            }
        }
        if p.peek_token().token == Token::Comma {
            p.next_token();
            continue;
        }
        break;
    }
    let v = p.next_token().token;
    let value = match &v {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        Token::Number(n, _) => n.clone(),
        Token::Minus => match p.next_token().token {
            Token::Number(n, _) => format!("-{n}"),
            other => {
                return Err(syntax_error(&ParserError::ParserError(format!(
                    "found: {other} at Line"
                ))))
            }
        },
        Token::SingleQuotedString(s) | Token::NationalStringLiteral(s) => s.clone(),
        other => {
            return Err(syntax_error(&ParserError::ParserError(format!(
                "found: {other} at Line"
            ))))
        }
    };
    Ok(Stmt::SetOption { names, value })
}

fn parse_declare(p: &mut Parser<'_>) -> Result<Stmt, SqlError> {
    let mut vars = Vec::new();
    loop {
        let t = p.next_token().token;
        let Some(name) = variable_name(&t) else {
            return Err(syntax_error(&ParserError::ParserError(format!(
                "found: {t} at Line"
            ))));
        };
        if word_is(&p.peek_token().token, "AS") {
            p.next_token();
        }
        if word_is(&p.peek_token().token, "CURSOR") {
            return Err(SqlError::unsupported("cursor variables"));
        }
        if word_is(&p.peek_token().token, "TABLE") {
            if !vars.is_empty() {
                return Err(SqlError::syntax_near("TABLE"));
            }
            p.next_token();
            let (columns, constraints) = p.parse_columns().map_err(|e| syntax_error(&e))?;
            let mut parts: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            parts.extend(constraints.iter().map(|c| c.to_string()));
            let sql = format!(
                "CREATE TABLE [{}] ({})",
                name.replace(']', "]]"),
                parts.join(", ")
            );
            let stmt = Parser::new(&MsSqlDialect {})
                .try_with_sql(&sql)
                .and_then(|mut q| q.parse_statement())
                .map_err(|e| syntax_error(&e))?;
            return Ok(Stmt::DeclareTable(Box::new(stmt)));
        }
        let dt = p.parse_data_type().map_err(|e| syntax_error(&e))?;
        let text = dt.to_string();
        let ty = match SqlType::parse(&text) {
            Ok(t) => VarType::System(t),
            Err(e) if e.number == 2715 => VarType::Named(text),
            Err(e) => return Err(e),
        };
        let init = if p.peek_token().token == Token::Eq {
            p.next_token();
            Some(p.parse_expr().map_err(|e| syntax_error(&e))?)
        } else {
            None
        };
        vars.push((name, ty, init));
        if p.peek_token().token == Token::Comma {
            p.next_token();
            continue;
        }
        break;
    }
    Ok(Stmt::Declare(vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_recognises() {
        let b = parse_batch(
            "BEGIN TRAN t1; SAVE TRANSACTION s; INSERT INTO t VALUES (1)\nROLLBACK TRAN s; COMMIT",
        )
        .unwrap();
        assert!(matches!(&b[0], Stmt::BeginTran(Some(n)) if n == "t1"));
        assert!(matches!(&b[1], Stmt::SaveTran(n) if n == "s"));
        assert!(matches!(&b[2], Stmt::Sql(_)));
        assert!(matches!(&b[3], Stmt::RollbackTran(Some(n)) if n == "s"));
        assert!(matches!(&b[4], Stmt::CommitTran(None)));
    }

    #[test]
    fn tedious_set_batch_without_semicolons() {
        let b = parse_batch("set textsize 2147483647\nset quoted_identifier on\nset transaction isolation level read committed\nset xact_abort off").unwrap();
        assert_eq!(b.len(), 4);
        assert!(matches!(&b[2], Stmt::SetIsolation(l) if l == "READ COMMITTED"));
    }

    #[test]
    fn declare_and_set_variable() {
        let b =
            parse_batch("DECLARE @x int = 5, @y nvarchar(10); SET @y = N'a'; SELECT @x").unwrap();
        assert!(matches!(&b[0], Stmt::Declare(v) if v.len() == 2));
        assert!(matches!(&b[1], Stmt::SetVariable { name, .. } if name == "@y"));
    }

    #[test]
    fn change_tracking_statements() {
        let b = parse_batch("ALTER TABLE dbo.t ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON); ALTER TABLE t DISABLE CHANGE_TRACKING").unwrap();
        assert!(matches!(
            &b[0],
            Stmt::AlterTableChangeTracking {
                enable: true,
                track_columns: Some(true),
                ..
            }
        ));
        assert!(matches!(
            &b[1],
            Stmt::AlterTableChangeTracking {
                enable: false,
                track_columns: None,
                ..
            }
        ));
        let b = parse_batch("WITH CHANGE_TRACKING_CONTEXT (@c) UPDATE t SET a = 1").unwrap();
        assert!(matches!(&b[0], Stmt::WithChangeTrackingContext { .. }));
        let b = parse_batch("SELECT * FROM CHANGETABLE(CHANGES dbo.t, @v) AS c; SELECT * FROM CHANGETABLE (VERSION t, (id), (1)) AS v").unwrap();
        assert_eq!(b.len(), 2);
        let Stmt::Sql(s) = &b[0] else { panic!() };
        assert!(s.to_string().contains("CHANGETABLE:CHANGES"), "{s}");
        assert!(parse_batch("SELECT * FROM CHANGETABLE(CHANGES t, @v + 1) AS c").is_ok());
    }

    #[test]
    fn syntax_errors_are_102_or_156() {
        assert_eq!(parse_batch("SELEC 1").unwrap_err().number, 102);
        assert_eq!(parse_batch("SELECT * FROM WHERE").unwrap_err().number, 156);
    }
}
