//! char, varchar, nchar, nvarchar (and `max`): BIGCHAR/BIGVARCHAR
//! (0xAF/0xA7, Windows-1252) and NCHAR/NVARCHAR (0xEF/0xE7, UTF-16LE) with
//! the collation; the legacy text (0x23) and ntext (0x63) in, read as
//! varchar(max) and nvarchar(max).

use super::reader::{perr, PResult, Reader};
use super::varlen;
use super::wire_type::WireType;
use crate::collation::Collation;
use crate::types::{Len, SqlType, Value};

pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType, collation: Collation) {
    let c = Some(collation.tds_bytes());
    match *ty {
        SqlType::NVarChar(l) => varlen::encode_type_info(buf, 0xE7, varlen::ushort_len(&l, 2), c),
        SqlType::NChar(n) => varlen::encode_type_info(buf, 0xEF, n * 2, c),
        SqlType::VarChar(l) => varlen::encode_type_info(buf, 0xA7, varlen::ushort_len(&l, 1), c),
        SqlType::Char(n) => varlen::encode_type_info(buf, 0xAF, n, c),
        SqlType::Text => varlen::encode_lob_type_info(buf, 0x23, 0x7FFF_FFFF, c),
        SqlType::NText => varlen::encode_lob_type_info(buf, 0x63, 0x7FFF_FFFE, c),
        // XMLTYPE (MS-TDS 2.2.5.4.3): no schema; values as PLP UTF-16LE.
        SqlType::Xml => buf.extend_from_slice(&[0xF1, 0x00]),
        _ => {}
    }
}

fn utf16_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

fn cp1252_bytes(s: &str) -> Vec<u8> {
    let (b, _, _) = encoding_rs::WINDOWS_1252.encode(s);
    b.into_owned()
}

/// False when `v` is not a value of `ty` (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    let Value::Str(s) = v else { return false };
    let max = matches!(ty, SqlType::NVarChar(Len::Max) | SqlType::VarChar(Len::Max));
    match ty {
        SqlType::NText => varlen::encode_lob_value(buf, Some(&utf16_bytes(s))),
        SqlType::Xml => varlen::encode_plp(buf, &utf16_bytes(s)),
        SqlType::Text => varlen::encode_lob_value(buf, Some(&cp1252_bytes(s))),
        SqlType::NVarChar(_) | SqlType::NChar(_) => varlen::encode_value(buf, &utf16_bytes(s), max),
        SqlType::VarChar(_) | SqlType::Char(_) => varlen::encode_value(buf, &cp1252_bytes(s), max),
        _ => return false,
    }
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let (n, plp) = varlen::decode_type_info(token, r, true)?;
    let len = |unit: u32| {
        if plp {
            Len::Max
        } else {
            Len::N((n / unit).max(1) as u16)
        }
    };
    let ty = match token {
        0xE7 => SqlType::NVarChar(len(2)),
        0xEF => SqlType::NChar((n / 2).max(1) as u16),
        0xA7 => SqlType::VarChar(len(1)),
        0xAF => SqlType::Char(n.max(1) as u16),
        0x63 => SqlType::NVarChar(Len::Max),
        _ => SqlType::VarChar(Len::Max), // 0x23 text
    };
    Ok(WireType {
        ty,
        token,
        len: n,
        plp,
    })
}

/// A string value from its bytes (UTF-16LE for the N types, Windows-1252
/// otherwise).
pub fn decode(ty: &SqlType, b: &[u8]) -> PResult<Value> {
    Ok(match ty {
        SqlType::NVarChar(_) | SqlType::NChar(_) => {
            if b.len() % 2 != 0 {
                return perr("odd UTF-16 byte count");
            }
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            Value::Str(String::from_utf16_lossy(&units))
        }
        _ => {
            let (s, _, _) = encoding_rs::WINDOWS_1252.decode(b);
            Value::Str(s.into_owned())
        }
    })
}
