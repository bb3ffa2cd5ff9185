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
    /// Every subscriber that holds a row of another published table
    /// referencing this row (`members = ["dbo.Besok(PatientId)"]`), and
    /// the owner of `direct` (a `Column` or `Path`), if any: the union.
    Members {
        direct: Option<Box<Owner>>,
        members: Vec<Member>,
    },
    /// Foreign-key hops to a row of membership table `table` (the last
    /// hop's `to_column` is its key): the row is in every copy that holds
    /// that row (`path = "PatientId -> dbo.Patient(Id)"` when `dbo.Patient`
    /// is owned by members).
    Follows { hops: Vec<Hop>, table: TableName },
}

/// One membership rule: the rows of `table` whose `columns` (a foreign key)
/// reference the row's key make their owners members of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub table: TableName,
    pub columns: Vec<String>,
}

impl std::fmt::Display for Member {
    /// As written: `dbo.Besok(PatientId)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.table, self.columns.join(", "))
    }
}

impl Member {
    /// Parses `dbo.Besok(PatientId)` or `dbo.T(C1, C2)`.
    pub fn parse(text: &str) -> Result<Member, String> {
        let what = "a member is written `schema.Table(Column)` (the column of that table that references this table's key; `schema.Table(C1, C2)` for a composite key)";
        let t = text.trim();
        let (Some(open), true) = (t.find('('), t.ends_with(')')) else {
            return Err(format!("\"{t}\": {what}"));
        };
        let table = TableName::parse(&t[..open])
            .ok_or_else(|| format!("\"{}\" is not a table name; {what}", &t[..open]))?;
        let columns: Vec<String> = t[open + 1..t.len() - 1]
            .split(',')
            .map(|c| {
                c.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            })
            .collect();
        if columns
            .iter()
            .any(|c| c.is_empty() || c.contains(['(', ')', '.']))
        {
            return Err(format!("\"{t}\": {what}"));
        }
        Ok(Member { table, columns })
    }

    fn same_as(&self, other: &Member) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        eq(&self.table.schema, &other.table.schema)
            && eq(&self.table.name, &other.table.name)
            && self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| eq(a, b))
    }
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
    /// Whether both name the same table (as SQL Server compares
    /// identifiers, without regard to case).
    pub fn is(&self, other: &TableName) -> bool {
        self.schema.eq_ignore_ascii_case(&other.schema)
            && self.name.eq_ignore_ascii_case(&other.name)
    }

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
    /// column → the value that replaces it at the source.
    pub masks: BTreeMap<String, MaskValue>,
    /// Columns left out entirely: never selected, not in the copy.
    pub exclude: Vec<String>,
    /// What happens to a column added at the source.
    pub new_columns: NewColumns,
}

/// What happens to a column added at the source of a published table
/// (`new_columns = "hold"` or `"publish"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewColumns {
    /// Left out of every package until someone decides: `ctferry schema
    /// accept`, or the column listed under `mask` or `exclude`. It could
    /// hold something that must be masked.
    #[default]
    Hold,
    /// Published at once (added at every copy).
    Publish,
}

impl TableConfig {
    /// Whether column `c` is excluded.
    pub fn excludes(&self, c: &str) -> bool {
        self.exclude.iter().any(|x| x.eq_ignore_ascii_case(c))
    }
}

/// A mask: the value that replaces a column's value at the source. It is a
/// value, never SQL: the configuration writes it as a T-SQL literal
/// (`NULL`, `'text'` or `N'text'` with `''` for a quote, a number such as
/// `0` or `-1.5`, `0x` and hex digits), which is parsed here, and ctferry
/// writes the literal it sends itself (`mssql::sql::source::mask_literal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskValue {
    Null,
    Text(String),
    /// An optional minus sign, digits, optionally a point and digits.
    Number(String),
    Binary(Vec<u8>),
}

