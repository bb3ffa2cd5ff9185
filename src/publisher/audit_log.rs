//! The audit log file, `<state>/audit.log`: every disclosure record (a
//! package made, a delivery done or failed) as one JSON line, append-only
//! and hash-chained, so that the region can show a regulator what was sent
//! to whom and anyone can see whether a line was changed, removed or
//! inserted (`ctferry audit --verify`).
//!
//! Why a file next to the state and not only records in it: `ctferry run`
//! holds the state's exclusive lock for as long as it runs, and the audit
//! must be readable meanwhile. The state stays the source of truth (its
//! `a/` and `l/` records are never removed); the file is written from it.
//!
//! Contract:
//! - **Format**: `{"n":N,"q":Q,"prev":"<hex>","record":{...}}` per line.
//!   `n` counts lines from 1; `prev` is the SHA-256 of the previous line's
//!   bytes (without its newline), 64 zeros for the first; `q` is the
//!   state's queue id of the record (0 for lines rebuilt from the state),
//!   so a record appended before a crash is never appended twice.
//! - **Durability**: lines are appended and fsynced after the state commit
//!   that made the records; a crash between the two leaves them queued in
//!   the state, and the next commit appends them.
//! - **Readers** never lock: a last line without its newline is one being
//!   written and is left out.

use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The file's name inside the state folder.
pub const FILE: &str = "audit.log";

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the log of a state folder is.
pub fn path(state: &Path) -> PathBuf {
    state.join(FILE)
}

/// One line of the log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Line {
    pub n: u64,
    pub q: u64,
    pub prev: String,
    pub record: serde_json::Value,
}

/// Where the chain ends: the last line's number, queue id and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    pub n: u64,
    pub q: u64,
    pub hash: String,
}

impl Tail {
    /// Before the first line.
    pub fn start() -> Tail {
        Tail {
            n: 0,
            q: 0,
            hash: GENESIS.into(),
        }
    }
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The last complete line of the log (Tail::start for an empty or missing
/// file). Reads only the end of the file.
pub fn tail(path: &Path) -> io::Result<Tail> {
    let mut f = match crate::private::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tail::start()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut back = 4096u64;
    loop {
        let from = len.saturating_sub(back);
        f.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Complete lines end in '\n'; the last complete one is before it.
        let end = match buf.iter().rposition(|b| *b == b'\n') {
            Some(e) => e,
            None if from == 0 => return Ok(Tail::start()),
            None => {
                back *= 2;
                continue;
            }
        };
        let start = buf[..end].iter().rposition(|b| *b == b'\n').map(|s| s + 1);
        let start = match start {
            Some(s) => s,
            None if from == 0 => 0,
            None => {
                back *= 2;
                continue;
            }
        };
        let line = &buf[start..end];
        let parsed: Line = serde_json::from_slice(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the last line of {} is not an audit line ({e})",
                    path.display()
                ),
            )
        })?;
        return Ok(Tail {
            n: parsed.n,
            q: parsed.q,
            hash: sha256_hex(line),
        });
    }
}

/// Appends `records` (queue id, record) after `tail`, chained, and syncs
/// the file to disk. Returns the new tail.
pub fn append(path: &Path, tail: &Tail, records: &[(u64, serde_json::Value)]) -> io::Result<Tail> {
    if records.is_empty() {
        return Ok(tail.clone());
    }
    let mut t = tail.clone();
    let mut out = Vec::new();
    for (q, record) in records {
        let line = serde_json::to_vec(&Line {
            n: t.n + 1,
            q: *q,
            prev: t.hash.clone(),
            record: record.clone(),
        })
        .map_err(io::Error::other)?;
        t = Tail {
            n: t.n + 1,
            q: (*q).max(t.q),
            hash: sha256_hex(&line),
        };
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    let mut f = open_append(path)?;
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(t)
}

/// Opens the log for appending: a regular file of this account only, never
/// through a link.
fn open_append(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

/// Why the log does not verify: the first broken line and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} line {line}: {why}; every line from there on is suspect, and the state's own records (ctferry audit with the publisher stopped) are the reference")]
    Broken {
        path: String,
        line: u64,
        why: String,
    },
}

/// Every complete line, checked: numbered from 1 without a gap, each
/// `prev` the hash of the line before. The first broken line is an error.
pub fn read_verified(path: &Path) -> Result<Vec<Line>, LogError> {
    let p = path.display().to_string();
    let io_err = |e| LogError::Io {
        path: p.clone(),
        source: e,
    };
    let f = crate::private::open_regular(path).map_err(io_err)?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let got = r.read_until(b'\n', &mut buf).map_err(io_err)?;
        if got == 0 || buf.last() != Some(&b'\n') {
            break; // the end, or a line being written
        }
        let line = &buf[..buf.len() - 1];
        let no = out.len() as u64 + 1;
        let broken = |why: String| LogError::Broken {
            path: p.clone(),
            line: no,
            why,
        };
        let parsed: Line =
            serde_json::from_slice(line).map_err(|e| broken(format!("not an audit line ({e})")))?;
        if parsed.n != no {
            return Err(broken(format!(
                "numbered {} where {no} was expected (a line was removed or inserted before it)",
                parsed.n
            )));
        }
        if parsed.prev != prev {
            return Err(broken(
                "its hash of the previous line does not match that line (the previous line was changed, or a line removed)".into(),
            ));
        }
        prev = sha256_hex(line);
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chained_appends_verify_and_any_edit_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE);
        assert_eq!(tail(&p).unwrap(), Tail::start());
        let t = append(
            &p,
            &Tail::start(),
            &[(0, json!({"a": 1})), (0, json!({"a": 2}))],
        )
        .unwrap();
        assert_eq!(tail(&p).unwrap(), t);
        let t = append(&p, &t, &[(7, json!({"a": 3}))]).unwrap();
        assert_eq!((t.n, t.q), (3, 7));
        assert_eq!(read_verified(&p).unwrap().len(), 3);
        // A partial line being written is left out, not an error.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"n\":4")
            .unwrap();
        assert_eq!(read_verified(&p).unwrap().len(), 3);
        assert_eq!(tail(&p).unwrap(), t);
        let good = std::fs::read_to_string(&p).unwrap();
        // A changed value in line 2 is found at line 3 (its hash no longer matches).
        std::fs::write(&p, good.replacen("{\"a\":2}", "{\"a\":9}", 1)).unwrap();
        match read_verified(&p) {
            Err(LogError::Broken { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        // A removed line is found where the numbering jumps.
        let lines: Vec<&str> = good.lines().collect();
        std::fs::write(&p, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        match read_verified(&p) {
            Err(LogError::Broken { line, why, .. }) => {
                assert_eq!(line, 2);
                assert!(why.contains("numbered 3"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
