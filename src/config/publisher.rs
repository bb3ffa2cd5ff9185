//! `ctferry.toml`: read once, validated into typed values before any work
//! starts (docs/CONFIG.md documents every field).
//!
//! Relative paths are relative to the folder of the configuration file.
//! Secrets (the source password, the signing key's passphrase) are only ever
//! named here, by `*_env` (an environment variable) or `*_file`; they are
//! resolved when loading and never printed (`Secret`'s Debug hides them).
//!
//! What can only be checked against the live source (tables, columns, keys,
//! foreign keys, change tracking) is checked by `ctferry check` (`publisher::check`).

use super::connection::ConnectionString;
use super::error::ConfigError;
use super::secret::{resolve_secret, Pins, Secret};
use super::sftp::{sftp_target, RawSftp, Target};
use super::table::{parse_path_or_table, Hop, Member, Owner, TableConfig, TableName};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    snapshot_step_rows: Option<u64>,
    outbox_retention: Option<String>,
    delivery_concurrency: Option<usize>,
    delivery_timeout_seconds: Option<u64>,
    delivery_attempts: Option<u32>,
    delivery_backoff_seconds: Option<u64>,
    delivery_backoff_max_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawOwner {
    Word(String),
    Rule(RawRule),
}

/// `owner = { column = ... }`, `{ path = ... }`, `{ members = [...] }`, or
/// members with a column or a path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    column: Option<String>,
    path: Option<String>,
    members: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    owner: RawOwner,
    #[serde(default)]
    mask: BTreeMap<String, String>,
    #[serde(default)]
    exclude: Vec<String>,
    new_columns: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliver {
    folder: Option<PathBuf>,
    #[serde(flatten)]
    area: RawSftp,
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
    /// ADO-style connection string as tiberius reads it (without the
    /// password), validated for TLS (`config::connection`).
    pub connection: ConnectionString,
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
    /// Rows a snapshot reads per step (one short read at the source, one
    /// package part at most this big, one state commit).
    pub snapshot_step_rows: usize,
    /// How long a delivered package stays in the outbox (zero: removed
    /// right after delivery).
    pub outbox_retention: Duration,
    pub delivery: DeliveryPolicy,
}

/// How deliveries are run and retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Subscribers delivered at the same time.
    pub concurrency: usize,
    /// For connecting and for each SFTP operation.
    pub timeout: Duration,
    /// Tries per subscriber within one delivery round.
    pub attempts: u32,
    /// First wait between tries; doubles after each failure...
    pub backoff: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            concurrency: 4,
            timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_secs(10),
            backoff_max: Duration::from_secs(900),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after the `failures`-th consecutive failure.
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let f = failures.clamp(1, 31) - 1;
        self.backoff
            .checked_mul(1u32 << f.min(20))
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

#[derive(Debug, Clone)]
pub enum Deliver {
    Folder(PathBuf),
    Sftp(Target),
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
    /// Every partition key with the subscriber (its position in
    /// `subscribers`) that covers it.
    pub fn key_owners(&self) -> Vec<(String, usize)> {
        let mut v = Vec::new();
        for (i, s) in self.subscribers.iter().enumerate() {
            for k in &s.keys {
                v.push((k.clone(), i));
            }
        }
        v
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

/// Parses a retention such as `7d`, `12h` or `0` (remove right away).
pub fn parse_retention(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.trim_end_matches(['s', 'm', 'h', 'd']) == "0" {
        return Some(Duration::ZERO);
    }
    parse_interval(t)
}

/// Loads and validates `ctferry.toml`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, Pins::Required)
}

/// Loads `ctferry.toml` for a command that needs `pins` (see `Pins`).
pub fn load_with(path: &Path, pins: Pins) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let err = |at: &str, message: String| ConfigError {
        file: file.clone(),
        at: at.to_string(),
        message,
    };
    let text = crate::private::read_small_text(path)
        .map_err(|e| err("file", format!("cannot read it: {e}")))?;
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

