//! SFTP, behind a small interface of our own (ssh2/libssh2 underneath).
//!
//! What this module is for: connecting to one caregiver's SFTP area with its
//! host key pinned, uploading a package so that the area never shows a
//! partial file under its final name, and listing/downloading packages for
//! `ctferry apply`.
//!
//! What it must never do: connect without checking the host key against the
//! pin (only `probe_host_key`, used by `ctferry sftp trust` to *show* a key,
//! skips authentication and transfers nothing); put a password, passphrase
//! or key into an error, a log line or state (errors name the account as
//! `user@host:port/dir` only).
//!
//! Upload contract (`Connection::upload`): if the final name already holds
//! our file (same size and SHA-256, read back) it is not sent again (a crash
//! between the rename and the delivery record); a leftover `<name>.part` is
//! replaced; the bytes go to `<name>.part` in 1 MiB writes (libssh2 pipelines
//! a large write as many SFTP packets; small writes are several times slower
//! on real links), then the remote size is checked, then `<name>.part` is
//! renamed to `<name>`. OpenSSH's sftp-server offers no server-side hash
//! extension, so the content is not re-read after an ordinary upload; the
//! package's own SHA-256 chain and signature are verified by `ctferry apply`.

use crate::config::{Auth, HostTrust, SftpUrl, Target};
use sha2::{Digest, Sha256};
use ssh2::{ErrorCode, HostKeyType, OpenFlags, OpenType, Session};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Size of one write to the server (see the module doc).
pub const CHUNK: usize = 1 << 20;

/// What went wrong, and whether trying again later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refused, unreachable, dropped, timed out: retry later.
    Network,
    /// The host key is not the pinned one: never retried blindly.
    HostKey,
    /// The server and ctferry have no key exchange, cipher, MAC or host
    /// key algorithm in common: waiting does not help.
    Algorithms,
    /// User name, password or key refused.
    Auth,
    /// The area refused a file operation (permission, disk full, quota).
    Remote,
    /// The uploaded size does not match, or a different file has our name.
    Verify,
    /// Local file problem.
    Local,
}

#[derive(Debug, thiserror::Error)]
#[error("{account}: {message}")]
pub struct SftpError {
    pub kind: Kind,
    /// `user@host:port/dir`, never a secret.
    pub account: String,
    pub message: String,
}

impl SftpError {
    /// Whether an automatic retry can help (a changed host key or a foreign
    /// file needs a person).
    pub fn retryable(&self) -> bool {
        !matches!(
            self.kind,
            Kind::HostKey | Kind::Algorithms | Kind::Verify | Kind::Local
        )
    }
}

/// Host key facts shown to the operator.
#[derive(Debug, Clone)]
pub struct HostKeyInfo {
    pub fingerprint: String,
    pub key_type: &'static str,
    /// The raw key blob (for writing a known_hosts line).
    pub blob: Vec<u8>,
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        _ => "unknown",
    }
}

/// OpenSSH's fingerprint form of a SHA-256 digest.
pub fn fingerprint_of(digest: &[u8]) -> String {
    use base64::Engine;
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// A logged-in SFTP session on one area.
pub struct Connection {
    url: SftpUrl,
    // Field order: the SFTP channel is dropped before its session.
    sftp: ssh2::Sftp,
    session: Session,
    /// Test hook: pause once after the first chunk (see failpoint.rs).
    pause_after_first_chunk: bool,
}

/// What `upload` found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    Sent,
    /// The final name already held this exact file.
    AlreadyThere,
}

fn account(url: &SftpUrl) -> String {
    format!(
        "{}@{}:{}/{}",
        url.user,
        url.host,
        url.port,
        url.dir.trim_start_matches('/')
    )
}

