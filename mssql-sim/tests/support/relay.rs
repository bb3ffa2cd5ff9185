//! A TCP relay that records what a client sends a server, and the SQL
//! batches in those bytes: what a network observer sees, and the exact
//! statements a client library sends on its own (such as tiberius's
//! `INSERT BULK`). Shared by mssql-sim's and ctferry's tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// A TCP relay on 127.0.0.1 in front of `target` that records what the
/// client sends: what a network observer between client and server sees.
pub fn recording_relay(target: std::net::SocketAddr) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(target) else {
                return;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// The text of each SQL batch (TDS packet type 1) in `bytes`, which must be
/// a plaintext client-to-server stream from its first byte: packets are
/// joined up to end-of-message, ALL_HEADERS skipped, UTF-16LE decoded.
pub fn sql_batches(bytes: &[u8]) -> Vec<String> {
    let mut batches = Vec::new();
    let mut message: Vec<u8> = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let (kind, status) = (bytes[at], bytes[at + 1]);
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        assert!(
            len >= 8 && at + len <= bytes.len(),
            "a TDS packet at byte {at}"
        );
        message.extend_from_slice(&bytes[at + 8..at + len]);
        at += len;
        if status & 1 == 1 {
            if kind == 1 {
                let headers = u32::from_le_bytes(message[..4].try_into().unwrap()) as usize;
                let units: Vec<u16> = message[headers..]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                batches.push(String::from_utf16(&units).unwrap());
            }
            message.clear();
        }
    }
    batches
}
