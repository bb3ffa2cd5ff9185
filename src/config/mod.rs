//! Configuration: every file ctferry reads (`ctferry.toml` at the region,
//! `apply.toml` at a caregiver) is read once here and validated into typed
//! values before any work starts; nothing else in the library parses a
//! configuration file or resolves a secret. docs/CONFIG.md documents every
//! field.
//!
//! - `publisher`: ctferry.toml (source, publisher, tables, subscribers);
//! - `caregiver`: apply.toml (copy database, keys, where packages arrive);
//! - `table`: table names and owner rules;
//! - `sftp`: an SFTP area's URL, login and pinned host key (both files);
//! - `connection`: a SQL Server connection string, checked for TLS (both files);
//! - `secret`: `*_env` / `*_file` secrets, resolved once, never shown;
//! - `error`: `ConfigError`, naming the file, the place and what to do.
//!
//! What can only be checked against the live source (tables, columns, keys,
//! foreign keys, change tracking) is checked by `ctferry check`
//! (`publisher::check`).

pub mod caregiver;
pub mod connection;
pub mod error;
pub mod publisher;
pub mod secret;
pub mod sftp;
pub mod table;

pub use caregiver::{load_apply, ApplyConfig};
pub use connection::{ConnectionString, Encryption, Trust};
pub use error::ConfigError;
pub use publisher::{
    load, load_with, parse_interval, parse_retention, Config, Deliver, DeliveryPolicy,
    PublisherConfig, SourceConfig, SubscriberConfig,
};
pub use secret::{passphrase, PassphraseError, Pins, Secret};
pub use sftp::{pin_host_key, sftp_target, Auth, BadUrl, HostTrust, RawSftp, SftpUrl, Target};
pub use table::{
    parse_path, parse_path_or_table, BadOwnerPath, Hop, Member, NewColumns, Owner, TableConfig,
    TableName,
};
