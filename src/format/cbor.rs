//! A small CBOR (RFC 8949) encoder and a bounded, streaming decoder: just
//! the part of CBOR that the package format uses (docs/FORMAT.md).
//!
//! Why not a general CBOR crate: the package reader must never allocate from
//! a length it has not checked and must never panic on hostile input; owning
//! the forty lines that read a length makes that easy to see and to fuzz.
//!
//! Encoding is canonical-ish: shortest integer forms, definite lengths only.
//! The decoder accepts only definite lengths, at most `Limits::max_depth`
//! nesting, and strings no longer than `Limits::max_string`; a string is read
//! in chunks as its bytes arrive, so a forged length costs nothing until the
//! bytes are really there.

use std::io::{self, Read};

/// Tag 2: unsigned bignum (RFC 8949 §3.4.3).
pub const TAG_BIGNUM_POS: u64 = 2;
/// Tag 3: negative bignum.
pub const TAG_BIGNUM_NEG: u64 = 3;
/// Tag 4: decimal fraction `[exponent, mantissa]` (RFC 8949 §3.4.4).
pub const TAG_DECIMAL: u64 = 4;
/// Tag 37: binary UUID (RFC 9562 byte order).
pub const TAG_UUID: u64 = 37;
/// Tag 1004: RFC 3339 full-date string (RFC 8943).
pub const TAG_DATE: u64 = 1004;

/// Appends CBOR items to a byte vector.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { buf: Vec::new() }
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.buf.push(m | n as u8);
        } else if n <= u8::MAX as u64 {
            self.buf.extend_from_slice(&[m | 24, n as u8]);
        } else if n <= u16::MAX as u64 {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= u32::MAX as u64 {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub fn uint(&mut self, n: u64) {
        self.head(0, n);
    }

    pub fn int(&mut self, n: i64) {
        if n >= 0 {
            self.head(0, n as u64);
        } else {
            self.head(1, !(n as u64));
        }
    }

    /// An integer of any size up to i128: a plain integer when it fits in
    /// CBOR's 64-bit forms, else a bignum (tag 2 or 3).
    pub fn big_int(&mut self, n: i128) {
        if n >= 0 && n <= u64::MAX as i128 {
            self.head(0, n as u64);
        } else if n < 0 && n >= -(u64::MAX as i128) - 1 {
            self.head(1, (-1 - n) as u64);
        } else {
            let (tag, mag) = if n >= 0 {
                (TAG_BIGNUM_POS, n as u128)
            } else {
                (TAG_BIGNUM_NEG, (-1 - n) as u128)
            };
            self.tag(tag);
            let bytes = mag.to_be_bytes();
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(15);
            self.bytes(&bytes[first..]);
        }
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn array(&mut self, len: usize) {
        self.head(4, len as u64);
    }

    pub fn map(&mut self, len: usize) {
        self.head(5, len as u64);
    }

    pub fn tag(&mut self, tag: u64) {
        self.head(6, tag);
    }

    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xf5 } else { 0xf4 });
    }

    pub fn null(&mut self) {
        self.buf.push(0xf6);
    }

    pub fn f64(&mut self, f: f64) {
        self.buf.push(0xfb);
        self.buf.extend_from_slice(&f.to_be_bytes());
    }

    pub fn f32(&mut self, f: f32) {
        self.buf.push(0xfa);
        self.buf.extend_from_slice(&f.to_be_bytes());
    }
}

/// A decoded CBOR item (the subset the format uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
    Tag(u64, Box<Item>),
    Bool(bool),
    Null,
    F32(f32),
    F64(f64),
}

