//! TYPE_INFO and typed values on the wire (MS-TDS 2.2.5.4–2.2.5.5), in both
//! directions: the server encodes result columns from a `SqlType`, and
//! decodes the TYPE_INFO and value of every parameter or bulk-load column a
//! client sends.
//!
//! One module per type family (as prisma/tiberius's `column_data/`):
//! `int`, `float`, `exact` (decimal, money), `datetime`, `guid`, `string`,
//! `binary`; `varlen` is how variable-length values travel (USHORTLEN,
//! PLP, the legacy text pointer form); `wire_type` maps a type or a token to
//! its family. The four functions here only dispatch.
//!
//! Decoding never panics and never trusts a length: every read goes through
//! `Reader`, which returns a protocol error when the input is short.

use crate::collation::Collation;

mod binary;
mod datetime;
mod exact;
mod float;
mod guid;
mod int;
pub mod reader;
mod string;
mod varlen;
pub mod wire_type;

pub use reader::{PResult, ProtocolError, Reader};
pub use wire_type::WireType;

use crate::types::{Len, SqlType, Value};
use reader::perr;
use wire_type::{is_fixed, Family};

/// Appends the TYPE_INFO for a result column of type `ty` (always the
/// nullable N-type form, which every client accepts).
/// Appends a column's TYPE_INFO; `collation` is what a string type carries.
pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType, collation: Collation) {
    match Family::of(ty) {
        Family::Int => int::encode_type_info(buf, ty),
        Family::Float => float::encode_type_info(buf, ty),
        Family::Exact => exact::encode_type_info(buf, ty),
        Family::DateTime => datetime::encode_type_info(buf, ty),
        Family::Guid => guid::encode_type_info(buf),
        Family::String => string::encode_type_info(buf, ty, collation),
        Family::Binary => binary::encode_type_info(buf, ty),
    }
}

/// Appends the value `v` of a column of type `ty`. The caller guarantees
/// that `v` was produced for `ty` (see `types::from_storage`).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) {
    let family = Family::of(ty);
    if matches!(v, Value::Null) {
        if ty.is_legacy_lob() {
            varlen::encode_lob_value(buf, None);
            return;
        }
        let max = matches!(
            ty,
            SqlType::NVarChar(Len::Max)
                | SqlType::VarChar(Len::Max)
                | SqlType::VarBinary(Len::Max)
                | SqlType::Xml
        );
        if max {
            buf.extend_from_slice(&u64::MAX.to_le_bytes());
        } else if matches!(family, Family::String | Family::Binary) {
            buf.extend_from_slice(&0xFFFFu16.to_le_bytes());
        } else {
            buf.push(0);
        }
        return;
    }
    let done = match family {
        Family::Int => int::encode_value(buf, ty, v),
        Family::Float => float::encode_value(buf, ty, v),
        Family::Exact => exact::encode_value(buf, ty, v),
        Family::DateTime => datetime::encode_value(buf, ty, v),
        Family::Guid => guid::encode_value(buf, v),
        Family::String => string::encode_value(buf, ty, v),
        Family::Binary => binary::encode_value(buf, ty, v),
    };
    // A value that does not match its column cannot be produced by
    // `from_storage`; send NULL rather than corrupt the stream.
    if !done {
        encode_value(buf, ty, &Value::Null);
    }
}

/// Decodes a TYPE_INFO. Types the simulator does not handle give an error
/// that the caller turns into a SQL Server-style error.
pub fn decode_type_info(r: &mut Reader<'_>) -> PResult<WireType> {
    let token = r.u8()?;
    match Family::of_token(token) {
        Some(Family::Int) => int::decode_type_info(token, r),
        Some(Family::Float) => float::decode_type_info(token, r),
        Some(Family::Exact) => exact::decode_type_info(token, r),
        Some(Family::DateTime) => datetime::decode_type_info(token, r),
        Some(Family::Guid) => guid::decode_type_info(token, r),
        Some(Family::String) => string::decode_type_info(token, r),
        Some(Family::Binary) => binary::decode_type_info(token, r),
        None => perr(format!("unsupported TYPE_INFO token {token:#04x}")),
    }
}

