//! A source database on an in-process mssql-sim for the benchmarks
//! (release build): the server, and connections to its databases as the
//! publisher makes them. Included with `#[path]`.
#![allow(dead_code)]

use ctferry::config::Secret;
use ctferry::mssql::client::Db;

pub const PW: &str = "Bench#Passw0rd";

/// A running simulator with its data folder.
pub struct Sim {
    pub server: mssql_sim::Server,
    _data: tempfile::TempDir,
}

impl Sim {
    /// Starts a simulator and makes `Pmo` with snapshot isolation and
    /// change tracking on; returns it and a connection to `Pmo`.
    pub fn with_pmo() -> (Sim, Db) {
        let data = tempfile::tempdir().unwrap();
        let server = mssql_sim::Server::start(mssql_sim::Config::new(data.path(), PW)).unwrap();
        let sim = Sim {
            server,
            _data: data,
        };
        sim.connect("master")
            .execute("CREATE DATABASE Pmo")
            .unwrap();
        let mut db = sim.connect("Pmo");
        db.execute("ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON")
            .unwrap();
        db.execute("ALTER DATABASE Pmo SET CHANGE_TRACKING = ON")
            .unwrap();
        (sim, db)
    }

    /// The connection string of database `db` (password in CTFERRY_BENCH_PW).
    pub fn conn(&self, db: &str) -> String {
        format!(
            "server=tcp:localhost,{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
            self.server.addr().port()
        )
    }

    pub fn connect(&self, db: &str) -> Db {
        let c = ctferry::config::ConnectionString::parse(&self.conn(db), std::path::Path::new("."))
            .unwrap();
        Db::connect(&c, &Secret::new(PW.into())).unwrap()
    }

    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

/// Fills `table` (columns `cols`) to `n` rows: 1,000 rows made by `first(i)`
/// (i from 1), then doubling with `INSERT ... SELECT TOP (k) <next> FROM
/// table ORDER BY Id`, where `{have}` in `next` is the rows so far.
pub fn fill_doubling(
    db: &mut Db,
    table: &str,
    cols: &str,
    first: impl Fn(i64) -> String,
    next: &str,
    n: i64,
) {
    let rows: Vec<String> = (1..=1000).map(first).collect();
    db.execute(&format!("INSERT INTO {table} VALUES {}", rows.join(", ")))
        .unwrap();
    let mut have = 1000;
    while have < n {
        let add = have.min(n - have);
        db.execute(&format!(
            "INSERT INTO {table} ({cols}) SELECT TOP ({add}) {} FROM {table} ORDER BY Id",
            next.replace("{have}", &have.to_string())
        ))
        .unwrap();
        have += add;
    }
}
