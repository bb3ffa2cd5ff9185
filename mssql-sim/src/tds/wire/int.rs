//! bit, tinyint, smallint, int, bigint: INTN (0x26) and BITN (0x68) out;
//! INTN, BITN, the fixed-length tokens and NULLTYPE in.

use super::reader::{perr, PResult, Reader};
use super::wire_type::{put_sized, WireType};
use crate::types::{SqlType, Value};

/// BITN (0x68) for bit, INTN (0x26) with the byte length otherwise.
pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    let info: [u8; 2] = match ty {
        SqlType::Bit => [0x68, 1],
        SqlType::TinyInt => [0x26, 1],
        SqlType::SmallInt => [0x26, 2],
        SqlType::Int => [0x26, 4],
        SqlType::BigInt => [0x26, 8],
        _ => return,
    };
    buf.extend_from_slice(&info);
}

/// False when `v` is not a value of `ty` (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    let Value::Int(i) = v else { return false };
    match ty {
        SqlType::Bit => buf.extend_from_slice(&[1, (*i != 0) as u8]),
        SqlType::TinyInt => buf.extend_from_slice(&[1, *i as u8]),
        SqlType::SmallInt => put_sized(buf, &(*i as i16).to_le_bytes()),
        SqlType::Int => put_sized(buf, &(*i as i32).to_le_bytes()),
        SqlType::BigInt => put_sized(buf, &i.to_le_bytes()),
        _ => return false,
    }
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let w = |ty, len| WireType::sized(ty, token, len);
    Ok(match token {
        0x1F => w(SqlType::Int, 0), // NULLTYPE: the value is always NULL
        0x30 => w(SqlType::TinyInt, 1),
        0x32 => w(SqlType::Bit, 1),
        0x34 => w(SqlType::SmallInt, 2),
        0x38 => w(SqlType::Int, 4),
        0x7F => w(SqlType::BigInt, 8),
        0x26 => {
            let n = r.u8()?;
            let ty = match n {
                1 => SqlType::TinyInt,
                2 => SqlType::SmallInt,
                4 => SqlType::Int,
                8 => SqlType::BigInt,
                _ => return perr(format!("INTN length {n}")),
            };
            w(ty, n as u32)
        }
        _ => {
            // 0x68 BITN
            let n = r.u8()?;
            w(SqlType::Bit, n as u32)
        }
    })
}

/// The value in `b` (its `n` bytes, without the length).
pub fn decode_value(ty: &SqlType, b: &[u8]) -> PResult<Value> {
    let n = b.len();
    Ok(match ty {
        SqlType::Bit => Value::Int((b[0] != 0) as i64),
        SqlType::TinyInt => Value::Int(b[0] as i64),
        _ => match n {
            1 => Value::Int(b[0] as i64),
            2 => Value::Int(i16::from_le_bytes([b[0], b[1]]) as i64),
            4 => Value::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64),
            8 => Value::Int(i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
            _ => return perr(format!("integer of {n} bytes")),
        },
    })
}