/// Decodes one value of a column or parameter of wire type `w`.
pub fn decode_value(r: &mut Reader<'_>, w: &WireType) -> PResult<Value> {
    if w.token == 0x1F {
        // NULLTYPE: the value is always NULL.
        return Ok(Value::Null);
    }
    let family = Family::of(&w.ty);
    if matches!(family, Family::String | Family::Binary) {
        return Ok(match varlen::read_value(r, w.token, w.plp)? {
            None => Value::Null,
            Some(b) if family == Family::String => string::decode(&w.ty, &b)?,
            Some(b) => Value::Bytes(b),
        });
    }
    // Fixed-length tokens carry no length byte.
    let n = if is_fixed(w.token) {
        w.len as usize
    } else {
        r.u8()? as usize
    };
    if n == 0 {
        return Ok(Value::Null);
    }
    let b = r.bytes(n)?;
    match family {
        Family::Int => int::decode_value(&w.ty, b),
        Family::Float => float::decode_value(b),
        Family::Exact => exact::decode_value(&w.ty, b),
        Family::DateTime => datetime::decode_value(&w.ty, b),
        Family::Guid => guid::decode_value(b),
        Family::String | Family::Binary => perr("unexpected value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::convert;

    fn round_trip(ty: SqlType, v: Value) {
        let mut ti = Vec::new();
        encode_type_info(&mut ti, &ty, crate::collation::DEFAULT);
        let mut r = Reader::new(&ti);
        let w = decode_type_info(&mut r).unwrap();
        assert!(r.is_empty());
        let mut val = Vec::new();
        encode_value(&mut val, &ty, &v);
        let mut r = Reader::new(&val);
        let back = decode_value(&mut r, &w).unwrap();
        assert!(r.is_empty(), "{ty}: trailing bytes");
        assert_eq!(back, v, "{ty}");
    }

    #[test]
    fn every_type_round_trips() {
        let s = |t: SqlType, x: &str| (t, convert(&Value::Str(x.into()), &t, None).unwrap());
        let cases = vec![
            s(SqlType::Bit, "1"),
            s(SqlType::TinyInt, "255"),
            s(SqlType::SmallInt, "-32768"),
            s(SqlType::Int, "-2147483648"),
            s(SqlType::BigInt, "9223372036854775807"),
            s(
                SqlType::Decimal { p: 38, s: 6 },
                "-12345678901234567890123456789012.123456",
            ),
            s(SqlType::Numeric { p: 5, s: 2 }, "123.45"),
            s(SqlType::Money, "-922337203685477.5808"),
            s(SqlType::SmallMoney, "214748.3647"),
            s(SqlType::Float, "1.5e300"),
            s(SqlType::Real, "0.5"),
            s(SqlType::NVarChar(Len::N(10)), "åäö€"),
            s(SqlType::NVarChar(Len::Max), &"x".repeat(100_000)),
            s(SqlType::VarChar(Len::N(10)), "abc€"),
            s(SqlType::Char(5), "ab"),
            s(SqlType::NChar(3), "z"),
            s(
                SqlType::UniqueIdentifier,
                "00112233-4455-6677-8899-AABBCCDDEEFF",
            ),
            s(SqlType::Date, "0001-01-01"),
            s(SqlType::Date, "9999-12-31"),
            s(SqlType::Time(7), "23:59:59.9999999"),
            s(SqlType::Time(0), "12:00:01"),
            s(SqlType::DateTime, "2024-01-01 10:00:00.003"),
            s(SqlType::SmallDateTime, "2024-01-01 10:01:00"),
            s(SqlType::DateTime2(7), "2024-02-29 23:59:59.1234567"),
            s(SqlType::DateTime2(2), "1999-12-31 23:59:59.12"),
            s(
                SqlType::DateTimeOffset(7),
                "2024-06-30 01:30:00.1234567 +05:45",
            ),
            s(SqlType::DateTimeOffset(0), "2024-01-01 00:30:00 -08:00"),
            (
                SqlType::VarBinary(Len::N(4)),
                Value::Bytes(vec![0, 1, 2, 255]),
            ),
            (SqlType::VarBinary(Len::Max), Value::Bytes(vec![7; 70_000])),
            (SqlType::Binary(2), Value::Bytes(vec![9, 9])),
            (SqlType::NVarChar(Len::N(5)), Value::Str(String::new())),
            (SqlType::NVarChar(Len::Max), Value::Str(String::new())),
        ];
        for (t, v) in cases {
            round_trip(t, v);
            round_trip(t, Value::Null);
        }
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let w = WireType {
            ty: SqlType::NVarChar(Len::N(10)),
            token: 0xE7,
            len: 20,
            plp: false,
        };
        assert!(decode_value(&mut Reader::new(&[10, 0, 1]), &w).is_err());
        assert!(decode_type_info(&mut Reader::new(&[0x6A, 17, 40, 2])).is_err());
    }

    #[test]
    fn fixed_length_int_has_no_length_byte() {
        let mut r = Reader::new(&[0x38, 1, 0, 0, 0]);
        let w = decode_type_info(&mut r).unwrap();
        assert_eq!(decode_value(&mut r, &w).unwrap(), Value::Int(1));
    }
}
