//! `apply.toml`, the caregiver's configuration: the local copy database,
//! the caregiver's secret key(s) and the region's public key(s), and where
//! packages arrive (a folder, or the caregiver's SFTP area). Read once,
//! validated into `ApplyConfig` before `ctferry apply` touches anything;
//! docs/CONFIG.md documents every field.

use super::connection::ConnectionString;
use super::error::ConfigError;
use super::secret::{resolve_secret, Pins, Secret};
use super::sftp::{sftp_target, RawSftp, Target};
use crate::format::crypto::{CryptoError, PublicKey, SecretKey};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApply {
    target: RawTarget,
    keys: RawKeys,
    source: RawSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    connection: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

/// `secret_key = "a.sec.asc"` or, during a key rotation,
/// `secret_key = ["new.sec.asc", "old.sec.asc"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    secret_key: OneOrMany,
    passphrase_env: Option<String>,
    passphrase_file: Option<PathBuf>,
    publisher_keys: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    subscriber: String,
    folder: Option<PathBuf>,
    timeout_seconds: Option<u64>,
    #[serde(flatten)]
    area: RawSftp,
}

/// `apply.toml`, validated.
#[derive(Debug, Clone)]
pub struct ApplyConfig {
    /// The copy database's connection string, validated for TLS.
    pub connection: ConnectionString,
    pub password: Secret,
    /// The caregiver's secret key(s); a package is opened with the one it
    /// is encrypted to (more than one only during a key rotation).
    pub secret_keys: Vec<PathBuf>,
    pub passphrase: Option<Secret>,
    pub publisher_keys: Vec<PathBuf>,
    pub subscriber: String,
    /// Where packages are read from: the delivery folder, or with `sftp`
    /// the local folder they are downloaded to first.
    pub folder: PathBuf,
    /// The caregiver's SFTP area, when packages are picked up from there.
    pub sftp: Option<Target>,
}

/// Loads and validates `apply.toml`.
pub fn load_apply(path: &Path) -> Result<ApplyConfig, ConfigError> {
    let file = path.display().to_string();
    let err = |at: &str, message: String| ConfigError {
        file: file.clone(),
        at: at.into(),
        message,
    };
    let text = crate::private::read_small_text(path)
        .map_err(|e| err("file", format!("cannot read it: {e}")))?;
    let raw: RawApply =
        toml::from_str(&text).map_err(|e| err("syntax", e.message().to_string()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let connection = ConnectionString::parse(&raw.target.connection, &base)
        .map_err(|e| err("[target] connection", e.to_string()))?;
    let secret = |at: &str, env: &Option<String>, file_: &Option<PathBuf>| {
        resolve_secret(&file, at, env, file_, &base, false, Pins::Required)
    };
    let password = secret(
        "[target]",
        &raw.target.password_env,
        &raw.target.password_file,
    )?;
    // Windows sign-in needs no password (and takes none).
    let password = match (password, connection.integrated()) {
        (Some(_), true) => {
            return Err(err(
                "[target]",
                "integrated security=true signs in as the Windows account running ctferry: remove password_env / password_file".into(),
            ))
        }
        (Some(p), false) => p,
        (None, true) => Secret::new(String::new()),
        (None, false) => {
            return Err(err(
                "[target]",
                "set password_env or password_file (or integrated security=true in the connection, for Windows sign-in on Windows)".into(),
            ))
        }
    };
    let passphrase = secret(
        "[keys]",
        &raw.keys.passphrase_env,
        &raw.keys.passphrase_file,
    )?;
    let secret_keys: Vec<PathBuf> = match &raw.keys.secret_key {
        OneOrMany::One(p) => vec![base.join(p)],
        OneOrMany::Many(v) => v.iter().map(|p| base.join(p)).collect(),
    };
    if secret_keys.is_empty() {
        return Err(err(
            "[keys] secret_key",
            "name the caregiver's secret key file".into(),
        ));
    }
    if raw.keys.publisher_keys.is_empty() {
        return Err(err(
            "[keys] publisher_keys",
            "list at least the region's public key".into(),
        ));
    }
    let src = &raw.source;
    let (folder, sftp) = match (&src.folder, &src.area.sftp) {
        (Some(f), None) => {
            if src.area.has_login_or_pin() {
                return Err(err("[source]", "password, identity, host_key and known_hosts belong with sftp = \"...\"; a folder needs none".into()));
            }
            (base.join(f), None)
        }
        (f, Some(_)) => {
            let timeout =
                std::time::Duration::from_secs(src.timeout_seconds.unwrap_or(60).clamp(1, 3600));
            let t = sftp_target(&file, "[source]", &src.area, &base, timeout, Pins::Required)?;
            (
                base.join(f.clone().unwrap_or_else(|| PathBuf::from("incoming"))),
                Some(t),
            )
        }
        (None, None) => return Err(err(
            "[source]",
            "give folder = \"...\" (where packages arrive) or sftp = \"sftp://user@host:port/dir\""
                .into(),
        )),
    };
    Ok(ApplyConfig {
        connection,
        password,
        secret_keys,
        passphrase,
        publisher_keys: raw
            .keys
            .publisher_keys
            .iter()
            .map(|p| base.join(p))
            .collect(),
        subscriber: raw.source.subscriber,
        folder,
        sftp,
    })
}

impl ApplyConfig {
    /// Loads the caregiver's secret key(s) and the accepted publisher keys.
    pub fn load_keys(&self) -> Result<(Vec<SecretKey>, Vec<PublicKey>), CryptoError> {
        let pass = self.passphrase.as_ref().map(|s| s.expose().to_string());
        let keys = self
            .secret_keys
            .iter()
            .map(|p| SecretKey::load(p, pass.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let publishers = self
            .publisher_keys
            .iter()
            .map(|p| PublicKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((keys, publishers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("apply.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
[target]
connection = "server=tcp:127.0.0.1,1433;database=copy;user=sa;encrypt=DANGER_PLAINTEXT"
password_file = "pw"
[keys]
secret_key = "c.sec.asc"
publisher_keys = ["region.pub.asc"]
"#;

    #[test]
    fn unknown_fields_are_refused_also_next_to_the_sftp_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "x\n").unwrap();
        let ok = write(
            dir.path(),
            &format!("{BASE}[source]\nsubscriber = \"S\"\nfolder = \"in\"\n"),
        );
        let cfg = load_apply(&ok).unwrap();
        assert_eq!(cfg.folder, dir.path().join("in"));
        assert_eq!(cfg.password.expose(), "x");
        let typo = write(
            dir.path(),
            &format!(
                "{BASE}[source]\nsubscriber = \"S\"\nfolder = \"in\"\nhost_keys = \"SHA256:x\"\n"
            ),
        );
        let e = load_apply(&typo).unwrap_err().to_string();
        assert!(e.contains("host_keys"), "{e}");
        let stray = write(
            dir.path(),
            &format!("{BASE}[source]\nsubscriber = \"S\"\nfolder = \"in\"\npassword_env = \"P\"\n"),
        );
        let e = load_apply(&stray).unwrap_err().to_string();
        assert!(e.contains("belong with sftp"), "{e}");
    }
}
