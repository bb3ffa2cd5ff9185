//! A CREATE TABLE being read (`TableSpec`): its columns, keys and
//! constraints checked as SQL Server checks them, with SQL Server's errors,
//! then turned into the SQLite table's definition. `Session::create_table`
//! (ddl.rs) creates the table and its catalog entry from it.

use super::alias_types;
use super::catalog::{self, q, ColumnDef, ForeignKeyDef, TableDef};
use super::names::index_column_name;
use super::session::Session;
use super::translate::{self, Label, Resolver, Rewriter, SessionView};
use crate::collation::Collation;
use crate::error::SqlError;
use crate::types::{Len, SqlType};
use rusqlite::Connection;
use sqlparser::ast::{
    ColumnOption, IdentityPropertyFormatKind, IdentityPropertyKind, ObjectName, ReferentialAction,
    TableConstraint,
};

/// A table definition under construction.
pub struct TableSpec {
    pub schema: String,
    pub name: String,
    pub temp: bool,
    /// As SQL Server names the table in messages.
    pub display: String,
    pub columns: Vec<ColumnDef>,
    /// Each column's default (T-SQL translated), if any.
    pub defaults: Vec<Option<String>>,
    /// The same as the catalog stores it (`(expr)`).
    pub default_sql: Vec<Option<String>>,
    pub pk: Vec<String>,
    pub pk_name: Option<String>,
    pub fks: Vec<ForeignKeyDef>,
    pub uniques: Vec<(Option<String>, Vec<String>)>,
    /// Computed columns: (position in `columns`, the T-SQL expression, and
    /// once resolved the SQLite expression that computes it).
    pub computed: Vec<(usize, sqlparser::ast::Expr, Option<String>)>,
}

/// A foreign key's ON DELETE/ON UPDATE as the catalog stores it.
fn action(a: &Option<ReferentialAction>) -> Result<i32, SqlError> {
    match a {
        Some(ReferentialAction::Cascade) => Ok(1),
        Some(ReferentialAction::SetNull) => Ok(2),
        Some(ReferentialAction::SetDefault) => Ok(3),
        Some(ReferentialAction::NoAction) | None => Ok(0),
        Some(ReferentialAction::Restrict) => Err(SqlError::syntax_near("RESTRICT")),
    }
}

/// The foreign key of column `column` of table `table` declared by a
/// column's REFERENCES clause (named `name`, or SQL Server's default
/// name); its referenced columns are resolved later
/// (`TableSpec::resolve_foreign_keys`).
pub fn foreign_key(
    table: &str,
    column: &str,
    name: Option<&sqlparser::ast::Ident>,
    f: &sqlparser::ast::ForeignKeyConstraint,
    i: usize,
) -> Result<ForeignKeyDef, SqlError> {
    let (rs, rt) = fk_target(&f.foreign_table)?;
    Ok(ForeignKeyDef {
        name: f
            .name
            .as_ref()
            .or(name)
            .map(|n| n.value.clone())
            .unwrap_or_else(|| format!("FK__{table}__{column}__{i:08X}")),
        columns: vec![column.to_string()],
        ref_schema: rs,
        ref_table: rt,
        ref_columns: f.referred_columns.iter().map(|i| i.value.clone()).collect(),
        on_delete: action(&f.on_delete)?,
        on_update: action(&f.on_update)?,
    })
}

/// ` REFERENCES "schema.table" ("col") ON DELETE ... ON UPDATE ...`: a
/// column's foreign key as SQLite enforces it.
pub fn references_clause(fk: &ForeignKeyDef) -> String {
    format!(
        " REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
        q(&format!("{}.{}", fk.ref_schema, fk.ref_table)),
        fk.ref_columns
            .iter()
            .map(|p| q(p))
            .collect::<Vec<_>>()
            .join(", "),
        sqlite_action(fk.on_delete),
        sqlite_action(fk.on_update)
    )
}

