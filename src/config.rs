//! `ctferry.toml`: read once, validated into typed values before any work
//! starts (docs/CONFIG.md documents every field).
//!
//! Relative paths are relative to the folder of the configuration file.
//! Secrets (the source password, the signing key's passphrase) are only ever
//! named here, by `*_env` (an environment variable) or `*_file`; they are
//! resolved when loading and never printed (`Secret`'s Debug hides them).
//!
//! What can only be checked against the live source (tables, columns, keys,
//! foreign keys, change tracking) is checked by `ctferry check` (check.rs).

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret value; Debug and Display never show it.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration error: the file, where in it, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub at: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    source: RawSource,
    publisher: RawPublisher,
    #[serde(default, rename = "table")]
    tables: Vec<RawTable>,
    #[serde(default, rename = "subscriber")]
    subscribers: Vec<RawSubscriber>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    connection: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublisher {
    id: String,
    signing_key: PathBuf,
    signing_passphrase_env: Option<String>,
    signing_passphrase_file: Option<PathBuf>,
    state: Option<PathBuf>,
    outbox: Option<PathBuf>,
    part_size_mb: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawOwner {
    Word(String),
    Column { column: String },
    Path { path: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    owner: RawOwner,
    #[serde(default)]
    mask: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliver {
    folder: Option<PathBuf>,
    sftp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    hsa_id: String,
    name: Option<String>,
    keys: Vec<String>,
    public_key: PathBuf,
    interval: Option<String>,
    deliver: RawDeliver,
}

/// Where the source database is.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// ADO-style connection string as tiberius reads it (without the password).
    pub connection: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub id: String,
    pub signing_key: PathBuf,
    pub signing_passphrase: Option<Secret>,
    pub state: PathBuf,
    pub outbox: PathBuf,
    pub part_bytes: usize,
}

/// One foreign-key hop of an owner path: `from_column` of the current table
/// references `table(to_column)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub from_column: String,
    pub table: TableName,
    pub to_column: String,
}

/// How a table's rows map to partition keys (DESIGN.md §4).
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliver {
    Folder(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    pub hsa_id: String,
    pub name: String,
    /// Partition keys (care units) it covers.
    pub keys: Vec<String>,
    pub public_key: PathBuf,
    pub interval: Duration,
    pub deliver: Deliver,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub source: SourceConfig,
    pub publisher: PublisherConfig,
    pub tables: Vec<TableConfig>,
    pub subscribers: Vec<SubscriberConfig>,
}

impl Config {
    /// The subscriber that covers partition key `key`, if any.
    pub fn key_owners(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (i, s) in self.subscribers.iter().enumerate() {
            for k in &s.keys {
                m.insert(k.clone(), i);
            }
        }
        m
    }

    pub fn subscriber(&self, hsa: &str) -> Option<&SubscriberConfig> {
        self.subscribers.iter().find(|s| s.hsa_id == hsa)
    }
}

/// Parses `15m`, `30s`, `2h`, `1d`.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    if secs == 0 {
        None
    } else {
        Some(Duration::from_secs(secs))
    }
}

