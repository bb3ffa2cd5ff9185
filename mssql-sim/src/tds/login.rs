//! PRELOGIN and LOGIN7 (MS-TDS 2.2.6.4–2.2.6.5).
//!
//! The ENCRYPTION value the server answers is decided by `crate::tls`.

use super::wire::{PResult, ProtocolError, Reader};

/// Product version reported in PRELOGIN, LOGINACK and @@VERSION (SQL Server 2022 RTM).
pub const PRODUCT_VERSION: (u8, u8, u16) = (16, 0, 1000);
pub const PRODUCT_VERSION_STRING: &str = "16.0.1000.6";

/// The PRELOGIN reply: VERSION, ENCRYPTION=`encryption`, INSTOPT, THREADID
/// (empty), MARS=0.
pub fn prelogin_reply(encryption: u8) -> Vec<u8> {
    let version: [u8; 6] = {
        let b = PRODUCT_VERSION.2.to_be_bytes();
        [PRODUCT_VERSION.0, PRODUCT_VERSION.1, b[0], b[1], 0, 6]
    };
    let options: [(u8, &[u8]); 5] = [
        (0, &version),
        (1, &[encryption]),
        (2, &[0x00]),
        (3, &[]),
        (4, &[0x00]),
    ];
    let header_len = options.len() * 5 + 1;
    let mut head = Vec::new();
    let mut data = Vec::new();
    for (token, value) in options {
        head.push(token);
        head.extend_from_slice(&((header_len + data.len()) as u16).to_be_bytes());
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    head.push(0xFF);
    head.extend_from_slice(&data);
    head
}

/// Checks that a PRELOGIN payload is well-formed (option list terminated,
/// offsets inside the payload) and returns the client's encryption option.
pub fn parse_prelogin(payload: &[u8]) -> PResult<Option<u8>> {
    let mut r = Reader::new(payload);
    let mut encryption = None;
    loop {
        let token = r.u8()?;
        if token == 0xFF {
            break;
        }
        let off = u16::from_be_bytes([r.u8()?, r.u8()?]) as usize;
        let len = u16::from_be_bytes([r.u8()?, r.u8()?]) as usize;
        if off + len > payload.len() {
            return Err(ProtocolError("PRELOGIN option outside the payload".into()));
        }
        if token == 1 && len >= 1 {
            encryption = Some(payload[off]);
        }
    }
    Ok(encryption)
}

/// What the server uses from LOGIN7.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub tds_version: u32,
    pub packet_size: u32,
    pub host: String,
    pub user: String,
    pub password: String,
    pub app: String,
    pub server: String,
    pub database: String,
    pub language: String,
    /// OptionFlags2's fIntSecurity: the client signs in with Windows
    /// authentication (SSPI) instead of a login and password.
    pub integrated: bool,
}

fn decode_password(b: &[u8]) -> String {
    let decoded: Vec<u8> = b.iter().map(|x| (x ^ 0xA5).rotate_left(4)).collect();
    let units: Vec<u16> = decoded
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Parses LOGIN7. Offsets count from the start of the LOGIN7 record;
/// lengths are UTF-16 code units.
pub fn parse_login7(payload: &[u8]) -> PResult<Login> {
    let mut r = Reader::new(payload);
    let length = r.u32()? as usize;
    if length > payload.len() || length < 94 {
        return Err(ProtocolError(format!(
            "LOGIN7 length {length} with {} bytes",
            payload.len()
        )));
    }
    let tds_version = r.u32()?;
    let packet_size = r.u32()?;
    r.bytes(4 + 4 + 4)?; // progver, pid, connid
    let flags = r.bytes(4)?; // OptionFlags1, OptionFlags2, TypeFlags, OptionFlags3
    let integrated = flags[1] & 0x80 != 0;
    r.bytes(4 + 4)?; // tz, lcid
    let field = |r: &mut Reader<'_>, password: bool| -> PResult<String> {
        let ib = r.u16()? as usize;
        let cch = r.u16()? as usize;
        let end = ib + cch * 2;
        if cch > 0 && (ib < 36 || end > length) {
            return Err(ProtocolError("LOGIN7 field outside the record".into()));
        }
        let bytes = &payload[ib.min(length)..end.min(length)];
        Ok(if password {
            decode_password(bytes)
        } else {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        })
    };
    let host = field(&mut r, false)?;
    let user = field(&mut r, false)?;
    let password = field(&mut r, true)?;
    let app = field(&mut r, false)?;
    let server = field(&mut r, false)?;
    r.bytes(4)?; // extension (FeatureExt): ignored, never acknowledged
    let _client_interface = field(&mut r, false)?;
    let language = field(&mut r, false)?;
    let database = field(&mut r, false)?;
    Ok(Login {
        tds_version,
        packet_size,
        host,
        user,
        password,
        app,
        server,
        database,
        language,
        integrated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelogin_reply_layout() {
        let r = prelogin_reply(0x02);
        // Five options of 5 bytes and the terminator, then 6+1+1+0+1 data bytes.
        assert_eq!(r.len(), 26 + 9);
        assert_eq!(r[25], 0xFF);
        assert_eq!(parse_prelogin(&r).unwrap(), Some(0x02));
    }

    #[test]
    fn password_obfuscation() {
        // "a" = 0x61 0x00 encoded: swap nibbles then xor 0xA5.
        let enc: Vec<u8> = [0x61u8, 0x00]
            .iter()
            .map(|b| b.rotate_left(4) ^ 0xA5)
            .collect();
        assert_eq!(decode_password(&enc), "a");
    }

    #[test]
    fn garbage_login_is_an_error() {
        assert!(parse_login7(&[0xFF; 10]).is_err());
        let mut p = vec![0u8; 94];
        p[0] = 94;
        p[36] = 200; // host offset beyond the record
        p[38] = 5;
        assert!(parse_login7(&p).is_err());
    }
}
