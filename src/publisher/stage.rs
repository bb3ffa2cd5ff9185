//! How a staged change is encoded in the state: the row key as a CBOR array
//! of its values (also the ownership index's key), and the op as
//! `["U", v1, v2, ...]` (the whole masked row) or `["D", k1, ...]` (the key).
//! Decoding checks every value against the table's column types.

use crate::format::cbor::{DecodeError, Decoder, Encoder, Limits};
use crate::format::package::ColumnSchema;
use crate::format::value::ColumnType;
use crate::format::value::{self, Value, ValueError};
use crate::publisher::catalog::TableInfo;

/// Why a staged op cannot be read (the state is damaged).
#[derive(Debug, thiserror::Error)]
pub enum BadOp {
    #[error(transparent)]
    Cbor(#[from] DecodeError),
    #[error("not an array")]
    NotAnArray,
    #[error("unknown op")]
    UnknownOp,
    #[error("wrong number of values")]
    WrongCount,
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// A staged change of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The whole row, as it is now.
    Upsert(Vec<Value>),
    /// The row's key: the row left this caregiver's copy.
    Delete(Vec<Value>),
}

/// The encoded key values of a row.
pub fn key_bytes(values: &[Value]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(values.len());
    for v in values {
        value::encode(&mut e, v);
    }
    e.buf
}

/// Reads encoded key values (`key_bytes`) of columns of types `types`.
pub fn decode_key(bytes: &[u8], types: &[ColumnType]) -> Result<Vec<Value>, BadOp> {
    let item = Decoder::new(bytes, Limits::default()).next_item()?;
    let items = item.as_array().ok_or(BadOp::NotAnArray)?;
    if items.len() != types.len() {
        return Err(BadOp::WrongCount);
    }
    let mut out = Vec::new();
    for (ty, it) in types.iter().zip(items) {
        out.push(value::decode(ty, it)?);
    }
    Ok(out)
}

impl Op {
    /// As stored in the stage.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, values) = match self {
            Op::Upsert(v) => ("U", v),
            Op::Delete(k) => ("D", k),
        };
        let mut e = Encoder::new();
        e.array(values.len() + 1);
        e.text(tag);
        for v in values {
            value::encode(&mut e, v);
        }
        e.buf
    }

    /// Reads a staged op of table `t`; the error says what is wrong.
    pub fn decode(bytes: &[u8], t: &TableInfo) -> Result<Op, BadOp> {
        let item = Decoder::new(bytes, Limits::default()).next_item()?;
        let items = item.as_array().ok_or(BadOp::NotAnArray)?;
        let upsert = match items.first().and_then(|i| i.as_text()) {
            Some("U") => true,
            Some("D") => false,
            _ => return Err(BadOp::UnknownOp),
        };
        let cols: Vec<&ColumnSchema> = if upsert {
            t.schema.columns.iter().collect()
        } else {
            t.key_pos.iter().map(|p| &t.schema.columns[*p]).collect()
        };
        if items.len() != cols.len() + 1 {
            return Err(BadOp::WrongCount);
        }
        let mut out = Vec::new();
        for (c, it) in cols.iter().zip(&items[1..]) {
            out.push(value::decode(&c.ty, it)?);
        }
        Ok(if upsert {
            Op::Upsert(out)
        } else {
            Op::Delete(out)
        })
    }
}
