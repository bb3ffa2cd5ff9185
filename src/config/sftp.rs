//! An SFTP area as configured: `sftp://user@host[:port][/dir]`, the login
//! (password or identity file) and the pinned host key. The same fields are
//! read from `deliver = { sftp = ... }` in ctferry.toml and from `[source]`
//! in apply.toml; `sftp_target` validates them for both. The transport that
//! uses a `Target` is `crate::sftp`.

use super::error::ConfigError;
use super::secret::{resolve_secret, Pins, Secret};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `sftp://user@host:port/dir` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The folder on the server ("" = the login folder).
    pub dir: String,
}

impl std::fmt::Display for SftpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sftp://{}@{}:{}/{}",
            self.user,
            self.host,
            self.port,
            self.dir.trim_start_matches('/')
        )
    }
}

/// What is wrong with an `sftp://` URL (never the URL's password: one in
/// the URL is refused without repeating it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(pub String);

impl SftpUrl {
    /// Parses `sftp://user@host[:port][/dir]`; a password in the URL is refused.
    pub fn parse(text: &str) -> Result<SftpUrl, BadUrl> {
        Self::parse_text(text).map_err(BadUrl)
    }

    fn parse_text(text: &str) -> Result<SftpUrl, String> {
        let rest = text
            .strip_prefix("sftp://")
            .ok_or_else(|| format!("'{text}' should read sftp://user@host:port/dir"))?;
        let (auth, hostpath) = rest
            .split_once('@')
            .ok_or("the URL names no user: write sftp://user@host:port/dir")?;
        if auth.contains(':') {
            return Err(
                "the URL must not contain a password; use password_env or password_file".into(),
            );
        }
        if auth.is_empty() {
            return Err("the user name is empty".into());
        }
        let (hostport, dir) = match hostpath.find('/') {
            Some(i) => (&hostpath[..i], &hostpath[i + 1..]),
            None => (hostpath, ""),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [ipv6]:port
            let (h, p) = h.split_once(']').ok_or("unclosed '[' in the host")?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        let port = if port.is_empty() {
            22
        } else {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("port '{port}' is not a number between 1 and 65535"))?
        };
        Ok(SftpUrl {
            user: auth.to_string(),
            host,
            port,
            dir: dir.trim_end_matches('/').to_string(),
        })
    }

    /// The remote path of `name` in this area.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        if self.dir.is_empty() {
            PathBuf::from(name)
        } else {
            PathBuf::from(format!("/{}/{name}", self.dir.trim_start_matches('/')))
        }
    }
}

/// How ctferry logs in.
#[derive(Debug, Clone)]
pub enum Auth {
    Password(Secret),
    /// An OpenSSH private key file, with its passphrase if it has one.
    Identity {
        key: PathBuf,
        passphrase: Option<Secret>,
    },
}

/// Which host key is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTrust {
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    Pinned(String),
    /// An OpenSSH known_hosts file.
    KnownHosts(PathBuf),
}

/// One caregiver's SFTP area, fully configured.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: SftpUrl,
    pub auth: Auth,
    pub trust: HostTrust,
    /// For connecting and for every single operation.
    pub timeout: Duration,
}

/// The SFTP fields shared by `deliver = { sftp = ... }` (ctferry.toml) and
/// `[source] sftp = ...` (apply.toml), written once and flattened into both.
#[derive(Default, Clone, serde::Deserialize)]
pub struct RawSftp {
    pub sftp: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    pub identity_passphrase_env: Option<String>,
    pub identity_passphrase_file: Option<PathBuf>,
    pub host_key: Option<String>,
    pub known_hosts: Option<PathBuf>,
}

impl RawSftp {
    /// Whether any login or host-key field is set (they make no sense
    /// next to a folder).
    pub fn has_login_or_pin(&self) -> bool {
        self.password_env.is_some()
            || self.password_file.is_some()
            || self.identity.is_some()
            || self.host_key.is_some()
            || self.known_hosts.is_some()
    }
}