fn ssh_err(url: &SftpUrl, what: &str, e: &ssh2::Error) -> SftpError {
    // libssh2 codes: -9 timeout, -13 socket disconnect, -7/-43 send/recv,
    // -18 auth failed, -19 public key unverified; SFTP status codes:
    // 2 no such file, 3 permission denied, 4 failure, 14 no space, 15 quota.
    let (kind, hint) = match e.code() {
        ErrorCode::Session(-18) | ErrorCode::Session(-19) => (
            Kind::Auth,
            "the server refused the user name, password or key; check them with the caregiver",
        ),
        // -5 KEX_FAILURE, -8 KEY_EXCHANGE_FAILURE, -10 HOSTKEY_INIT, -11
        // HOSTKEY_SIGN: nothing in common, or a host key it cannot check.
        ErrorCode::Session(-5 | -8 | -10 | -11) => (
            Kind::Algorithms,
            "the server offers no key exchange, cipher, MAC or host key algorithm that ctferry has; ask the server's administrator to allow curve25519-sha256 or ecdh-sha2-nistp256 key exchange and an ed25519, ECDSA or RSA host key",
        ),
        ErrorCode::Session(-9) => (Kind::Network, "timed out; will retry"),
        ErrorCode::Session(_) => (Kind::Network, "connection problem; will retry"),
        ErrorCode::SFTP(3) => (
            Kind::Remote,
            "permission denied in the area; ask the caregiver to make the folder writable for this account",
        ),
        ErrorCode::SFTP(2) => (Kind::Remote, "no such file or folder in the area; check the folder in the sftp URL"),
        ErrorCode::SFTP(14) | ErrorCode::SFTP(15) => (Kind::Remote, "the area is full; ask the caregiver to free space"),
        ErrorCode::SFTP(4) => (Kind::Remote, "the server reported a failure (often a full disk); will retry"),
        ErrorCode::SFTP(_) => (Kind::Remote, "the server refused the operation; will retry"),
    };
    SftpError {
        kind,
        account: account(url),
        message: format!("{what}: {} ({hint})", e.message()),
    }
}

fn io_err(url: &SftpUrl, kind: Kind, what: &str, e: &std::io::Error) -> SftpError {
    // A mid-transfer drop surfaces as an io::Error wrapping the ssh2 error.
    let msg = e.to_string();
    SftpError {
        kind,
        account: account(url),
        message: format!("{what}: {msg}"),
    }
}

fn open_session(url: &SftpUrl, timeout: Duration) -> Result<Session, SftpError> {
    let fail = |message: String| SftpError {
        kind: Kind::Network,
        account: account(url),
        message,
    };
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {}: {e}", url.host)))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        fail(format!(
            "cannot connect: {} (is the server up and the port open to this machine?)",
            last.map(|e| e.to_string())
                .unwrap_or_else(|| "no address".into())
        ))
    })?;
    let _ = tcp.set_nodelay(true);
    let mut s = Session::new().map_err(|e| ssh_err(url, "cannot start an SSH session", &e))?;
    s.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
    s.set_tcp_stream(tcp);
    s.handshake()
        .map_err(|e| ssh_err(url, "SSH handshake failed", &e))?;
    Ok(s)
}

fn host_key_info(url: &SftpUrl, s: &Session) -> Result<HostKeyInfo, SftpError> {
    let (blob, ty) = s.host_key().ok_or_else(|| SftpError {
        kind: Kind::Network,
        account: account(url),
        message: "the server sent no host key".into(),
    })?;
    Ok(HostKeyInfo {
        fingerprint: fingerprint_of(&Sha256::digest(blob)),
        key_type: key_type_name(ty),
        blob: blob.to_vec(),
    })
}

/// Connects without logging in and returns the server's host key, for
/// `ctferry sftp trust`. Transfers nothing.
pub fn probe_host_key(url: &SftpUrl, timeout: Duration) -> Result<HostKeyInfo, SftpError> {
    let s = open_session(url, timeout)?;
    let info = host_key_info(url, &s)?;
    let _ = s.disconnect(None, "host key probe", None);
    Ok(info)
}

/// The `[host]:port` or `host` name known_hosts uses.
pub fn known_hosts_name(url: &SftpUrl) -> String {
    if url.port == 22 {
        url.host.clone()
    } else {
        format!("[{}]:{}", url.host, url.port)
    }
}

