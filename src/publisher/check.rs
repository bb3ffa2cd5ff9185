//! `ctferry check`: validates the configuration against the live source and
//! lists every problem found, each naming the thing and what to do, before
//! the publisher ever runs. It also tries each caregiver's delivery area
//! (host key, login, a writable folder) without delivering anything.

use crate::config::{Config, Owner};
use crate::format::crypto::{PublicKey, SecretKey};
use crate::mssql::client::{Db, Param};
use crate::mssql::sql::source as sql;
use crate::publisher::catalog::{describe, TableInfo};

use crate::mssql::client::int_at as i64_of;

/// Settings that work but protect less than they should (printed as
/// warnings; they do not fail `check`).
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = cfg
        .source
        .connection
        .warnings()
        .into_iter()
        .map(|w| format!("[source] connection: {w}"))
        .collect();
    out.extend(key_warnings(cfg, crate::time::now()));
    out
}

/// Keys that expire within 30 days of `now` (those that cannot be read or
/// have expired already are problems, reported by `check`).
fn key_warnings(cfg: &Config, now: crate::time::Time) -> Vec<String> {
    let soon = |at: Option<String>| {
        at.filter(|t| crate::time::parse(t).is_some_and(|t| (t - now).num_days() < 30))
    };
    let mut out = Vec::new();
    let passphrase = cfg
        .publisher
        .signing_passphrase
        .as_ref()
        .map(|s| s.expose().to_string());
    if let Ok(k) = SecretKey::load(&cfg.publisher.signing_key, passphrase) {
        if let Some(t) = soon(k.expires()) {
            out.push(format!("[publisher] signing_key {} expires on {t}: extend it (gpg --quick-set-expire) or prepare a new key and send caregivers its public half before then", k.path.display()));
        }
    }
    for s in &cfg.subscribers {
        if let Ok(k) = PublicKey::load(&s.public_key) {
            if let Some(t) = soon(k.expires()) {
                out.push(format!("[[subscriber]] {}: public_key {} expires on {t}: ask the caregiver for an extended or new key before then (it gets no package after that)", s.hsa_id, k.path.display()));
            }
        }
    }
    out
}

