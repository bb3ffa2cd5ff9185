//! mssql-sim: a SQL Server simulator for tests.
//!
//! A TDS 7.4 server on loopback, backed by SQLite (one file per database),
//! that SQL Server clients (tiberius, python-tds, FreeTDS, tedious) connect
//! to as if it were SQL Server. It emulates SQL Server as Microsoft
//! documents it, and answers what it does not support with a SQL
//! Server-style error (class 16) that says so. It never bends to one client.
//!
//! ```no_run
//! let server = mssql_sim::Server::start(mssql_sim::Config::new("/tmp/simdata", "Secret#1")).unwrap();
//! println!("listening on {}", server.addr());
//! server.shutdown();
//! ```

pub mod collation;
pub mod engine;
pub mod error;
mod server;
pub mod styles;
pub mod tds;
pub mod tls;
pub mod types;
pub mod xml;

pub use error::SqlError;
pub use server::{Config, Server};
pub use tls::TlsConfig;

/// What `SELECT @@VERSION` returns.
pub fn version_string() -> String {
    format!(
        "Microsoft SQL Server 2022 (RTM) - {} (X64) \n\tmssql-sim {} (SQLite {}) \n\tDeveloper Edition (64-bit)",
        tds::login::PRODUCT_VERSION_STRING,
        env!("CARGO_PKG_VERSION"),
        rusqlite::version()
    )
}