fn check_host_key(t: &Target, s: &Session) -> Result<(), SftpError> {
    let info = host_key_info(&t.url, s)?;
    let refuse = |message: String| SftpError {
        kind: Kind::HostKey,
        account: account(&t.url),
        message,
    };
    match &t.trust {
        HostTrust::Pinned(fp) => {
            if fp.trim_end_matches('=') != info.fingerprint {
                return Err(refuse(format!(
                    "the server's host key {} {} is not the pinned {fp}; refusing to connect. If the caregiver changed the server's key, confirm the new fingerprint with them and run `ctferry sftp trust`",
                    info.key_type, info.fingerprint
                )));
            }
        }
        HostTrust::KnownHosts(path) => {
            let mut kh = s
                .known_hosts()
                .map_err(|e| ssh_err(&t.url, "known_hosts", &e))?;
            kh.read_file(path, ssh2::KnownHostFileKind::OpenSSH)
                .map_err(|e| {
                    refuse(format!(
                        "cannot read known_hosts file {}: {}",
                        path.display(),
                        e.message()
                    ))
                })?;
            match kh.check_port(&t.url.host, t.url.port, &info.blob) {
                ssh2::CheckResult::Match => {}
                ssh2::CheckResult::Mismatch => {
                    return Err(refuse(format!(
                        "the server's host key {} {} differs from the one in {}; refusing to connect. Confirm the new fingerprint with the caregiver and run `ctferry sftp trust`",
                        info.key_type,
                        info.fingerprint,
                        path.display()
                    )))
                }
                _ => {
                    return Err(refuse(format!(
                        "{} has no key for {}; the server shows {} {}. Run `ctferry sftp trust` after confirming it with the caregiver",
                        path.display(),
                        known_hosts_name(&t.url),
                        info.key_type,
                        info.fingerprint
                    )))
                }
            }
        }
    }
    Ok(())
}

/// What a known_hosts file says about a host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Match,
    Mismatch,
    Absent,
}

/// Looks `info` up in the known_hosts file `path` (a missing file knows nothing).
pub fn known_hosts_check(
    path: &Path,
    url: &SftpUrl,
    info: &HostKeyInfo,
) -> Result<Known, SftpError> {
    if !path.exists() {
        return Ok(Known::Absent);
    }
    let local = |message: String| SftpError {
        kind: Kind::Local,
        account: account(url),
        message,
    };
    let s = Session::new().map_err(|e| local(e.message().to_string()))?;
    let mut kh = s
        .known_hosts()
        .map_err(|e| local(e.message().to_string()))?;
    kh.read_file(path, ssh2::KnownHostFileKind::OpenSSH)
        .map_err(|e| local(format!("cannot read {}: {}", path.display(), e.message())))?;
    Ok(match kh.check_port(&url.host, url.port, &info.blob) {
        ssh2::CheckResult::Match => Known::Match,
        ssh2::CheckResult::Mismatch => Known::Mismatch,
        _ => Known::Absent,
    })
}

/// Writes `info` into the known_hosts file `path` for `url`'s host and port,
/// replacing plain (unhashed) lines for that name; other lines are kept.
pub fn known_hosts_add(path: &Path, url: &SftpUrl, info: &HostKeyInfo) -> std::io::Result<()> {
    use base64::Engine;
    let name = known_hosts_name(url);
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut out = String::new();
    for line in old.lines() {
        let hosts = line.split_whitespace().next().unwrap_or("");
        if !line.trim_start().starts_with('#') && hosts.split(',').any(|h| h == name) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "{name} {} {}\n",
        info.key_type,
        base64::engine::general_purpose::STANDARD.encode(&info.blob)
    ));
    let tmp = path.with_extension("ctferry-tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

/// Connects, checks the host key against the pin, logs in and opens SFTP.
pub fn connect(t: &Target) -> Result<Connection, SftpError> {
    let s = open_session(&t.url, t.timeout)?;
    check_host_key(t, &s)?;
    match &t.auth {
        Auth::Password(p) => s.userauth_password(&t.url.user, p.expose()),
        Auth::Identity { key, passphrase } => {
            if !key.exists() {
                return Err(SftpError {
                    kind: Kind::Local,
                    account: account(&t.url),
                    message: format!("the identity file {} does not exist", key.display()),
                });
            }
            s.userauth_pubkey_file(
                &t.url.user,
                None,
                key,
                passphrase.as_ref().map(|p| p.expose()),
            )
        }
    }
    .map_err(|e| ssh_err(&t.url, "login refused", &e))?;
    if !s.authenticated() {
        return Err(SftpError {
            kind: Kind::Auth,
            account: account(&t.url),
            message: "login refused (check the user name, password or key with the caregiver)"
                .into(),
        });
    }
    let sftp = s
        .sftp()
        .map_err(|e| ssh_err(&t.url, "the server offers no SFTP", &e))?;
    Ok(Connection {
        url: t.url.clone(),
        sftp,
        session: s,
        pause_after_first_chunk: crate::failpoint::is_armed("sftp-mid-upload"),
    })
}

/// A file in the area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
}

impl Connection {
    fn err(&self, what: &str, e: &ssh2::Error) -> SftpError {
        ssh_err(&self.url, what, e)
    }

