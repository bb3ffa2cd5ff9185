//! Small fixtures shared by the integration tests and the benchmarks
//! (included with `#[path]`): table schemas, key pairs, a private folder
//! for GnuPG, and a deterministic generator so that a failing seed or a
//! benchmark run can be replayed.
#![allow(dead_code)]

use ctferry::format::crypto::{self, SecretKey};
use ctferry::format::package::{ColumnSchema, TableSchema};
use ctferry::format::value::ColumnType;
use std::path::Path;
use std::process::Command;

/// A column of a package's table schema (never masked).
pub fn col(name: &str, ty: &str, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        ty: ColumnType::parse(ty).unwrap(),
        nullable,
        masked: false,
        collation: None,
    }
}

/// A table schema keyed by its first column: `(name, type, nullable)` each.
pub fn schema(name: &str, columns: &[(&str, &str, bool)]) -> TableSchema {
    TableSchema {
        name: name.into(),
        columns: columns
            .iter()
            .map(|(n, t, null)| col(n, t, *null))
            .collect(),
        key: vec![columns[0].0.into()],
    }
}

/// Generates a key pair `NAME.pub.asc` / `NAME.sec.asc` in `dir` and loads
/// the secret one.
pub fn key(dir: &Path, name: &str) -> SecretKey {
    let (public, secret) =
        crypto::generate(name, &format!("{name}@example.invalid"), None).unwrap();
    std::fs::write(dir.join(format!("{name}.pub.asc")), public).unwrap();
    let p = dir.join(format!("{name}.sec.asc"));
    std::fs::write(&p, secret).unwrap();
    SecretKey::load(&p, None).unwrap()
}

/// A folder under /tmp readable by its owner only (GnuPG refuses a home
/// others can read, and its socket path must stay short).
pub fn private_tmp(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    dir
}

/// Starts gpg-agent for `home` and waits until it answers, so that the
/// first `gpg` command does not race the agent's start (on a loaded
/// machine an autostarted agent can miss gpg's connect timeout: "can't
/// connect to the agent").
pub fn start_gpg_agent(home: &Path) {
    for _ in 0..5 {
        let ok = Command::new("gpgconf")
            .arg("--homedir")
            .arg(home)
            .args(["--launch", "gpg-agent"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let answers = ok
            && Command::new("gpg-connect-agent")
                .arg("--homedir")
                .arg(home)
                .arg("/bye")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
        if answers {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `gpg` with home folder `home`, never asking anything (batch, loopback
/// pinentry).
pub fn gpg_command(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.arg("--homedir").arg(home).args([
        "--batch",
        "--yes",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
    ]);
    cmd
}

/// Runs the `ctferry` binary with `args`, `-c config` and `env`;
/// (success, stdout, stderr).
pub fn run_ctferry(args: &[&str], config: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctferry"));
    cmd.args(args).arg("-c").arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// xorshift: deterministic, so a run can be replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Every file under `dir`, at any depth.
pub fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