    let connection = ConnectionString::parse(&raw.source.connection, &base)
        .map_err(|e| err("[source] connection", e.to_string()))?;
    let password = resolve_secret(
        &file,
        "[source]",
        &raw.source.password_env,
        &raw.source.password_file,
        &base,
        true,
        pins,
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
        pins,
    )?;
    let part_mb = p.part_size_mb.unwrap_or(64);
    if !(1..=4096).contains(&part_mb) {
        return Err(err(
            "[publisher] part_size_mb",
            format!("{part_mb} is outside 1..4096"),
        ));
    }
    let step_rows = p.snapshot_step_rows.unwrap_or(100_000);
    if !(1..=10_000_000).contains(&step_rows) {
        return Err(err(
            "[publisher] snapshot_step_rows",
            format!("{step_rows} is outside 1..10000000"),
        ));
    }
    let retention = match &p.outbox_retention {
        None => Duration::from_secs(7 * 86400),
        Some(t) => parse_retention(t).ok_or_else(|| {
            err(
                "[publisher] outbox_retention",
                format!("\"{t}\": write a number and s, m, h or d, e.g. \"7d\", or \"0\""),
            )
        })?,
    };
    let mut delivery = DeliveryPolicy::default();
    let range = |name: &str, v: u64, lo: u64, hi: u64| -> Result<u64, ConfigError> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(err(
                &format!("[publisher] {name}"),
                format!("{v} is outside {lo}..{hi}"),
            ))
        }
    };
    if let Some(v) = p.delivery_concurrency {
        delivery.concurrency = range("delivery_concurrency", v as u64, 1, 64)? as usize;
    }
    if let Some(v) = p.delivery_timeout_seconds {
        delivery.timeout = Duration::from_secs(range("delivery_timeout_seconds", v, 1, 3600)?);
    }
    if let Some(v) = p.delivery_attempts {
        delivery.attempts = range("delivery_attempts", v as u64, 1, 20)? as u32;
    }
    if let Some(v) = p.delivery_backoff_seconds {
        delivery.backoff = Duration::from_secs(range("delivery_backoff_seconds", v, 1, 86400)?);
    }
    if let Some(v) = p.delivery_backoff_max_seconds {
        delivery.backoff_max =
            Duration::from_secs(range("delivery_backoff_max_seconds", v, 1, 7 * 86400)?);
    }
    if delivery.backoff_max < delivery.backoff {
        return Err(err(
            "[publisher] delivery_backoff_max_seconds",
            "must not be below delivery_backoff_seconds".into(),
        ));
    }
    let publisher = PublisherConfig {
        id: p.id.clone(),
        signing_key: base.join(&p.signing_key),
        signing_passphrase,
        state: base.join(p.state.clone().unwrap_or_else(|| PathBuf::from("state"))),
        outbox: base.join(p.outbox.clone().unwrap_or_else(|| PathBuf::from("outbox"))),
        part_bytes: (part_mb as usize) << 20,
        snapshot_step_rows: step_rows as usize,
        outbox_retention: retention,
        delivery,
    };

    let mut tables: Vec<TableConfig> = Vec::new();
    // Tables whose owner path ends at a table: (index, hops).
    let mut ends_at_table: Vec<(usize, Vec<super::table::Hop>)> = Vec::new();
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
            RawOwner::Word(w) => return Err(err(&at, format!("owner = \"{w}\": write owner = \"shared\", owner = {{ column = \"...\" }}, owner = {{ path = \"...\" }} or owner = {{ members = [\"schema.Table(Column)\"] }}"))),
            RawOwner::Rule(r) => {
                let direct = match (&r.column, &r.path) {
                    (Some(_), Some(_)) => return Err(err(&at, "owner has both a column and a path: give one of them".into())),
                    (Some(c), None) if c.trim().is_empty() => return Err(err(&at, "owner column is empty".into())),
                    (Some(c), None) => Some(Owner::Column(c.trim().to_string())),
                    (None, Some(path)) => match parse_path_or_table(path)
                        .map_err(|m| err(&at, format!("owner path: {m}")))?
                    {
                        (hops, Some(column)) => Some(Owner::Path { hops, column }),
                        (_, None) if r.members.is_some() => return Err(err(&at, "an owner path that ends at a table cannot be combined with members: end it at an owner column, or name that table's rows as members".into())),
                        // Ends at a table: resolved below, once every table is known.
                        (hops, None) => {
                            ends_at_table.push((tables.len(), hops));
                            Some(Owner::Shared)
                        }
                    },
                    (None, None) => None,
                };
                match (&r.members, direct) {
                    (None, Some(d)) => d,
                    (None, None) => return Err(err(&at, "owner = {} names no rule: give a column, a path or members".into())),
                    (Some(list), _) if list.is_empty() => return Err(err(&at, "owner members is empty: name the tables whose rows make a caregiver a member, as \"schema.Table(Column)\"".into())),
                    (Some(list), d) => {
                        let mut members = Vec::new();
                        for m in list {
                            members.push(Member::parse(m).map_err(|e| err(&at, format!("owner members: {e}")))?);
                        }
                        Owner::Members { direct: d.map(Box::new), members }
                    }
                }
            }
        };
        let mut masks = std::collections::BTreeMap::new();
        for (c, lit) in &t.mask {
            let v = super::table::MaskValue::parse(lit)
                .map_err(|m| err(&at, format!("mask {c} = \"{lit}\": {m}")))?;
            masks.insert(c.clone(), v);
        }
        for c in &t.exclude {
            if c.trim().is_empty() {
                return Err(err(&at, "exclude names an empty column".into()));
            }
            if t.mask.keys().any(|m| m.eq_ignore_ascii_case(c)) {
                return Err(err(
                    &at,
                    format!("{c} is both masked and excluded: give it one of the two"),
                ));
            }
        }
        let new_columns = match t.new_columns.as_deref() {
            None | Some("hold") => super::table::NewColumns::Hold,
            Some("publish") => super::table::NewColumns::Publish,
            Some(other) => {
                return Err(err(
                    &at,
                    format!("new_columns = \"{other}\": give \"hold\" (a column added at the source waits for `ctferry schema accept`; the default) or \"publish\" (it travels at once)"),
                ))
            }
        };
        tables.push(TableConfig {
            name,
            owner,
            exclude: t.exclude.clone(),
            masks,
            new_columns,
        });
    }

    resolve_paths_to_tables(&mut tables, &ends_at_table).map_err(|(i, m)| {
        err(
            &format!("[[table]] {} ({})", i + 1, tables_name(&raw, i)),
            m,
        )
    })?;
    check_members(&tables).map_err(|(i, m)| {
        err(
            &format!("[[table]] {} ({})", i + 1, tables_name(&raw, i)),
            m,
        )
    })?;

    let mut subscribers: Vec<SubscriberConfig> = Vec::new();
    // Each subscriber's public key and delivery folder (None: SFTP).
    let mut places: Vec<(Place, Option<Place>)> = Vec::new();
    let mut claimed: HashMap<String, String> = HashMap::new();
    for (i, s) in raw.subscribers.iter().enumerate() {
        let at = format!("[[subscriber]] {} ({})", i + 1, s.hsa_id);
        // The id names the caregiver's outbox folder and appears in logs:
        // letters, digits, '-', '_' and '.', not "." or "..".
        let id_ok = !s.hsa_id.is_empty()
            && s.hsa_id.len() <= 64
            && s.hsa_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.hsa_id.chars().any(|c| c != '.');
        if !id_ok {
            return Err(err(
                &at,
                format!(
                    "hsa_id {:?} is not an HSA id: use letters, digits, '-', '_' and '.' (not only dots), at most 64",
                    s.hsa_id
                ),
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
            // SQL Server compares owner values in the column's collation,
            // usually case-insensitive and always ignoring trailing blanks:
            // keys that differ only so would match the same rows.
            let same = k.trim_end().to_lowercase();
            if let Some(other) = claimed.insert(same, s.hsa_id.clone()) {
                if other == s.hsa_id {
                    return Err(err(&at, format!("partition key {k} is listed twice (keys are compared as SQL Server compares them under a _CI_ collation: case and trailing blanks do not count)")));
                }
                return Err(err(&at, format!("partition key {k} is claimed by both {other} and {} (keys are compared as SQL Server compares them under a _CI_ collation: case and trailing blanks do not count); a row must have one owner", s.hsa_id)));
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
        let d = &s.deliver;
        let deliver = match (&d.folder, &d.area.sftp) {
            (Some(f), None) => {
                if d.area.has_login_or_pin() {
                    return Err(err(&at, "deliver = { folder = ... } takes no password, identity, host_key or known_hosts (those belong to sftp = ...)".into()));
                }
                Deliver::Folder(base.join(f))
            }
            (None, Some(_)) => Deliver::Sftp(sftp_target(
                &file,
                &format!("{at} deliver"),
                &d.area,
                &base,
                publisher.delivery.timeout,
                pins,
            )?),
            _ => return Err(err(&at, "deliver needs exactly one of folder = \"...\" or sftp = \"sftp://user@host:port/dir\"".into())),
        };
        // Two caregivers must never share where their packages go or the
        // key they are encrypted to: each would receive the other's rows.
        let public_key = base.join(&s.public_key);
        // The same file or folder: by its name without `.` and `..`, or
        // (when both exist) where links lead; each path resolved once (a
        // pair at a time, 300 caregivers cost 180,000 path resolutions).
        let key_place = Place::of(&public_key);
        let folder_place = match &deliver {
            Deliver::Folder(f) => Some(Place::of(f)),
            Deliver::Sftp(_) => None,
        };
        for (other, (other_key, other_folder)) in subscribers.iter().zip(&places) {
            if other_key.same(&key_place) {
                return Err(err(
                    &at,
                    format!(
                        "public_key {} is also {}'s: each caregiver has its own key",
                        public_key.display(),
                        other.hsa_id
                    ),
                ));
            }
            let shared = match (&other.deliver, &deliver) {
                (Deliver::Folder(_), Deliver::Folder(_)) => {
                    matches!((other_folder, &folder_place), (Some(a), Some(b)) if a.same(b))
                }
                (Deliver::Sftp(a), Deliver::Sftp(b)) => {
                    a.url.host.eq_ignore_ascii_case(&b.url.host)
                        && a.url.port == b.url.port
                        && a.url.user == b.url.user
                        && a.url.dir.trim_matches('/') == b.url.dir.trim_matches('/')
                }
                _ => false,
            };
            if shared {
                return Err(err(&at, format!("it delivers where {} does: each caregiver has its own delivery folder or SFTP area", other.hsa_id)));
            }
        }
        places.push((key_place, folder_place));
        subscribers.push(SubscriberConfig {
            hsa_id: s.hsa_id.clone(),
            name: s.name.clone().unwrap_or_else(|| s.hsa_id.clone()),
            keys: s.keys.clone(),
            public_key,
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
            connection,
            password,
        },
        publisher,
        tables,
        subscribers,
    })
}

/// A file or folder named in the configuration, to tell whether two
/// names are the same place: its name without `.` and `..`, and where
/// links lead when it exists.
struct Place {
    lexical: PathBuf,
    real: Option<PathBuf>,
}

impl Place {
    fn of(p: &Path) -> Place {
        let mut lexical = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    lexical.pop();
                }
                other => lexical.push(other),
            }
        }
        Place {
            lexical,
            real: p.canonicalize().ok(),
        }
    }

    fn same(&self, other: &Place) -> bool {
        self.lexical == other.lexical
            || matches!((&self.real, &other.real), (Some(a), Some(b)) if a == b)
    }
}

