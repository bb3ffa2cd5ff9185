//! The statements sent to the region's source database, one function each.
//!
//! Permissions the publisher's login needs for all of these: SELECT and
//! VIEW CHANGE TRACKING on every published table and every owner-path
//! table, nothing else (README, "Source prerequisites"). SELECT also makes
//! a table's catalog rows visible ("Metadata visibility configuration"), so
//! the catalog queries need no VIEW DEFINITION; the database-level reads
//! use only what every user sees (its own database's row in sys.databases,
//! CHANGE_TRACKING_CURRENT_VERSION()); sys.change_tracking_databases is
//! avoided because it needs VIEW ANY DATABASE, which a hardened server
//! revokes from public.

use super::{quote, table};
use crate::config::table::MaskValue;
use crate::config::{Member, Owner, TableName};
use crate::format::value::ColumnType;

/// Starts the cycle's read: one SNAPSHOT transaction, so that the current
/// version, the minimum valid versions and every CHANGETABLE and table read
/// agree with each other while the source keeps committing ("Work with
/// change tracking"). Needs ALLOW_SNAPSHOT_ISOLATION ON.
pub fn begin_snapshot() -> &'static str {
    "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION;"
}

/// A mask's value as the T-SQL literal ctferry writes for it (never the
/// operator's text): NULL, N'...' with every quote doubled, a number the
/// configuration checked is one, 0x and hex digits.
pub fn mask_literal(v: &MaskValue) -> String {
    match v {
        MaskValue::Null => "NULL".into(),
        MaskValue::Text(s) => format!("N'{}'", s.replace('\'', "''")),
        MaskValue::Number(n) => n.clone(),
        MaskValue::Binary(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("0x{hex}")
        }
    }
}

/// `ctferry check`: whether a mask's value converts to its column's type
/// (`literal` from `mask_literal`), run once in a SELECT of a constant.
pub fn cast_literal(literal: &str, ty: &ColumnType) -> String {
    format!("SELECT CAST({literal} AS {ty}) AS v")
}

/// Ends the cycle's read transaction (it wrote nothing).
pub fn commit() -> &'static str {
    "COMMIT TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"
}

/// The version the cycle reads up to, and the time of the read (UTC, "data
/// as of"). Inside the snapshot transaction this is the first data access,
/// which fixes the snapshot.
pub fn current_version_and_time() -> &'static str {
    "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS v, SYSUTCDATETIME() AS t"
}

/// A table's minimum valid version and the version its tracking began at
/// (@P1: `schema.table`); NULLs when the table is not tracked. The begin
/// version moves when tracking is disabled and enabled again or the table
/// is truncated, even when no change was committed in between (then the
/// minimum valid version alone does not reveal the lost history).
pub fn min_valid_version() -> &'static str {
    "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@P1)) AS v,
            (SELECT ct.begin_version FROM sys.change_tracking_tables AS ct WHERE ct.object_id = OBJECT_ID(@P1)) AS b"
}

/// Whether the database allows snapshot isolation and tracks changes.
/// A user always sees its current database in sys.databases;
/// CHANGE_TRACKING_CURRENT_VERSION() is NULL exactly when the database
/// does not track changes, and needs no permission.
pub fn database_settings() -> &'static str {
    "SELECT d.snapshot_isolation_state AS snapshot_state,
            CASE WHEN CHANGE_TRACKING_CURRENT_VERSION() IS NULL THEN 0 ELSE 1 END AS ct_on
     FROM sys.databases AS d WHERE d.database_id = DB_ID()"
}

/// `ctferry check`: the login's effective SELECT and VIEW CHANGE TRACKING
/// on a table (@P1: `schema.table`), 1 or 0 each (NULL: no such table),
/// and who the login is there (login, database user) for the GRANT it
/// suggests. HAS_PERMS_BY_NAME counts grants to the user, its roles and
/// public, and denies.
pub fn permissions() -> &'static str {
    "SELECT HAS_PERMS_BY_NAME(@P1, 'OBJECT', 'SELECT') AS can_select,
            HAS_PERMS_BY_NAME(@P1, 'OBJECT', 'VIEW CHANGE TRACKING') AS can_track,
            SUSER_SNAME() AS login_name, USER_NAME() AS user_name"
}