/// Builds an SFTP target from its configuration fields. A missing pin is an
/// error unless `pins` is `Optional` (then the target carries an empty pin
/// that no server matches).
pub fn sftp_target(
    file: &str,
    at: &str,
    raw: &RawSftp,
    base: &Path,
    timeout: Duration,
    pins: Pins,
) -> Result<Target, ConfigError> {
    let err = |message: String| ConfigError {
        file: file.to_string(),
        at: at.to_string(),
        message,
    };
    let url_text = raw.sftp.as_deref().unwrap_or("");
    let url = SftpUrl::parse(url_text).map_err(|m| err(format!("sftp: {m}")))?;
    let password = resolve_secret(
        file,
        at,
        &raw.password_env,
        &raw.password_file,
        base,
        false,
        pins,
    )?;
    let auth = match (password, &raw.identity) {
        (Some(p), None) => {
            if raw.identity_passphrase_env.is_some() || raw.identity_passphrase_file.is_some() {
                return Err(err("identity_passphrase_* is given without identity".into()));
            }
            Auth::Password(p)
        }
        (None, Some(k)) => {
            let key = base.join(k);
            if !key.is_file() {
                return Err(err(format!("identity {}: no such file", key.display())));
            }
            let passphrase = resolve_secret(
                file,
                at,
                &raw.identity_passphrase_env,
                &raw.identity_passphrase_file,
                base,
                false,
                pins,
            )?;
            Auth::Identity { key, passphrase }
        }
        (Some(_), Some(_)) => return Err(err("give either a password (password_env / password_file) or identity, not both".into())),
        (None, None) => return Err(err("sftp needs a login: password_env = \"VAR\", password_file = \"path\" or identity = \"path/to/private_key\"".into())),
    };
    let trust = match (&raw.host_key, &raw.known_hosts) {
        (Some(fp), None) => {
            let fp = fp.trim().trim_end_matches('=').to_string();
            let ok = fp.strip_prefix("SHA256:").is_some_and(|b| {
                b.len() == 43 && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            });
            if !ok {
                return Err(err(format!("host_key \"{fp}\" should be a SHA256 fingerprint as `ssh-keygen -l` prints it, e.g. \"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\"")));
            }
            HostTrust::Pinned(fp)
        }
        (None, Some(p)) => {
            let p = base.join(p);
            if !p.is_file() && pins == Pins::Required {
                return Err(err(format!("known_hosts {}: no such file", p.display())));
            }
            HostTrust::KnownHosts(p)
        }
        (Some(_), Some(_)) => return Err(err("give either host_key or known_hosts, not both".into())),
        (None, None) if pins == Pins::Optional => HostTrust::Pinned(String::new()),
        (None, None) => return Err(err(format!("the server's host key is not pinned: run `ctferry sftp trust -c {file} --subscriber ...` (it shows the fingerprint and writes host_key after you confirm it), or set host_key = \"SHA256:...\" or known_hosts = \"path\""))),
    };
    Ok(Target {
        url,
        auth,
        trust,
        timeout,
    })
}

/// Writes `host_key = "<fingerprint>"` into subscriber `hsa`'s `deliver`
/// in the configuration file at `path`, keeping everything else (comments
/// included); replaces the file atomically.
pub fn pin_host_key(path: &Path, hsa: &str, fingerprint: &str) -> Result<(), ConfigError> {
    pin_host_key_text(path, hsa, fingerprint).map_err(|message| ConfigError {
        file: path.display().to_string(),
        at: format!("[[subscriber]] {hsa} deliver"),
        message,
    })
}

fn pin_host_key_text(path: &Path, hsa: &str, fingerprint: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let subs = doc
        .get_mut("subscriber")
        .and_then(|s| s.as_array_of_tables_mut())
        .ok_or_else(|| format!("{} has no [[subscriber]]", path.display()))?;
    let sub = subs
        .iter_mut()
        .find(|t| t.get("hsa_id").and_then(|v| v.as_str()) == Some(hsa))
        .ok_or_else(|| format!("{hsa} is not a [[subscriber]] in {}", path.display()))?;
    let deliver = sub
        .get_mut("deliver")
        .ok_or_else(|| format!("{hsa} has no deliver = {{ ... }}"))?;
    if let Some(t) = deliver.as_inline_table_mut() {
        t.insert("host_key", fingerprint.into());
    } else if let Some(t) = deliver.as_table_mut() {
        t.insert("host_key", toml_edit::value(fingerprint));
    } else {
        return Err(format!("{hsa}: deliver is not a table"));
    }
    let tmp = path.with_extension("toml.ctferry-tmp");
    std::fs::write(&tmp, doc.to_string())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