fn tables_name(raw: &RawConfig, i: usize) -> String {
    raw.tables
        .get(i)
        .map(|t| t.name.clone())
        .unwrap_or_default()
}

/// Gives each table whose owner path ends at a table (`PatientId ->
/// dbo.Patient(Id)`) the owner rule that follows it there: the path, then
/// that table's own rule (a column, a path, or shared), through as many
/// such tables as it takes. The table it ends at must be published; a
/// loop of such paths is refused and named. Errors are (table index,
/// message).
fn resolve_paths_to_tables(
    tables: &mut [TableConfig],
    ends: &[(usize, Vec<Hop>)],
) -> Result<(), (usize, String)> {
    let pending = |i: usize| ends.iter().find(|(j, _)| *j == i).map(|(_, h)| h);
    for (i, _) in ends {
        let mut hops: Vec<Hop> = Vec::new();
        let mut seen = vec![tables[*i].name.to_string()];
        let mut at = *i;
        let owner = loop {
            let Some(more) = pending(at) else {
                break match &tables[at].owner {
                    Owner::Shared => Owner::Shared,
                    Owner::Column(c) => Owner::Path {
                        hops: hops.clone(),
                        column: c.clone(),
                    },
                    Owner::Members { .. } => Owner::Follows {
                        hops: hops.clone(),
                        table: tables[at].name.clone(),
                    },
                    Owner::Follows { hops: h, table } => {
                        let mut all = hops.clone();
                        all.extend(h.iter().cloned());
                        Owner::Follows {
                            hops: all,
                            table: table.clone(),
                        }
                    }
                    Owner::Path { hops: h, column } => {
                        let mut all = hops.clone();
                        all.extend(h.iter().cloned());
                        Owner::Path {
                            hops: all,
                            column: column.clone(),
                        }
                    }
                };
            };
            hops.extend(more.iter().cloned());
            let target = &more.last().expect("a path has a hop").table;
            let Some(next) = tables.iter().position(|t| &t.name == target) else {
                return Err((
                    *i,
                    format!("owner path ends at {target}, which is not published, so it has no owner to follow: publish it, or end the path at its owner column (`... {target}(Key).Column`)"),
                ));
            };
            if seen.contains(&target.to_string()) {
                seen.push(target.to_string());
                return Err((
                    *i,
                    format!("owner paths that end at tables form a loop ({}): one of them must end at an owner column", seen.join(" -> ")),
                ));
            }
            seen.push(target.to_string());
            at = next;
        };
        tables[*i].owner = owner;
    }
    Ok(())
}

