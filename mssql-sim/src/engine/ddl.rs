//! CREATE TABLE, CREATE INDEX, ALTER TABLE and DROP: SQL Server's DDL
//! stored as a catalog entry plus a SQLite table.

use super::alias_types;
use super::catalog::{q, ColumnDef, TableDef};
use super::errors::*;
use super::names::*;
use super::session::*;
use super::table_spec::{column_collation, TableSpec};
use super::translate::Rewriter;
use super::{catalog, ct, translate};
use crate::error::SqlError;
use crate::types::{to_storage, SqlType};
use rusqlite::types::Value as SqliteValue;
use rusqlite::OptionalExtension;
use sqlparser::ast::{ColumnOption, ObjectName, ObjectNamePart, ObjectType, SetExpr};

impl Session {
    pub(super) fn create_table(&mut self, ct: sqlparser::ast::CreateTable) -> Result<(), SqlError> {
        if ct.query.is_some() {
            return Err(SqlError::unsupported("CREATE TABLE ... AS SELECT"));
        }
        let (_, schema, name) = translate::name_parts(&ct.name)?;
        // A #temp table, or the table behind a table variable (@t).
        let temp = name.starts_with('#') || name.starts_with('@');
        if temp && name.starts_with("##") {
            return Err(SqlError::unsupported("global temporary tables (##)"));
        }
        let schema = schema.unwrap_or_else(|| "dbo".into());
        if !temp {
            if catalog::schema_name(&self.conn, &schema)
                .map_err(catalog::sqlite_err)?
                .is_none()
            {
                return Err(SqlError::new(2760, 16, format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it.")));
            }
            if catalog::find_object(&self.conn, &schema, &name)
                .map_err(catalog::sqlite_err)?
                .is_some()
            {
                return Err(SqlError::new(
                    2714,
                    16,
                    format!("There is already an object named '{name}' in the database."),
                ));
            }
        } else if self.temp.contains_key(&name.to_lowercase()) {
            return Err(SqlError::new(
                2714,
                16,
                format!("There is already an object named '{name}' in the database."),
            ));
        }
        let mut spec = TableSpec::new(schema, name, temp);
        let view = self.view();
        let res = self.resolver();
        for (i, c) in ct.columns.iter().enumerate() {
            spec.add_column(i, c, &res, &view)?;
        }
        spec.resolve_computed(&res, &view)?;
        for tc in &ct.constraints {
            spec.add_constraint(tc)?;
        }
        spec.check_keys(&ct.columns)?;
        spec.resolve_foreign_keys(&self.conn)?;
        let mut parts = spec.sqlite_parts();
        let TableSpec {
            schema,
            name,
            temp,
            columns,
            default_sql,
            pk,
            pk_name,
            fks,
            uniques,
            ..
        } = spec;
        let mut def = TableDef {
            object_id: 0,
            schema: schema.clone(),
            name: name.clone(),
            columns,
            pk_name,
            pk,
            foreign_keys: fks,
            uniques: uniques
                .iter()
                .enumerate()
                .map(|(i, (n, c))| {
                    let n = n
                        .clone()
                        .unwrap_or_else(|| format!("UQ__{}__{i}", name.trim_start_matches('#')));
                    (n, c.clone())
                })
                .collect(),
            temp,
        };
        let now = self
            .shared
            .clock
            .now_utc()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        if temp {
            if !def.foreign_keys.is_empty() {
                // SQL Server ignores FOREIGN KEY constraints on temporary tables (with a warning).
                def.foreign_keys.clear();
                parts.retain(|p| !p.starts_with("FOREIGN KEY"));
            }
            let sql = format!(
                "CREATE TEMP TABLE {} ({})",
                q(&def.sqlite_name()),
                parts.join(", ")
            );
            self.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, None, &self.database, "CREATE TABLE"))?;
            self.temp_ids -= 1;
            def.object_id = self.temp_ids;
            if def.pk_name.is_none() && !def.pk.is_empty() {
                def.pk_name = Some(format!("PK__{}", name.trim_start_matches('#')));
            }
            self.temp.insert(name.to_lowercase(), def);
            return Ok(());
        }
        let sql = format!(
            "CREATE TABLE {} ({})",
            q(&def.sqlite_name()),
            parts.join(", ")
        );
        self.atomic(|s| {
            s.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, None, &s.database, "CREATE TABLE"))?;
            catalog::register_table(&s.conn, &mut def, &now, &default_sql)?;
            for (uname, cols) in uniques.iter() {
                catalog::register_unique_constraint(&s.conn, &def, uname.as_deref(), cols, &now)?;
            }
            Ok(())
        })
    }

    pub(super) fn create_index(&mut self, ci: sqlparser::ast::CreateIndex) -> Result<(), SqlError> {
        let def = {
            let res = self.resolver();
            res.resolve_table(&ci.table_name)?
        };
        let Some(name) = ci.name.as_ref().map(column_name_of) else {
            return Err(SqlError::syntax_near("ON"));
        };
        if ci.predicate.is_some() {
            return Err(SqlError::unsupported("filtered indexes"));
        }
        let mut cols = Vec::new();
        for c in &ci.columns {
            let n = index_column_name(c);
            if def.column(&n).is_none() {
                return Err(SqlError::invalid_column(&n));
            }
            cols.push((
                n,
                matches!(
                    c.column.options.sort,
                    Some(sqlparser::ast::OrderBySort::Desc)
                ),
            ));
        }
        let sqlite_name = format!("{}.{}", def.sqlite_name(), name);
        let sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if ci.unique { "UNIQUE " } else { "" },
            q(&sqlite_name),
            q(&def.sqlite_name()),
            cols.iter()
                .map(|(c, d)| format!("{}{}", q(c), if *d { " DESC" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if def.temp {
            self.conn
                .execute_batch(&sql)
                .map_err(|e| map_sqlite(e, Some(&def), &self.database, "CREATE INDEX"))?;
            return Ok(());
        }
        self.atomic(|s| {
            catalog::register_index(&s.conn, &def, &name, ci.unique, &cols, &sqlite_name)?;
            s.conn.execute_batch(&sql).map_err(|e| {
                let se = map_sqlite(e, Some(&def), &s.database, "CREATE INDEX");
                if se.number == 2601 || se.number == 2627 {
                    SqlError::new(1505, 16, format!("The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the object name '{}' and the index name '{name}'.", def.display_name()))
                } else {
                    se
                }
            })
        })
    }

    pub(super) fn alter_table(&mut self, at: sqlparser::ast::AlterTable) -> Result<(), SqlError> {
        use sqlparser::ast::AlterTableOperation as Op;
        let def = {
            let res = self.resolver();
            res.resolve_table(&at.name)?
        };
        if def.temp {
            return Err(SqlError::unsupported("ALTER TABLE on a temporary table"));
        }
        for op in at.operations {
            let def = {
                let res = self.resolver();
                res.resolve_table(&at.name)?
            };
            match op {
                Op::AddColumn { column_def, .. } => {
                    if column_def
                        .data_type
                        .to_string()
                        .eq_ignore_ascii_case(super::parse::COMPUTED_TYPE)
                    {
                        return Err(SqlError::unsupported(
                            "ALTER TABLE ADD of a computed column (create the table with it)",
                        ));
                    }
                    if def.column(&column_def.name.value).is_some() {
                        return Err(SqlError::new(2705, 16, format!("Column names in each table must be unique. Column name '{}' in table '{}' is specified more than once.", column_def.name.value, def.display_name())));
                    }
                    let (ty, alias) =
                        alias_types::resolve(&self.conn, &column_def.data_type.to_string())?;
                    if ty == SqlType::RowVersion {
                        return Err(SqlError::unsupported(
                            "ALTER TABLE ADD of a timestamp column (create the table with it)",
                        ));
                    }
                    let mut nullable = alias.as_ref().map(|a| a.nullable).unwrap_or(true);
                    let mut default = None;
                    let mut references = None;
                    let mut collation = ty.is_string().then_some(self.collation);
                    for o in &column_def.options {
                        match &o.option {
                            ColumnOption::Collation(name) => {
                                collation = Some(column_collation(&ty, name, self.collation)?);
                            }
                            ColumnOption::Null => nullable = true,
                            ColumnOption::NotNull => nullable = false,
                            ColumnOption::ForeignKey(f) => {
                                references = Some((o.name.clone(), f.clone()));
                            }
                            ColumnOption::Default(e) => {
                                let view = self.view();
                                let res = self.resolver();
                                let mut e = e.clone();
                                Rewriter::new(&res, &view).rewrite(&mut e)?;
                                default = Some(e.to_string());
                            }
                            other => {
                                return Err(SqlError::unsupported(format!(
                                    "ALTER TABLE ADD with the option {other}"
                                )))
                            }
                        }
                    }
                    let count: i64 = self
                        .conn
                        .query_row(
                            &format!("SELECT count(*) FROM {}", q(&def.sqlite_name())),
                            [],
                            |r| r.get(0),
                        )
                        .map_err(catalog::sqlite_err)?;
                    if !nullable && default.is_none() && count > 0 {
                        return Err(SqlError::new(4901, 16, format!("ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT definition specified, or the column being added is an identity or timestamp column, or alternatively if none of the previous conditions are satisfied the table must be empty to allow addition of this column. Column '{}' cannot be added to non-empty table '{}' because it does not satisfy these conditions.", column_def.name.value, def.name)));
                    }
                    if !nullable && default.is_none() {
                        return Err(SqlError::unsupported(
                            "adding a NOT NULL column without DEFAULT (recreate the table)",
                        ));
                    }
                    let col = ColumnDef {
                        column_id: def.columns.iter().map(|c| c.column_id).max().unwrap_or(0) + 1,
                        name: column_def.name.value.clone(),
                        ty,
                        nullable,
                        identity: false,
                        collation,
                        user_type_id: alias.map(|a| a.user_type_id),
                        computed: None,
                    };
                    let mut s = format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        q(&def.sqlite_name()),
                        q(&col.name),
                        col.sqlite_type()
                    );
                    if let Some(d) = &default {
                        // SQLite needs a constant default for ADD COLUMN: evaluate it now.
                        let v = self.eval_scalar(
                            translate::parse_query(&format!("SELECT {d}"))
                                .ok()
                                .and_then(|q| match *q.body {
                                    SetExpr::Select(s) => {
                                        s.projection.first().and_then(|p| match p {
                                            sqlparser::ast::SelectItem::UnnamedExpr(e) => {
                                                Some(e.clone())
                                            }
                                            _ => None,
                                        })
                                    }
                                    _ => None,
                                })
                                .ok_or_else(|| {
                                    SqlError::unsupported("this DEFAULT in ALTER TABLE ADD")
                                })?,
                        )?;
                        let stored = to_storage(&crate::types::convert(&v, &ty, None)?, &ty);
                        let lit = match stored {
                            SqliteValue::Null => "NULL".to_string(),
                            SqliteValue::Integer(i) => i.to_string(),
                            SqliteValue::Real(f) => format!("{f:?}"),
                            SqliteValue::Text(t) => format!("'{}'", t.replace('\'', "''")),
                            SqliteValue::Blob(b) => format!(
                                "X'{}'",
                                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                            ),
                        };
                        s.push_str(&format!(" DEFAULT {lit}"));
                    }
                    if !nullable {
                        s.push_str(" NOT NULL");
                    }
                    // A column added with REFERENCES: the constraint is
                    // resolved as CREATE TABLE resolves it, enforced by
                    // SQLite (which allows REFERENCES on an added column
                    // whose default is NULL: every existing row holds NULL,
                    // so no row can violate it) and recorded in the catalog.
                    let fk = match references {
                        None => None,
                        Some((name, f)) => {
                            if !nullable || default.is_some() {
                                return Err(SqlError::unsupported(
                                    "ALTER TABLE ADD of a NOT NULL or defaulted column with REFERENCES (add it nullable, or recreate the table)",
                                ));
                            }
                            let mut spec =
                                TableSpec::new(def.schema.clone(), def.name.clone(), false);
                            spec.columns = def.columns.clone();
                            spec.columns.push(col.clone());
                            spec.pk = def.pk.clone();
                            spec.fks.push(super::table_spec::foreign_key(
                                &def.name,
                                &col.name,
                                name.as_ref(),
                                &f,
                                def.columns.len(),
                            )?);
                            spec.resolve_foreign_keys(&self.conn)?;
                            let fk = spec.fks.remove(0);
                            s.push_str(&super::table_spec::references_clause(&fk));
                            Some(fk)
                        }
                    };
                    let now = self
                        .shared
                        .clock
                        .now_utc()
                        .format("%Y-%m-%d %H:%M:%S%.3f")
                        .to_string();
                    self.atomic(|se| {
                        se.conn
                            .execute_batch(&s)
                            .map_err(|e| map_sqlite(e, Some(&def), &se.database, "ALTER TABLE"))?;
                        catalog::add_column(
                            &se.conn,
                            def.object_id,
                            &col,
                            default.as_ref().map(|d| format!("({d})")),
                        )?;
                        if let Some(fk) = &fk {
                            let mut with = def.clone();
                            with.columns.push(col.clone());
                            catalog::register_foreign_key(&se.conn, &with, fk, &now)?;
                        }
                        Ok(())
                    })?;
                }
                Op::DropColumn {
                    column_names,
                    if_exists,
                    ..
                } => {
                    for cn in column_names {
                        let Some(c) = def.column(&cn.value).cloned() else {
                            if if_exists {
                                continue;
                            }
                            return Err(SqlError::new(4924, 16, format!("ALTER TABLE DROP COLUMN failed because column '{}' does not exist in table '{}'.", cn.value, def.name)));
                        };
                        if def.pk.iter().any(|p| p.eq_ignore_ascii_case(&c.name)) {
                            return Err(SqlError::new(
                                5074,
                                16,
                                format!(
                                    "The object '{}' is dependent on column '{}'.",
                                    def.pk_name.clone().unwrap_or_default(),
                                    c.name
                                ),
                            ));
                        }
                        let sql = format!(
                            "ALTER TABLE {} DROP COLUMN {}",
                            q(&def.sqlite_name()),
                            q(&c.name)
                        );
                        self.atomic(|se| {
                            se.conn.execute_batch(&sql).map_err(|e| {
                                map_sqlite(e, Some(&def), &se.database, "ALTER TABLE")
                            })?;
                            catalog::drop_column(&se.conn, def.object_id, c.column_id)
                        })?;
                    }
                }
                Op::DropConstraint { ref name, .. }
                    if def
                        .pk_name
                        .as_deref()
                        .map(|p| p.eq_ignore_ascii_case(&name.value))
                        .unwrap_or(false)
                        && ct::table_tracking(&self.conn, def.object_id)?.is_some() =>
                {
                    // [MANAGE] the primary key of a tracked table cannot be dropped.
                    return Err(SqlError::new(3735, 16, format!("The primary key constraint '{}' on table '{}' cannot be dropped because change tracking is enabled on the table. Change tracking requires a primary key constraint on the table. Disable change tracking before dropping the constraint.", name.value, def.name)));
                }
                other => return Err(SqlError::unsupported(format!("ALTER TABLE {other}"))),
            }
        }
        Ok(())
    }

    /// `ALTER TABLE t ALTER COLUMN c type [COLLATE x] [NULL | NOT NULL]`:
    /// every stored value is converted to the new type with SQL Server's
    /// rules (a value that does not fit fails the statement: 8115, 2628,
    /// 515), and the catalog takes the new type. As SQL Server: a column
    /// that the primary key, an index or a foreign key uses cannot be
    /// altered (5074); without NULL / NOT NULL the column becomes nullable,
    /// without COLLATE a string column takes the database's collation.
    /// Refused (unsupported): a change of the column's storage class,
    /// collation or nullability, which SQLite cannot make in place.
    pub(super) fn alter_column(
        &mut self,
        table: &ObjectName,
        column: &str,
        ty_text: &str,
        collation: Option<&str>,
        nullable: Option<bool>,
    ) -> Result<(), SqlError> {
        let def = self.resolver().resolve_table(table)?;
        if def.temp {
            return Err(SqlError::unsupported("ALTER TABLE on a temporary table"));
        }
        let Some(old) = def.column(column).cloned() else {
            return Err(SqlError::new(4924, 16, format!("ALTER TABLE ALTER COLUMN failed because column '{column}' does not exist in table '{}'.", def.name)));
        };
        // What depends on the column: the primary key, an index, a foreign key.
        let dependent: Option<String> = if def.pk.iter().any(|p| p.eq_ignore_ascii_case(&old.name))
        {
            def.pk_name.clone()
        } else {
            self.conn
                .query_row(
                    "SELECT COALESCE(i.name, '') FROM __sim_index_columns ic JOIN __sim_indexes i ON i.object_id = ic.object_id AND i.index_id = ic.index_id
                     WHERE ic.object_id = ?1 AND ic.column_id = ?2
                     UNION ALL SELECT o.name FROM __sim_foreign_key_columns f JOIN __sim_objects o ON o.object_id = f.constraint_object_id
                     WHERE (f.parent_object_id = ?1 AND f.parent_column_id = ?2) OR (f.referenced_object_id = ?1 AND f.referenced_column_id = ?2)
                     LIMIT 1",
                    rusqlite::params![def.object_id, old.column_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(catalog::sqlite_err)?
        };
        if let Some(dep) = dependent {
            return Err(SqlError::new(
                5074,
                16,
                format!("The object '{dep}' is dependent on column '{}'.", old.name),
            ));
        }
        if old.computed.is_some() || old.ty == SqlType::RowVersion {
            return Err(SqlError::unsupported(
                "ALTER COLUMN of a computed or timestamp column",
            ));
        }
        let (ty, alias) = alias_types::resolve(&self.conn, ty_text)?;
        let collation = match (ty.is_string(), collation) {
            (true, Some(name)) => Some(column_collation(
                &ty,
                &ObjectName(vec![ObjectNamePart::Identifier(name.into())]),
                self.collation,
            )?),
            (true, None) => Some(self.collation),
            (false, Some(_)) => {
                return Err(super::super::collation::Collation::not_collatable(
                    ty.base_name(),
                ))
            }
            (false, None) => None,
        };
        let nullable =
            nullable.unwrap_or_else(|| alias.as_ref().map(|a| a.nullable).unwrap_or(true));
        let new = ColumnDef {
            ty,
            nullable,
            collation,
            user_type_id: alias.map(|a| a.user_type_id),
            ..old.clone()
        };
        if new.sqlite_type() != old.sqlite_type() || new.nullable != old.nullable {
            return Err(SqlError::unsupported(format!(
                "ALTER COLUMN from {} {} to {} {} (a change of storage class, collation or nullability; recreate the table)",
                old.ty,
                if old.nullable { "NULL" } else { "NOT NULL" },
                new.ty,
                if new.nullable { "NULL" } else { "NOT NULL" },
            )));
        }
        let table_name = def.display_name();
        let sqlite_table = q(&def.sqlite_name());
        let col = q(&old.name);
        self.atomic(|se| {
            let mut rows: Vec<(i64, SqliteValue)> = Vec::new();
            {
                let mut stmt = se
                    .conn
                    .prepare(&format!("SELECT rowid, {col} FROM {sqlite_table}"))
                    .map_err(catalog::sqlite_err)?;
                let mut r = stmt.query([]).map_err(catalog::sqlite_err)?;
                while let Some(row) = r.next().map_err(catalog::sqlite_err)? {
                    let id: i64 = row.get(0).map_err(catalog::sqlite_err)?;
                    let stored = row.get_ref(1).map_err(catalog::sqlite_err)?;
                    let was: SqliteValue = row.get(1).map_err(catalog::sqlite_err)?;
                    let v = crate::types::from_storage(stored, &old.ty)?;
                    let target = crate::types::Target {
                        table: &table_name,
                        column: &old.name,
                    };
                    let v = crate::types::convert(&v, &new.ty, Some(&target))?;
                    let now = to_storage(&v, &new.ty);
                    // Compared as stored, not in the column's collation
                    // (which ignores trailing spaces, as SQL Server does).
                    if now != was {
                        rows.push((id, now));
                    }
                }
            }
            ct::untracked(&se.conn, def.object_id, || {
                let mut up = se
                    .conn
                    .prepare(&format!(
                        "UPDATE {sqlite_table} SET {col} = ?1 WHERE rowid = ?2"
                    ))
                    .map_err(catalog::sqlite_err)?;
                for (id, v) in rows {
                    up.execute(rusqlite::params![v, id])
                        .map_err(|e| map_sqlite(e, Some(&def), &se.database, "UPDATE"))?;
                }
                Ok(())
            })?;
            catalog::alter_column(&se.conn, def.object_id, &new)
        })
    }

    /// CREATE TYPE ... FROM (engine::alias_types).
    pub(super) fn create_alias_type(
        &mut self,
        name: &ObjectName,
        base: &str,
        nullable: bool,
    ) -> Result<(), SqlError> {
        let (_, schema, object) = translate::name_parts(name)?;
        let base = SqlType::parse(base)?;
        let schema = schema.unwrap_or_else(|| "dbo".to_string());
        self.atomic(|s| alias_types::create(&s.conn, &schema, &object, base, nullable))
    }

    /// DROP TYPE (engine::alias_types).
    pub(super) fn drop_alias_type(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
    ) -> Result<(), SqlError> {
        let (_, schema, object) = translate::name_parts(name)?;
        self.atomic(|s| alias_types::drop(&s.conn, schema.as_deref(), &object, if_exists))
    }

    pub(super) fn drop(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: Vec<ObjectName>,
        table: Option<ObjectName>,
    ) -> Result<(), SqlError> {
        match object_type {
            ObjectType::Table => {
                for n in names {
                    let def = {
                        let res = self.resolver();
                        match res.resolve_table(&n) {
                            Ok(d) => d,
                            Err(e) if e.number == 208 => {
                                if if_exists {
                                    continue;
                                }
                                return Err(SqlError::new(3701, 11, format!("Cannot drop the table '{}', because it does not exist or you do not have permission.", n.to_string().replace(['[', ']'], ""))));
                            }
                            Err(e) => return Err(e),
                        }
                    };
                    if def.temp {
                        self.conn
                            .execute_batch(&format!("DROP TABLE temp.{}", q(&def.sqlite_name())))
                            .map_err(catalog::sqlite_err)?;
                        self.temp.remove(&def.name.to_lowercase());
                        continue;
                    }
                    let refs = catalog::referencing_tables(&self.conn, def.object_id)
                        .map_err(catalog::sqlite_err)?;
                    if let Some(r) = refs.first() {
                        return Err(SqlError::new(3726, 16, format!("Could not drop object '{}' because it is referenced by a FOREIGN KEY constraint '{r}'.", def.display_name())));
                    }
                    self.atomic(|s| {
                        ct::forget_table(&s.conn, def.object_id)?;
                        s.conn
                            .execute_batch(&format!("DROP TABLE {}", q(&def.sqlite_name())))
                            .map_err(|e| map_sqlite(e, Some(&def), &s.database, "DROP TABLE"))?;
                        catalog::drop_table(&s.conn, def.object_id)
                    })?;
                }
                Ok(())
            }
            ObjectType::Index => {
                for n in names {
                    // DROP INDEX name ON table, or DROP INDEX table.name
                    let (tname, iname) = match &table {
                        Some(t) => (t.clone(), column_name_of(&n)),
                        None => {
                            let mut parts = n.0.clone();
                            let i = parts.pop();
                            let iname = match i {
                                Some(ObjectNamePart::Identifier(i)) => i.value,
                                _ => return Err(SqlError::syntax_near(&n.to_string())),
                            };
                            (ObjectName(parts), iname)
                        }
                    };
                    let def = {
                        let res = self.resolver();
                        res.resolve_table(&tname)?
                    };
                    match catalog::find_index(&self.conn, def.object_id, &iname).map_err(catalog::sqlite_err)? {
                        Some((id, Some(sqlite_name))) if !sqlite_name.is_empty() => {
                            self.atomic(|s| {
                                s.conn.execute_batch(&format!("DROP INDEX {}", q(&sqlite_name))).map_err(catalog::sqlite_err)?;
                                catalog::drop_index(&s.conn, def.object_id, id)
                            })?;
                        }
                        Some(_) => return Err(SqlError::new(3723, 16, format!("An explicit DROP INDEX is not allowed on index '{}.{iname}'. It is being used for PRIMARY KEY or UNIQUE constraint enforcement.", def.display_name()))),
                        None if if_exists => {}
                        None => return Err(SqlError::new(3701, 11, format!("Cannot drop the index '{}.{iname}', because it does not exist or you do not have permission.", def.display_name()))),
                    }
                }
                Ok(())
            }
            ObjectType::Schema => Err(SqlError::unsupported("DROP SCHEMA")),
            ObjectType::Database => Err(SqlError::unsupported("DROP DATABASE")),
            other => Err(SqlError::unsupported(format!("DROP {other}"))),
        }
    }
}
