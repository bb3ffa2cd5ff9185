//! ctferry: moves a SQL Server database's changes, split per caregiver, to each
//! caregiver's own copy as signed and encrypted packages.
//!
//! The library is built up issue by issue; see `../shared/DESIGN.md` for the map.

pub mod apply;
pub mod cbor;
pub mod check;
pub mod config;
pub mod crypto;
pub mod deliver;
pub mod demo;
pub mod failpoint;
pub mod inspect;
pub mod package;
pub mod publish;
pub mod sftp;
pub mod source;
pub mod sql;
pub mod state;
pub mod value;

/// The version of this build, as printed by `ctferry --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