/// Every membership rule names another published table owned by a column
/// or a path (its rows' owners are what make a caregiver a member).
/// Errors are (table index, message).
fn check_members(tables: &[TableConfig]) -> Result<(), (usize, String)> {
    for (i, t) in tables.iter().enumerate() {
        for m in t.owner.members() {
            if m.table.is(&t.name) {
                return Err((i, format!("members names {m}, the table itself: a row cannot be a member through its own table")));
            }
            let Some(source) = tables.iter().find(|x| x.name.is(&m.table)) else {
                return Err((i, format!("members names {m}, but {} is not published: its rows' owners are what make a caregiver a member, so publish it (with a column or path owner)", m.table)));
            };
            if source.owner == Owner::Shared {
                return Err((i, format!("members names {m}, but {} is shared: every caregiver would be a member, so publish {} shared instead", m.table, t.name)));
            }
            if t.owner
                .members()
                .iter()
                .filter(|x| {
                    x.table.is(&m.table)
                        && x.columns.len() == m.columns.len()
                        && x.columns
                            .iter()
                            .zip(&m.columns)
                            .all(|(a, b)| a.eq_ignore_ascii_case(b))
                })
                .count()
                > 1
            {
                return Err((i, format!("members names {m} twice")));
            }
        }
    }
    membership_loop(tables)
}