    fn size_of(&self, name: &str) -> Result<Option<u64>, SftpError> {
        match self.sftp.stat(&self.url.path(name)) {
            Ok(st) => Ok(Some(st.size.unwrap_or(0))),
            Err(e) if e.code() == ErrorCode::SFTP(2) => Ok(None),
            Err(e) => Err(self.err(&format!("cannot look at {name}"), &e)),
        }
    }

    /// Creates (or truncates) a remote file for writing.
    fn create(&self, path: &Path, what: &str) -> Result<ssh2::File, SftpError> {
        self.sftp
            .open_mode(
                path,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o640,
                OpenType::File,
            )
            .map_err(|e| self.err(what, &e))
    }

    /// Reads a remote file in 1 MiB pieces, handing each to `f`; returns the bytes read.
    fn read_each(
        &self,
        name: &str,
        mut f: impl FnMut(&[u8]) -> Result<(), SftpError>,
    ) -> Result<u64, SftpError> {
        let mut file = self
            .sftp
            .open(self.url.path(name))
            .map_err(|e| self.err(&format!("cannot open {name}"), &e))?;
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| io_err(&self.url, Kind::Network, &format!("reading {name}"), &e))?;
            if n == 0 {
                return Ok(got);
            }
            f(&buf[..n])?;
            got += n as u64;
        }
    }

    /// SHA-256 (hex) of a remote file, read back.
    pub fn sha256(&self, name: &str) -> Result<String, SftpError> {
        let mut h = Sha256::new();
        self.read_each(name, |b| {
            h.update(b);
            Ok(())
        })?;
        Ok(hex(&h.finalize()))
    }

    /// Uploads `local` (whose size and SHA-256 are known) as `name`; see the
    /// module doc for the contract.
    pub fn upload(
        &self,
        local: &Path,
        name: &str,
        size: u64,
        sha256: &str,
    ) -> Result<Uploaded, SftpError> {
        if let Some(have) = self.size_of(name)? {
            if have == size && self.sha256(name)? == sha256 {
                return Ok(Uploaded::AlreadyThere);
            }
            return Err(SftpError {
                kind: Kind::Verify,
                account: account(&self.url),
                message: format!(
                    "a different file named {name} ({have} bytes) is already in the area; ctferry will not overwrite it. Ask the caregiver what it is, move it away, then deliveries continue"
                ),
            });
        }
        let part = format!("{name}.part");
        let part_path = self.url.path(&part);
        match self.sftp.unlink(&part_path) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::SFTP(2) => {}
            Err(e) => return Err(self.err(&format!("cannot remove the leftover {part}"), &e)),
        }
        let mut from = crate::private::open_regular(local).map_err(|e| SftpError {
            kind: Kind::Local,
            account: account(&self.url),
            message: format!("cannot open the outbox file {}: {e}", local.display()),
        })?;
        let mut to = self.create(&part_path, &format!("cannot create {part}"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        loop {
            let n = read_full(&mut from, &mut buf).map_err(|e| SftpError {
                kind: Kind::Local,
                account: account(&self.url),
                message: format!("cannot read the outbox file {}: {e}", local.display()),
            })?;
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n])
                .map_err(|e| io_err(&self.url, Kind::Network, &format!("writing {part}"), &e))?;
            if sent == 0 && self.pause_after_first_chunk {
                crate::failpoint::pause("sftp-mid-upload");
            }
            sent += n as u64;
        }
        // fsync@openssh.com where offered; not every server has it.
        let _ = to.fsync();
        to.close()
            .map_err(|e| self.err(&format!("cannot close {part}"), &e))?;
        drop(to);
        let remote = self.size_of(&part)?;
        if remote != Some(size) {
            return Err(SftpError {
                kind: Kind::Network,
                account: account(&self.url),
                message: format!(
                    "{part} holds {} bytes on the server, {size} were sent; will upload again",
                    remote.map(|s| s.to_string()).unwrap_or_else(|| "no".into())
                ),
            });
        }
        self.sftp
            .rename(&part_path, &self.url.path(name), None)
            .map_err(|e| self.err(&format!("cannot rename {part} to {name}"), &e))?;
        Ok(Uploaded::Sent)
    }

    /// Files in the area whose names end with `suffix` (partial uploads,
    /// `.part`, are never listed), sorted by name.
    pub fn list(&self, suffix: &str) -> Result<Vec<RemoteFile>, SftpError> {
        let dir = if self.url.dir.is_empty() {
            PathBuf::from(".")
        } else {
            PathBuf::from(format!("/{}", self.url.dir.trim_start_matches('/')))
        };
        let entries = self
            .sftp
            .readdir(&dir)
            .map_err(|e| self.err("cannot list the folder", &e))?;
        let mut out: Vec<RemoteFile> = entries
            .into_iter()
            .filter(|(_, st)| st.is_file())
            .filter_map(|(p, st)| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                name.ends_with(suffix).then_some(RemoteFile {
                    name,
                    size: st.size.unwrap_or(0),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Downloads `name` to `dest` via `dest.part` + fsync + rename, checking
    /// the size; returns the bytes written.
    pub fn download(&self, name: &str, size: u64, dest: &Path) -> Result<u64, SftpError> {
        let local = |what: &str, e: std::io::Error| SftpError {
            kind: Kind::Local,
            account: account(&self.url),
            message: format!("{what} {}: {e}", dest.display()),
        };
        let part = PathBuf::from(format!("{}.part", dest.display()));
        let mut out = crate::private::create_new(&part).map_err(|e| local("cannot create", e))?;
        let got = self.read_each(name, |b| {
            out.write_all(b).map_err(|e| local("cannot write", e))
        });
        let got = match got {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        if got != size {
            let _ = std::fs::remove_file(&part);
            return Err(SftpError {
                kind: Kind::Network,
                account: account(&self.url),
                message: format!(
                    "{name}: received {got} bytes, the listing said {size}; will try again"
                ),
            });
        }
        out.sync_all().map_err(|e| local("cannot sync", e))?;
        std::fs::rename(&part, dest).map_err(|e| local("cannot rename into place", e))?;
        Ok(got)
    }

    /// Checks that the folder exists and is writable for this account:
    /// creates and removes an empty `.ctferry-check.part` (readers ignore
    /// `.part` files).
    pub fn probe_write(&self) -> Result<(), SftpError> {
        self.list(crate::format::package::SUFFIX)?;
        let name = ".ctferry-check.part";
        let p = self.url.path(name);
        drop(self.create(&p, &format!("cannot create a file in the folder ({name})"))?);
        self.sftp
            .unlink(&p)
            .map_err(|e| self.err(&format!("cannot remove {name}"), &e))
    }

    pub fn close(self) {
        let _ = self.session.disconnect(None, "done", None);
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = SftpUrl::parse("sftp://norr@10.0.0.5:2222/in/ctferry").unwrap();
        assert_eq!(
            u,
            SftpUrl {
                user: "norr".into(),
                host: "10.0.0.5".into(),
                port: 2222,
                dir: "in/ctferry".into()
            }
        );
        assert_eq!(u.path("x"), PathBuf::from("/in/ctferry/x"));
        let u = SftpUrl::parse("sftp://a@host").unwrap();
        assert_eq!((u.port, u.dir.as_str()), (22, ""));
        assert_eq!(u.path("x"), PathBuf::from("x"));
        assert_eq!(SftpUrl::parse("sftp://a@[::1]:23/d").unwrap().host, "::1");
        assert!(SftpUrl::parse("sftp://a:secret@h/d")
            .unwrap_err()
            .to_string()
            .contains("password"));
        assert!(SftpUrl::parse("ftp://a@h").is_err());
        assert!(SftpUrl::parse("sftp://h/d").is_err());
        assert!(SftpUrl::parse("sftp://a@h:99999/d").is_err());
        assert_eq!(
            known_hosts_name(&SftpUrl::parse("sftp://a@h:2222").unwrap()),
            "[h]:2222"
        );
        assert_eq!(
            known_hosts_name(&SftpUrl::parse("sftp://a@h").unwrap()),
            "h"
        );
    }

    #[test]
    fn fingerprint_form() {
        // ssh-keygen -l prints SHA256 fingerprints as unpadded base64.
        let fp = fingerprint_of(&[0u8; 32]);
        assert_eq!(fp, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn errors_say_if_retry_helps() {
        let e = |kind| SftpError {
            kind,
            account: "a@h:22/d".into(),
            message: "m".into(),
        };
        assert!(e(Kind::Network).retryable());
        assert!(e(Kind::Auth).retryable());
        assert!(!e(Kind::HostKey).retryable());
        assert_eq!(e(Kind::Auth).to_string(), "a@h:22/d: m");
    }
}
