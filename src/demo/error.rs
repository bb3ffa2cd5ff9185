//! What can stop the demo.

use crate::caregiver::ApplyError;
use crate::config::ConfigError;
use crate::format::crypto::CryptoError;
use crate::mssql::client::DbError;
use crate::publisher::PublishError;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Setup(String),
    #[error("the simulator: {0}")]
    Db(#[from] DbError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0} check(s) failed; see the lines marked FAIL above")]
    ChecksFailed(usize),
}