impl MaskValue {
    /// As the configuration writes it: `NULL`, `N'text'` (quotes doubled),
    /// a number, `0x` and hex digits.
    pub fn text(&self) -> String {
        match self {
            MaskValue::Null => "NULL".into(),
            MaskValue::Text(t) => format!("N'{}'", t.replace('\'', "''")),
            MaskValue::Number(n) => n.clone(),
            MaskValue::Binary(b) => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02X}")).collect::<String>()
            ),
        }
    }

    /// Parses a mask as the configuration writes it, or says what a mask
    /// may be.
    pub fn parse(text: &str) -> Result<MaskValue, String> {
        let t = text.trim();
        let what = "a mask is a value: NULL, 'text' or N'text' (a quote doubled inside), a number such as 0 or -1.5, or 0x and hex digits";
        if t.eq_ignore_ascii_case("NULL") {
            return Ok(MaskValue::Null);
        }
        let quoted = t
            .strip_prefix("N'")
            .or_else(|| t.strip_prefix("n'"))
            .or_else(|| t.strip_prefix('\''));
        if let Some(rest) = quoted {
            let Some(body) = rest.strip_suffix('\'') else {
                return Err(format!("\"{t}\" does not end with a quote; {what}"));
            };
            // Inside, a quote only as two quotes.
            if body.replace("''", "").contains('\'') {
                return Err(format!("\"{t}\" has a lone quote inside; {what}"));
            }
            return Ok(MaskValue::Text(body.replace("''", "'")));
        }
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            if hex.len() % 2 == 0 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
                    .collect();
                return Ok(MaskValue::Binary(bytes));
            }
            return Err(format!(
                "\"{t}\" is not an even number of hex digits after 0x; {what}"
            ));
        }
        let digits = t.strip_prefix('-').unwrap_or(t);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let is_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if !int.is_empty()
            && is_digits(int)
            && is_digits(frac)
            && (frac.is_empty() != digits.contains('.'))
        {
            return Ok(MaskValue::Number(t.to_string()));
        }
        Err(format!("\"{t}\" is not a value; {what}"))
    }
}

impl std::fmt::Display for MaskValue {
    /// As the configuration writes it (for messages).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaskValue::Null => write!(f, "NULL"),
            MaskValue::Text(s) => write!(f, "N'{}'", s.replace('\'', "''")),
            MaskValue::Number(n) => write!(f, "{n}"),
            MaskValue::Binary(b) => {
                write!(f, "0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02X}"))
            }
        }
    }
}

/// What is wrong with an owner path, in the operator's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOwnerPath(pub String);

impl std::fmt::Display for Owner {
    /// As written in `[[table]]`: `shared`, `column = "C"`,
    /// `path = "C1 -> s.T2(K2).C2"`, or `members = ["s.T(C)"]` (after the
    /// direct rule, if any).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Members { direct, members } => {
                if let Some(d) = direct {
                    write!(f, "{d}, ")?;
                }
                let m: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
                write!(f, "members = [{}]", m.join(", "))
            }
            Owner::Follows { hops, .. } => {
                write!(f, "path = \"")?;
                for (i, h) in hops.iter().enumerate() {
                    if i > 0 {
                        write!(f, ".")?;
                    }
                    write!(f, "{} -> {}({})", h.from_column, h.table, h.to_column)?;
                }
                write!(f, "\"")
            }
            Owner::Shared => write!(f, "shared"),
            Owner::Column(c) => write!(f, "column = \"{c}\""),
            Owner::Path { hops, column } => {
                write!(f, "path = \"")?;
                for (i, h) in hops.iter().enumerate() {
                    if i > 0 {
                        write!(f, ".")?;
                    }
                    write!(f, "{} -> {}({})", h.from_column, h.table, h.to_column)?;
                }
                write!(f, ".{column}\"")
            }
        }
    }
}

impl Owner {
    /// The single-owner part of the rule: the column or path itself, or a
    /// membership rule's direct rule; `None` for shared tables and
    /// membership without a direct rule.
    pub fn direct(&self) -> Option<&Owner> {
        match self {
            Owner::Shared | Owner::Follows { .. } => None,
            Owner::Column(_) | Owner::Path { .. } => Some(self),
            Owner::Members { direct, .. } => direct.as_deref(),
        }
    }

    /// Whether rows have a set of holders (`Members`, `Follows`) rather
    /// than one owner.
    pub fn is_membership(&self) -> bool {
        matches!(self, Owner::Members { .. } | Owner::Follows { .. })
    }

    /// The membership rules (empty unless `Members`).
    pub fn members(&self) -> &[Member] {
        match self {
            Owner::Members { members, .. } => members,
            _ => &[],
        }
    }

    /// Whether two rules name the same owner (names compared as SQL Server
    /// compares identifiers, without regard to case).
    pub fn same_as(&self, other: &Owner) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        match (self, other) {
            (Owner::Shared, Owner::Shared) => true,
            (Owner::Column(a), Owner::Column(b)) => eq(a, b),
            (
                Owner::Path {
                    hops: h1,
                    column: c1,
                },
                Owner::Path {
                    hops: h2,
                    column: c2,
                },
            ) => {
                eq(c1, c2)
                    && h1.len() == h2.len()
                    && h1.iter().zip(h2).all(|(a, b)| {
                        eq(&a.from_column, &b.from_column)
                            && eq(&a.to_column, &b.to_column)
                            && eq(&a.table.schema, &b.table.schema)
                            && eq(&a.table.name, &b.table.name)
                    })
            }
            (Owner::Follows { hops: h1, .. }, Owner::Follows { hops: h2, .. }) => {
                h1.len() == h2.len()
                    && h1.iter().zip(h2).all(|(a, b)| {
                        eq(&a.from_column, &b.from_column)
                            && eq(&a.to_column, &b.to_column)
                            && eq(&a.table.schema, &b.table.schema)
                            && eq(&a.table.name, &b.table.name)
                    })
            }
            (
                Owner::Members {
                    direct: d1,
                    members: m1,
                },
                Owner::Members {
                    direct: d2,
                    members: m2,
                },
            ) => {
                let direct_same = match (d1, d2) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.same_as(b),
                    _ => false,
                };
                direct_same
                    && m1.len() == m2.len()
                    && m1.iter().all(|a| m2.iter().any(|b| a.same_as(b)))
            }
            _ => false,
        }
    }
}

