//! TDS packet framing: an 8-byte header in front of every packet, and
//! messages that span packets until the end-of-message status bit.
//!
//! This module only moves bytes. It never interprets a payload and never
//! trusts a length it read: every length is checked against the limits below,
//! and a violation is an `io::Error` of kind `InvalidData`, which closes the
//! one connection it came from.

use std::io::{self, Read, Write};

/// Packet types a client sends (MS-TDS 2.2.3.1.1).
pub const PT_BATCH: u8 = 0x01;
pub const PT_RPC: u8 = 0x03;
pub const PT_RESPONSE: u8 = 0x04;
pub const PT_ATTENTION: u8 = 0x06;
pub const PT_BULK: u8 = 0x07;
pub const PT_TRANSACTION_MANAGER: u8 = 0x0E;
pub const PT_LOGIN7: u8 = 0x10;
pub const PT_PRELOGIN: u8 = 0x12;

/// Status bits.
pub const ST_EOM: u8 = 0x01;
pub const ST_IGNORE: u8 = 0x02;
pub const ST_RESET_CONNECTION: u8 = 0x08;
pub const ST_RESET_CONNECTION_SKIP_TRAN: u8 = 0x10;

/// The largest packet size a client may negotiate (MS-TDS: 32767).
pub const MAX_PACKET_SIZE: usize = 32767;
/// The packet size before login, and the default.
pub const DEFAULT_PACKET_SIZE: usize = 4096;
/// The largest message accepted; a client sending more is cut off.
pub const MAX_MESSAGE_SIZE: usize = 1 << 30;

/// One client message, reassembled from its packets.
#[derive(Debug, Clone)]
pub struct Message {
    pub packet_type: u8,
    /// The status bits of the first packet (RESETCONNECTION lives there).
    pub status: u8,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn reset_connection(&self) -> bool {
        self.status & (ST_RESET_CONNECTION | ST_RESET_CONNECTION_SKIP_TRAN) != 0
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one whole message. `Ok(None)` means the peer closed the connection
/// cleanly between messages.
pub fn read_message<R: Read>(r: &mut R) -> io::Result<Option<Message>> {
    let mut payload = Vec::new();
    let mut first: Option<(u8, u8)> = None;
    loop {
        let mut header = [0u8; 8];
        if first.is_none() {
            // A clean close is only clean on a message boundary.
            let mut got = 0;
            while got < 8 {
                let n = r.read(&mut header[got..])?;
                if n == 0 {
                    if got == 0 {
                        return Ok(None);
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside a packet header",
                    ));
                }
                got += n;
            }
        } else {
            r.read_exact(&mut header)?;
        }
        let ptype = header[0];
        let status = header[1];
        let len = u16::from_be_bytes([header[2], header[3]]) as usize;
        if len < 8 || len > MAX_PACKET_SIZE + 8 {
            return Err(invalid(format!("packet length {len} out of range")));
        }
        match first {
            None => first = Some((ptype, status)),
            Some((t, _)) if t != ptype => {
                return Err(invalid(format!(
                    "packet type changed from {t:#04x} to {ptype:#04x} inside a message"
                )))
            }
            _ => {}
        }
        let start = payload.len();
        if start + len - 8 > MAX_MESSAGE_SIZE {
            return Err(invalid("message too large"));
        }
        payload.resize(start + len - 8, 0);
        r.read_exact(&mut payload[start..])?;
        if status & ST_EOM != 0 {
            let (packet_type, status) = first.expect("set above");
            return Ok(Some(Message {
                packet_type,
                status,
                payload,
            }));
        }
    }
}

/// Writes `payload` as one message of `packet_type`, split into packets of at
/// most `packet_size` bytes (header included).
pub fn write_message<W: Write>(
    w: &mut W,
    packet_type: u8,
    payload: &[u8],
    packet_size: usize,
    spid: u16,
) -> io::Result<()> {
    let body = packet_size.clamp(512, MAX_PACKET_SIZE) - 8;
    let mut out = Vec::with_capacity(payload.len() + (payload.len() / body + 1) * 8);
    let mut chunks = payload.chunks(body).peekable();
    let mut id: u8 = 1;
    if chunks.peek().is_none() {
        out.extend_from_slice(&[packet_type, ST_EOM, 0, 8]);
        out.extend_from_slice(&spid.to_be_bytes());
        out.extend_from_slice(&[id, 0]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = (chunk.len() + 8) as u16;
        out.push(packet_type);
        out.push(if last { ST_EOM } else { 0 });
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&spid.to_be_bytes());
        out.push(id);
        out.push(0);
        out.extend_from_slice(chunk);
        id = id.wrapping_add(1);
    }
    w.write_all(&out)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_splits_and_joins() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        write_message(&mut wire, PT_RESPONSE, &payload, 512, 51).unwrap();
        // 504 payload bytes per packet.
        assert_eq!(wire.len(), payload.len() + payload.len().div_ceil(504) * 8);
        let msg = read_message(&mut &wire[..]).unwrap().unwrap();
        assert_eq!(msg.packet_type, PT_RESPONSE);
        assert_eq!(msg.payload, payload);
    }

    #[test]
    fn rejects_short_length() {
        let wire = [1u8, 1, 0, 4, 0, 0, 1, 0];
        assert!(read_message(&mut &wire[..]).is_err());
    }

    #[test]
    fn clean_close_is_none() {
        assert!(read_message(&mut &[][..]).unwrap().is_none());
    }
}
