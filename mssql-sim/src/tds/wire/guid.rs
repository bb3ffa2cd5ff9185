//! uniqueidentifier: GUIDTYPE (0x24), in SQL Server's mixed-endian byte order.

use super::reader::{perr, PResult, Reader};
use super::wire_type::{put_sized, WireType};
use crate::types::{guid_from_sql_bytes, guid_to_sql_bytes, SqlType, Value};

pub fn encode_type_info(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[0x24, 16]);
}

/// False when `v` is not a GUID (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, v: &Value) -> bool {
    let Value::Guid(g) = v else { return false };
    put_sized(buf, &guid_to_sql_bytes(g));
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let n = r.u8()?;
    Ok(WireType::sized(SqlType::UniqueIdentifier, token, n as u32))
}

/// The value in `b` (its bytes, without the length).
pub fn decode_value(b: &[u8]) -> PResult<Value> {
    let g: [u8; 16] = b
        .try_into()
        .or_else(|_| perr(format!("guid of {} bytes", b.len())))?;
    Ok(Value::Guid(guid_from_sql_bytes(&g)))
}
