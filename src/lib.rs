//! ctferry: moves a SQL Server database's changes, split per caregiver, to each
//! caregiver's own copy as signed and encrypted packages.
//!
//! # Layout
//!
//! The data path and its invariants are drawn in docs/ARCHITECTURE.md. The
//! library is one folder per concern; an arrow points from a module to what
//! it may use, never back:
//!
//! - `config` — every configuration file, validated into typed values; the
//!   only place that reads a secret. Uses `format::crypto` (to load keys).
//! - `format` — the package format (CBOR, typed values, OpenPGP, package
//!   reader and writer, inspect). Knows nothing of SQL Server or state.
//! - `mssql` — the tiberius wrapper both sides use, and every T-SQL
//!   statement ctferry sends. Never decides anything about routing.
//! - `sftp` — the SFTP transport (pinned host key, `.part` + rename upload,
//!   list, download), used by delivery and by apply's pick-up.
//! - `publisher` — the region's cycle: read, route, stage, package, deliver;
//!   `check`, `status` and `audit` read its state; `audit_log` and
//!   `monitor` are the files beside the state that others read while
//!   `ctferry run` holds it (the hash-chained audit log, the status).
//! - `caregiver` — `ctferry apply`: fetch, verify, apply in order in one
//!   transaction per package.
//! - `failpoint` — crash-test hooks at commit boundaries; `time` — the one
//!   way timestamps are written and read; `private` — folders and files
//!   readable by the service account only.
//! - `demo` (cargo feature `demo`, on by default) — the whole job on the
//!   embedded simulator; the only module that links mssql-sim.
//!
//! The command line is not in the library: `src/main.rs` and `src/cli/`
//! parse flags, call one library function per command and print.

pub mod caregiver;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod failpoint;
pub mod format;
pub mod mssql;
pub mod private;
pub mod publisher;
pub mod sftp;
pub mod time;

/// The version of this build, as printed by `ctferry --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
