//! The command-line contract: every subcommand, flag and default, as clap
//! definitions. Choices are `ValueEnum`s so a wrong value is a usage error
//! (exit code 2) naming the accepted ones. Nothing here does any work.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ctferry", version, about = "Per-caregiver, signed and encrypted increments of a SQL Server database.", long_about = None)]
pub struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate ctferry.toml against the live source database.
    Check {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// Print the problems and the references between published tables
        /// as one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// One cycle: read changes, stage, package and deliver for every subscriber with work.
    Once {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
    },
    /// Cycles forever, packaging each subscriber at its interval.
    Run {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// Time between cycles: seconds, or with a unit as in the
        /// configuration (`30s`, `5m`, `1h`).
        #[arg(long, default_value = "60", value_parser = parse_every)]
        every: u64,
        /// Serve Prometheus metrics (/metrics) and a health check (/health,
        /// 503 when a caregiver is stale) on this address, e.g.
        /// 127.0.0.1:9464.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Start a new epoch with a fresh snapshot for one caregiver, or all (then runs one cycle).
    Snapshot {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long, required_unless_present = "all")]
        subscriber: Option<String>,
        /// Every caregiver; also accepts changed columns of published tables.
        #[arg(long, conflicts_with = "subscriber")]
        all: bool,
    },
    /// Decide on changes of a published table's columns (`schema accept`).
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Export the audit log: every package and snapshot disclosed, to whom, when.
    Audit {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// Only this caregiver (HSA id).
        #[arg(long)]
        subscriber: Option<String>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t = AuditFormat::Csv)]
        format: AuditFormat,
        /// Check the audit log's hash chain instead, and name the first
        /// broken line (exit code 1).
        #[arg(long, conflicts_with_all = ["subscriber", "since"])]
        verify: bool,
    },
    /// Per caregiver: epoch, sequence, staged changes, last package, delivery;
    /// exit code 1 when a caregiver is stale.
    Status {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// At the caregiver: verify and apply every new package, in order, to the local copy.
    Apply {
        #[arg(short = 'c', long = "config", default_value = "apply.toml")]
        config: PathBuf,
        /// Keep polling the folder for new packages.
        #[arg(long)]
        watch: bool,
        /// Time between polls with --watch: seconds, or `30s`, `5m`, `1h`.
        #[arg(long, default_value = "60", value_parser = parse_every)]
        every: u64,
        /// Show the copy's state instead of applying.
        #[arg(long)]
        status: bool,
    },
    /// Show the whole job end to end on an embedded simulator, with checks.
    #[cfg(feature = "demo")]
    Demo {
        /// Where the demo writes its working setup (configs, keys, state,
        /// outbox, deliveries, databases). Replaced if a previous demo made it.
        #[arg(long, default_value = "ctferry-demo")]
        dir: PathBuf,
        /// `auto`: SFTP through a private local sshd when OpenSSH's sshd is
        /// installed, local folders otherwise.
        #[arg(long, value_enum, default_value_t = DemoDelivery::Auto)]
        delivery: DemoDelivery,
    },
    /// SFTP delivery areas.
    Sftp {
        #[command(subcommand)]
        command: SftpCommand,
    },
    /// Manage OpenPGP keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Verify a package completely, then show its manifest and first rows.
    Inspect {
        /// The package file (*.ctf.pgp).
        file: PathBuf,
        /// The caregiver's armored secret key that the package is encrypted to.
        #[arg(long)]
        key: PathBuf,
        /// The region's armored public key(s) whose signature is accepted.
        #[arg(long = "signer", required = true)]
        signers: Vec<PathBuf>,
        /// How many rows to show.
        #[arg(long, default_value_t = 10)]
        rows: usize,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Environment variable holding the secret key's passphrase
        /// (default: CTFERRY_KEY_PASSPHRASE when it is set).
        #[arg(long)]
        passphrase_env: Option<String>,
        /// File holding the secret key's passphrase (first line).
        #[arg(long, conflicts_with = "passphrase_env")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum SchemaCommand {
    /// Publish columns held back (new at the source of a published table,
    /// `new_columns = "hold"`): the next cycle adds them at every copy.
    /// Check first that they need no mask.
    Accept {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// The table (`schema.table`).
        #[arg(long)]
        table: String,
        /// A column to accept (repeatable); all the table's held columns when left out.
        #[arg(long = "column")]
        columns: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum SftpCommand {
    /// Connect to a caregiver's SFTP server, show its host key and pin it in
    /// the configuration once you confirm it (compare it with the fingerprint
    /// the caregiver gave you).
    Trust {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long)]
        subscriber: String,
        /// Pin without asking (for scripts that checked the fingerprint otherwise).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a key pair: PREFIX.pub.asc and PREFIX.sec.asc (Ed25519 + Cv25519).
    Generate {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Path prefix of the two files written.
        #[arg(long)]
        out: PathBuf,
        /// Protect the secret key with the passphrase in this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for collectors.
    Json,
}

/// `ctferry audit --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Csv,
    Json,
}

/// `ctferry demo --delivery`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoDelivery {
    /// SFTP through a private local sshd when OpenSSH's sshd is installed,
    /// local folders otherwise.
    Auto,
    Sftp,
    Folder,
}

impl Command {
    /// Whether this is `ctferry demo` (which tells its own story on stdout).
    pub fn is_demo(&self) -> bool {
        #[cfg(feature = "demo")]
        if matches!(self, Command::Demo { .. }) {
            return true;
        }
        false
    }
}

/// `--every`: a number of seconds, or an interval as the configuration
/// writes one (`30s`, `5m`, `1h`, `1d`).
fn parse_every(text: &str) -> Result<u64, String> {
    if let Ok(n) = text.trim().parse::<u64>() {
        if n > 0 {
            return Ok(n);
        }
    }
    ctferry::config::publisher::parse_interval(text)
        .map(|d| d.as_secs())
        .ok_or_else(|| format!("\"{text}\": write seconds (60) or a number and s, m, h or d (5m)"))
}
