//! SQL Server access for both sides: the region's source and a caregiver's
//! copy are both reached through `client` (a small synchronous interface
//! over tiberius), and every T-SQL statement ctferry sends is a function in
//! `sql`, so a DBA can review all of it in one place.

pub mod client;
pub mod sql;
