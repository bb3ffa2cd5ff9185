//! real, float: FLTN (0x6D) out; FLTN and the fixed-length tokens in.

use super::reader::{perr, PResult, Reader};
use super::wire_type::{put_sized, WireType};
use crate::types::{SqlType, Value};

/// FLTN (0x6D) with the byte length.
pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    let len = if *ty == SqlType::Real { 4 } else { 8 };
    buf.extend_from_slice(&[0x6D, len]);
}

/// False when `v` is not a value of `ty` (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    let Value::Float(f) = v else { return false };
    match ty {
        SqlType::Float => put_sized(buf, &f.to_le_bytes()),
        SqlType::Real => put_sized(buf, &(*f as f32).to_le_bytes()),
        _ => return false,
    }
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let w = |ty, len| WireType::sized(ty, token, len);
    Ok(match token {
        0x3B => w(SqlType::Real, 4),
        0x3E => w(SqlType::Float, 8),
        // 0x6D FLTN
        _ => WireType::by_length(token, r, SqlType::Real, SqlType::Float)?,
    })
}

/// The value in `b` (its bytes, without the length).
pub fn decode_value(b: &[u8]) -> PResult<Value> {
    Ok(match b.len() {
        4 => Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        8 => Value::Float(f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        n => return perr(format!("float of {n} bytes")),
    })
}
