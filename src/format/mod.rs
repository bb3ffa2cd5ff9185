//! The package format: the one thing that leaves the region for a caregiver,
//! specified in docs/FORMAT.md (and read independently by
//! docs/read_package.py).
//!
//! - `cbor`: the bounded CBOR encoder/decoder the format is built on;
//! - `value`: SQL Server column types and exact typed values, and how each
//!   is written;
//! - `crypto`: OpenPGP (sign with the region's key, encrypt to one caregiver;
//!   open and verify);
//! - `schema`: tables and columns as a package describes them;
//! - `package`: the streaming writer and reader of a package file;
//! - `change`: table changes (format 2): create, alter, reload or drop a
//!   copy's table before its rows;
//! - `inspect`: a verified package shown to a person.
//!
//! This folder knows nothing of SQL Server, configuration files or state: it
//! turns typed rows into a sealed file and back.

pub mod cbor;
pub mod change;
pub mod crypto;
pub mod inspect;
pub mod package;
pub mod schema;
pub mod validity;
pub mod value;