/// The tables a membership (or follower) table's holders are computed
/// from: the member tables that are themselves owned by membership, and
/// the table a follower follows.
fn holder_sources<'a>(t: &'a TableConfig, tables: &'a [TableConfig]) -> Vec<usize> {
    let mut out = Vec::new();
    for m in t.owner.members() {
        if let Some(j) = tables.iter().position(|x| x.name.is(&m.table)) {
            if tables[j].owner.is_membership() {
                out.push(j);
            }
        }
    }
    if let Owner::Follows { table, .. } = &t.owner {
        out.extend(tables.iter().position(|x| x.name.is(table)));
    }
    out
}

/// Membership rules may go through membership (a patient by its
/// referrals, a referral by its receivers), but not in a loop: a row's
/// holders would depend on themselves. Names the loop.
fn membership_loop(tables: &[TableConfig]) -> Result<(), (usize, String)> {
    fn visit(
        i: usize,
        tables: &[TableConfig],
        path: &mut Vec<usize>,
        done: &mut Vec<bool>,
    ) -> Result<(), (usize, String)> {
        if done[i] {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|x| *x == i) {
            let names: Vec<String> = path[at..]
                .iter()
                .chain(std::iter::once(&i))
                .map(|x| tables[*x].name.to_string())
                .collect();
            return Err((i, format!("membership rules form a loop ({}): a row's holders would depend on themselves; give one of these tables a column or path owner", names.join(" -> "))));
        }
        path.push(i);
        for j in holder_sources(&tables[i], tables) {
            visit(j, tables, path, done)?;
        }
        path.pop();
        done[i] = true;
        Ok(())
    }
    let mut done = vec![false; tables.len()];
    for i in 0..tables.len() {
        visit(i, tables, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::table::parse_path;

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
    }
}