/// Parses `BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId`.
pub fn parse_path(text: &str) -> Result<Owner, BadOwnerPath> {
    match parse_path_or_table(text)? {
        (hops, Some(column)) => Ok(Owner::Path { hops, column }),
        (hops, None) => Err(BadOwnerPath(format!(
            "'{text}' ends at the table {} without naming its owner column",
            hops.last().map(|h| h.table.to_string()).unwrap_or_default()
        ))),
    }
}

/// Parses a path that ends at an owner column (`... (Id).HsaId`) or at a
/// table (`PatientId -> dbo.Patient(Id)`: the row's owners are that row's
/// owners). Returns the hops and the column, if the path names one.
pub fn parse_path_or_table(text: &str) -> Result<(Vec<Hop>, Option<String>), BadOwnerPath> {
    let segs: Vec<&str> = text.split("->").map(str::trim).collect();
    if segs.len() < 2 {
        return Err(BadOwnerPath(
            "a path needs at least one hop: `Column -> schema.Table(KeyColumn).OwnerColumn`, or `Column -> schema.Table(KeyColumn)` to follow that table's owner".into(),
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
    let mut column = None;
    let last = segs.len() - 1;
    for (i, seg) in segs[1..].iter().enumerate() {
        // schema.Table(Key).Next, or schema.Table(Key) at the end
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
        let rest = seg[close + 1..].trim();
        let next = rest
            .strip_prefix('.')
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        let ends_at_table = i + 1 == last && rest.is_empty();
        if to.is_empty() || (next.is_empty() && !ends_at_table) {
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
        column = (!ends_at_table).then_some(next);
    }
    Ok((hops, column))
}

#[cfg(test)]
mod mask_tests {
    use super::MaskValue;

    #[test]
    fn a_mask_is_a_value_never_sql() {
        assert_eq!(MaskValue::parse(" null ").unwrap(), MaskValue::Null);
        assert_eq!(
            MaskValue::parse("N'O''Brien'").unwrap(),
            MaskValue::Text("O'Brien".into())
        );
        assert_eq!(
            MaskValue::parse("'x'").unwrap(),
            MaskValue::Text("x".into())
        );
        assert_eq!(
            MaskValue::parse("-1.50").unwrap(),
            MaskValue::Number("-1.50".into())
        );
        assert_eq!(
            MaskValue::parse("0x00ff").unwrap(),
            MaskValue::Binary(vec![0, 255])
        );
        for bad in [
            "NULL AS varbinary(64)) AS v; DROP TABLE dbo.Victim; SELECT CAST(NULL",
            "t.Epost",
            "N'a' + t.Epost",
            "N'a'' ; DROP TABLE x; --'",
            "'unterminated",
            "1e5",
            "0x0",
            "--",
            "GETDATE()",
        ] {
            let m = MaskValue::parse(bad);
            // A doubled quote is text, not an escape: the body stays one value.
            if let Ok(MaskValue::Text(t)) = &m {
                assert!(t.contains("DROP") && bad.starts_with("N'a''"), "{bad}");
                continue;
            }
            assert!(m.is_err(), "{bad} was taken for a value: {m:?}");
        }
        assert_eq!(
            MaskValue::parse("N'O''Brien'").unwrap().to_string(),
            "N'O''Brien'"
        );
    }
}

#[cfg(test)]
mod owner_tests {
    use super::{parse_path, Owner};

    #[test]
    fn an_owner_rule_prints_as_it_is_written() {
        let text = "BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId";
        let p = parse_path(text).unwrap();
        assert_eq!(p.to_string(), format!("path = \"{text}\""));
        assert!(p.same_as(&parse_path(&text.to_lowercase()).unwrap()));
        assert!(!p.same_as(&parse_path("BesokId -> dbo.Besok(Id).HsaId").unwrap()));
        assert_eq!(
            Owner::Column("HsaId".into()).to_string(),
            "column = \"HsaId\""
        );
        assert_eq!(Owner::Shared.to_string(), "shared");
    }
}
