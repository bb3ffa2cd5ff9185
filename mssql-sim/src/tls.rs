//! TLS as SQL Server 2016–2022 does it over TDS 7.x (MS-TDS 2.2.6.5 and
//! 3.3.5.x): the encryption option is negotiated in PRELOGIN, the TLS
//! handshake then travels inside PRELOGIN (0x12) packets, and once it is
//! complete TLS records carry the TDS packets directly on the wire.
//!
//! What the server answers (`negotiate`, MS-TDS 2.2.6.5, the ENCRYPTION
//! table):
//!
//! | client sends | no certificate | certificate | certificate, `--force-encryption` |
//! |---|---|---|---|
//! | ENCRYPT_OFF | NOT_SUP, plaintext | OFF: TLS for LOGIN7 only | REQ: TLS for the whole connection |
//! | ENCRYPT_ON / ENCRYPT_REQ | NOT_SUP (the client gives up) | ON: TLS for the whole connection | ON: the same |
//! | ENCRYPT_NOT_SUP | NOT_SUP, plaintext | NOT_SUP, plaintext | REQ, then the connection is closed |
//!
//! "TLS for LOGIN7 only" (login-only encryption): the client sends LOGIN7
//! through TLS and then drops TLS; the login response and everything after
//! it are plaintext, as with SQL Server when encryption is off.
//!
//! The protocol is TLS 1.2, as SQL Server's over TDS 7.x.
//!
//! The handshake runs on the connection's thread before the connection is
//! split into a reader and a writer; afterwards `TlsReader` and `TlsWriter`
//! share the rustls connection behind a mutex, so the reader thread can
//! wait for the next message while the executor writes a response.

use crate::tds::packet::{self, read_message, write_message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// PRELOGIN ENCRYPTION values (MS-TDS 2.2.6.5).
pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

/// The server's certificate and whether it forces encryption.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM: the server certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// SQL Server's "Force Encryption": every connection is encrypted, and a
    /// client that cannot encrypt is disconnected.
    pub force_encryption: bool,
}

/// A loaded TLS setup.
pub struct Tls {
    config: Arc<ServerConfig>,
    force: bool,
}

fn bad(path: &Path, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {what}: {e}", path.display()),
    )
}

impl Tls {
    /// Reads the certificate chain and key. TLS 1.2 only, as SQL Server over
    /// TDS 7.x (TLS 1.3 comes with TDS 8.0 "strict", which is not
    /// simulated): the clients' PRELOGIN-wrapped handshake loops send a
    /// flight and wait for the server's answer, which TLS 1.2's last flight
    /// (the server's Finished) gives and TLS 1.3 does not. No client
    /// certificates, no session tickets.
    pub fn load(c: &TlsConfig) -> io::Result<Tls> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
            .map_err(|e| bad(&c.cert, "cannot read the certificate", e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&c.cert, "not a PEM certificate", e))?;
        if certs.is_empty() {
            return Err(bad(
                &c.cert,
                "no certificate",
                "the file holds no CERTIFICATE block",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&c.key)
            .map_err(|e| bad(&c.key, "cannot read the private key", e))?;
        let mut config = ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&c.cert, "the certificate and key do not go together", e))?;
        config.send_tls13_tickets = 0;
        Ok(Tls {
            config: Arc::new(config),
            force: c.force_encryption,
        })
    }
}

/// What the connection does after PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS at all.
    Plain,
    /// TLS for the LOGIN7 message only.
    LoginOnly,
    /// TLS for the whole connection.
    Full,
    /// The client cannot encrypt and the server requires it: close.
    Refuse,
}

/// The PRELOGIN ENCRYPTION value to answer and what follows (see the
/// module doc). `client` is the client's value (`None`: it sent none,
/// which MS-TDS treats as ENCRYPT_OFF).
pub fn negotiate(client: Option<u8>, tls: Option<&Tls>) -> (u8, Mode) {
    let client = client.unwrap_or(ENCRYPT_OFF);
    let Some(tls) = tls else {
        return (ENCRYPT_NOT_SUP, Mode::Plain);
    };
    match (client, tls.force) {
        (ENCRYPT_NOT_SUP, false) => (ENCRYPT_NOT_SUP, Mode::Plain),
        (ENCRYPT_NOT_SUP, true) => (ENCRYPT_REQ, Mode::Refuse),
        (ENCRYPT_OFF, false) => (ENCRYPT_OFF, Mode::LoginOnly),
        (ENCRYPT_OFF, true) => (ENCRYPT_REQ, Mode::Full),
        // ENCRYPT_ON, ENCRYPT_REQ (and values this server does not know,
        // treated as a wish to encrypt).
        _ => (ENCRYPT_ON, Mode::Full),
    }
}

fn tls_err(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

/// Sends what rustls has to send, wrapped in one PRELOGIN message (the
/// handshake's transport until it is complete).
fn send_flight(conn: &mut ServerConnection, sock: &mut TcpStream) -> io::Result<()> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    write_message(
        sock,
        packet::PT_PRELOGIN,
        &out,
        packet::DEFAULT_PACKET_SIZE,
        0,
    )
}

