//! binary, varbinary (and `max`): BIGBINARY/BIGVARBINARY (0xAD/0xA5); the
//! legacy image (0x22) in, read as varbinary(max).

use super::reader::{PResult, Reader};
use super::varlen;
use super::wire_type::WireType;
use crate::types::{Len, SqlType, Value};

pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    match *ty {
        SqlType::VarBinary(l) => {
            varlen::encode_type_info(buf, 0xA5, varlen::ushort_len(&l, 1), None)
        }
        SqlType::Binary(n) => varlen::encode_type_info(buf, 0xAD, n, None),
        // SQL Server sends timestamp as binary(8) (with user type 80).
        SqlType::RowVersion => varlen::encode_type_info(buf, 0xAD, 8, None),
        SqlType::Image => varlen::encode_lob_type_info(buf, 0x22, 0x7FFF_FFFF, None),
        _ => {}
    }
}

/// False when `v` is not bytes (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    let Value::Bytes(b) = v else { return false };
    if *ty == SqlType::Image {
        varlen::encode_lob_value(buf, Some(b));
        return true;
    }
    varlen::encode_value(buf, b, matches!(ty, SqlType::VarBinary(Len::Max)));
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let (n, plp) = varlen::decode_type_info(token, r, false)?;
    let ty = match token {
        0xA5 if plp => SqlType::VarBinary(Len::Max),
        0xA5 => SqlType::VarBinary(Len::N((n as u16).max(1))),
        0xAD => SqlType::Binary((n as u16).max(1)),
        _ => SqlType::VarBinary(Len::Max), // 0x22 image
    };
    Ok(WireType {
        ty,
        token,
        len: n,
        plp,
    })
}