/// Parses `BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId`.
pub fn parse_path(text: &str) -> Result<Owner, String> {
    let segs: Vec<&str> = text.split("->").map(str::trim).collect();
    if segs.len() < 2 {
        return Err(
            "a path needs at least one hop: `Column -> schema.Table(KeyColumn).OwnerColumn`".into(),
        );
    }
    let mut from = segs[0].to_string();
    if from.is_empty() || from.contains(['(', '.', ')']) {
        return Err(format!(
            "'{}' should be a column of the table itself",
            segs[0]
        ));
    }
    let mut hops = Vec::new();
    let mut column = String::new();
    for seg in &segs[1..] {
        // schema.Table(Key).Next
        let open = seg
            .find('(')
            .ok_or_else(|| format!("'{seg}' should read `schema.Table(KeyColumn).NextColumn`"))?;
        let close = seg.find(')').ok_or_else(|| format!("'{seg}' lacks ')'"))?;
        let table = TableName::parse(&seg[..open])
            .ok_or_else(|| format!("'{}' is not a table name", &seg[..open]))?;
        let to = seg[open + 1..close].trim().to_string();
        let next = seg[close + 1..]
            .strip_prefix('.')
            .map(str::trim)
            .unwrap_or("")
            .to_string();
        if to.is_empty() || next.is_empty() {
            return Err(format!(
                "'{seg}' should read `schema.Table(KeyColumn).NextColumn`"
            ));
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

fn resolve_secret(
    file: &str,
    at: &str,
    env: &Option<String>,
    path: &Option<PathBuf>,
    base: &Path,
    required: bool,
) -> Result<Option<Secret>, ConfigError> {
    let err = |message: String| ConfigError {
        file: file.to_string(),
        at: at.to_string(),
        message,
    };
    match (env, path) {
        (Some(_), Some(_)) => Err(err("give either *_env or *_file, not both".into())),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) => Ok(Some(Secret(v))),
            Err(_) => Err(err(format!("environment variable {var} is not set; export it before running ctferry"))),
        },
        (None, Some(p)) => {
            let p = base.join(p);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| err(format!("cannot read {}: {e}", p.display())))?;
            Ok(Some(Secret(text.lines().next().unwrap_or("").to_string())))
        }
        (None, None) if required => Err(err("the password is missing: set password_env = \"VAR\" or password_file = \"path\" (never the password itself)".into())),
        (None, None) => Ok(None),
    }
}