/// Whether a table (@P1: `schema.table`) is change-tracked.
pub fn table_tracking() -> &'static str {
    "SELECT ct.is_track_columns_updated_on AS track FROM sys.change_tracking_tables AS ct WHERE ct.object_id = OBJECT_ID(@P1)"
}

/// A table's columns in order with their types (@P1: `schema.table`).
/// `max_length` is in bytes (-1 for max); nvarchar(n) has max_length 2n.
/// The type is the system type: a column of an alias type
/// (`dbo.Personnummer`, CREATE TYPE ... FROM char(12)) reads as its base
/// type, which is what it holds and how it travels. `collation_name` is a
/// string column's collation (NULL for other types).
pub fn columns() -> &'static str {
    "SELECT c.name AS name, ty.name AS type_name, c.max_length AS max_length, c.precision AS precision,
            c.scale AS scale, c.is_nullable AS is_nullable, c.column_id AS column_id, c.collation_name AS collation_name
     FROM sys.columns AS c JOIN sys.types AS ty ON ty.user_type_id = c.system_type_id
     WHERE c.object_id = OBJECT_ID(@P1) ORDER BY c.column_id"
}

/// A table's primary key columns in key order (@P1: `schema.table`).
pub fn primary_key() -> &'static str {
    "SELECT c.name AS name
     FROM sys.indexes AS i
     JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
     JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
     WHERE i.object_id = OBJECT_ID(@P1) AND i.is_primary_key = 1 ORDER BY ic.key_ordinal"
}

/// The foreign keys from a table (@P1) to another (@P2), as
/// (constraint, parent column, referenced column) rows.
pub fn foreign_key_columns() -> &'static str {
    "SELECT fk.name AS fk, pc.name AS parent_column, rc.name AS referenced_column
     FROM sys.foreign_keys AS fk
     JOIN sys.foreign_key_columns AS fkc ON fkc.constraint_object_id = fk.object_id
     JOIN sys.columns AS pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id
     JOIN sys.columns AS rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id
     WHERE fk.parent_object_id = OBJECT_ID(@P1) AND fk.referenced_object_id = OBJECT_ID(@P2)"
}

/// Every foreign key from a table (@P1: `schema.table`), column by column:
/// (constraint, referenced schema, referenced table, parent column,
/// referenced column), in constraint and column order. `ctferry check`
/// compares them with the owner rules.
pub fn foreign_keys_from() -> &'static str {
    "SELECT fk.name AS fk, OBJECT_SCHEMA_NAME(fk.referenced_object_id) AS ref_schema,
            OBJECT_NAME(fk.referenced_object_id) AS ref_table, pc.name AS parent_column, rc.name AS referenced_column
     FROM sys.foreign_keys AS fk
     JOIN sys.foreign_key_columns AS fkc ON fkc.constraint_object_id = fk.object_id
     JOIN sys.columns AS pc ON pc.object_id = fkc.parent_object_id AND pc.column_id = fkc.parent_column_id
     JOIN sys.columns AS rc ON rc.object_id = fkc.referenced_object_id AND rc.column_id = fkc.referenced_column_id
     WHERE fk.parent_object_id = OBJECT_ID(@P1)
     ORDER BY fk.name, fkc.constraint_column_id"
}

/// The columns that lead an index of table @P1 (`schema.table`): the first
/// key column of each index (the primary key's included). A foreign-key
/// column a cycle looks rows up by, and a string owner column a snapshot
/// step filters on, should be one of them
/// (`publisher::check::index_warnings`).
pub fn index_leading_columns() -> &'static str {
    "SELECT c.name FROM sys.indexes AS i
     JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
     JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
     WHERE i.object_id = OBJECT_ID(@P1) AND ic.key_ordinal = 1 AND ic.is_included_column = 0"
}

