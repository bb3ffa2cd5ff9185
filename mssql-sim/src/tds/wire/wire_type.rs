//! A TYPE_INFO as a client sent it, and the type family each SQL Server
//! type and each TDS type token belongs to (one module per family).

use crate::types::SqlType;

/// A TYPE_INFO as a client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct WireType {
    pub ty: SqlType,
    /// The raw type token; fixed-length tokens carry no length prefix.
    pub(super) token: u8,
    /// Length from the TYPE_INFO (bytes) for N-types.
    pub(super) len: u32,
    pub(super) plp: bool,
}

impl WireType {
    /// A type read with its token and length, values not in PLP chunks.
    pub(super) fn sized(ty: SqlType, token: u8, len: u32) -> WireType {
        WireType {
            ty,
            token,
            len,
            plp: false,
        }
    }

    /// An N-type whose length byte (4 or 8) picks the type: FLTN, MONEYN,
    /// DATETIMN.
    pub(super) fn by_length(
        token: u8,
        r: &mut super::reader::Reader<'_>,
        four: SqlType,
        eight: SqlType,
    ) -> super::reader::PResult<WireType> {
        let n = r.u8()?;
        let ty = if n == 4 { four } else { eight };
        Ok(WireType::sized(ty, token, n as u32))
    }

    /// The TDS type token.
    pub fn token(&self) -> u8 {
        self.token
    }
}

/// The families of types that share a wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// bit, tinyint, smallint, int, bigint.
    Int,
    /// real, float.
    Float,
    /// decimal, numeric, money, smallmoney.
    Exact,
    /// datetime, smalldatetime, date, time, datetime2, datetimeoffset.
    DateTime,
    /// uniqueidentifier.
    Guid,
    /// char, varchar, nchar, nvarchar (also `max`, and the legacy text/ntext on input).
    String,
    /// binary, varbinary (also `max`, and the legacy image on input).
    Binary,
}

impl Family {
    /// The family of a column type (every type has one: a new `SqlType`
    /// variant does not compile until it is given one).
    pub fn of(ty: &SqlType) -> Family {
        match ty {
            SqlType::Bit
            | SqlType::TinyInt
            | SqlType::SmallInt
            | SqlType::Int
            | SqlType::BigInt => Family::Int,
            SqlType::Real | SqlType::Float => Family::Float,
            SqlType::Decimal { .. }
            | SqlType::Numeric { .. }
            | SqlType::Money
            | SqlType::SmallMoney => Family::Exact,
            SqlType::DateTime
            | SqlType::SmallDateTime
            | SqlType::Date
            | SqlType::Time(_)
            | SqlType::DateTime2(_)
            | SqlType::DateTimeOffset(_) => Family::DateTime,
            SqlType::UniqueIdentifier => Family::Guid,
            SqlType::NVarChar(_)
            | SqlType::NChar(_)
            | SqlType::VarChar(_)
            | SqlType::Char(_)
            | SqlType::Text
            | SqlType::NText
            | SqlType::Xml => Family::String,
            SqlType::VarBinary(_) | SqlType::Binary(_) | SqlType::RowVersion | SqlType::Image => {
                Family::Binary
            }
        }
    }

    /// The family of a TYPE_INFO token a client sent, if the simulator reads it.
    pub fn of_token(token: u8) -> Option<Family> {
        Some(match token {
            0x1F | 0x30 | 0x32 | 0x34 | 0x38 | 0x7F | 0x26 | 0x68 => Family::Int,
            0x3B | 0x3E | 0x6D => Family::Float,
            0x3C | 0x7A | 0x6E | 0x6A | 0x6C | 0x37 | 0x3F => Family::Exact,
            0x3D | 0x3A | 0x6F | 0x28 | 0x29 | 0x2A | 0x2B => Family::DateTime,
            0x24 => Family::Guid,
            0xE7 | 0xEF | 0xA7 | 0xAF | 0x63 | 0x23 => Family::String,
            0xA5 | 0xAD | 0x22 => Family::Binary,
            _ => return None,
        })
    }
}

/// Fixed-length tokens: their values carry no length byte.
pub fn is_fixed(token: u8) -> bool {
    matches!(
        token,
        0x30 | 0x32 | 0x34 | 0x38 | 0x7F | 0x3B | 0x3E | 0x3C | 0x7A | 0x3D | 0x3A
    )
}

/// Appends a value with its one-byte length.
pub fn put_sized(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.push(bytes.len() as u8);
    buf.extend_from_slice(bytes);
}
