//! A SQL Server connection string (ADO.NET form, as tiberius reads it),
//! validated once for how it protects the connection:
//!
//! - `encrypt=true` (the whole connection over TLS) is the default when the
//!   string does not say;
//! - the server certificate is checked against the system's roots, or
//!   against `TrustServerCertificateCA=path` (the CA or certificate file a
//!   DBA exports; a relative path is relative to the configuration file);
//! - `TrustServerCertificate=true` (any certificate) and `encrypt=false`
//!   (SQL Server's login-only encryption: the login packet over TLS, the
//!   data in plaintext) are accepted with a warning that `ctferry check`
//!   prints;
//! - `encrypt=DANGER_PLAINTEXT` (no TLS at all, the password and every row
//!   readable on the network) is refused unless the server is on this
//!   machine (127.0.0.1, localhost, ::1), as the embedded simulator is;
//! - the password never appears in it (`password_env` / `password_file`).

use std::fmt;
use std::path::Path;

/// How much of the connection TLS protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// The whole connection (`encrypt=true`, the default).
    Full,
    /// Only the login packet (`encrypt=false`).
    LoginOnly,
    /// Nothing (`encrypt=DANGER_PLAINTEXT`), on this machine only.
    Plaintext,
}

/// Which server certificates are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Those that chain to the system's root certificates.
    SystemRoots,
    /// Those that chain to this CA (or are this certificate).
    Ca(std::path::PathBuf),
    /// Any (`TrustServerCertificate=true`).
    Any,
}

/// A validated connection string (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    text: String,
    host: String,
    encryption: Encryption,
    trust: Trust,
    integrated: bool,
}

/// What is wrong with a connection string, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadConnection(pub String);

fn truthy(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// What an `integrated security` / `trusted_connection` value means:
/// Windows sign-in (`true`, `yes`, `sspi`) or not.
fn integrated_value(v: Option<String>) -> Result<bool, BadConnection> {
    match v {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("sspi") => Ok(true),
        Some(v) => truthy(&v).ok_or_else(|| {
            BadConnection(format!(
                "integrated security={v}: write true (or sspi) for Windows sign-in, or leave it out"
            ))
        }),
    }
}

/// Whether connection string `text` asks for Windows sign-in, read as
/// `ConnectionString::parse` reads it (the last of the keys wins; a value
/// that is not one counts as no).
pub fn asks_integrated(text: &str) -> bool {
    let value = text.split(';').rev().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        (k == "integrated security" || k == "trusted_connection").then(|| v.trim().to_string())
    });
    integrated_value(value).unwrap_or(false)
}

/// Whether `host` is this machine.
pub fn is_local(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h == "127.0.0.1" || h == "::1" || h == "."
}

impl ConnectionString {
    /// Validates `text`; `base` is the folder of the configuration file.
    pub fn parse(text: &str, base: &Path) -> Result<ConnectionString, BadConnection> {
        let mut parts: Vec<(String, String)> = Vec::new();
        for kv in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                BadConnection(format!(
                    "'{kv}' is not key=value (connection strings read server=tcp:HOST,PORT;database=DB;user id=USER)"
                ))
            })?;
            parts.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |keys: &[&str]| {
            parts
                .iter()
                .rev()
                .find(|(k, _)| keys.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        if get(&["password", "pwd"]).is_some() {
            return Err(BadConnection(
                "the connection string must not contain the password; use password_env or password_file".into(),
            ));
        }
        // Windows sign-in: the service account's own Windows identity
        // (SSPI), no user id and no password.
        let integrated = integrated_value(get(&["integrated security", "trusted_connection"]))?;
        if integrated && get(&["user id", "uid", "user"]).is_some() {
            return Err(BadConnection(
                "give either integrated security=true (Windows sign-in) or user id=... with password_env, not both".into(),
            ));
        }
        let server = get(&[
            "server",
            "data source",
            "address",
            "addr",
            "network address",
        ])
        .ok_or_else(|| BadConnection("it names no server: write server=tcp:HOST,PORT".into()))?;
        let host = server
            .trim_matches('"')
            .trim_start_matches("tcp:")
            .split([',', '\\'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let encryption = match get(&["encrypt"]) {
            None => Encryption::Full,
            Some(v) if v == "DANGER_PLAINTEXT" => Encryption::Plaintext,
            Some(v) => match truthy(&v) {
                Some(true) => Encryption::Full,
                Some(false) => Encryption::LoginOnly,
                None => {
                    return Err(BadConnection(format!(
                        "encrypt={v}: write encrypt=true (the default), or encrypt=false for login-only encryption"
                    )))
                }
            },
        };
        if encryption == Encryption::Plaintext && !is_local(&host) {
            return Err(BadConnection(format!(
                "encrypt=DANGER_PLAINTEXT sends the password and every row unencrypted over the network to {host}; it is accepted only for a server on this machine (127.0.0.1, localhost, ::1). Use encrypt=true, with TrustServerCertificateCA=<the CA file your DBA exports> if the server's certificate is not from a public CA"
            )));
        }
        let trust_any = match get(&["trustservercertificate"]) {
            None => false,
            Some(v) => truthy(&v).ok_or_else(|| {
                BadConnection(format!("TrustServerCertificate={v}: write true or false"))
            })?,
        };
        let mut text = text.trim().trim_end_matches(';').to_string();
        let trust = match (trust_any, get(&["trustservercertificateca"])) {
            (true, Some(_)) => {
                return Err(BadConnection(
                    "give TrustServerCertificate=true or TrustServerCertificateCA=path, not both"
                        .into(),
                ))
            }
            (true, None) => Trust::Any,
            (false, Some(p)) => {
                let path = base.join(p.trim_matches('"'));
                if !path.is_file() {
                    return Err(BadConnection(format!(
                        "TrustServerCertificateCA={}: no such file (the CA or server certificate, PEM or DER, that the server's certificate is checked against)",
                        path.display()
                    )));
                }
                // tiberius reads the path as given: make it absolute.
                text = text
                    .split(';')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _))
                            if k.trim().eq_ignore_ascii_case("trustservercertificateca") =>
                        {
                            format!("{}={}", k.trim(), path.display())
                        }
                        _ => kv.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(";");
                Trust::Ca(path)
            }
            (false, None) => Trust::SystemRoots,
        };
        if get(&["encrypt"]).is_none() {
            text.push_str(";encrypt=true");
        }
        Ok(ConnectionString {
            text,
            host,
            encryption,
            trust,
            integrated,
        })
    }

    /// The string tiberius gets.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Whether it signs in with the Windows identity of the process
    /// (`integrated security=true` / `trusted_connection=yes`): then no
    /// password is given (ctferry.exe on Windows only).
    pub fn integrated(&self) -> bool {
        self.integrated
    }

    /// What `ctferry check` warns about: settings that work but protect less
    /// than they should.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.encryption == Encryption::LoginOnly {
            w.push(format!("encrypt=false: only the login to {} is encrypted; every row travels in plaintext. Use encrypt=true unless the server cannot encrypt", self.host));
        }
        if self.encryption == Encryption::Plaintext {
            w.push(format!(
                "encrypt=DANGER_PLAINTEXT: nothing is encrypted (accepted because {} is this machine)",
                self.host
            ));
        }
        if self.trust == Trust::Any && self.encryption != Encryption::Plaintext {
            w.push(format!("TrustServerCertificate=true: any certificate is accepted, so anyone who can intercept the connection to {} can read it; give TrustServerCertificateCA=<the CA file your DBA exports> instead", self.host));
        }
        w
    }
}