/// A column of a published table, as the SELECTs need it.
#[derive(Debug, Clone)]
pub struct SelectColumn {
    pub name: String,
    pub ty: ColumnType,
    /// T-SQL literal that replaces the value (masking), if any.
    pub mask: Option<String>,
    /// The source column is of a type ctferry reads as `ty` by a CAST:
    /// `text`, `ntext` and `image` (which SQL Server cannot compare, sort
    /// or hash, and sends with text pointers) as varchar(max),
    /// nvarchar(max) and varbinary(max); `timestamp` as binary(8); `xml` as
    /// its text, nvarchar(max) (`read_type`).
    pub cast: bool,
}

/// The select list: masked columns carry their replacement literal (so the
/// real value is never read), money is read as decimal (exact; TDS clients
/// see money as a float), legacy types as the type they are carried as.
fn select_list(alias: &str, cols: &[SelectColumn]) -> String {
    cols.iter()
        .map(|c| {
            let read = read_type(&c.ty);
            let src = match &c.mask {
                Some(lit) => format!("CAST({lit} AS {read})"),
                None if c.cast => format!("CAST({alias}.{} AS {read})", quote(&c.name)),
                None => format!("{alias}.{}", quote(&c.name)),
            };
            let src = match c.ty {
                ColumnType::Money => format!("CAST({src} AS decimal(19,4))"),
                ColumnType::SmallMoney => format!("CAST({src} AS decimal(10,4))"),
                _ => src,
            };
            format!("{src} AS {}", quote(&c.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The type a column is read as: its own, but xml as nvarchar(max) (its
/// text, which is what a package carries).
fn read_type(ty: &ColumnType) -> ColumnType {
    match ty {
        ColumnType::Xml => ColumnType::NVarChar(crate::format::value::Len::Max),
        other => *other,
    }
}

/// FROM with the owner path joined: `t` is the table, `p1..pn` the hops.
/// Returns (from clause, owner expression or None for shared tables and
/// membership without a direct rule).
fn from_with_owner(t: &TableName, owner: &Owner) -> (String, Option<String>) {
    owner_from(t, owner, "t", "p")
}

/// FROM `t AS alias` with the direct owner rule's path joined (hop aliases
/// `{hop}1..{hop}n`), and the owner expression (see `from_with_owner`).
fn owner_from(t: &TableName, owner: &Owner, alias: &str, hop: &str) -> (String, Option<String>) {
    let mut from = format!("{} AS {alias}", table(t));
    if let Owner::Follows { hops, .. } = owner {
        // The "owner" is the key of the followed row.
        let last = join_hops(&mut from, alias, hop, hops);
        let key = hops.last().map(|h| h.to_column.as_str()).unwrap_or("");
        return (from, Some(format!("{last}.{}", quote(key))));
    }
    let owner_expr = match owner.direct() {
        None => None,
        Some(Owner::Column(c)) => Some(format!("{alias}.{}", quote(c))),
        Some(Owner::Path { hops, column }) => {
            let last = join_hops(&mut from, alias, hop, hops);
            Some(format!("{last}.{}", quote(column)))
        }
        // `direct()` is a column or a path.
        Some(Owner::Shared | Owner::Members { .. } | Owner::Follows { .. }) => None,
    };
    (from, owner_expr)
}

/// Appends `LEFT OUTER JOIN` of each hop to `from` (aliases `{hop}1..`),
/// starting at `alias`; returns the last hop's alias.
fn join_hops(from: &mut String, alias: &str, hop: &str, hops: &[crate::config::Hop]) -> String {
    let mut prev = alias.to_string();
    for (i, h) in hops.iter().enumerate() {
        let a = format!("{hop}{}", i + 1);
        from.push_str(&format!(
            " LEFT OUTER JOIN {} AS {a} ON {a}.{} = {prev}.{}",
            table(&h.table),
            quote(&h.to_column),
            quote(&h.from_column)
        ));
        prev = a;
    }
    prev
}

/// `alias.[c] IN (@Pf, ...)` for `n` keys of one column, or
/// `((alias.[c1] = @Pf AND alias.[c2] = @Pf+1) OR ...)` for a composite
/// key; parameters from `@P{first}` on, key by key.
fn key_set(alias: &str, cols: &[String], n: usize, first: usize) -> String {
    if cols.len() == 1 {
        let ps: Vec<String> = (0..n.max(1)).map(|i| format!("@P{}", first + i)).collect();
        return format!("{alias}.{} IN ({})", quote(&cols[0]), ps.join(", "));
    }
    let mut p = first;
    let ors: Vec<String> = (0..n.max(1))
        .map(|_| {
            let ands: Vec<String> = cols
                .iter()
                .map(|c| {
                    let s = format!("{alias}.{} = @P{p}", quote(c));
                    p += 1;
                    s
                })
                .collect();
            format!("({})", ands.join(" AND "))
        })
        .collect();
    format!("({})", ors.join(" OR "))
}

/// The rows that changed after @P1 (the watermark W), and the rows whose
/// owner may have changed because a row up their owner path changed; each
/// with the subscriber that owns it now and whether the row itself
/// changed. One statement per table per cycle, whatever the number of
/// subscribers. Columns: `__self` (1/0), `__owner`, then the table's
/// columns, then the raw values of `refs` (the columns through which the
/// table's rows make caregivers members of another table's rows).
///
/// The rows read are a key set driven by change tracking (`changed_keys`),
/// joined to the table by primary key: a cycle costs what changed, not
/// what exists (an `OR EXISTS` per hop would have the server evaluate
/// every row of the table every cycle).
///
/// `__owner` is the position (in `owners`, `(partition key, subscriber)`)
/// of the subscriber whose key equals the row's owner value, or NULL: SQL
/// Server compares them, with `=` as in the snapshot's `IN` filter
/// (`snapshot_rows`), so routing and snapshots agree whatever the owner
/// column's type, collation (case) or padding (`char(n)`).
pub fn changed_rows(
    t: &TableName,
    owner: &Owner,
    key: &[String],
    cols: &[SelectColumn],
    owners: &[(String, usize)],
    refs: &[String],
    rekeyed: usize,
) -> String {
    let (from, owner_expr) = from_with_owner(t, owner);
    // The hops whose changes can move the row: a path's, and a followed
    // path's up to (not including) the followed table, whose own changes
    // do not change where its followers are.
    let moving: &[crate::config::Hop] = match (owner, owner.direct()) {
        (Owner::Follows { hops, .. }, _) => &hops[..hops.len().saturating_sub(1)],
        (_, Some(Owner::Path { hops, .. })) => hops,
        _ => &[],
    };
    let base = format!("{} AS t", table(t));
    let joins = from.strip_prefix(&base).unwrap_or("");
    let on = |a: &str| -> String {
        key.iter()
            .map(|k| format!("{a}.{q} = t.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    format!(
        "SELECT CASE WHEN c.SYS_CHANGE_VERSION IS NULL THEN 0 ELSE 1 END AS __self, {owner} AS __owner, {list}{refs}
         FROM {base}
         INNER JOIN ({keys}) AS ck ON {ck_on}{joins}
         LEFT OUTER JOIN CHANGETABLE(CHANGES {tn}, @P1) AS c ON {c_on}",
        owner = owner_column(owner, owner_expr, owners),
        list = select_list("t", cols),
        refs = ref_list(refs),
        keys = changed_keys(t, owner, key, moving, rekeyed),
        ck_on = on("ck"),
        tn = table(t),
        c_on = on("c"),
    )
}

/// The keys of `t`'s rows to read in a cycle: those change tracking lists
/// for `t` after @P1; for each hop of its owner path, the rows whose path
/// reaches a row of that hop's table that changed, found through the
/// foreign-key columns from the hop's CHANGETABLE outwards; and the rows
/// whose owner value is one of the `rekeyed` partition keys (@P2..) that
/// changed hands in the configuration
/// (`x.BesokId IN (SELECT y.Id FROM dbo.Besok AS y WHERE y.VardenhetId IN
/// (SELECT c.Id FROM CHANGETABLE(CHANGES dbo.Vardenhet, @P1) AS c))`).
/// With an index on each foreign-key column (`check` warns when one
/// lacks it) SQL Server seeks instead of scanning.
fn changed_keys(
    t: &TableName,
    owner: &Owner,
    key: &[String],
    hops: &[crate::config::Hop],
    rekeyed: usize,
) -> String {
    let cols = |a: &str| -> String {
        key.iter()
            .map(|k| format!("{a}.{}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut branches = vec![format!(
        "SELECT {} FROM CHANGETABLE(CHANGES {}, @P1) AS c0",
        cols("c0"),
        table(t)
    )];
    for i in 0..hops.len() {
        // The changed rows of hop i's table, then back to the table.
        let mut inner = format!(
            "SELECT c{n}.{} FROM CHANGETABLE(CHANGES {}, @P1) AS c{n}",
            quote(&hops[i].to_column),
            table(&hops[i].table),
            n = i + 1
        );
        for j in (0..i).rev() {
            inner = format!(
                "SELECT y{j}.{} FROM {} AS y{j} WHERE y{j}.{} IN ({inner})",
                quote(&hops[j].to_column),
                table(&hops[j].table),
                quote(&hops[j + 1].from_column),
            );
        }
        branches.push(format!(
            "SELECT {} FROM {} AS x WHERE x.{} IN ({inner})",
            cols("x"),
            table(t),
            quote(&hops[0].from_column)
        ));
    }
    // Rows whose owner value is a partition key that changed hands in the
    // configuration (@P2..): their owner changed without a change of theirs.
    if rekeyed > 0 {
        if let (from, Some(expr)) = owner_from(t, owner, "x", "xp") {
            if owner.direct().is_some() {
                let ps: Vec<String> = (2..rekeyed + 2).map(|i| format!("@P{i}")).collect();
                branches.push(format!(
                    "SELECT {} FROM {from} WHERE {} IN ({})",
                    cols("x"),
                    owner_text(&expr),
                    ps.join(", ")
                ));
            }
        }
    }
    branches.join(" UNION ")
}

/// The `__owner` column: the subscriber's position (`owner_case`), NULL for
/// shared tables and membership without a direct rule, or, for a table
/// that follows a membership table, the followed row's key.
fn owner_column(owner: &Owner, expr: Option<String>, owners: &[(String, usize)]) -> String {
    match (owner, expr) {
        (_, None) => "NULL".into(),
        (Owner::Follows { .. }, Some(k)) => k,
        (_, Some(o)) => owner_case(&o, owners),
    }
}

/// `, t.[C1] AS [__r0], ...`: raw columns read after the select list.
fn ref_list(refs: &[String]) -> String {
    refs.iter()
        .enumerate()
        .map(|(i, c)| format!(", t.{} AS [__r{i}]", quote(c)))
        .collect()
}

/// Rows of a membership table whose key is one of `n` keys (@P1.. in key
/// column order, key by key), in the shape of `changed_rows` with `__self`
/// 0: the rows whose members may have changed because a row referencing
/// them did, read to be sent where they moved in.
pub fn rows_by_key(
    t: &TableName,
    owner: &Owner,
    key: &[String],
    cols: &[SelectColumn],
    owners: &[(String, usize)],
    n: usize,
    refs: &[String],
) -> String {
    let (from, owner_expr) = from_with_owner(t, owner);
    format!(
        "SELECT 0 AS __self, {owner} AS __owner, {list}{refs} FROM {from} WHERE {set}",
        owner = owner_column(owner, owner_expr, owners),
        list = select_list("t", cols),
        refs = ref_list(refs),
        set = key_set("t", key, n, 1),
    )
}

/// Rows of a table that follows a membership table (`Owner::Follows`)
/// whose followed row's key is one of `n` keys (@P1..), in the shape of
/// `changed_rows` with `__self` 0: the rows to send where their followed
/// row moved in, or to delete where it moved out.
pub fn rows_following(
    t: &TableName,
    owner: &Owner,
    cols: &[SelectColumn],
    n: usize,
    refs: &[String],
) -> String {
    let (from, expr) = from_with_owner(t, owner);
    let expr = expr.unwrap_or_else(|| "NULL".into());
    let ps: Vec<String> = (1..=n.max(1)).map(|i| format!("@P{i}")).collect();
    format!(
        "SELECT 0 AS __self, {expr} AS __owner, {list}{refs} FROM {from} WHERE {expr} IN ({ps})",
        list = select_list("t", cols),
        refs = ref_list(refs),
        ps = ps.join(", "),
    )
}

/// The rows of member table `source` (key `source_key`) whose `columns`
/// reference one of `n` rows of `target` (keys @P1.., key by key), for a
/// member table owned by membership: its rows' holders are in the state,
/// not in a column. Columns: the target's key, then the source's key.
/// One statement per rule per chunk of keys.
pub fn member_rows(
    target: &TableName,
    key: &[String],
    source: &TableName,
    source_key: &[String],
    columns: &[String],
    n: usize,
) -> String {
    let mut sel: Vec<String> = key.iter().map(|k| format!("k.{}", quote(k))).collect();
    sel.extend(source_key.iter().map(|k| format!("m.{}", quote(k))));
    format!(
        "SELECT {} FROM {} AS m{}",
        sel.join(", "),
        table(source),
        referenced_by(target, key, columns, n)
    )
}

/// ` INNER JOIN target AS k ON k.key = m.column ... WHERE m.column IN
/// (@P1..)`: the rows of the member table `m` that reference one of `n`
/// rows of `target`, filtered on the referencing columns.
fn referenced_by(target: &TableName, key: &[String], columns: &[String], n: usize) -> String {
    let on: Vec<String> = key
        .iter()
        .zip(columns)
        .map(|(k, c)| format!("k.{} = m.{}", quote(k), quote(c)))
        .collect();
    format!(
        " INNER JOIN {} AS k ON {} WHERE {}",
        table(target),
        on.join(" AND "),
        key_set("m", columns, n, 1)
    )
}

/// The members of `n` rows of `target` (keys @P1.., key by key) through
/// one membership rule: every distinct (target key, subscriber) of the rows
/// of `source` (owned by `source_owner`, a column or a path) whose
/// `columns` reference them. The key set filters the referencing columns
/// (which SQL Server requires to have the key's type and collation, error
/// 1757), so the engine looks at the referencing rows only; the key
/// returned is the target's own, as the index knows it. Columns: the key
/// columns, then `__owner` as in `changed_rows` (NULL for a row owned by no
/// subscriber). One statement per rule per chunk of keys, whatever the
/// number of subscribers.
pub fn member_owners(
    target: &TableName,
    key: &[String],
    source: &TableName,
    source_owner: &Owner,
    columns: &[String],
    owners: &[(String, usize)],
    n: usize,
) -> String {
    let (from, owner_expr) = owner_from(source, source_owner, "m", "mp");
    let o = owner_case(owner_expr.as_deref().unwrap_or("NULL"), owners);
    let sel: Vec<String> = key.iter().map(|k| format!("k.{}", quote(k))).collect();
    format!(
        "SELECT DISTINCT {}, {o} AS __owner FROM {from}{}",
        sel.join(", "),
        referenced_by(target, key, columns, n)
    )
}

/// `CASE <owner> WHEN N'key' THEN <subscriber> ... END` (NULL when no key
/// matches, or there are none).
fn owner_case(owner: &str, owners: &[(String, usize)]) -> String {
    if owners.is_empty() {
        return "CAST(NULL AS int)".into();
    }
    let whens: Vec<String> = owners
        .iter()
        .map(|(k, s)| format!("WHEN {} THEN {s}", super::literal(k)))
        .collect();
    format!("CASE {} {} END", owner_text(owner), whens.join(" "))
}

/// The owner value as the text partition keys are compared with: SQL
/// Server compares it in the owner column's collation (case as the
/// collation says, trailing blanks ignored); an `int` or `uniqueidentifier`
/// owner compares as its text, so keys of another type never make the
/// statement fail (a bare `guid_column IN (N'E1')` is error 8169).
fn owner_text(owner: &str) -> String {
    format!("CAST({owner} AS nvarchar(450))")
}

/// Whether column `column` of table `t` holds a value in any row (one row
/// when it does, none when every row holds NULL): a column added at the
/// source travels to the copies as an added column alone when it does not,
/// else with the table's rows. Stops at the first row found.
pub fn any_value(t: &TableName, column: &str) -> String {
    format!(
        "SELECT TOP (1) 1 FROM {} WHERE {} IS NOT NULL",
        table(t),
        quote(column)
    )
}

/// How many rows table `t` has, counted up to `n + 1` (reads at most that
/// many): whether it has more than `n` rows, without counting a large
/// table whole (`publisher::check::index_warnings`).
pub fn rows_up_to(t: &TableName, n: u64) -> String {
    format!(
        "SELECT COUNT_BIG(*) FROM (SELECT TOP ({}) 1 AS one FROM {}) AS s",
        n + 1,
        table(t)
    )
}

/// Keys of rows changed after @P1 that no longer exist (deleted, or moved
/// away by a key update).
pub fn deleted_keys(t: &TableName, key: &[String]) -> String {
    let sel: Vec<String> = key
        .iter()
        .map(|k| format!("c.{q} AS {q}", q = quote(k)))
        .collect();
    let on: Vec<String> = key
        .iter()
        .map(|k| format!("t.{q} = c.{q}", q = quote(k)))
        .collect();
    format!(
        "SELECT {sel} FROM CHANGETABLE(CHANGES {tn}, @P1) AS c
         LEFT OUTER JOIN {tn} AS t ON {on}
         WHERE t.{k0} IS NULL",
        sel = sel.join(", "),
        tn = table(t),
        on = on.join(" AND "),
        k0 = quote(&key[0]),
    )
}

/// How a table's rows are held by a subscriber, as the snapshot's SELECT
/// needs it: the table's rule, and recursively how the tables its holders
/// come from are held (`publisher::membership::holding`).
pub struct Holding<'a> {
    pub table: &'a TableName,
    pub owner: &'a Owner,
    pub key: &'a [String],
    /// The direct owner is a column of the table of a character type: it
    /// is compared with the partition keys as it is, not through
    /// `owner_text`'s CAST, so that an index on it is used (a CAST of the
    /// column makes SQL Server scan the table once per caregiver). The
    /// comparison is the same: SQL Server converts a varchar column to the
    /// keys' nvarchar itself, in the column's collation.
    pub owner_is_text: bool,
    /// Each membership rule with how its member table is held.
    pub members: Vec<(&'a Member, Holding<'a>)>,
    /// For a follower: how the table it follows is held.
    pub followed: Option<Box<Holding<'a>>>,
}

/// The conditions (to OR) under which the row at `alias` of `h.table`
/// (its owner expression `owner_expr`, from `owner_from` with the same
/// alias) is held by a subscriber whose keys are `params`: its direct
/// owner is one of them; or a row of a member table that references it is
/// held by one of them (recursively: owned by one of them, or, for a member
/// table owned by membership, held); or, for a follower, the row it
/// follows is held. A key of one column as a semi-join (IN), which SQL
/// Server and the simulator alike run once, not once per row; a composite
/// key as EXISTS (T-SQL has no row-value IN).
fn held_conditions(
    alias: &str,
    h: &Holding<'_>,
    owner_expr: Option<&str>,
    params: &str,
) -> Vec<String> {
    let mut held = Vec::new();
    if let Owner::Follows { hops, .. } = h.owner {
        let Some(f) = &h.followed else {
            // Not given what it follows: held nowhere (never everywhere).
            return vec!["1 = 0".to_string()];
        };
        let k = hops.last().map(|x| x.to_column.clone()).unwrap_or_default();
        let x = format!("{alias}x");
        let (xfrom, xexpr) = owner_from(f.table, f.owner, &x, &format!("{x}p"));
        let inner = held_conditions(&x, f, xexpr.as_deref(), params);
        held.push(format!(
            "{} IN (SELECT {x}.{} FROM {xfrom} WHERE {})",
            owner_expr.unwrap_or("NULL"),
            quote(&k),
            or_all(&inner)
        ));
        return held;
    }
    if let Some(o) = owner_expr {
        let o = if h.owner_is_text {
            o.to_string()
        } else {
            owner_text(o)
        };
        held.push(format!("{o} IN ({params})"));
    }
    for (j, (m, source)) in h.members.iter().enumerate() {
        let s = format!("{alias}s{j}");
        let (sfrom, sexpr) = owner_from(&m.table, source.owner, &s, &format!("{s}p"));
        let owned = or_all(&held_conditions(&s, source, sexpr.as_deref(), params));
        if let ([k], [c]) = (h.key, &m.columns[..]) {
            held.push(format!(
                "{alias}.{} IN (SELECT {s}.{} FROM {sfrom} WHERE {owned})",
                quote(k),
                quote(c)
            ));
            continue;
        }
        let join: Vec<String> = m
            .columns
            .iter()
            .zip(h.key)
            .map(|(c, k)| format!("{s}.{} = {alias}.{}", quote(c), quote(k)))
            .collect();
        held.push(format!(
            "EXISTS (SELECT 1 FROM {sfrom} WHERE {} AND ({owned}))",
            join.join(" AND "),
        ));
    }
    held
}

/// `(a OR b ...)`, or `1 = 0` when there is nothing to hold.
fn or_all(conds: &[String]) -> String {
    if conds.is_empty() {
        "1 = 0".to_string()
    } else {
        format!("({})", conds.join(" OR "))
    }
}

/// Every row of a table that a subscriber holds, with its owner, for
/// snapshots: the filter on the subscriber's partition keys (@P1..@Pn) is
/// pushed into the query, comparing as `changed_rows` does
/// (`owner_text`); for membership and followers, as `held_conditions`
/// says. Shared tables have no filter. `refs` are read raw after the select
/// list, as in `changed_rows`.
pub fn snapshot_rows(
    h: &Holding<'_>,
    cols: &[SelectColumn],
    n_keys: usize,
    refs: &[String],
) -> String {
    let (select, held) = snapshot_select(h, cols, n_keys, refs);
    match held {
        None => select,
        Some(f) => format!("{select} WHERE {f}"),
    }
}

/// The select and the filter of `snapshot_rows`.
fn snapshot_select(
    h: &Holding<'_>,
    cols: &[SelectColumn],
    n_keys: usize,
    refs: &[String],
) -> (String, Option<String>) {
    let (from, owner_expr) = from_with_owner(h.table, h.owner);
    let params: Vec<String> = (1..=n_keys.max(1)).map(|i| format!("@P{i}")).collect();
    let held = match h.owner {
        Owner::Shared => Vec::new(),
        _ => held_conditions("t", h, owner_expr.as_deref(), &params.join(", ")),
    };
    let select = format!(
        "SELECT {o} AS __owner, {list}{refs} FROM {from}",
        o = owner_expr.as_deref().unwrap_or("NULL"),
        list = select_list("t", cols),
        refs = ref_list(refs),
    );
    (select, (!held.is_empty()).then(|| held.join(" OR ")))
}

/// One step of a snapshot: `snapshot_rows`, at most `limit` of them, in
/// primary-key order, after the last key the step before read (bound
/// from `@P{after}` on, one parameter per key column; none: from the
/// first row). Keyset pagination: each step seeks the key's index, so a
/// snapshot is many short reads, none holding a transaction open for the
/// whole table. Each bound key value is cast to its column's type, so
/// `>` compares as the column does (its collation) and agrees with the
/// ORDER BY.
pub fn snapshot_step(
    h: &Holding<'_>,
    cols: &[SelectColumn],
    n_keys: usize,
    refs: &[String],
    key: &[(String, ColumnType)],
    after: Option<usize>,
    limit: usize,
) -> String {
    let (select, held) = snapshot_select(h, cols, n_keys, refs);
    let mut filter: Vec<String> = held.into_iter().map(|f| format!("({f})")).collect();
    if let Some(first) = after {
        let mut ors = Vec::new();
        for i in 0..key.len() {
            let mut ands: Vec<String> = key[..i]
                .iter()
                .enumerate()
                .map(|(j, (c, ty))| format!("t.{} = CAST(@P{} AS {ty})", quote(c), first + j))
                .collect();
            let (c, ty) = &key[i];
            ands.push(format!("t.{} > CAST(@P{} AS {ty})", quote(c), first + i));
            ors.push(format!("({})", ands.join(" AND ")));
        }
        filter.push(format!("({})", ors.join(" OR ")));
    }
    let order: Vec<String> = key.iter().map(|(c, _)| format!("t.{}", quote(c))).collect();
    let select = select.replacen("SELECT ", &format!("SELECT TOP ({limit}) "), 1);
    format!(
        "{select}{} ORDER BY {}",
        if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filter.join(" AND "))
        },
        order.join(", ")
    )
}
