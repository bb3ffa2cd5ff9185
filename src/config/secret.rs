//! Secrets in configuration files: a password or passphrase is only ever
//! named, by `*_env` (an environment variable) or `*_file` (its first line),
//! and resolved once while loading. `Secret`'s Debug never shows the value,
//! so a configuration can be logged or printed with `{:?}` safely.

use super::error::ConfigError;
use std::path::{Path, PathBuf};

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

/// How much of the configuration a command needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pins {
    /// Commands that do the work: every secret is read and every SFTP
    /// target must pin its host key.
    Required,
    /// Commands that only report or prepare (`status`, `audit`, `sftp
    /// trust`): a missing pin is accepted (trust is how a key gets pinned)
    /// and secrets are not read (a monitoring probe needs no passwords);
    /// where a secret is configured is still checked.
    Optional,
}

/// Resolves the secret named by `env` / `path` (relative to `base`). With
/// `Pins::Optional` nothing is read: a configured secret resolves to an
/// empty one, so monitoring commands need no passwords.
pub(crate) fn resolve_secret(
    file: &str,
    at: &str,
    env: &Option<String>,
    path: &Option<PathBuf>,
    base: &Path,
    required: bool,
    pins: Pins,
) -> Result<Option<Secret>, ConfigError> {
    let err = |message: String| ConfigError {
        file: file.to_string(),
        at: at.to_string(),
        message,
    };
    if pins == Pins::Optional {
        return match (env, path) {
            (Some(_), Some(_)) => Err(err("give either *_env or *_file, not both".into())),
            (None, None) if required => Err(err("the password is missing: set password_env = \"VAR\" or password_file = \"path\" (never the password itself)".into())),
            (None, None) => Ok(None),
            _ => Ok(Some(Secret::default())),
        };
    }
    match (env, path) {
        (Some(_), Some(_)) => Err(err("give either *_env or *_file, not both".into())),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) => Ok(Some(Secret(v))),
            Err(_) => Err(err(format!("environment variable {var} is not set; export it before running ctferry"))),
        },
        (None, Some(p)) => {
            let p = base.join(p);
            let text = crate::private::read_small_text(&p)
                .map_err(|e| err(format!("cannot read {}: {e}", p.display())))?;
            Ok(Some(Secret(text.lines().next().unwrap_or("").to_string())))
        }
        (None, None) if required => Err(err("the password is missing: set password_env = \"VAR\" or password_file = \"path\" (never the password itself)".into())),
        (None, None) => Ok(None),
    }
}

/// A key passphrase named on the command line (`--passphrase-file`,
/// `--passphrase-env`), never given as a flag's value.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    #[error("cannot read passphrase file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} (named by --passphrase-env) is not set")]
    Env(String),
}

/// The passphrase in `file` (its first line) or in environment variable
/// `env`; with neither, the one in `default_env` when that is set.
pub fn passphrase(
    env: Option<&str>,
    file: Option<&Path>,
    default_env: Option<&str>,
) -> Result<Option<Secret>, PassphraseError> {
    if let Some(f) = file {
        let text = crate::private::read_small_text(f).map_err(|source| PassphraseError::File {
            path: f.to_path_buf(),
            source,
        })?;
        return Ok(Some(Secret(text.lines().next().unwrap_or("").to_string())));
    }
    match env {
        Some(var) => std::env::var(var)
            .map(|v| Some(Secret(v)))
            .map_err(|_| PassphraseError::Env(var.to_string())),
        None => Ok(default_env.and_then(|v| std::env::var(v).ok()).map(Secret)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(format!("{:?}", Secret::new("pw".into())), "Secret(***)");
    }
}
