//! The bounds-checked cursor every decoder reads through, and the
//! protocol error it returns when the input is short or malformed.

/// A malformed message: the connection that sent it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

pub type PResult<T> = Result<T, ProtocolError>;

pub fn perr<T>(msg: impl Into<String>) -> PResult<T> {
    Err(ProtocolError(msg.into()))
}

/// A bounds-checked cursor over a message payload.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn bytes(&mut self, n: usize) -> PResult<&'a [u8]> {
        if self.remaining() < n {
            return perr(format!(
                "need {n} bytes at offset {}, have {}",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> PResult<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u16(&mut self) -> PResult<u16> {
        Ok(u16::from_le_bytes(self.bytes(2)?.try_into().unwrap()))
    }
    pub fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }
    pub fn peek_u8(&self) -> PResult<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| ProtocolError("unexpected end of message".into()))
    }
    /// UTF-16LE string of `chars` code units.
    pub fn utf16(&mut self, chars: usize) -> PResult<String> {
        let b = self.bytes(chars * 2)?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }
    pub fn b_varchar(&mut self) -> PResult<String> {
        let n = self.u8()? as usize;
        self.utf16(n)
    }
    pub fn us_varchar(&mut self) -> PResult<String> {
        let n = self.u16()? as usize;
        self.utf16(n)
    }
}
