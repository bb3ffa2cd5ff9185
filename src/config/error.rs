//! The one error type of configuration loading: which file, where in it,
//! and what to do. Never a retry matter: the file must be corrected.

/// A configuration error: the file, where in it, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub at: String,
    pub message: String,
}