impl Item {
    /// The value of `key` in a map with text keys.
    pub fn get(&self, key: &str) -> Option<&Item> {
        match self {
            Item::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Item::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Item::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Item::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_int().and_then(|i| u64::try_from(i).ok())
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Item::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Item]> {
        match self {
            Item::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Bounds on what the decoder accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest byte or text string, in bytes.
    pub max_string: u64,
    /// Most elements of one array or map.
    pub max_items: u64,
    /// Deepest nesting of arrays, maps and tags.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_string: 1 << 31,
            max_items: 1 << 20,
            max_depth: 16,
        }
    }
}

/// Why an item could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside an item.
    #[error("the data ends in the middle of an item")]
    Truncated,
    /// The input ended cleanly before the item started.
    #[error("the data ends where an item was expected")]
    End,
    #[error("invalid CBOR: {0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads CBOR items one at a time from a byte stream.
pub struct Decoder<R: Read> {
    inner: R,
    limits: Limits,
    /// Bytes consumed so far.
    pub offset: u64,
}

impl<R: Read> Decoder<R> {
    pub fn new(inner: R, limits: Limits) -> Decoder<R> {
        Decoder {
            inner,
            limits,
            offset: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fill(&mut self, buf: &mut [u8], at_start: bool) -> Result<(), DecodeError> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => {
                    return Err(if at_start && done == 0 {
                        DecodeError::End
                    } else {
                        DecodeError::Truncated
                    })
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(DecodeError::Truncated)
                }
                Err(e) => return Err(DecodeError::Io(e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn arg(&mut self, info: u8) -> Result<u64, DecodeError> {
        Ok(match info {
            0..=23 => info as u64,
            24 => {
                let mut b = [0u8; 1];
                self.fill(&mut b, false)?;
                b[0] as u64
            }
            25 => {
                let mut b = [0u8; 2];
                self.fill(&mut b, false)?;
                u16::from_be_bytes(b) as u64
            }
            26 => {
                let mut b = [0u8; 4];
                self.fill(&mut b, false)?;
                u32::from_be_bytes(b) as u64
            }
            27 => {
                let mut b = [0u8; 8];
                self.fill(&mut b, false)?;
                u64::from_be_bytes(b)
            }
            31 => {
                return Err(DecodeError::Invalid(
                    "indefinite lengths are not used".into(),
                ))
            }
            _ => {
                return Err(DecodeError::Invalid(format!(
                    "reserved additional info {info}"
                )))
            }
        })
    }

    fn string(&mut self, len: u64) -> Result<Vec<u8>, DecodeError> {
        if len > self.limits.max_string {
            return Err(DecodeError::Invalid(format!(
                "a string of {len} bytes is longer than the limit of {}",
                self.limits.max_string
            )));
        }
        // Read in chunks: the allocation grows only as real bytes arrive.
        let mut out = Vec::with_capacity(len.min(64 * 1024) as usize);
        let mut left = len;
        let mut chunk = [0u8; 64 * 1024];
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.fill(&mut chunk[..n], false)?;
            out.extend_from_slice(&chunk[..n]);
            left -= n as u64;
        }
        Ok(out)
    }

    /// Reads the next item; `Err(DecodeError::End)` at a clean end of input.
    pub fn next_item(&mut self) -> Result<Item, DecodeError> {
        self.item(0, true)
    }

    fn item(&mut self, depth: usize, at_start: bool) -> Result<Item, DecodeError> {
        if depth > self.limits.max_depth {
            return Err(DecodeError::Invalid("items nested too deeply".into()));
        }
        let mut b = [0u8; 1];
        self.fill(&mut b, at_start)?;
        let major = b[0] >> 5;
        let info = b[0] & 0x1f;
        Ok(match major {
            0 => Item::Int(self.arg(info)? as i128),
            1 => Item::Int(-1 - self.arg(info)? as i128),
            2 => {
                let n = self.arg(info)?;
                Item::Bytes(self.string(n)?)
            }
            3 => {
                let n = self.arg(info)?;
                let bytes = self.string(n)?;
                Item::Text(
                    String::from_utf8(bytes)
                        .map_err(|_| DecodeError::Invalid("a text string is not UTF-8".into()))?,
                )
            }
            4 => {
                let n = self.arg(info)?;
                if n > self.limits.max_items {
                    return Err(DecodeError::Invalid(format!(
                        "an array of {n} items is too long"
                    )));
                }
                let mut v = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    v.push(self.item(depth + 1, false)?);
                }
                Item::Array(v)
            }
            5 => {
                let n = self.arg(info)?;
                if n > self.limits.max_items {
                    return Err(DecodeError::Invalid(format!(
                        "a map of {n} entries is too long"
                    )));
                }
                let mut v = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    let k = self.item(depth + 1, false)?;
                    let val = self.item(depth + 1, false)?;
                    v.push((k, val));
                }
                Item::Map(v)
            }
            6 => {
                let tag = self.arg(info)?;
                let inner = self.item(depth + 1, false)?;
                Item::Tag(tag, Box::new(inner))
            }
            _ => match info {
                20 => Item::Bool(false),
                21 => Item::Bool(true),
                22 => Item::Null,
                26 => {
                    let mut b = [0u8; 4];
                    self.fill(&mut b, false)?;
                    Item::F32(f32::from_be_bytes(b))
                }
                27 => {
                    let mut b = [0u8; 8];
                    self.fill(&mut b, false)?;
                    Item::F64(f64::from_be_bytes(b))
                }
                other => {
                    return Err(DecodeError::Invalid(format!(
                        "simple value or float form {other} is not used"
                    )))
                }
            },
        })
    }
}

/// Reads a bignum's magnitude (tag 2/3 content) into an i128.
pub fn bignum(tag: u64, bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let mut mag: u128 = 0;
    for b in bytes {
        mag = (mag << 8) | *b as u128;
    }
    let mag = i128::try_from(mag).ok()?;
    match tag {
        TAG_BIGNUM_POS => Some(mag),
        TAG_BIGNUM_NEG => Some(-1 - mag),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(f: impl FnOnce(&mut Encoder)) -> Item {
        let mut e = Encoder::new();
        f(&mut e);
        let mut d = Decoder::new(&e.buf[..], Limits::default());
        let item = d.next_item().unwrap();
        assert!(matches!(d.next_item(), Err(DecodeError::End)));
        item
    }

    #[test]
    fn integers_use_the_shortest_form_and_round_trip() {
        for n in [
            0i64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            -1,
            -24,
            -25,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(round(|e| e.int(n)), Item::Int(n as i128));
        }
        let mut e = Encoder::new();
        e.int(10);
        e.int(-500);
        assert_eq!(e.buf, [0x0a, 0x39, 0x01, 0xf3]);
        for n in [
            i128::MAX,
            i128::MIN + 1,
            u64::MAX as i128 + 1,
            -(u64::MAX as i128) - 2,
            99999999999999999999999999999999999999,
        ] {
            match round(|e| e.big_int(n)) {
                Item::Tag(t, b) => match *b {
                    Item::Bytes(bytes) => assert_eq!(bignum(t, &bytes), Some(n)),
                    other => panic!("{other:?}"),
                },
                Item::Int(i) => assert_eq!(i, n),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn forged_lengths_do_not_allocate() {
        // A byte string claiming 2^62 bytes, followed by nothing.
        let data = [0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0];
        let mut d = Decoder::new(
            &data[..],
            Limits {
                max_string: u64::MAX,
                ..Limits::default()
            },
        );
        assert!(matches!(d.next_item(), Err(DecodeError::Truncated)));
        let mut d = Decoder::new(&data[..], Limits::default());
        assert!(matches!(d.next_item(), Err(DecodeError::Invalid(_))));
        // An array claiming 2^32 items.
        let data = [0x9a, 0xff, 0xff, 0xff, 0xff];
        let mut d = Decoder::new(&data[..], Limits::default());
        assert!(matches!(d.next_item(), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn maps_texts_and_floats() {
        let item = round(|e| {
            e.map(2);
            e.text("a");
            e.f64(1.5);
            e.text("b");
            e.array(3);
            e.null();
            e.bool(true);
            e.f32(0.25);
        });
        assert_eq!(item.get("a"), Some(&Item::F64(1.5)));
        assert_eq!(
            item.get("b"),
            Some(&Item::Array(vec![
                Item::Null,
                Item::Bool(true),
                Item::F32(0.25)
            ]))
        );
    }
}
