//! Shared helpers for the tiberius tests: one simulator per test, in its own
//! temporary folder, and a connected client.

#![allow(dead_code)]

use mssql_sim::{Config, Server};
use tiberius::{Client, Config as TConfig};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub const PASSWORD: &str = "Sim#Passw0rd";

pub struct Sim {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

pub fn start() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config::new(dir.path(), PASSWORD)).unwrap();
    Sim { server, dir }
}

pub type Conn = Client<Compat<TcpStream>>;

pub async fn connect_db(sim: &Sim, db: &str) -> Conn {
    try_connect(&sim.server.ado_string(db)).await.unwrap()
}

pub async fn try_connect(ado: &str) -> tiberius::Result<Conn> {
    let config = TConfig::from_ado_string(ado)?;
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Connects to master, creates database `db`, and connects to it.
pub async fn fresh_db(sim: &Sim, db: &str) -> Conn {
    let mut c = connect_db(sim, "master").await;
    c.simple_query(format!("CREATE DATABASE {db}"))
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    drop(c);
    connect_db(sim, db).await
}

/// Runs a batch, returning the server error if there was one.
pub async fn exec(
    c: &mut Conn,
    sql: &str,
) -> Result<Vec<Vec<tiberius::Row>>, tiberius::error::TokenError> {
    match c.simple_query(sql).await {
        Ok(s) => match s.into_results().await {
            Ok(r) => Ok(r),
            Err(tiberius::error::Error::Server(e)) => Err(e),
            Err(e) => panic!("unexpected client error: {e}"),
        },
        Err(tiberius::error::Error::Server(e)) => Err(e),
        Err(e) => panic!("unexpected client error: {e}"),
    }
}

pub async fn ok(c: &mut Conn, sql: &str) -> Vec<Vec<tiberius::Row>> {
    match exec(c, sql).await {
        Ok(r) => r,
        Err(e) => panic!("{sql}\n  failed: {} {}", e.code(), e.message()),
    }
}

pub async fn err_code(c: &mut Conn, sql: &str) -> u32 {
    match exec(c, sql).await {
        Ok(_) => panic!("{sql}\n  succeeded but an error was expected"),
        Err(e) => e.code(),
    }
}

pub async fn scalar_i64(c: &mut Conn, sql: &str) -> Option<i64> {
    let r = ok(c, sql).await;
    let row = &r[0][0];
    if let Ok(Some(v)) = row.try_get::<i64, _>(0) {
        return Some(v);
    }
    if let Ok(Some(v)) = row.try_get::<i32, _>(0) {
        return Some(v as i64);
    }
    if let Ok(Some(v)) = row.try_get::<i16, _>(0) {
        return Some(v as i64);
    }
    if let Ok(Some(v)) = row.try_get::<u8, _>(0) {
        return Some(v as i64);
    }
    None
}