/// What an owner path needs of a hop table: the login can read it, change
/// tracking is on (a row moving up the path is seen as a change of that
/// table), and the hop joins on its primary key (change tracking reports
/// changed rows by primary key).
fn check_hop_table(db: &mut Db, h: &crate::config::Hop) -> Vec<String> {
    let name = h.table.to_string();
    let (mut problems, readable) = permission_problems(db, &name);
    if !readable {
        return problems;
    }
    match db.rows("reading change tracking", sql::table_tracking(), &[Param::Str(name.clone())]) {
        Ok(r) if r.is_empty() => problems.push(format!(
            "change tracking is off, so a row moving up the path would go unnoticed: run ALTER TABLE {name} ENABLE CHANGE_TRACKING"
        )),
        Ok(_) => {}
        Err(e) => problems.push(e.to_string()),
    }
    match db.rows(
        "reading the primary key",
        sql::primary_key(),
        &[Param::Str(name.clone())],
    ) {
        Ok(rows) => {
            let key: Vec<String> = rows
                .iter()
                .filter_map(|r| crate::mssql::client::text_at(r, 0))
                .collect();
            if !(key.len() == 1 && key[0].eq_ignore_ascii_case(&h.to_column)) {
                problems.push(format!(
                    "the hop joins on {}, which is not its primary key ({}): change tracking reports changes by primary key, so join on it",
                    h.to_column,
                    if key.is_empty() { "none".to_string() } else { key.join(", ") }
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

/// The permissions ctferry needs on a table it reads (published, or on an
/// owner path): SELECT and VIEW CHANGE TRACKING, each missing one named
/// with the GRANT that gives it, for the login's user in the source
/// database. Without VIEW CHANGE TRACKING SQL Server does not say "denied"
/// when the cycle asks for the minimum valid version: it answers NULL, as
/// for an untracked table, so this is the only place that can tell the
/// operator which it is. Returns the problems and whether the login can
/// read the table at all (when not, later checks of it would only repeat
/// the same cause).
fn permission_problems(db: &mut Db, name: &str) -> (Vec<String>, bool) {
    let rows = match db.rows(
        "reading the login's permissions",
        sql::permissions(),
        &[Param::Str(name.to_string())],
    ) {
        Ok(r) => r,
        Err(e) => return (vec![e.to_string()], false),
    };
    let r = rows.first();
    let can_select = r.and_then(|r| i64_of(r, 0));
    let can_track = r.and_then(|r| i64_of(r, 1));
    let login = r
        .and_then(|r| crate::mssql::client::text_at(r, 2))
        .unwrap_or_else(|| "?".into());
    let user = r
        .and_then(|r| crate::mssql::client::text_at(r, 3))
        .unwrap_or_else(|| "?".into());
    let grantee = format!("[{}]", user.replace(']', "]]"));
    match (can_select, can_track) {
        (Some(1), Some(1)) => (vec![], true),
        // An owner of the database sees every table: the name is wrong.
        (None, _) | (_, None) if user.eq_ignore_ascii_case("dbo") => (
            vec![format!(
                "no such table in the source database (the login {login} owns the database and sees every table): check the name and schema"
            )],
            false,
        ),
        (None, _) | (_, None) => (
            vec![format!(
                "no such table, or the login {login} holds no permission on it (SQL Server then hides it): check the name, then GRANT SELECT, VIEW CHANGE TRACKING ON {name} TO {grantee}"
            )],
            false,
        ),
        (s, _) => {
            let readable = s == Some(1);
            let mut missing = Vec::new();
            if !readable {
                missing.push("SELECT");
            }
            if can_track != Some(1) {
                missing.push("VIEW CHANGE TRACKING");
            }
            let why = if readable {
                "without it change tracking looks off to ctferry (CHANGETABLE fails with error 229, the minimum valid version reads NULL)"
            } else {
                "ctferry cannot read the table"
            };
            (
                vec![format!(
                    "the login {login} (user {user} in the source database) lacks {}: {why}; run GRANT {} ON {name} TO {grantee}",
                    missing.join(" and "),
                    missing.join(", ")
                )],
                readable,
            )
        }
    }
}

/// A foreign key between two published tables, and whether the owner
/// rules guarantee that a copy holding a referencing row also holds the row
/// it references ("referential completeness").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reference {
    pub from: String,
    pub columns: Vec<String>,
    pub to: String,
    pub complete: bool,
    /// Why, in words the operator can act on.
    pub why: String,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{} -> {}: {}: {}",
            self.from,
            self.columns.join(", "),
            self.to,
            if self.complete {
                "complete"
            } else {
                "may dangle"
            },
            self.why
        )
    }
}

/// Whether rows of `from` (owned by `from_rule`) can be in a copy without
/// the `to` row (owned by `to_rule`) their foreign key `columns` ->
/// `ref_columns` references. Complete when `to` is shared, or when `from`
/// is owned through this very key and `to` by the rest of the same path
/// (the referencing row then goes wherever the referenced row goes).
pub fn reference(
    from: &crate::config::TableConfig,
    columns: &[String],
    to: &crate::config::TableConfig,
    ref_columns: &[String],
) -> Reference {
    let member = to.owner.members().iter().any(|m| {
        m.table.is(&from.name)
            && m.columns.len() == columns.len()
            && m.columns
                .iter()
                .zip(columns)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    });
    let (complete, why) = if to.owner == Owner::Shared {
        (true, format!("{} is shared", to.name))
    } else if member {
        (
            true,
            format!(
                "{} has {}({}) as members, so every copy that holds a row of {} holds the row it references",
                to.name,
                from.name,
                columns.join(", "),
                from.name
            ),
        )
    } else if columns.len() != 1 {
        (
            false,
            "a composite foreign key, which owner paths cannot follow".to_string(),
        )
    } else {
        let follows = match &from.owner {
            Owner::Path { hops, column }
                if hops[0].from_column.eq_ignore_ascii_case(&columns[0])
                    && hops[0].table == to.name
                    && hops[0].to_column.eq_ignore_ascii_case(&ref_columns[0]) =>
            {
                let rest = if hops.len() == 1 {
                    Owner::Column(column.clone())
                } else {
                    Owner::Path {
                        hops: hops[1..].to_vec(),
                        column: column.clone(),
                    }
                };
                Some(rest)
            }
            _ => None,
        };
        match follows {
            Some(rest) if to.owner.same_as(&rest) => (
                true,
                format!("{} is owned through this key, as {} is", from.name, to.name),
            ),
            _ => (
                false,
                format!(
                    "{} is owned by {} and {} by {}, so a copy can hold a row of {} whose {} row it does not hold; make {} a member of its rows ({}: owner = {{ members = [\"{}({})\"] }}, with its own rule kept as column or path), or own {} through this key (owner = {{ path = \"{} -> {}({}).…\" }})",
                    from.name,
                    from.owner,
                    to.name,
                    to.owner,
                    from.name,
                    to.name,
                    from.name,
                    to.name,
                    from.name,
                    columns[0],
                    from.name,
                    columns[0],
                    to.name,
                    ref_columns[0]
                ),
            ),
        }
    };
    Reference {
        from: from.name.to_string(),
        columns: columns.to_vec(),
        to: to.name.to_string(),
        complete,
        why,
    }
}

/// Whether each hop of an owner path follows a declared foreign key, and
/// each hop table can be read and is tracked; problems as `check` lists them.
fn hop_problems(
    db: &mut Db,
    name: &str,
    table: &crate::config::TableName,
    hops: &[crate::config::Hop],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut from = table.clone();
    for h in hops {
        match db.rows(
            "reading foreign keys",
            sql::foreign_key_columns(),
            &[
                Param::Str(from.to_string()),
                Param::Str(h.table.to_string()),
            ],
        ) {
            Ok(rows) => {
                let found = rows.iter().any(|r| {
                    r.try_get::<&str, _>(1)
                        .ok()
                        .flatten()
                        .map(|p| p.eq_ignore_ascii_case(&h.from_column))
                        .unwrap_or(false)
                        && r.try_get::<&str, _>(2)
                            .ok()
                            .flatten()
                            .map(|c| c.eq_ignore_ascii_case(&h.to_column))
                            .unwrap_or(false)
                });
                if !found {
                    problems.push(format!(
                            "[[table]] {name}: owner path hop {from}.{} -> {}({}) does not follow a foreign key; declare FOREIGN KEY ({}) REFERENCES {}({}) or fix the path",
                            h.from_column, h.table, h.to_column, h.from_column, h.table, h.to_column
                        ));
                }
            }
            Err(e) => problems.push(format!("[[table]] {name}: {e}")),
        }
        problems.extend(
            check_hop_table(db, h)
                .into_iter()
                .map(|p| format!("[[table]] {name}: owner path hop table {}: {p}", h.table)),
        );
        from = h.table.clone();
    }
    problems
}

/// The (table, column) pairs a cycle looks rows up by: every hop of an
/// owner path followed backwards (the rows of a table whose parent up the
/// path changed are found through its foreign-key column), and the first
/// column of each membership rule.
fn lookup_columns(cfg: &Config) -> Vec<(crate::config::TableName, String)> {
    let mut out: Vec<(crate::config::TableName, String)> = Vec::new();
    let mut add = |t: &crate::config::TableName, c: &str| {
        if !out
            .iter()
            .any(|(x, y)| x.is(t) && y.eq_ignore_ascii_case(c))
        {
            out.push((t.clone(), c.to_string()));
        }
    };
    for t in &cfg.tables {
        let hops = match (&t.owner, t.owner.direct()) {
            (Owner::Follows { hops, .. }, _) => hops.as_slice(),
            (_, Some(Owner::Path { hops, .. })) => hops.as_slice(),
            _ => &[],
        };
        let mut from = &t.name;
        for h in hops {
            add(from, &h.from_column);
            from = &h.table;
        }
        for m in t.owner.members() {
            add(&m.table, &m.columns[0]);
        }
    }
    out
}

/// The owner columns of the tables owned by a column of their own whose
/// type is a string type and that hold more rows than one snapshot step
/// reads: a snapshot step filters on the bare column (`owner IN (@P1,
/// ...)`, `sql::source::snapshot_step`), which an index on it serves (SQL
/// Server keeps the clustered key in every index, so the step's `ORDER
/// BY` key is in it too). An owner of another type is compared as text
/// (`CAST(owner AS nvarchar(450))`), which no index serves, so no index is
/// advised for it; nor for a table one step reads whole (a care-unit
/// table of a few hundred rows), where a scan is the cheap way.
fn snapshot_columns(
    cfg: &Config,
    tables: &[TableInfo],
    db: &mut Db,
) -> Vec<(crate::config::TableName, String)> {
    let mut out = Vec::new();
    for info in tables {
        let t = &info.cfg;
        let Owner::Column(c) = &t.owner else {
            continue;
        };
        let string_owner = info
            .schema
            .columns
            .iter()
            .any(|x| x.name.eq_ignore_ascii_case(c) && x.ty.is_string());
        if !string_owner {
            continue;
        }
        let step = cfg.publisher.snapshot_step_rows as u64;
        let big = db
            .rows("counting rows", &sql::rows_up_to(&t.name, step), &[])
            .ok()
            .and_then(|rows| rows.first().and_then(|r| i64_of(r, 0)))
            .is_some_and(|n| n as u64 > step);
        if big {
            out.push((t.name.clone(), c.clone()));
        }
    }
    out
}

/// Warnings for the columns ctferry finds rows by that lead no index at
/// the source, each naming the CREATE INDEX that fixes it: the
/// foreign-key columns a cycle looks rows up by (`lookup_columns`; without
/// an index, a scan of the whole table every cycle, however little
/// changed), and the string owner columns a snapshot selects a caregiver's
/// rows by (`snapshot_columns`; without one, each caregiver's snapshot
/// scans the table for its rows: onboarding 300 caregivers scans it 300
/// times; `tables`: the published tables as the source describes them).
/// Empty when the source cannot be read (`check` says why).
pub fn index_warnings(cfg: &Config, tables: &[TableInfo], db: &mut Db) -> Vec<String> {
    let mut out = Vec::new();
    let cycle = lookup_columns(cfg);
    let mut wanted: Vec<(crate::config::TableName, String, bool)> =
        cycle.into_iter().map(|(t, c)| (t, c, true)).collect();
    for (t, c) in snapshot_columns(cfg, tables, db) {
        if !wanted
            .iter()
            .any(|(x, y, _)| x.is(&t) && y.eq_ignore_ascii_case(&c))
        {
            wanted.push((t, c, false));
        }
    }
    for (table, column, by_cycle) in wanted {
        let Ok(rows) = db.rows(
            "reading indexes",
            sql::index_leading_columns(),
            &[Param::Str(table.to_string())],
        ) else {
            continue;
        };
        let led = rows.iter().any(|r| {
            crate::mssql::client::text_at(r, 0).is_some_and(|c| c.eq_ignore_ascii_case(&column))
        });
        if led {
            continue;
        }
        let why = if by_cycle {
            format!("every cycle finds the rows of {table} to re-route by scanning the whole table")
        } else {
            format!("each caregiver's snapshot finds its rows of {table} by scanning the table (onboarding many caregivers scans it once per caregiver)")
        };
        out.push(format!(
            "{table}.{column} leads no index, so {why}; CREATE INDEX IX_{}_{column} ON {table} ({column})",
            table.name
        ));
    }
    out
}

/// What `check` finds at the source beyond problems: index advice
/// (`index_warnings`) and the changes of shape the next cycle will carry
/// to the copies (`schema_changes`). One connection; empty when the source
/// cannot be reached (the problems say why).
pub struct SourceNotes {
    pub index_warnings: Vec<String>,
    pub schema_changes: Vec<String>,
}

/// `index_warnings` and `schema_changes` over one connection, each
/// published table described once for both (a table that cannot be
/// described is left out: `check` names the problem).
pub fn source_notes(cfg: &Config) -> SourceNotes {
    let Ok(mut db) = Db::connect(&cfg.source.connection, &cfg.source.password) else {
        return SourceNotes {
            index_warnings: Vec::new(),
            schema_changes: Vec::new(),
        };
    };
    let tables: Vec<TableInfo> = cfg
        .tables
        .iter()
        .filter_map(|t| describe(&mut db, t).ok())
        .collect();
    SourceNotes {
        index_warnings: index_warnings(cfg, &tables, &mut db),
        schema_changes: schema_changes(cfg, &tables, &mut db),
    }
}

/// The changes of shape the next cycle will find (source and configuration
/// against what was published, `reshape`), and what each will cause at the
/// copies, one line per table; nothing is written. Needs the state: when a
/// running publisher holds it, one line says so. `tables`: the published
/// tables as the source describes them.
pub fn schema_changes(cfg: &Config, tables: &[TableInfo], db: &mut Db) -> Vec<String> {
    use crate::publisher::catalog::{drift, Drift};
    use crate::publisher::reshape;
    use crate::publisher::state::{State, StateError};
    if !cfg.publisher.state.exists() {
        return Vec::new();
    }
    let state = match State::open(&cfg.publisher.state) {
        Ok(s) => s,
        Err(StateError::Locked { .. }) => {
            return vec!["changes of table shape are not compared: a running publisher holds the state (its cycle log names them as it meets them)".into()]
        }
        Err(e) => return vec![format!("changes of table shape are not compared: {e}")],
    };
    let running = state.watermark().ok().flatten().is_some();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for info in tables {
        let t = &info.cfg;
        let name = info.schema.name.clone();
        seen.push(name.clone());
        let Ok(stored) = state.table_schema(&name) else {
            continue;
        };
        let mut info = info.clone();
        if let Some(st) = &stored {
            let accepted = state.accepted(&name).unwrap_or_default();
            let held = reshape::undecided(&info, st, &accepted, false);
            if !held.is_empty() {
                out.push(format!(
                    "{name}: new column(s) {} held back, not published until `ctferry schema accept --table {name}` (or a mask or exclude for them)",
                    held.join(", ")
                ));
            }
            info = info.without(&held);
        }
        let now = info.published();
        match drift(stored, &now) {
            Drift::New if running => out.push(format!(
                "{name}: added to the configuration: the next cycle creates and loads it at every copy"
            )),
            Drift::Changed { was } => {
                let assessed = reshape::assess(&was, &now, |c| {
                    db.rows("looking for values", &sql::any_value(&t.name, c), &[])
                        .map(|r| !r.is_empty())
                });
                match assessed {
                    Ok((_, why)) => out.push(format!(
                        "{name}: {why} (the next cycle sends this change to every copy)"
                    )),
                    Err(e) => out.push(format!("{name}: changed, but {e}")),
                }
            }
            _ => {}
        }
    }
    for (name, _) in state.table_schemas().unwrap_or_default() {
        if !seen.contains(&name) && running {
            out.push(format!(
                "{name}: removed from the configuration: the next cycle drops it at every copy"
            ));
        }
    }
    out
}

/// Whether member rule `m` follows a declared foreign key from its table to
/// `target`'s key (`key`, in order): membership is only as sound as the
/// references it counts.
fn member_problem(
    db: &mut Db,
    m: &crate::config::Member,
    target: &crate::config::TableName,
    key: &[String],
) -> Option<String> {
    let rows = match db.rows(
        "reading foreign keys",
        sql::foreign_keys_from(),
        &[Param::Str(m.table.to_string())],
    ) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    let mut fks: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for r in &rows {
        let text = |i| crate::mssql::client::text_at(r, i).unwrap_or_default();
        let to_target = text(1).eq_ignore_ascii_case(&target.schema)
            && text(2).eq_ignore_ascii_case(&target.name);
        if !to_target {
            continue;
        }
        let fk = text(0);
        let pair = (text(3), text(4));
        match fks.iter_mut().find(|f| f.0 == fk) {
            Some(f) => f.1.push(pair),
            None => fks.push((fk, vec![pair])),
        }
    }
    let follows = fks.iter().any(|(_, pairs)| {
        pairs.len() == m.columns.len()
            && m.columns.iter().zip(key).all(|(c, k)| {
                pairs
                    .iter()
                    .any(|(f, r)| f.eq_ignore_ascii_case(c) && r.eq_ignore_ascii_case(k))
            })
    });
    (!follows).then(|| {
        format!(
            "{} does not follow a foreign key to {target}({}); declare FOREIGN KEY ({}) REFERENCES {target}({}) (the columns in the order of the key) or fix the rule",
            m,
            key.join(", "),
            m.columns.join(", "),
            key.join(", ")
        )
    })
}

/// Every foreign key between published tables, judged (`reference`).
fn references(db: &mut Db, cfg: &Config) -> Result<Vec<Reference>, String> {
    let mut out = Vec::new();
    for t in &cfg.tables {
        let rows = db
            .rows(
                "reading foreign keys",
                sql::foreign_keys_from(),
                &[Param::Str(t.name.to_string())],
            )
            .map_err(|e| e.to_string())?;
        // (constraint, referenced table) -> (columns, referenced columns)
        let mut keys: Vec<(String, String, Vec<String>, Vec<String>)> = Vec::new();
        for r in &rows {
            let text = |i| crate::mssql::client::text_at(r, i).unwrap_or_default();
            let (fk, to) = (text(0), format!("{}.{}", text(1), text(2)));
            match keys.iter_mut().find(|k| k.0 == fk) {
                Some(k) => {
                    k.2.push(text(3));
                    k.3.push(text(4));
                }
                None => keys.push((fk, to, vec![text(3)], vec![text(4)])),
            }
        }
        for (_, to, cols, ref_cols) in keys {
            let Some(target) = cfg.tables.iter().find(|x| {
                crate::config::TableName::parse(&to).is_some_and(|n| {
                    n.schema.eq_ignore_ascii_case(&x.name.schema)
                        && n.name.eq_ignore_ascii_case(&x.name.name)
                })
            }) else {
                continue;
            };
            out.push(reference(t, &cols, target, &ref_cols));
        }
    }
    Ok(out)
}

/// Every problem with `cfg` (empty when all is well).
pub fn check(cfg: &Config) -> Vec<String> {
    check_with_references(cfg).0
}

/// `check`, and the judgement of every foreign key between published
/// tables (empty when the source could not be read).
pub fn check_with_references(cfg: &Config) -> (Vec<String>, Vec<Reference>) {
    let mut problems = Vec::new();
    if let Err(e) = SecretKey::load(
        &cfg.publisher.signing_key,
        cfg.publisher
            .signing_passphrase
            .as_ref()
            .map(|s| s.expose().to_string()),
    )
    .and_then(|k| k.check_can_sign_now())
    {
        problems.push(format!("[publisher] signing_key: {e}"));
    }
    for s in &cfg.subscribers {
        match PublicKey::load(&s.public_key) {
            Ok(k) => {
                if let Err(e) = k.check_can_encrypt().and_then(|_| k.check_usable_now()) {
                    problems.push(format!("[[subscriber]] {}: public_key: {e}", s.hsa_id));
                }
            }
            Err(e) => problems.push(format!("[[subscriber]] {}: public_key: {e}", s.hsa_id)),
        }
    }
    for s in &cfg.subscribers {
        if let Err(e) = crate::publisher::deliver::check_area(s) {
            problems.push(format!("[[subscriber]] {}: deliver: {e}", s.hsa_id));
        }
    }
    let mut db = match Db::connect(&cfg.source.connection, &cfg.source.password) {
        Ok(db) => db,
        Err(e) => {
            problems.push(format!("[source]: {e}"));
            return (problems, Vec::new());
        }
    };
    match db.rows(
        "reading the database settings",
        sql::database_settings(),
        &[],
    ) {
        Ok(rows) => {
            let r = rows.first();
            if r.and_then(|r| i64_of(r, 0)) != Some(1) {
                problems.push("[source]: snapshot isolation is off: run ALTER DATABASE <db> SET ALLOW_SNAPSHOT_ISOLATION ON".into());
            }
            if r.and_then(|r| i64_of(r, 1)).unwrap_or(0) == 0 {
                problems.push("[source]: change tracking is off for the database: run ALTER DATABASE <db> SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON)".into());
            }
        }
        Err(e) => problems.push(format!("[source]: {e}")),
    }
    for t in &cfg.tables {
        let name = t.name.to_string();
        let (perm, readable) = permission_problems(&mut db, &name);
        problems.extend(perm.into_iter().map(|p| format!("[[table]] {name}: {p}")));
        if !readable {
            continue;
        }
        let info = match describe(&mut db, t) {
            Ok(i) => i,
            Err(e) => {
                problems.push(format!("[[table]] {name}: {e}"));
                continue;
            }
        };
        match db.rows("reading change tracking", sql::table_tracking(), &[Param::Str(name.clone())]) {
            Ok(r) if r.is_empty() => problems.push(format!("[[table]] {name}: change tracking is off: run ALTER TABLE {name} ENABLE CHANGE_TRACKING")),
            Ok(_) => {}
            Err(e) => problems.push(format!("[[table]] {name}: {e}")),
        }
        let has_col = |c: &str| {
            info.schema
                .columns
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(c))
        };
        match t.owner.direct() {
            None | Some(Owner::Shared | Owner::Members { .. } | Owner::Follows { .. }) => {}
            Some(Owner::Column(c)) => {
                if !has_col(c) && !t.excludes(c) {
                    problems.push(format!(
                        "[[table]] {name}: owner column {c} does not exist in the table"
                    ));
                }
            }
            Some(Owner::Path { hops, column }) => {
                problems.extend(hop_problems(&mut db, &name, &t.name, hops));
                let from = t.name.clone();
                let last = hops.last().map(|h| h.table.clone()).unwrap_or(from);
                match db.rows(
                    "reading columns",
                    sql::columns(),
                    &[Param::Str(last.to_string())],
                ) {
                    Ok(rows) => {
                        if !rows.iter().any(|r| {
                            r.try_get::<&str, _>(0)
                                .ok()
                                .flatten()
                                .map(|c| c.eq_ignore_ascii_case(column))
                                .unwrap_or(false)
                        }) {
                            problems.push(format!(
                                "[[table]] {name}: owner column {last}.{column} does not exist"
                            ));
                        }
                    }
                    Err(e) => problems.push(format!("[[table]] {name}: {e}")),
                }
            }
        }
        if let Owner::Follows { hops, .. } = &t.owner {
            problems.extend(hop_problems(&mut db, &name, &t.name, hops));
        }
        for m in t.owner.members() {
            problems.extend(
                member_problem(&mut db, m, &t.name, &info.schema.key)
                    .map(|p| format!("[[table]] {name}: members {m}: {p}")),
            );
        }
        for (c, lit) in &t.masks {
            let Some(col) = info
                .schema
                .columns
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(c))
            else {
                continue;
            };
            // A NULL mask on a NOT NULL column never gets here: `describe`
            // refuses it for every command (catalog::mask_misfit).
            let q = sql::cast_literal(&sql::mask_literal(lit), &col.ty);
            if let Err(e) = db.rows("checking a mask literal", &q, &[]) {
                problems.push(format!(
                    "[[table]] {name}: mask {c} = {lit} does not fit {}: {}",
                    col.ty, e.message
                ));
            }
        }
    }
    let refs = match references(&mut db, cfg) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("[source]: {e}"));
            Vec::new()
        }
    };
    (problems, refs)
}
