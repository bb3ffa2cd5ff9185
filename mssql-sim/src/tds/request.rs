//! Client requests after login: SQL batch, RPC and transaction-manager
//! messages, each behind ALL_HEADERS (MS-TDS 2.2.5.3, 2.2.6.6–2.2.6.9).

use super::wire::{decode_type_info, decode_value, PResult, ProtocolError, Reader, WireType};
use crate::types::Value;

/// Skips ALL_HEADERS and returns the transaction descriptor it carried, if any.
pub fn skip_all_headers(r: &mut Reader<'_>) -> PResult<Option<u64>> {
    let start = r.pos;
    let total = r.u32()? as usize;
    if total < 4 || total > r.buf.len() - start {
        return Err(ProtocolError(format!("ALL_HEADERS length {total}")));
    }
    let mut descriptor = None;
    while r.pos < start + total {
        let hstart = r.pos;
        let len = r.u32()? as usize;
        let kind = r.u16()?;
        if len < 6 || hstart + len > start + total {
            return Err(ProtocolError(format!("header length {len}")));
        }
        if kind == 2 && len >= 18 {
            descriptor = Some(r.u64()?);
        }
        r.pos = hstart + len;
    }
    Ok(descriptor)
}

/// The SQL text of a batch.
pub fn parse_batch(payload: &[u8]) -> PResult<String> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let rest = &payload[r.pos..];
    if rest.len() % 2 != 0 {
        return Err(ProtocolError("odd batch length".into()));
    }
    let units: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// One RPC parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub output: bool,
    pub wire: WireType,
    pub value: Value,
}

/// One procedure call of an RPC message.
#[derive(Debug, Clone)]
pub struct RpcCall {
    /// Either a well-known procedure id (10 = sp_executesql, ...) or a name.
    pub proc_id: Option<u16>,
    pub proc_name: String,
    pub params: Vec<Param>,
}

/// Parses an RPC message: one or more calls separated by batch flags.
pub fn parse_rpc(payload: &[u8]) -> PResult<Vec<RpcCall>> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let mut calls = Vec::new();
    loop {
        let name_len = r.u16()?;
        let (proc_id, proc_name) = if name_len == 0xFFFF {
            let id = r.u16()?;
            let name = match id {
                1 => "sp_cursor",
                2 => "sp_cursoropen",
                3 => "sp_cursorprepare",
                4 => "sp_cursorexecute",
                5 => "sp_cursorprepexec",
                6 => "sp_cursorunprepare",
                7 => "sp_cursorfetch",
                8 => "sp_cursoroption",
                9 => "sp_cursorclose",
                10 => "sp_executesql",
                11 => "sp_prepare",
                12 => "sp_execute",
                13 => "sp_prepexec",
                14 => "sp_prepexecrpc",
                15 => "sp_unprepare",
                _ => "",
            };
            (Some(id), name.to_string())
        } else {
            (None, r.utf16(name_len as usize)?)
        };
        let _flags = r.u16()?;
        let mut params = Vec::new();
        while !r.is_empty() {
            let b = r.peek_u8()?;
            if b == 0x80 || b == 0xFF || b == 0xFE {
                break;
            }
            let name = r.b_varchar()?;
            let status = r.u8()?;
            let wire = decode_type_info(&mut r)?;
            let value = decode_value(&mut r, &wire)?;
            params.push(Param {
                name,
                output: status & 1 != 0,
                wire,
                value,
            });
        }
        calls.push(RpcCall {
            proc_id,
            proc_name,
            params,
        });
        if r.is_empty() {
            break;
        }
        r.u8()?; // batch separator
        if r.is_empty() {
            break;
        }
    }
    Ok(calls)
}

/// A transaction-manager request (packet type 0x0E).
#[derive(Debug, Clone, PartialEq)]
pub enum TmRequest {
    Begin {
        isolation: u8,
        name: String,
    },
    Commit {
        name: String,
        begin_new: Option<(u8, String)>,
    },
    Rollback {
        name: String,
        begin_new: Option<(u8, String)>,
    },
    Save {
        name: String,
    },
    /// Requests we do not support (DTC enlistment and the like).
    Other(u16),
}

