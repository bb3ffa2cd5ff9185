//! `ctferry run --metrics ADDR`: a small HTTP/1.1 server on its own thread
//! with two answers, both from the snapshot `run` hands over after every
//! cycle (`ctferry::publisher::monitor`):
//! - `GET /metrics`: Prometheus text format;
//! - `GET /health`: 200 when every caregiver is fresh, 503 with the
//!   reasons when one is stale (or before the first cycle).
//!
//! It reads one request line per connection (at most 8 KiB, 5 s), answers
//! and closes; nothing it receives reaches the publisher. The figures are
//! counts, times and HSA ids, no row data; bind it to loopback, or to an
//! address only the monitoring server reaches.

use anyhow::Result;
use ctferry::config::Config;
use ctferry::publisher::monitor::{self, Snapshot};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Binds `addr` (an error now if it cannot) and serves on a thread.
pub fn serve(
    addr: SocketAddr,
    cfg: Arc<Config>,
    shared: Arc<Mutex<Option<Snapshot>>>,
) -> Result<()> {
    let listener = TcpListener::bind(addr)?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics and /health");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(c) => {
                    if let Err(e) = answer(c, &cfg, &shared) {
                        tracing::debug!(error = %e, "metrics request");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics: accepting a connection failed"),
            }
        }
    });
    Ok(())
}

fn answer(mut c: TcpStream, cfg: &Config, shared: &Mutex<Option<Snapshot>>) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new((&c).take(8192)).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let snap = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let now = ctferry::time::now();
    let (code, body, kind) = match (method, target, snap) {
        ("GET", "/metrics", Some(s)) => (
            "200 OK",
            monitor::prometheus(&s, cfg, now),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        ("GET", "/health", Some(s)) => match monitor::health(&s, cfg, now) {
            Ok(b) => ("200 OK", b, "text/plain; charset=utf-8"),
            Err(b) => ("503 Service Unavailable", b, "text/plain; charset=utf-8"),
        },
        ("GET", "/metrics" | "/health", None) => (
            "503 Service Unavailable",
            "starting: no status yet\n".into(),
            "text/plain; charset=utf-8",
        ),
        ("GET", _, _) => (
            "404 Not Found",
            "try /metrics or /health\n".into(),
            "text/plain; charset=utf-8",
        ),
        _ => (
            "405 Method Not Allowed",
            "GET only\n".into(),
            "text/plain; charset=utf-8",
        ),
    };
    write!(
        c,
        "HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    c.flush()
}
