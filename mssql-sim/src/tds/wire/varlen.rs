//! How variable-length values travel (strings and binaries): a USHORTLEN
//! TYPE_INFO and value (`0xFFFF` = NULL), PLP chunks for the `max` types
//! (MS-TDS 2.2.5.2.3), and on input the legacy text/ntext/image form with
//! its text pointer and timestamp.

use super::reader::{perr, PResult, Reader};
use crate::types::Len;

/// The TYPE_INFO length of a `Len` in `unit`-byte characters (0xFFFF = max).
pub fn ushort_len(l: &Len, unit: u16) -> u16 {
    match l {
        Len::N(n) => n * unit,
        Len::Max => 0xFFFF,
    }
}

/// Appends a USHORTLEN TYPE_INFO: token, length, collation (for strings).
pub fn encode_type_info(buf: &mut Vec<u8>, token: u8, len: u16, collation: Option<[u8; 5]>) {
    buf.push(token);
    buf.extend_from_slice(&len.to_le_bytes());
    if let Some(c) = collation {
        buf.extend_from_slice(&c);
    }
}

/// Appends the TYPE_INFO of a legacy large type: token, a u32 maximum
/// length, the collation for text and ntext (MS-TDS 2.2.5.4.3).
pub fn encode_lob_type_info(buf: &mut Vec<u8>, token: u8, max: u32, collation: Option<[u8; 5]>) {
    buf.push(token);
    buf.extend_from_slice(&max.to_le_bytes());
    if let Some(c) = collation {
        buf.extend_from_slice(&c);
    }
}

/// Appends a legacy large value: a 16-byte text pointer, an 8-byte
/// timestamp, a u32 length and the bytes (MS-TDS 2.2.4.2.1.3); NULL is a
/// text pointer length of 0.
pub fn encode_lob_value(buf: &mut Vec<u8>, data: Option<&[u8]>) {
    let Some(data) = data else {
        buf.push(0);
        return;
    };
    buf.push(16);
    buf.extend_from_slice(&[0xAB; 16]);
    buf.extend_from_slice(&[0u8; 8]);
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(data);
}

/// Appends `data` as PLP chunks (a `max` value).
pub fn encode_plp(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for chunk in data.chunks(0x7FFF_FFFF) {
        if !chunk.is_empty() {
            buf.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            buf.extend_from_slice(chunk);
        }
    }
    buf.extend_from_slice(&0u32.to_le_bytes());
}

/// Appends a value's bytes: PLP for a `max` type, USHORTLEN otherwise.
pub fn encode_value(buf: &mut Vec<u8>, data: &[u8], max: bool) {
    if max {
        encode_plp(buf, data);
    } else {
        buf.extend_from_slice(&(data.len() as u16).to_le_bytes());
        buf.extend_from_slice(data);
    }
}

/// Reads a PLP value; `None` is NULL.
pub fn read_plp(r: &mut Reader<'_>) -> PResult<Option<Vec<u8>>> {
    let total = r.u64()?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::with_capacity((total.min(1 << 20)) as usize);
    loop {
        let n = r.u32()? as usize;
        if n == 0 {
            break;
        }
        out.extend_from_slice(r.bytes(n)?);
    }
    if total != 0xFFFF_FFFF_FFFF_FFFE && out.len() as u64 != total {
        return perr(format!("PLP length {} but {} bytes sent", total, out.len()));
    }
    Ok(Some(out))
}

/// The TYPE_INFO after its token: the USHORTLEN length (0xFFFF: PLP) and the
/// collation of a string type, or for the legacy LOB tokens (0x63 ntext,
/// 0x23 text, 0x22 image) a u32 length and the collation of a text type.
/// Returns the length and whether values come as PLP.
pub fn decode_type_info(token: u8, r: &mut Reader<'_>, collated: bool) -> PResult<(u32, bool)> {
    if matches!(token, 0x63 | 0x23 | 0x22) {
        let n = r.u32()?;
        if collated {
            r.bytes(5)?;
        }
        return Ok((n, false));
    }
    let n = r.u16()?;
    if collated {
        r.bytes(5)?; // collation
    }
    Ok((n as u32, n == 0xFFFF))
}

/// Reads one value's bytes; `None` is NULL.
pub fn read_value(r: &mut Reader<'_>, token: u8, plp: bool) -> PResult<Option<Vec<u8>>> {
    if plp {
        return read_plp(r);
    }
    if matches!(token, 0x63 | 0x23 | 0x22) {
        // Text pointer length (0 = NULL), pointer, timestamp, u32 data length.
        let tp = r.u8()?;
        if tp == 0 {
            return Ok(None);
        }
        r.bytes(tp as usize)?;
        r.bytes(8)?;
        let n = r.u32()? as usize;
        return Ok(Some(r.bytes(n)?.to_vec()));
    }
    let n = r.u16()?;
    if n == 0xFFFF {
        return Ok(None);
    }
    Ok(Some(r.bytes(n as usize)?.to_vec()))
}
