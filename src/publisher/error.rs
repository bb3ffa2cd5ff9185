//! `PublishError`: why a publisher cycle (or opening the publisher) failed,
//! naming the thing, and whether running again later can help.

use crate::format::crypto::CryptoError;
use crate::format::package::PackageError;
use crate::mssql::client::DbError;
use crate::publisher::catalog::CatalogError;
use crate::publisher::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("source database: {0}")]
    Db(#[from] DbError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{what} {path}: {source}{}", crate::private::disk_full_hint(source))]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("change tracking is not enabled on the source database: run ALTER DATABASE ... SET CHANGE_TRACKING = ON (see README, Source prerequisites)")]
    TrackingOff,
    #[error("change tracking is not enabled on table {table}, or the login lacks VIEW CHANGE TRACKING on it (SQL Server answers both the same way): run ALTER TABLE {table} ENABLE CHANGE_TRACKING, or GRANT VIEW CHANGE TRACKING ON {table} TO <the login's user>; `ctferry check` tells which")]
    TableNotTracked { table: String },
    #[error("staged changes for {table}, which is no longer published; remove them with `ctferry snapshot --subscriber {subscriber}`")]
    NoLongerPublished { table: String, subscriber: String },
    #[error("the owner rule of {table} cannot be used: {detail}")]
    Rule { table: String, detail: String },
    #[error("a staged change of {table} is unreadable ({detail}); the state may be damaged")]
    StagedUnreadable { table: String, detail: String },
    #[error("reading {subscriber}'s snapshot: {detail}; nothing of the step was committed (the next cycle reads it again); this is a fault of ctferry: report it with the log")]
    SnapshotReading { subscriber: String, detail: String },
    #[error("caregivers {first} and {second} have the same public key ({fingerprint}): each would read the other's packages; give each caregiver its own key")]
    SharedKey {
        first: String,
        second: String,
        fingerprint: String,
    },
}

impl PublishError {
    /// Whether the next cycle can succeed without a person (a network
    /// hiccup, a deadlock, a snapshot conflict); everything else needs the
    /// configuration, the source or the state looked at.
    pub fn retryable(&self) -> bool {
        match self {
            PublishError::Db(e) => e.retryable,
            PublishError::Catalog(CatalogError::Db(e)) => e.retryable,
            _ => false,
        }
    }
}
