//! The SQL engine behind one client connection: runs T-SQL batches against
//! the SQLite file of the current database and produces what SQL Server
//! would send back (result sets, row counts, errors, transaction changes).
//!
//! Transactions map onto SQLite like this:
//! - autocommit statements are SQLite autocommit statements;
//! - a READ COMMITTED transaction starts SQLite's transaction lazily, with
//!   `BEGIN IMMEDIATE` at its first write, so reads before that see the
//!   latest committed data (as READ COMMITTED does) and an idle open
//!   transaction (pytds and pymssql open one right after login) holds no lock;
//! - a SNAPSHOT transaction is a SQLite read transaction (WAL) started at
//!   BEGIN, so every statement sees the data as of its first read; a write
//!   that conflicts with a later commit fails with error 3960, as in SQL Server.
//!
//! SQLite allows one writer at a time per database; a second writer waits
//! (up to the lock timeout) where SQL Server would often proceed. That is
//! stricter than SQL Server, never looser.

mod alias_types;
pub mod catalog;
pub mod ct;
mod ddl;
mod dml;
mod errors;
pub mod functions;
mod names;
mod options;
pub mod parse;
mod procedures;
mod query;
pub mod security;
mod session;
mod table_spec;
mod transaction;
pub mod translate;

pub use catalog::database_id;
pub use session::{Isolation, Out, Session, Shared};