fn b_name(r: &mut Reader<'_>) -> PResult<String> {
    if r.is_empty() {
        return Ok(String::new());
    }
    // tedious writes the length in bytes, others in characters (see the
    // reference notes); accept both by checking what fits.
    let n = r.u8()? as usize;
    if n * 2 <= r.remaining() {
        r.utf16(n)
    } else if n <= r.remaining() && n % 2 == 0 {
        r.utf16(n / 2)
    } else {
        Err(ProtocolError("transaction name length".into()))
    }
}

pub fn parse_tm(payload: &[u8]) -> PResult<TmRequest> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let kind = r.u16()?;
    Ok(match kind {
        5 => {
            let isolation = r.u8()?;
            let name = b_name(&mut r)?;
            TmRequest::Begin { isolation, name }
        }
        7 | 8 => {
            let name = b_name(&mut r)?;
            let flags = if r.is_empty() { 0 } else { r.u8()? };
            let begin_new = if flags & 1 != 0 {
                let iso = r.u8()?;
                let n = b_name(&mut r)?;
                Some((iso, n))
            } else {
                None
            };
            if kind == 7 {
                TmRequest::Commit { name, begin_new }
            } else {
                TmRequest::Rollback { name, begin_new }
            }
        }
        9 => TmRequest::Save {
            name: b_name(&mut r)?,
        },
        other => TmRequest::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&22u32.to_le_bytes());
        h.extend_from_slice(&18u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&7u64.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        h
    }

    #[test]
    fn batch_text() {
        let mut p = headers();
        for u in "SELECT 1".encode_utf16() {
            p.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse_batch(&p).unwrap(), "SELECT 1");
        let mut r = Reader::new(&p);
        assert_eq!(skip_all_headers(&mut r).unwrap(), Some(7));
    }

    #[test]
    fn tm_begin() {
        let mut p = headers();
        p.extend_from_slice(&5u16.to_le_bytes());
        p.push(5);
        p.push(0);
        assert_eq!(
            parse_tm(&p).unwrap(),
            TmRequest::Begin {
                isolation: 5,
                name: String::new()
            }
        );
    }

    #[test]
    fn rpc_executesql() {
        let mut p = headers();
        p.extend_from_slice(&0xFFFFu16.to_le_bytes());
        p.extend_from_slice(&10u16.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        // @stmt nvarchar
        p.push(0);
        p.push(0);
        p.extend_from_slice(&[0xE7, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34]);
        let sql: Vec<u8> = "SELECT @P1"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        p.extend_from_slice(&(sql.len() as u16).to_le_bytes());
        p.extend_from_slice(&sql);
        // @P1 int = 5 (INTN)
        p.push(0);
        p.push(0);
        p.extend_from_slice(&[0x26, 4, 4, 5, 0, 0, 0]);
        let calls = parse_rpc(&p).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].proc_name, "sp_executesql");
        assert_eq!(calls[0].params[0].value, Value::Str("SELECT @P1".into()));
        assert_eq!(calls[0].params[1].value, Value::Int(5));
    }
}

/// A bulk-load message (packet type 0x07): the columns the client sends
/// (COLMETADATA) and its rows, ended by DONE (MS-TDS 2.2.6.1).
#[derive(Debug)]
pub struct BulkLoad {
    pub columns: Vec<(String, WireType)>,
    pub rows: Vec<Vec<Value>>,
}

pub fn parse_bulk(payload: &[u8]) -> PResult<BulkLoad> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0x81 {
        return Err(ProtocolError(
            "a bulk-load message must start with COLMETADATA".into(),
        ));
    }
    let n = r.u16()? as usize;
    let mut columns = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let _user_type = r.u32()?;
        let _flags = r.u16()?;
        let ti = decode_type_info(&mut r)?;
        // text, ntext and image carry the table name.
        if matches!(ti.token(), 0x23 | 0x63 | 0x22) {
            let parts = r.u8()?;
            for _ in 0..parts {
                r.us_varchar()?;
            }
        }
        let name = r.b_varchar()?;
        columns.push((name, ti));
    }
    let mut rows = Vec::new();
    loop {
        match r.u8()? {
            0xD1 => {
                let mut row = Vec::with_capacity(columns.len());
                for (_, ti) in &columns {
                    row.push(decode_value(&mut r, ti)?);
                }
                rows.push(row);
            }
            0xFD => {
                r.bytes(12)?;
                break;
            }
            other => {
                return Err(ProtocolError(format!(
                    "unexpected token {other:#04x} in a bulk-load message"
                )))
            }
        }
    }
    Ok(BulkLoad { columns, rows })
}
