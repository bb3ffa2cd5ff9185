//! Server-side TDS tokens: one function per token, appending to a response
//! buffer. The layouts follow MS-TDS 2.2.7 and `shared/reference/tds-server.md`,
//! including what each client refuses (no FEATUREEXTACK, no TABNAME/COLINFO,
//! only the DONE status bits tiberius knows).

use super::wire::{encode_type_info, encode_value};
use crate::error::SqlError;
use crate::types::{SqlType, Value};

pub const DONE_FINAL: u16 = 0x00;
pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_INXACT: u16 = 0x04;
pub const DONE_COUNT: u16 = 0x10;
pub const DONE_ATTN: u16 = 0x20;

pub const CMD_SELECT: u16 = 0xC1;
pub const CMD_INSERT: u16 = 0xC3;
pub const CMD_DELETE: u16 = 0xC4;
pub const CMD_UPDATE: u16 = 0xC5;
pub const CMD_PROC: u16 = 0xE0;
pub const CMD_BULK: u16 = 0xF0;

/// The server name sent in ERROR/INFO tokens.
pub const SERVER_NAME: &str = "mssql-sim";

/// A result column: name, type, nullability and catalog flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// The collation a string column carries in COLMETADATA.
    pub collation: crate::collation::Collation,
    /// The table a column comes from (`dbo.T`), which COLMETADATA names
    /// for text, ntext and image columns.
    pub table: Option<String>,
}

/// A response under construction.
#[derive(Debug, Default)]
pub struct Response {
    pub buf: Vec<u8>,
}

fn b_varchar(buf: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    buf.push(units.len() as u8);
    for u in units {
        buf.extend_from_slice(&u.to_le_bytes());
    }
}

fn us_varchar(buf: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(65535).collect();
    buf.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for u in units {
        buf.extend_from_slice(&u.to_le_bytes());
    }
}

impl Response {
    pub fn new() -> Response {
        Response {
            buf: Vec::with_capacity(256),
        }
    }

    fn with_len(&mut self, token: u8, body: impl FnOnce(&mut Vec<u8>)) {
        self.buf.push(token);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        body(&mut self.buf);
        let len = (self.buf.len() - at - 2) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// ENVCHANGE with B_VARCHAR values (types 1 database, 2 language, 4 packet size).
    pub fn env_change_str(&mut self, kind: u8, new: &str, old: &str) {
        self.with_len(0xE3, |b| {
            b.push(kind);
            b_varchar(b, new);
            b_varchar(b, old);
        });
    }

    /// ENVCHANGE with B_VARBYTE values (7 collation, 8 begin, 9 commit, 10 rollback).
    pub fn env_change_bytes(&mut self, kind: u8, new: &[u8], old: &[u8]) {
        self.with_len(0xE3, |b| {
            b.push(kind);
            b.push(new.len() as u8);
            b.extend_from_slice(new);
            b.push(old.len() as u8);
            b.extend_from_slice(old);
        });
    }

    /// ENVCHANGE type 20, Routing (MS-TDS 2.2.7.9): TCP to `host`:`port`.
    pub fn env_change_routing(&mut self, host: &str, port: u16) {
        self.with_len(0xE3, |b| {
            b.push(20);
            let mut value = vec![0u8]; // protocol: TCP
            value.extend_from_slice(&port.to_le_bytes());
            value.extend_from_slice(&(host.encode_utf16().count() as u16).to_le_bytes());
            for u in host.encode_utf16() {
                value.extend_from_slice(&u.to_le_bytes());
            }
            b.extend_from_slice(&(value.len() as u16).to_le_bytes());
            b.extend_from_slice(&value);
            b.extend_from_slice(&0u16.to_le_bytes()); // old value: none
        });
    }

    pub fn begin_transaction(&mut self, descriptor: u64) {
        self.env_change_bytes(8, &descriptor.to_le_bytes(), &[]);
    }

    pub fn commit_transaction(&mut self, descriptor: u64) {
        self.env_change_bytes(9, &[], &descriptor.to_le_bytes());
    }

    pub fn rollback_transaction(&mut self, descriptor: u64) {
        self.env_change_bytes(10, &[], &descriptor.to_le_bytes());
    }

    fn message(&mut self, token: u8, number: i32, state: u8, class: u8, text: &str, line: i32) {
        self.with_len(token, |b| {
            b.extend_from_slice(&number.to_le_bytes());
            b.push(state);
            b.push(class);
            us_varchar(b, text);
            b_varchar(b, SERVER_NAME);
            b_varchar(b, "");
            b.extend_from_slice(&line.to_le_bytes());
        });
    }

    pub fn info(&mut self, number: i32, text: &str) {
        self.message(0xAB, number, 1, 0, text, 1);
    }

    pub fn error(&mut self, e: &SqlError) {
        self.message(0xAA, e.number, e.state, e.class, &e.message, e.line);
    }

    /// LOGINACK: interface 1 (SQL), the TDS version (big-endian), the product name and version.
    pub fn login_ack(&mut self, tds_version: u32, version: (u8, u8, u16)) {
        self.with_len(0xAD, |b| {
            b.push(1);
            b.extend_from_slice(&tds_version.to_be_bytes());
            b_varchar(b, "Microsoft SQL Server");
            b.push(version.0);
            b.push(version.1);
            b.extend_from_slice(&version.2.to_be_bytes());
        });
    }

    pub fn done_token(&mut self, token: u8, status: u16, cmd: u16, rows: u64) {
        self.buf.push(token);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cmd.to_le_bytes());
        self.buf.extend_from_slice(&rows.to_le_bytes());
    }