impl std::ops::Deref for ConnectionString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConnectionString, BadConnection> {
        ConnectionString::parse(s, Path::new("/nonexistent"))
    }

    #[test]
    fn encryption_is_the_default_and_plaintext_only_on_this_machine() {
        let c = parse("server=tcp:db.region.se,1433;database=PMO;user id=ctferry").unwrap();
        assert_eq!(c.encryption(), Encryption::Full);
        assert_eq!(c.trust(), &Trust::SystemRoots);
        assert!(c.as_str().ends_with(";encrypt=true"), "{}", c.as_str());
        assert!(c.warnings().is_empty());
        assert_eq!(c.host(), "db.region.se");
        let e = parse("server=tcp:db.region.se,1433;user id=u;encrypt=DANGER_PLAINTEXT")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("db.region.se") && e.contains("this machine"),
            "{e}"
        );
        for local in [
            "127.0.0.1,1433",
            "localhost",
            "[::1],1433",
            "tcp:localhost\\SQLEXPRESS",
        ] {
            let c = parse(&format!(
                "server={local};user id=sa;encrypt=DANGER_PLAINTEXT"
            ))
            .unwrap();
            assert_eq!(c.encryption(), Encryption::Plaintext);
            assert_eq!(c.warnings().len(), 1);
        }
    }

    #[test]
    fn weaker_settings_are_warned_about_and_contradictions_refused() {
        let c = parse("server=h;user id=u;encrypt=false;TrustServerCertificate=true").unwrap();
        assert_eq!(c.encryption(), Encryption::LoginOnly);
        let w = c.warnings();
        assert!(
            w[0].contains("only the login") && w[1].contains("any certificate"),
            "{w:?}"
        );
        assert!(!c.as_str().contains("encrypt=true"));
        assert!(parse("server=h;user id=u;encrypt=maybe").is_err());
        // Windows sign-in: without user id, in any of its spellings.
        for on in [
            "integrated security=true",
            "Integrated Security=SSPI",
            "Trusted_Connection=yes",
        ] {
            let c = parse(&format!("server=h;{on}")).unwrap();
            assert!(c.integrated(), "{on}");
            assert!(asks_integrated(c.as_str()), "{on}");
        }
        assert!(!parse("server=h;user id=u").unwrap().integrated());
        assert!(!asks_integrated(
            "server=h;user id=u;integrated security=false"
        ));
        assert!(parse("server=h;integrated security=true;user id=u").is_err());
        assert!(parse("server=h;integrated security=maybe").is_err());
        assert!(parse("server=h;user id=u;password=x").is_err());
        assert!(parse("user id=u").is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let both = "server=h;user id=u;TrustServerCertificate=true;TrustServerCertificateCA=ca.pem";
        assert!(ConnectionString::parse(both, dir.path()).is_err());
    }

    #[test]
    fn the_ca_file_is_found_next_to_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let missing = "server=h;user id=u;TrustServerCertificateCA=ca.pem";
        let e = ConnectionString::parse(missing, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.pem") && e.contains("no such file"), "{e}");
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let c = ConnectionString::parse(missing, dir.path()).unwrap();
        let abs = dir.path().join("ca.pem");
        assert_eq!(c.trust(), &Trust::Ca(abs.clone()));
        assert!(c
            .as_str()
            .contains(&format!("TrustServerCertificateCA={}", abs.display())));
    }
}