/// Loads and validates `ctferry.toml`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let err = |at: &str, message: String| ConfigError {
        file: file.clone(),
        at: at.to_string(),
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| err("file", format!("cannot read it: {e}")))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_string();
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!("line {line}")
            })
            .unwrap_or_else(|| "syntax".into());
        err(&at, msg)
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };

    if raw
        .source
        .connection
        .to_ascii_lowercase()
        .contains("password=")
        || raw.source.connection.to_ascii_lowercase().contains("pwd=")
    {
        return Err(err("[source] connection", "the connection string must not contain the password; use password_env or password_file".into()));
    }
    let password = resolve_secret(
        &file,
        "[source]",
        &raw.source.password_env,
        &raw.source.password_file,
        &base,
        true,
    )?
    .unwrap_or_default();
    let p = &raw.publisher;
    if p.id.trim().is_empty() {
        return Err(err("[publisher] id", "must not be empty".into()));
    }
    let signing_passphrase = resolve_secret(
        &file,
        "[publisher]",
        &p.signing_passphrase_env,
        &p.signing_passphrase_file,
        &base,
        false,
    )?;
    let part_mb = p.part_size_mb.unwrap_or(64);
    if !(1..=4096).contains(&part_mb) {
        return Err(err(
            "[publisher] part_size_mb",
            format!("{part_mb} is outside 1..4096"),
        ));
    }
    let publisher = PublisherConfig {
        id: p.id.clone(),
        signing_key: base.join(&p.signing_key),
        signing_passphrase,
        state: base.join(p.state.clone().unwrap_or_else(|| PathBuf::from("state"))),
        outbox: base.join(p.outbox.clone().unwrap_or_else(|| PathBuf::from("outbox"))),
        part_bytes: (part_mb as usize) << 20,
    };

    let mut tables: Vec<TableConfig> = Vec::new();
    for (i, t) in raw.tables.iter().enumerate() {
        let at = format!("[[table]] {} ({})", i + 1, t.name);
        let name = TableName::parse(&t.name).ok_or_else(|| {
            err(
                &at,
                format!("'{}' is not a table name (write schema.Table)", t.name),
            )
        })?;
        if tables.iter().any(|x| x.name == name) {
            return Err(err(&at, "this table is listed twice".into()));
        }
        let owner = match &t.owner {
            RawOwner::Word(w) if w == "shared" => Owner::Shared,
            RawOwner::Word(w) => return Err(err(&at, format!("owner = \"{w}\": write owner = \"shared\", owner = {{ column = \"...\" }} or owner = {{ path = \"...\" }}"))),
            RawOwner::Column { column } if !column.trim().is_empty() => Owner::Column(column.trim().to_string()),
            RawOwner::Column { .. } => return Err(err(&at, "owner column is empty".into())),
            RawOwner::Path { path } => parse_path(path).map_err(|m| err(&at, format!("owner path: {m}")))?,
        };
        for (c, lit) in &t.mask {
            if lit.trim().is_empty() {
                return Err(err(
                    &at,
                    format!(
                        "mask for {c} is empty: give a T-SQL literal such as \"NULL\" or \"N'x'\""
                    ),
                ));
            }
        }
        tables.push(TableConfig {
            name,
            owner,
            masks: t.mask.clone(),
        });
    }

    let mut subscribers: Vec<SubscriberConfig> = Vec::new();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for (i, s) in raw.subscribers.iter().enumerate() {
        let at = format!("[[subscriber]] {} ({})", i + 1, s.hsa_id);
        if s.hsa_id.trim().is_empty() || s.hsa_id.contains(['/', '\\', ' ']) {
            return Err(err(
                &at,
                "hsa_id must be a non-empty HSA id without spaces or slashes".into(),
            ));
        }
        if subscribers.iter().any(|x| x.hsa_id == s.hsa_id) {
            return Err(err(&at, "this hsa_id is listed twice".into()));
        }
        if s.keys.is_empty() {
            return Err(err(
                &at,
                "keys is empty: list the partition keys (care units) this caregiver covers".into(),
            ));
        }
        for k in &s.keys {
            if let Some(other) = claimed.insert(k.clone(), s.hsa_id.clone()) {
                return Err(err(&at, format!("partition key {k} is claimed by both {other} and {}; a row must have one owner", s.hsa_id)));
            }
        }
        let interval = match &s.interval {
            None => Duration::from_secs(15 * 60),
            Some(t) => parse_interval(t).ok_or_else(|| {
                err(
                    &at,
                    format!("interval \"{t}\": write a number and s, m, h or d, e.g. \"15m\""),
                )
            })?,
        };
        let deliver = match (&s.deliver.folder, &s.deliver.sftp) {
            (Some(f), None) => Deliver::Folder(base.join(f)),
            (None, Some(_)) => return Err(err(&at, "deliver = { sftp = ... } is not available in this version; use deliver = { folder = \"...\" }".into())),
            _ => return Err(err(&at, "deliver needs exactly one of folder = \"...\" or sftp = \"...\"".into())),
        };
        subscribers.push(SubscriberConfig {
            hsa_id: s.hsa_id.clone(),
            name: s.name.clone().unwrap_or_else(|| s.hsa_id.clone()),
            keys: s.keys.clone(),
            public_key: base.join(&s.public_key),
            interval,
            deliver,
        });
    }
    if tables.is_empty() {
        return Err(err("[[table]]", "no tables are published".into()));
    }
    Ok(Config {
        file: path.to_path_buf(),
        source: SourceConfig {
            connection: raw.source.connection.clone(),
            password,
        },
        publisher,
        tables,
        subscribers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_intervals_and_names() {
        let o =
            parse_path("BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).HsaId").unwrap();
        let Owner::Path { hops, column } = o else {
            panic!()
        };
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[0].from_column, "BesokId");
        assert_eq!(hops[0].table.to_string(), "dbo.Besok");
        assert_eq!(hops[1].from_column, "VardenhetId");
        assert_eq!(hops[1].to_column, "Id");
        assert_eq!(column, "HsaId");
        assert!(parse_path("BesokId").is_err());
        assert!(parse_path("BesokId -> dbo.Besok.VardenhetId").is_err());
        assert_eq!(parse_interval("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_interval("0s"), None);
        assert_eq!(parse_interval("5 minutes"), None);
        assert_eq!(TableName::parse("[dbo].[T]").unwrap().to_string(), "dbo.T");
        assert_eq!(TableName::parse("T").unwrap().to_string(), "dbo.T");
        assert!(TableName::parse("a.b.c").is_none());
        assert_eq!(format!("{:?}", Secret("pw".into())), "Secret(***)");
    }
}
