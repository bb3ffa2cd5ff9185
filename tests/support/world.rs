//! A small region for integration tests: a source simulator with a `Pmo`
//! database, a caregiver's copy simulator with a `Kopia` database, keys for
//! the region and one caregiver (SE-NORR), and the two configuration files
//! around `[[table]]` entries and partition keys the test gives. Included
//! with `#[path]`.
#![allow(dead_code)]

use ctferry::config::{ConnectionString, Secret};
use ctferry::mssql::client::{int_at, Db};
use mssql_sim::{Config, Server, TlsConfig};
use std::path::{Path, PathBuf};

#[path = "fixtures.rs"]
pub mod fixtures;
#[path = "../../mssql-sim/tests/support/pki.rs"]
mod pki;

pub const PW: &str = "World#Passw0rd";

pub struct World {
    pub dir: tempfile::TempDir,
    pub source: Server,
    pub copy: Server,
    /// How the configuration files' connection strings end (their TLS
    /// settings; `encrypt=DANGER_PLAINTEXT` unless set otherwise).
    pub tls: std::cell::RefCell<String>,
    _data: (tempfile::TempDir, tempfile::TempDir),
}

/// A connection string to `db` on `server` (on this machine), ending in `tls`.
pub fn conn_with(server: &Server, db: &str, tls: &str) -> String {
    format!(
        "server=tcp:localhost,{};database={db};user id=sa;{tls}",
        server.addr().port()
    )
}

/// A plaintext connection string to `db` on `server`.
pub fn conn(server: &Server, db: &str) -> String {
    conn_with(server, db, "encrypt=DANGER_PLAINTEXT")
}

/// Connects to `db` on `server` with `tls`; relative paths in it are
/// relative to `base`.
pub fn connect_with(server: &Server, db: &str, tls: &str, base: &Path) -> Db {
    let c = ConnectionString::parse(&conn_with(server, db, tls), base).unwrap();
    Db::connect(&c, &Secret::new(PW.into())).unwrap()
}

pub fn connect(server: &Server, db: &str) -> Db {
    connect_with(server, db, "encrypt=DANGER_PLAINTEXT", Path::new("."))
}

