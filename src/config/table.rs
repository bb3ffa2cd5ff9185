//! A published table as configured: its name, its owner rule (how a row maps
//! to the partition keys that decide which caregivers receive it) and its
//! masked columns.

use std::collections::BTreeMap;

/// One foreign-key hop of an owner path: `from_column` of the current table
/// references `table(to_column)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub from_column: String,
    pub table: TableName,
    pub to_column: String,
}

/// How a table's rows map to partition keys (docs/CONFIG.md, `[[table]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Every subscriber.
    Shared,
    /// The row's own column holds the partition key.
    Column(String),
    /// Foreign-key hops to a table whose column holds the partition key.
    Path { hops: Vec<Hop>, column: String },
}

/// `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

impl TableName {
    /// `dbo.T`, `[dbo].[T]` or `T` (schema dbo).
    pub fn parse(text: &str) -> Option<TableName> {
        let clean = |s: &str| {
            s.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        };
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [n] => ("dbo".to_string(), clean(n)),
            [s, n] => (clean(s), clean(n)),
            _ => return None,
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| {
                    c.is_alphanumeric() || c == '_' || c == ' ' || c == '#' || c == '@' || c == '$'
                })
        };
        if ok(&schema) && ok(&name) {
            Some(TableName { schema, name })
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
pub struct TableConfig {
    pub name: TableName,
    pub owner: Owner,
    /// column → T-SQL literal that replaces its value at the source.
    pub masks: BTreeMap<String, String>,
    /// Columns left out entirely: never selected, not in the copy.
    pub exclude: Vec<String>,
}

impl TableConfig {
    /// Whether column `c` is excluded.
    pub fn excludes(&self, c: &str) -> bool {
        self.exclude.iter().any(|x| x.eq_ignore_ascii_case(c))
    }
}

/// What is wrong with an owner path, in the operator's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOwnerPath(pub String);

/// Parses `BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId`.
pub fn parse_path(text: &str) -> Result<Owner, BadOwnerPath> {
    let segs: Vec<&str> = text.split("->").map(str::trim).collect();
    if segs.len() < 2 {
        return Err(BadOwnerPath(
            "a path needs at least one hop: `Column -> schema.Table(KeyColumn).OwnerColumn`".into(),
        ));
    }
    let mut from = segs[0].to_string();
    if from.is_empty() || from.contains(['(', '.', ')']) {
        return Err(BadOwnerPath(format!(
            "'{}' should be a column of the table itself",
            segs[0]
        )));
    }
    let mut hops = Vec::new();
    let mut column = String::new();
    for seg in &segs[1..] {
        // schema.Table(Key).Next
        let open = seg.find('(').ok_or_else(|| {
            BadOwnerPath(format!(
                "'{seg}' should read `schema.Table(KeyColumn).NextColumn`"
            ))
        })?;
        let close = seg
            .find(')')
            .ok_or_else(|| BadOwnerPath(format!("'{seg}' lacks ')'")))?;
        let table = TableName::parse(&seg[..open])
            .ok_or_else(|| BadOwnerPath(format!("'{}' is not a table name", &seg[..open])))?;
        let to = seg[open + 1..close].trim().to_string();
        let next = seg[close + 1..]
            .strip_prefix('.')
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        if to.is_empty() || next.is_empty() {
            return Err(BadOwnerPath(format!(
                "'{seg}' should read `schema.Table(KeyColumn).NextColumn`"
            )));
        }
        hops.push(Hop {
            from_column: from,
            table,
            to_column: to,
        });
        from = next.clone();
        column = next;
    }
    Ok(Owner::Path { hops, column })
}