fn sqlite_action(a: i32) -> &'static str {
    match a {
        1 => "CASCADE",
        2 => "SET NULL",
        3 => "SET DEFAULT",
        _ => "NO ACTION",
    }
}

/// The (schema, table) a foreign key references.
fn fk_target(t: &ObjectName) -> Result<(String, String), SqlError> {
    let (_, s, n) = translate::name_parts(t)?;
    Ok((s.unwrap_or_else(|| "dbo".into()), n))
}

impl TableSpec {
    pub fn new(schema: String, name: String, temp: bool) -> TableSpec {
        let display = if temp {
            name.clone()
        } else {
            format!("{schema}.{name}")
        };
        TableSpec {
            schema,
            name,
            temp,
            display,
            columns: vec![],
            defaults: vec![],
            default_sql: vec![],
            pk: vec![],
            pk_name: None,
            fks: vec![],
            uniques: vec![],
            computed: vec![],
        }
    }

    /// Error 8110 when the table has a primary key already.
    fn one_primary_key(&self) -> Result<(), SqlError> {
        if self.pk.is_empty() {
            Ok(())
        } else {
            Err(SqlError::new(
                8110,
                16,
                format!(
                    "Cannot add multiple PRIMARY KEY constraints to table '{}'.",
                    self.display
                ),
            ))
        }
    }