/// The index advice in `ctferry check --json`'s output (`index_warnings`).
pub fn index_warnings(check_json: &str) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(check_json.trim()).unwrap_or_else(|e| panic!("{e}: {check_json}"));
    v["index_warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no index_warnings: {check_json}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// The first column of the first row, as a number.
pub fn count(db: &mut Db, sql: &str) -> i64 {
    int_at(&db.rows("counting", sql, &[]).unwrap()[0], 0).unwrap()
}

impl World {
    /// Both servers, `Pmo` (snapshot isolation and change tracking on) with
    /// `ddl` run in it, an empty `Kopia`, and the keys.
    pub fn new(ddl: &[String]) -> World {
        World::with(
            |data, _| Config::new(data, PW),
            "encrypt=DANGER_PLAINTEXT",
            ddl,
        )
    }

    /// As `new`, with both servers forcing encryption with a test
    /// certificate made for this run (as a region's and a caregiver's
    /// servers are when Microsoft's advice is followed), and the
    /// configuration files trusting its CA (`ca.pem`, next to them).
    pub fn tls_forced(ddl: &[String]) -> World {
        World::with(
            |data, dir| {
                if !dir.join("ca.pem").exists() {
                    pki::write(dir);
                }
                let mut cfg = Config::new(data, PW);
                cfg.tls = Some(TlsConfig {
                    cert: dir.join("server.pem"),
                    key: dir.join("server.key"),
                    force_encryption: true,
                });
                cfg
            },
            "TrustServerCertificateCA=ca.pem",
            ddl,
        )
    }

    /// As `new`, with the servers configured by `server(data folder, the
    /// world's folder)` (written into before they start) and reached with
    /// connection strings ending in `tls`.
    pub fn with(server: impl Fn(&Path, &Path) -> Config, tls: &str, ddl: &[String]) -> World {
        World::build(
            server,
            tls,
            ddl,
            ["CREATE DATABASE Pmo", "CREATE DATABASE Kopia"],
        )
    }

    /// As `new`, with `Pmo` and `Kopia` made by these two statements (a
    /// `COLLATE` clause, say) on servers in their default collation.
    pub fn with_databases(ddl: &[String], create: [&str; 2]) -> World {
        World::build(
            |data, _| Config::new(data, PW),
            "encrypt=DANGER_PLAINTEXT",
            ddl,
            create,
        )
    }

    fn build(
        server: impl Fn(&Path, &Path) -> Config,
        tls: &str,
        ddl: &[String],
        create: [&str; 2],
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = Server::start(server(a.path(), dir.path())).unwrap();
        let copy = Server::start(server(b.path(), dir.path())).unwrap();
        connect_with(&source, "master", tls, dir.path())
            .execute(create[0])
            .unwrap();
        connect_with(&copy, "master", tls, dir.path())
            .execute(create[1])
            .unwrap();
        let w = World {
            dir,
            source,
            copy,
            tls: std::cell::RefCell::new(tls.to_string()),
            _data: (a, b),
        };
        let mut pmo = w.pmo();
        pmo.execute("ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON")
            .unwrap();
        pmo.execute("ALTER DATABASE Pmo SET CHANGE_TRACKING = ON")
            .unwrap();
        for s in ddl {
            pmo.execute(s).unwrap_or_else(|e| panic!("{s}\n{e}"));
        }
        std::fs::create_dir_all(w.path("keys")).unwrap();
        for name in ["region", "norr"] {
            let (public, secret) =
                ctferry::format::crypto::generate(name, &format!("{name}@example.invalid"), None)
                    .unwrap();
            std::fs::write(w.path(&format!("keys/{name}.pub.asc")), public).unwrap();
            std::fs::write(w.path(&format!("keys/{name}.sec.asc")), secret).unwrap();
        }
        w
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn pmo(&self) -> Db {
        connect_with(&self.source, "Pmo", &self.tls.borrow(), self.dir.path())
    }

    pub fn kopia(&self) -> Db {
        connect_with(&self.copy, "Kopia", &self.tls.borrow(), self.dir.path())
    }

    /// ctferry.toml with `tables` (TOML `[[table]]` entries) and SE-NORR
    /// covering `keys` (a TOML array); apply.toml for SE-NORR's copy.
    pub fn configure(&self, tables: &str, keys: &str) {
        let tls = self.tls.borrow();
        let files = [
            (
                "ctferry.toml",
                format!(
                    "[source]\nconnection = \"{}\"\npassword_env = \"PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"keys/region.sec.asc\"\n{tables}\n[[subscriber]]\nhsa_id = \"SE-NORR\"\nkeys = {keys}\npublic_key = \"keys/norr.pub.asc\"\ndeliver = {{ folder = \"out\" }}\n",
                    conn_with(&self.source, "Pmo", &tls)
                ),
            ),
            (
                "apply.toml",
                format!(
                    "[target]\nconnection = \"{}\"\npassword_env = \"PW\"\n[keys]\nsecret_key = \"keys/norr.sec.asc\"\npublisher_keys = [\"keys/region.pub.asc\"]\n[source]\nsubscriber = \"SE-NORR\"\nfolder = \"out\"\n",
                    conn_with(&self.copy, "Kopia", &tls)
                ),
            ),
        ];
        for (name, text) in files {
            std::fs::write(self.path(name), text).unwrap();
        }
    }

    /// Runs ctferry with `args` and the configuration file for the command
    /// (apply.toml for `apply`); (success, stdout, stderr).
    pub fn ctferry(&self, args: &[&str]) -> (bool, String, String) {
        let file = if args.first() == Some(&"apply") {
            "apply.toml"
        } else {
            "ctferry.toml"
        };
        fixtures::run_ctferry(args, &self.path(file), &[("PW", PW)])
    }

    /// Runs ctferry with `args` (and the configuration file for the
    /// command, as `ctferry` picks it) and failpoint `point`; kills it with
    /// SIGKILL when it gets there. Whether it got there.
    #[allow(dead_code)]
    pub fn killed_at(&self, args: &[&str], point: &str) -> bool {
        self.killed_after(args, point, 0)
    }

    /// As `killed_at`, at the point's `after + 1`-th time.
    pub fn killed_after(&self, args: &[&str], point: &str, after: usize) -> bool {
        use std::io::{BufRead, BufReader};
        let file = if args.first() == Some(&"apply") {
            "apply.toml"
        } else {
            "ctferry.toml"
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(args)
            .arg("-c")
            .arg(self.path(file))
            .env("PW", PW)
            .env("CTFERRY_FAILPOINT", point)
            .env("CTFERRY_FAILPOINT_AFTER", after.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut reached = false;
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            if line
                .unwrap()
                .contains(&format!("failpoint {point} reached"))
            {
                reached = true;
                break;
            }
        }
        if reached {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        reached
    }

    /// Like `ctferry`, but the command must succeed.
    pub fn run(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.ctferry(args);
        assert!(ok, "{args:?}:\n{out}{err}");
        out
    }

    /// The package files (`*.ctf.pgp`) under folder `dir`, at any depth,
    /// by file name, with their bytes.
    #[allow(dead_code)]
    pub fn packages(&self, dir: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        fixtures::walk(&self.path(dir))
            .into_iter()
            .filter(|f| f.to_string_lossy().ends_with(".ctf.pgp"))
            .map(|f| {
                (
                    f.file_name().unwrap().to_string_lossy().to_string(),
                    std::fs::read(&f).unwrap(),
                )
            })
            .collect()
    }

    /// One publisher cycle and the caregiver's apply.
    pub fn cycle(&self) {
        self.run(&["once"]);
        self.run(&["apply"]);
    }
}
