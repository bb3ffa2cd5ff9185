//! A small region for integration tests: a source simulator with a `Pmo`
//! database, a caregiver's copy simulator with a `Kopia` database, keys for
//! the region and one caregiver (SE-NORR), and the two configuration files
//! around `[[table]]` entries and partition keys the test gives. Included
//! with `#[path]`.
#![allow(dead_code)]

use ctferry::config::{ConnectionString, Secret};
use ctferry::mssql::client::{int_at, Db};
use mssql_sim::{Config, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PW: &str = "World#Passw0rd";

pub struct World {
    pub dir: tempfile::TempDir,
    pub source: Server,
    pub copy: Server,
    _data: (tempfile::TempDir, tempfile::TempDir),
}

/// A plaintext connection string to `db` on `server` (both on this machine).
pub fn conn(server: &Server, db: &str) -> String {
    format!(
        "server=tcp:127.0.0.1,{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
        server.addr().port()
    )
}

pub fn connect(server: &Server, db: &str) -> Db {
    let c = ConnectionString::parse(&conn(server, db), Path::new(".")).unwrap();
    Db::connect(&c, &Secret::new(PW.into())).unwrap()
}

/// The first column of the first row, as a number.
pub fn count(db: &mut Db, sql: &str) -> i64 {
    int_at(&db.rows("counting", sql, &[]).unwrap()[0], 0).unwrap()
}

impl World {
    /// Both servers, `Pmo` (snapshot isolation and change tracking on) with
    /// `ddl` run in it, an empty `Kopia`, and the keys.
    pub fn new(ddl: &[String]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = Server::start(Config::new(a.path(), PW)).unwrap();
        let copy = Server::start(Config::new(b.path(), PW)).unwrap();
        connect(&source, "master")
            .execute("CREATE DATABASE Pmo")
            .unwrap();
        connect(&copy, "master")
            .execute("CREATE DATABASE Kopia")
            .unwrap();
        let w = World {
            dir,
            source,
            copy,
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
        connect(&self.source, "Pmo")
    }

    pub fn kopia(&self) -> Db {
        connect(&self.copy, "Kopia")
    }

    /// ctferry.toml with `tables` (TOML `[[table]]` entries) and SE-NORR
    /// covering `keys` (a TOML array); apply.toml for SE-NORR's copy.
    pub fn configure(&self, tables: &str, keys: &str) {
        std::fs::write(
            self.path("ctferry.toml"),
            format!(
                "[source]\nconnection = \"{}\"\npassword_env = \"PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"keys/region.sec.asc\"\n{tables}\n[[subscriber]]\nhsa_id = \"SE-NORR\"\nkeys = {keys}\npublic_key = \"keys/norr.pub.asc\"\ndeliver = {{ folder = \"out\" }}\n",
                conn(&self.source, "Pmo")
            ),
        )
        .unwrap();
        std::fs::write(
            self.path("apply.toml"),
            format!(
                "[target]\nconnection = \"{}\"\npassword_env = \"PW\"\n[keys]\nsecret_key = \"keys/norr.sec.asc\"\npublisher_keys = [\"keys/region.pub.asc\"]\n[source]\nsubscriber = \"SE-NORR\"\nfolder = \"out\"\n",
                conn(&self.copy, "Kopia")
            ),
        )
        .unwrap();
    }

    /// Runs ctferry with `args` and the configuration file for the command
    /// (apply.toml for `apply`); (success, stdout, stderr).
    pub fn ctferry(&self, args: &[&str]) -> (bool, String, String) {
        let file = if args.first() == Some(&"apply") {
            "apply.toml"
        } else {
            "ctferry.toml"
        };
        let out = Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(args)
            .arg("-c")
            .arg(self.path(file))
            .env("PW", PW)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Like `ctferry`, but the command must succeed.
    pub fn run(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.ctferry(args);
        assert!(ok, "{args:?}:\n{out}{err}");
        out
    }

    /// One publisher cycle and the caregiver's apply.
    pub fn cycle(&self) {
        self.run(&["once"]);
        self.run(&["apply"]);
    }
}