    pub fn done(&mut self, status: u16, cmd: u16, rows: u64) {
        self.done_token(0xFD, status, cmd, rows);
    }

    pub fn done_in_proc(&mut self, status: u16, cmd: u16, rows: u64) {
        self.done_token(0xFF, status, cmd, rows);
    }

    pub fn done_proc(&mut self, status: u16, cmd: u16, rows: u64) {
        self.done_token(0xFE, status, cmd, rows);
    }

    pub fn return_status(&mut self, value: i32) {
        self.buf.push(0x79);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// COLMETADATA. Flags: 0x01 nullable, 0x08 updatable-ish "table column"
    /// bit as SQL Server sends it, 0x10 identity; never 0x04/0x40/0x100/0x200.
    pub fn col_metadata(&mut self, columns: &[Column]) {
        self.buf.push(0x81);
        self.buf
            .extend_from_slice(&(columns.len() as u16).to_le_bytes());
        for c in columns {
            // UserType: 80 for timestamp, as SQL Server sends it; else 0.
            let user_type: u32 = if c.ty == crate::types::SqlType::RowVersion {
                80
            } else {
                0
            };
            self.buf.extend_from_slice(&user_type.to_le_bytes());
            let mut flags: u16 = 0x08;
            if c.nullable {
                flags |= 0x01;
            }
            if c.identity {
                flags |= 0x10;
            }
            self.buf.extend_from_slice(&flags.to_le_bytes());
            encode_type_info(&mut self.buf, &c.ty, c.collation);
            // TableName (MS-TDS 2.2.7.4): the parts of the table's name.
            if c.ty.is_legacy_lob() {
                let parts: Vec<&str> = c
                    .table
                    .as_deref()
                    .map(|t| t.split('.').collect())
                    .unwrap_or_default();
                self.buf.push(parts.len() as u8);
                for p in parts {
                    let units: Vec<u16> = p.encode_utf16().collect();
                    self.buf
                        .extend_from_slice(&(units.len() as u16).to_le_bytes());
                    for u in units {
                        self.buf.extend_from_slice(&u.to_le_bytes());
                    }
                }
            }
            b_varchar(&mut self.buf, &c.name);
        }
    }

    /// One ROW; `values` must match the COLMETADATA just sent.
    pub fn row(&mut self, columns: &[Column], values: &[Value]) {
        self.buf.push(0xD1);
        for (c, v) in columns.iter().zip(values) {
            encode_value(&mut self.buf, &c.ty, v);
        }
    }
}