    /// Column `i` with its options (NULL, DEFAULT, PRIMARY KEY, UNIQUE,
    /// REFERENCES, IDENTITY, COLLATE).
    pub fn add_column(
        &mut self,
        i: usize,
        c: &sqlparser::ast::ColumnDef,
        res: &Resolver<'_>,
        view: &SessionView,
    ) -> Result<(), SqlError> {
        if self
            .columns
            .iter()
            .any(|x| x.name.eq_ignore_ascii_case(&c.name.value))
        {
            return Err(SqlError::new(2705, 16, format!("Column names in each table must be unique. Column name '{}' in table '{}' is specified more than once.", c.name.value, self.display)));
        }
        if c.data_type
            .to_string()
            .eq_ignore_ascii_case(super::parse::COMPUTED_TYPE)
        {
            return self.add_computed(i, c);
        }
        let (ty, alias) = alias_types::resolve(res.conn, &c.data_type.to_string())?;
        // A column of an alias type takes its nullability unless it says.
        let mut nullable = alias.as_ref().map(|a| a.nullable).unwrap_or(true);
        let mut identity = false;
        let mut default = None;
        // A #temp table lives in tempdb and takes its collation, the
        // server's; any other table takes its database's.
        let default_collation = if self.temp {
            view.server_collation
        } else {
            view.collation
        };
        let mut collation = ty.is_string().then_some(default_collation);
        for o in &c.options {
            match &o.option {
                ColumnOption::Null => nullable = true,
                ColumnOption::NotNull => nullable = false,
                ColumnOption::Default(e) => {
                    let mut e = e.clone();
                    let mut rw = Rewriter::new(res, view);
                    rw.rewrite(&mut e)?;
                    default = Some(e.to_string());
                }
                ColumnOption::PrimaryKey(p) => {
                    self.one_primary_key()?;
                    self.pk = vec![c.name.value.clone()];
                    self.pk_name = p.name.as_ref().or(o.name.as_ref()).map(|n| n.value.clone());
                    nullable = false;
                }
                ColumnOption::Unique(u) => self.uniques.push((
                    u.name.as_ref().or(o.name.as_ref()).map(|n| n.value.clone()),
                    vec![c.name.value.clone()],
                )),
                ColumnOption::ForeignKey(f) => {
                    let (rs, rt) = fk_target(&f.foreign_table)?;
                    let ref_cols = if f.referred_columns.is_empty() {
                        vec![]
                    } else {
                        f.referred_columns.iter().map(|i| i.value.clone()).collect()
                    };
                    self.fks.push(ForeignKeyDef {
                        name: f
                            .name
                            .as_ref()
                            .or(o.name.as_ref())
                            .map(|n| n.value.clone())
                            .unwrap_or_else(|| {
                                format!("FK__{}__{}__{:08X}", self.name, c.name.value, i)
                            }),
                        columns: vec![c.name.value.clone()],
                        ref_schema: rs,
                        ref_table: rt,
                        ref_columns: ref_cols,
                        on_delete: action(&f.on_delete)?,
                        on_update: action(&f.on_update)?,
                    });
                }
                ColumnOption::Identity(kind) => {
                    let (IdentityPropertyKind::Identity(p)
                    | IdentityPropertyKind::Autoincrement(p)) = kind;
                    if let Some(IdentityPropertyFormatKind::FunctionCall(params)) = &p.parameters {
                        if params.seed.to_string() != "1" || params.increment.to_string() != "1" {
                            return Err(SqlError::unsupported(
                                "IDENTITY with a seed or increment other than (1,1)",
                            ));
                        }
                    }
                    if !matches!(ty, SqlType::Int | SqlType::BigInt) {
                        return Err(SqlError::unsupported(
                            "IDENTITY on a type other than int or bigint",
                        ));
                    }
                    identity = true;
                    nullable = false;
                }
                ColumnOption::Collation(name) => {
                    collation = Some(column_collation(&ty, name, view.collation)?);
                }
                ColumnOption::Check(_) => return Err(SqlError::unsupported("CHECK constraints")),
                other => return Err(SqlError::unsupported(format!("the column option {other}"))),
            }
        }
        if ty == SqlType::RowVersion {
            if self.columns.iter().any(|c| c.ty == SqlType::RowVersion) {
                return Err(SqlError::new(2738, 16, format!("A table can only have one timestamp column. Because table '{}' already has one, the column '{}' cannot be added.", self.display, c.name.value)));
            }
            if default.is_some() {
                return Err(SqlError::new(1755, 16, format!("Defaults cannot be created on columns of data type timestamp. Table '{}', column '{}'.", self.display, c.name.value)));
            }
            if !c
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::Null))
            {
                nullable = false;
            }
        }
        if let Some(d) = &default {
            self.default_sql.push(Some(format!("({d})")));
        } else {
            self.default_sql.push(None);
        }
        self.defaults.push(default);
        self.columns.push(ColumnDef {
            column_id: i as i32 + 1,
            name: c.name.value.clone(),
            ty,
            nullable,
            identity,
            collation,
            user_type_id: alias.map(|a| a.user_type_id),
            computed: None,
        });
        Ok(())
    }

    /// A computed column `name AS (expr) [PERSISTED [NOT NULL]]`; its type
    /// is found once every column is known (`resolve_computed`).
    fn add_computed(&mut self, i: usize, c: &sqlparser::ast::ColumnDef) -> Result<(), SqlError> {
        use sqlparser::ast::GeneratedExpressionMode;
        let mut expr = None;
        let mut persisted = false;
        let mut not_null = false;
        for o in &c.options {
            match &o.option {
                ColumnOption::Generated {
                    generation_expr: Some(e),
                    generation_expr_mode,
                    ..
                } => {
                    expr = Some(e.clone());
                    persisted = *generation_expr_mode == Some(GeneratedExpressionMode::Stored);
                }
                ColumnOption::Null => {}
                ColumnOption::NotNull => not_null = true,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "the option {other} on a computed column"
                    )))
                }
            }
        }
        let Some(expr) = expr else {
            return Err(SqlError::syntax_near(&c.name.value));
        };
        if not_null && !persisted {
            return Err(SqlError::new(8183, 16, "Only UNIQUE or PRIMARY KEY constraints can be created on computed columns, while CHECK, FOREIGN KEY, and NOT NULL constraints require that computed columns also be persisted."));
        }
        self.defaults.push(None);
        self.default_sql.push(None);
        self.computed.push((self.columns.len(), expr.clone(), None));
        self.columns.push(ColumnDef {
            column_id: i as i32 + 1,
            name: c.name.value.clone(),
            // Until resolve_computed finds it.
            ty: SqlType::Int,
            nullable: !not_null,
            identity: false,
            collation: None,
            user_type_id: None,
            computed: Some((format!("({expr})"), persisted)),
        });
        Ok(())
    }

    /// Gives each computed column its type (SQL Server's type of the
    /// expression, as far as the simulator can tell it; else refused) and
    /// collation, and the SQLite expression that computes it.
    pub fn resolve_computed(
        &mut self,
        res: &Resolver<'_>,
        view: &SessionView,
    ) -> Result<(), SqlError> {
        if self.computed.is_empty() {
            return Ok(());
        }
        let table = TableDef {
            object_id: 0,
            schema: self.schema.clone(),
            name: self.name.clone(),
            columns: self.columns.clone(),
            pk_name: None,
            pk: vec![],
            foreign_keys: vec![],
            uniques: vec![],
            temp: self.temp,
        };
        for (pos, expr, sqlite) in &mut self.computed {
            let name = self.columns[*pos].name.clone();
            if table
                .columns
                .iter()
                .any(|c| c.computed.is_some() && refers_to(expr, &c.name))
            {
                return Err(SqlError::new(1759, 16, format!("Computed column '{name}' in table '{}' is not allowed to be used in another computed-column definition.", self.display)));
            }
            let mut rw = Rewriter::new(res, view);
            rw.scope.insert(self.name.to_lowercase(), table.clone());
            let mut e = expr.clone();
            rw.rewrite(&mut e)?;
            let ty = rw.expr_type(&e).ok_or_else(|| {
                SqlError::unsupported(format!(
                    "the computed column {name} (the simulator cannot tell the type of {expr}; CAST it)"
                ))
            })?;
            let collation = if ty.is_string() {
                Some(match rw.label(expr)? {
                    Label::Explicit(c) | Label::Implicit(c) => c,
                    _ => view.collation,
                })
            } else {
                None
            };
            let col = &mut self.columns[*pos];
            col.ty = ty;
            col.collation = collation;
            *sqlite = Some(format!("__sim_cast({e}, '{ty}')"));
        }
        Ok(())
    }

    /// A table constraint (PRIMARY KEY, UNIQUE, FOREIGN KEY).
    pub fn add_constraint(&mut self, tc: &TableConstraint) -> Result<(), SqlError> {
        match tc {
            TableConstraint::PrimaryKey(p) => {
                self.one_primary_key()?;
                self.pk = p.columns.iter().map(index_column_name).collect();
                self.pk_name = p.name.as_ref().map(|n| n.value.clone());
            }
            TableConstraint::Unique(u) => self.uniques.push((
                u.name.as_ref().map(|n| n.value.clone()),
                u.columns.iter().map(index_column_name).collect(),
            )),
            TableConstraint::ForeignKey(f) => {
                let (rs, rt) = fk_target(&f.foreign_table)?;
                self.fks.push(ForeignKeyDef {
                    name: f
                        .name
                        .as_ref()
                        .map(|n| n.value.clone())
                        .unwrap_or_else(|| format!("FK__{}__{:08X}", self.name, self.fks.len())),
                    columns: f.columns.iter().map(|c| c.value.clone()).collect(),
                    ref_schema: rs,
                    ref_table: rt,
                    ref_columns: f.referred_columns.iter().map(|c| c.value.clone()).collect(),
                    on_delete: action(&f.on_delete)?,
                    on_update: action(&f.on_update)?,
                });
            }
            TableConstraint::Check(_) => return Err(SqlError::unsupported("CHECK constraints")),
            other => return Err(SqlError::unsupported(format!("the constraint {other}"))),
        }
        Ok(())
    }

    /// The primary key's columns exist, are not nullable and not of a `max`
    /// type; an IDENTITY column is the single-column primary key.
    pub fn check_keys(&mut self, ct_columns: &[sqlparser::ast::ColumnDef]) -> Result<(), SqlError> {
        let TableSpec {
            display,
            pk,
            columns,
            ..
        } = self;
        for p in pk.iter() {
            match columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(p)) {
                Some(c) if c.computed.is_some() => {
                    return Err(SqlError::unsupported(format!(
                        "a primary key on the computed column {}",
                        c.name
                    )))
                }
                Some(c) => {
                    if c.nullable
                        && ct_columns.iter().any(|cd| {
                            cd.name.value.eq_ignore_ascii_case(p)
                                && cd
                                    .options
                                    .iter()
                                    .any(|o| matches!(o.option, ColumnOption::Null))
                        })
                    {
                        return Err(SqlError::new(8111, 16, format!("Cannot define PRIMARY KEY constraint on nullable column in table '{display}'.")));
                    }
                    c.nullable = false;
                }
                None => {
                    return Err(SqlError::new(
                        1911,
                        16,
                        format!("Column name '{p}' does not exist in the target table or view."),
                    ))
                }
            }
            if let Some(c) = columns.iter().find(|c| c.name.eq_ignore_ascii_case(p)) {
                if matches!(
                    c.ty,
                    SqlType::NVarChar(Len::Max)
                        | SqlType::VarChar(Len::Max)
                        | SqlType::VarBinary(Len::Max)
                ) {
                    return Err(SqlError::new(1919, 16, format!("Column '{}' in table '{display}' is of a type that is invalid for use as a key column in an index.", c.name)));
                }
            }
        }
        if let Some(idc) = columns.iter().find(|c| c.identity) {
            if !(pk.len() == 1 && pk[0].eq_ignore_ascii_case(&idc.name)) {
                return Err(SqlError::unsupported(
                    "an IDENTITY column that is not the table's single-column primary key",
                ));
            }
        }
        Ok(())
    }

    /// Each foreign key's referenced table and columns (by default the
    /// referenced table's primary key), which must be a key there.
    pub fn resolve_foreign_keys(&mut self, conn: &Connection) -> Result<(), SqlError> {
        let TableSpec {
            schema,
            name,
            pk,
            columns,
            fks,
            ..
        } = self;
        // Resolve referenced columns (default: the referenced table's primary key).
        for fk in fks.iter_mut() {
            let self_ref = fk.ref_table.eq_ignore_ascii_case(name)
                && fk.ref_schema.eq_ignore_ascii_case(schema);
            let (ref_pk, ref_cols): (Vec<String>, Vec<ColumnDef>) = if self_ref {
                (pk.clone(), columns.clone())
            } else {
                let r = catalog::load_table(conn, &fk.ref_schema, &fk.ref_table)
                    .map_err(catalog::sqlite_err)?
                    .ok_or_else(|| catalog::invalid_fk_table(fk))?;
                fk.ref_table = r.name.clone();
                fk.ref_schema = r.schema.clone();
                (r.pk.clone(), r.columns.clone())
            };
            if fk.ref_columns.is_empty() {
                fk.ref_columns = ref_pk.clone();
            }
            for rc in &fk.ref_columns {
                if !ref_cols.iter().any(|c| c.name.eq_ignore_ascii_case(rc)) {
                    return Err(SqlError::new(1770, 16, format!("Foreign key '{}' references invalid column '{rc}' in referenced table '{}.{}'.", fk.name, fk.ref_schema, fk.ref_table)));
                }
            }
            let keyed = fk.ref_columns.len() == ref_pk.len()
                && fk
                    .ref_columns
                    .iter()
                    .all(|c| ref_pk.iter().any(|p| p.eq_ignore_ascii_case(c)));
            if !keyed {
                return Err(SqlError::new(1776, 16, format!("There are no primary or candidate keys in the referenced table '{}.{}' that match the referencing column list in the foreign key '{}'.", fk.ref_schema, fk.ref_table, fk.name)));
            }
            for c in &fk.columns {
                if !columns.iter().any(|x| x.name.eq_ignore_ascii_case(c)) {
                    return Err(SqlError::new(1769, 16, format!("Foreign key '{}' references invalid column '{c}' in referencing table '{name}'.", fk.name)));
                }
            }
        }
        Ok(())
    }

    /// The column and constraint clauses of the SQLite table.
    pub fn sqlite_parts(&self) -> Vec<String> {
        let TableSpec {
            schema,
            name,
            temp,
            columns,
            defaults,
            pk,
            fks,
            uniques,
            computed,
            ..
        } = self;
        // The SQLite table.
        let mut parts = Vec::new();
        for (i, (c, d)) in columns.iter().zip(defaults.iter()).enumerate() {
            if let Some((_, _, Some(sqlite))) = computed.iter().find(|(p, _, _)| *p == i) {
                let persisted = c.computed.as_ref().is_some_and(|(_, p)| *p);
                parts.push(format!(
                    "{} {} GENERATED ALWAYS AS ({sqlite}) {}{}",
                    q(&c.name),
                    c.sqlite_type(),
                    if persisted { "STORED" } else { "VIRTUAL" },
                    if c.nullable { "" } else { " NOT NULL" }
                ));
                continue;
            }
            let mut s = format!("{} {}", q(&c.name), c.sqlite_type());
            if c.identity {
                s = format!("{} INTEGER PRIMARY KEY AUTOINCREMENT", q(&c.name));
            }
            if !c.nullable {
                s.push_str(" NOT NULL");
            }
            // The server sets a timestamp column on insert (and UPDATE
            // sets it again, engine::dml).
            if c.ty == SqlType::RowVersion {
                s.push_str(" DEFAULT (__sim_next_rowversion())");
            }
            if let Some(d) = d {
                s.push_str(&format!(
                    " DEFAULT ({})",
                    Session::conv_expr(
                        &TableDef {
                            object_id: 0,
                            schema: schema.clone(),
                            name: name.clone(),
                            columns: vec![],
                            pk_name: None,
                            pk: vec![],
                            foreign_keys: vec![],
                            uniques: vec![],
                            temp: *temp
                        },
                        c,
                        d
                    )
                ));
            }
            parts.push(s);
        }
        let identity_pk = columns.iter().any(|c| c.identity);
        if !pk.is_empty() && !identity_pk {
            parts.push(format!(
                "PRIMARY KEY ({})",
                pk.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
            ));
        }
        for (_, cols) in uniques.iter() {
            parts.push(format!(
                "UNIQUE ({})",
                cols.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
            ));
        }
        let act = |a: i32| match a {
            1 => "CASCADE",
            2 => "SET NULL",
            3 => "SET DEFAULT",
            _ => "NO ACTION",
        };
        for fk in fks.iter() {
            let rname = if fk.ref_table.eq_ignore_ascii_case(name) && *temp {
                fk.ref_table.clone()
            } else {
                format!("{}.{}", fk.ref_schema, fk.ref_table)
            };
            parts.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
                fk.columns
                    .iter()
                    .map(|p| q(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                q(&rname),
                fk.ref_columns
                    .iter()
                    .map(|p| q(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                act(fk.on_delete),
                act(fk.on_update)
            ));
        }
        parts
    }
}

/// The collation a `COLLATE` clause gives a column of type `ty`:
/// `DATABASE_DEFAULT` is the current database's (so a `#temp` column can
/// match the tables it is joined with). Only string types take one (447).
pub fn column_collation(
    ty: &SqlType,
    name: &sqlparser::ast::ObjectName,
    database_default: Collation,
) -> Result<Collation, SqlError> {
    if !ty.is_string() {
        return Err(Collation::not_collatable(ty.base_name()));
    }
    Collation::named(&name.to_string(), database_default)
}

/// Whether `expr` names column `name` anywhere.
fn refers_to(expr: &sqlparser::ast::Expr, name: &str) -> bool {
    let mut found = false;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        match e {
            sqlparser::ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case(name) => {
                found = true
            }
            sqlparser::ast::Expr::CompoundIdentifier(p)
                if p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(name)) =>
            {
                found = true
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}