/// Runs the TLS handshake inside PRELOGIN packets on `sock` and returns
/// the connection, ready to carry TDS packets as TLS records.
pub fn handshake(tls: &Tls, sock: &mut TcpStream) -> io::Result<ServerConnection> {
    let mut conn = ServerConnection::new(tls.config.clone()).map_err(tls_err)?;
    while conn.is_handshaking() {
        if conn.wants_write() {
            send_flight(&mut conn, sock)?;
            continue;
        }
        let Some(msg) = read_message(sock)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection during the TLS handshake",
            ));
        };
        if msg.packet_type != packet::PT_PRELOGIN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "expected a PRELOGIN packet carrying the TLS handshake, got type {:#04x}",
                    msg.packet_type
                ),
            ));
        }
        let mut rd = &msg.payload[..];
        while !rd.is_empty() {
            conn.read_tls(&mut rd)?;
            if let Err(e) = conn.process_new_packets() {
                // Tell the client why (the alert), then give up.
                let _ = send_flight(&mut conn, sock);
                return Err(tls_err(e));
            }
        }
    }
    // The server's last flight (TLS 1.2: ChangeCipherSpec and Finished)
    // still travels in a PRELOGIN packet: the client is handshaking until
    // it has read it.
    if conn.wants_write() {
        send_flight(&mut conn, sock)?;
    }
    Ok(conn)
}

fn lock(c: &Mutex<ServerConnection>) -> std::sync::MutexGuard<'_, ServerConnection> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// The reading half of a TLS connection: TDS bytes out, TLS records in.
pub struct TlsReader {
    sock: TcpStream,
    conn: Arc<Mutex<ServerConnection>>,
}

/// The writing half: TDS bytes in, TLS records out.
pub struct TlsWriter {
    sock: TcpStream,
    conn: Arc<Mutex<ServerConnection>>,
}

/// Splits a handshaken connection over `sock` into its two halves.
pub fn split(sock: &TcpStream, conn: ServerConnection) -> io::Result<(TlsReader, TlsWriter)> {
    let conn = Arc::new(Mutex::new(conn));
    Ok((
        TlsReader {
            sock: sock.try_clone()?,
            conn: conn.clone(),
        },
        TlsWriter {
            sock: sock.try_clone()?,
            conn,
        },
    ))
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut c = lock(&self.conn);
                match c.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            // No plaintext buffered: wait for records without holding the
            // lock, so the writer can go on.
            let mut raw = [0u8; 16 * 1024];
            let n = self.sock.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut c = lock(&self.conn);
            let mut rd = &raw[..n];
            while !rd.is_empty() {
                c.read_tls(&mut rd)?;
                c.process_new_packets().map_err(tls_err)?;
            }
            // Alerts and key updates go out at once.
            while c.wants_write() {
                c.write_tls(&mut self.sock)?;
            }
        }
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut c = lock(&self.conn);
        let n = c.writer().write(buf)?;
        while c.wants_write() {
            c.write_tls(&mut self.sock)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut c = lock(&self.conn);
        c.writer().flush()?;
        while c.wants_write() {
            c.write_tls(&mut self.sock)?;
        }
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(force: bool) -> Tls {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let c = dir.path().join("c.pem");
        let k = dir.path().join("k.pem");
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        Tls::load(&TlsConfig {
            cert: c,
            key: k,
            force_encryption: force,
        })
        .unwrap()
    }

    #[test]
    fn the_documented_encryption_table() {
        let (plain, forced) = (tls(false), tls(true));
        let none = [
            None,
            Some(ENCRYPT_OFF),
            Some(ENCRYPT_ON),
            Some(ENCRYPT_NOT_SUP),
        ];
        // (server, client, answer, what follows); no certificate: never encrypts.
        let mut cases: Vec<(Option<&Tls>, Option<u8>, u8, Mode)> = none
            .iter()
            .map(|c| (None, *c, ENCRYPT_NOT_SUP, Mode::Plain))
            .collect();
        let (p, f) = (Some(&plain), Some(&forced));
        use Mode::*;
        cases.extend([
            (p, Some(ENCRYPT_OFF), ENCRYPT_OFF, LoginOnly),
            (p, None, ENCRYPT_OFF, LoginOnly),
            (p, Some(ENCRYPT_ON), ENCRYPT_ON, Full),
            (p, Some(ENCRYPT_REQ), ENCRYPT_ON, Full),
            (p, Some(ENCRYPT_NOT_SUP), ENCRYPT_NOT_SUP, Plain),
            (f, Some(ENCRYPT_OFF), ENCRYPT_REQ, Full),
            (f, Some(ENCRYPT_ON), ENCRYPT_ON, Full),
            (f, Some(ENCRYPT_NOT_SUP), ENCRYPT_REQ, Refuse),
        ]);
        for (server, client, answer, mode) in cases {
            assert_eq!(negotiate(client, server), (answer, mode), "{client:?}");
        }
    }

    #[test]
    fn a_wrong_key_or_a_missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let c = dir.path().join("c.pem");
        let k = dir.path().join("k.pem");
        std::fs::write(&c, a.cert.pem()).unwrap();
        std::fs::write(&k, b.signing_key.serialize_pem()).unwrap();
        let cfg = |cert: &Path, key: &Path| TlsConfig {
            cert: cert.into(),
            key: key.into(),
            force_encryption: false,
        };
        let e = Tls::load(&cfg(&c, &k)).err().unwrap().to_string();
        assert!(e.contains("do not go together"), "{e}");
        let e = Tls::load(&cfg(&dir.path().join("none.pem"), &k))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("none.pem") && e.contains("cannot read"), "{e}");
    }
}
