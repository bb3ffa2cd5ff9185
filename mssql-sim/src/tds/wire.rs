//! TYPE_INFO and typed values on the wire (MS-TDS 2.2.5.4–2.2.5.5), in both
//! directions: the server encodes result columns from a `SqlType`, and
//! decodes the TYPE_INFO and value of every parameter or bulk-load column a
//! client sends.
//!
//! Decoding never panics and never trusts a length: every read goes through
//! `Reader`, which returns a protocol error when the input is short.

use super::collation::COLLATION;
use crate::types::{
    decimal_bytes, guid_from_sql_bytes, guid_to_sql_bytes, time_bytes, Dec, Len, SqlType, Value,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

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

fn perr<T>(msg: impl Into<String>) -> PResult<T> {
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

// ---------------------------------------------------------------- encoding

fn ushort_len_bytes(l: &Len, unit: u16) -> u16 {
    match l {
        Len::N(n) => n * unit,
        Len::Max => 0xFFFF,
    }
}

/// Appends the TYPE_INFO for a result column of type `ty` (always the
/// nullable N-type form, which every client accepts).
pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    match *ty {
        SqlType::Bit => buf.extend_from_slice(&[0x68, 1]),
        SqlType::TinyInt => buf.extend_from_slice(&[0x26, 1]),
        SqlType::SmallInt => buf.extend_from_slice(&[0x26, 2]),
        SqlType::Int => buf.extend_from_slice(&[0x26, 4]),
        SqlType::BigInt => buf.extend_from_slice(&[0x26, 8]),
        SqlType::Float => buf.extend_from_slice(&[0x6D, 8]),
        SqlType::Real => buf.extend_from_slice(&[0x6D, 4]),
        SqlType::Decimal { p, s } => {
            buf.extend_from_slice(&[0x6A, decimal_bytes(p) as u8 + 1, p, s])
        }
        SqlType::Numeric { p, s } => {
            buf.extend_from_slice(&[0x6C, decimal_bytes(p) as u8 + 1, p, s])
        }
        SqlType::Money => buf.extend_from_slice(&[0x6E, 8]),
        SqlType::SmallMoney => buf.extend_from_slice(&[0x6E, 4]),
        SqlType::DateTime => buf.extend_from_slice(&[0x6F, 8]),
        SqlType::SmallDateTime => buf.extend_from_slice(&[0x6F, 4]),
        SqlType::Date => buf.push(0x28),
        SqlType::Time(s) => buf.extend_from_slice(&[0x29, s]),
        SqlType::DateTime2(s) => buf.extend_from_slice(&[0x2A, s]),
        SqlType::DateTimeOffset(s) => buf.extend_from_slice(&[0x2B, s]),
        SqlType::UniqueIdentifier => buf.extend_from_slice(&[0x24, 16]),
        SqlType::NVarChar(l) => {
            buf.push(0xE7);
            buf.extend_from_slice(&ushort_len_bytes(&l, 2).to_le_bytes());
            buf.extend_from_slice(&COLLATION);
        }
        SqlType::NChar(n) => {
            buf.push(0xEF);
            buf.extend_from_slice(&(n * 2).to_le_bytes());
            buf.extend_from_slice(&COLLATION);
        }
        SqlType::VarChar(l) => {
            buf.push(0xA7);
            buf.extend_from_slice(&ushort_len_bytes(&l, 1).to_le_bytes());
            buf.extend_from_slice(&COLLATION);
        }
        SqlType::Char(n) => {
            buf.push(0xAF);
            buf.extend_from_slice(&n.to_le_bytes());
            buf.extend_from_slice(&COLLATION);
        }
        SqlType::VarBinary(l) => {
            buf.push(0xA5);
            buf.extend_from_slice(&ushort_len_bytes(&l, 1).to_le_bytes());
        }
        SqlType::Binary(n) => {
            buf.push(0xAD);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn days_since(base: NaiveDate, d: NaiveDate) -> i64 {
    (d - base).num_days()
}

fn date_bytes(buf: &mut Vec<u8>, d: NaiveDate) {
    let days = days_since(NaiveDate::from_ymd_opt(1, 1, 1).unwrap(), d) as u32;
    buf.extend_from_slice(&days.to_le_bytes()[..3]);
}

fn time_units(t: NaiveTime, scale: u8) -> u64 {
    let ticks = t.num_seconds_from_midnight() as u64 * 10_000_000
        + (t.nanosecond() as u64 % 1_000_000_000) / 100;
    ticks / 10u64.pow(7 - scale as u32)
}

fn time_value_bytes(buf: &mut Vec<u8>, units: u64, scale: u8) {
    buf.extend_from_slice(&units.to_le_bytes()[..time_bytes(scale)]);
}

fn encode_plp(buf: &mut Vec<u8>, data: &[u8]) {
    buf.extend_from_slice(&(data.len() as u64).to_le_bytes());
    for chunk in data.chunks(0x7FFF_FFFF) {
        if !chunk.is_empty() {
            buf.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            buf.extend_from_slice(chunk);
        }
    }
    buf.extend_from_slice(&0u32.to_le_bytes());
}

fn utf16_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

fn cp1252_bytes(s: &str) -> Vec<u8> {
    let (b, _, _) = encoding_rs::WINDOWS_1252.encode(s);
    b.into_owned()
}

/// Appends the value `v` of a column of type `ty`. The caller guarantees
/// that `v` was produced for `ty` (see `types::from_storage`).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) {
    let is_max = matches!(
        ty,
        SqlType::NVarChar(Len::Max) | SqlType::VarChar(Len::Max) | SqlType::VarBinary(Len::Max)
    );
    if matches!(v, Value::Null) {
        if is_max {
            buf.extend_from_slice(&u64::MAX.to_le_bytes());
        } else if matches!(
            ty,
            SqlType::NVarChar(_)
                | SqlType::NChar(_)
                | SqlType::VarChar(_)
                | SqlType::Char(_)
                | SqlType::VarBinary(_)
                | SqlType::Binary(_)
        ) {
            buf.extend_from_slice(&0xFFFFu16.to_le_bytes());
        } else {
            buf.push(0);
        }
        return;
    }
    match (ty, v) {
        (SqlType::Bit, Value::Int(i)) => buf.extend_from_slice(&[1, (*i != 0) as u8]),
        (SqlType::TinyInt, Value::Int(i)) => buf.extend_from_slice(&[1, *i as u8]),
        (SqlType::SmallInt, Value::Int(i)) => {
            buf.push(2);
            buf.extend_from_slice(&(*i as i16).to_le_bytes());
        }
        (SqlType::Int, Value::Int(i)) => {
            buf.push(4);
            buf.extend_from_slice(&(*i as i32).to_le_bytes());
        }
        (SqlType::BigInt, Value::Int(i)) => {
            buf.push(8);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        (SqlType::Float, Value::Float(f)) => {
            buf.push(8);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        (SqlType::Real, Value::Float(f)) => {
            buf.push(4);
            buf.extend_from_slice(&(*f as f32).to_le_bytes());
        }
        (SqlType::Decimal { p, .. } | SqlType::Numeric { p, .. }, Value::Dec(d)) => {
            let n = decimal_bytes(*p);
            buf.push(n as u8 + 1);
            buf.push(if d.mantissa < 0 { 0 } else { 1 });
            buf.extend_from_slice(&d.mantissa.unsigned_abs().to_le_bytes()[..n]);
        }
        (SqlType::Money, Value::Dec(d)) => {
            let m = d.rescale(4).map(|d| d.mantissa).unwrap_or(0) as i64;
            buf.push(8);
            buf.extend_from_slice(&((m >> 32) as i32).to_le_bytes());
            buf.extend_from_slice(&(m as u32).to_le_bytes());
        }
        (SqlType::SmallMoney, Value::Dec(d)) => {
            let m = d.rescale(4).map(|d| d.mantissa).unwrap_or(0) as i32;
            buf.push(4);
            buf.extend_from_slice(&m.to_le_bytes());
        }
        (SqlType::DateTime, Value::DateTime(dt)) => {
            let days = days_since(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(), dt.date()) as i32;
            let ticks = dt.time().num_seconds_from_midnight() as u64 * 10_000_000
                + (dt.time().nanosecond() as u64) / 100;
            let t300 = ((ticks * 300 + 5_000_000) / 10_000_000) as u32;
            buf.push(8);
            buf.extend_from_slice(&days.to_le_bytes());
            buf.extend_from_slice(&t300.to_le_bytes());
        }
        (SqlType::SmallDateTime, Value::DateTime(dt)) => {
            let days = days_since(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(), dt.date()) as u16;
            let mins = (dt.time().num_seconds_from_midnight() / 60) as u16;
            buf.push(4);
            buf.extend_from_slice(&days.to_le_bytes());
            buf.extend_from_slice(&mins.to_le_bytes());
        }
        (SqlType::Date, Value::Date(d)) => {
            buf.push(3);
            date_bytes(buf, *d);
        }
        (SqlType::Time(s), Value::Time(ticks)) => {
            buf.push(time_bytes(*s) as u8);
            time_value_bytes(buf, ticks / 10u64.pow(7 - *s as u32), *s);
        }
        (SqlType::DateTime2(s), Value::DateTime(dt)) => {
            buf.push(time_bytes(*s) as u8 + 3);
            time_value_bytes(buf, time_units(dt.time(), *s), *s);
            date_bytes(buf, dt.date());
        }
        (SqlType::DateTimeOffset(s), Value::DateTimeOffset(local, off)) => {
            let utc = *local - Duration::minutes(*off as i64);
            buf.push(time_bytes(*s) as u8 + 5);
            time_value_bytes(buf, time_units(utc.time(), *s), *s);
            date_bytes(buf, utc.date());
            buf.extend_from_slice(&off.to_le_bytes());
        }
        (SqlType::UniqueIdentifier, Value::Guid(g)) => {
            buf.push(16);
            buf.extend_from_slice(&guid_to_sql_bytes(g));
        }
        (SqlType::NVarChar(_) | SqlType::NChar(_), Value::Str(s)) => {
            let b = utf16_bytes(s);
            if is_max {
                encode_plp(buf, &b);
            } else {
                buf.extend_from_slice(&(b.len() as u16).to_le_bytes());
                buf.extend_from_slice(&b);
            }
        }
        (SqlType::VarChar(_) | SqlType::Char(_), Value::Str(s)) => {
            let b = cp1252_bytes(s);
            if is_max {
                encode_plp(buf, &b);
            } else {
                buf.extend_from_slice(&(b.len() as u16).to_le_bytes());
                buf.extend_from_slice(&b);
            }
        }
        (SqlType::VarBinary(_) | SqlType::Binary(_), Value::Bytes(b)) => {
            if is_max {
                encode_plp(buf, b);
            } else {
                buf.extend_from_slice(&(b.len() as u16).to_le_bytes());
                buf.extend_from_slice(b);
            }
        }
        // A value that does not match its column cannot be produced by
        // `from_storage`; send NULL rather than corrupt the stream.
        _ => encode_value(buf, ty, &Value::Null),
    }
}

// ---------------------------------------------------------------- decoding

/// A TYPE_INFO as a client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct WireType {
    pub ty: SqlType,
    /// The raw type token; fixed-length tokens carry no length prefix.
    token: u8,
    /// Length from the TYPE_INFO (bytes) for N-types.
    len: u32,
    plp: bool,
}

impl WireType {
    /// The TDS type token.
    pub fn token(&self) -> u8 {
        self.token
    }
}

/// Decodes a TYPE_INFO. Types the simulator does not handle give an error
/// that the caller turns into a SQL Server-style error.
pub fn decode_type_info(r: &mut Reader<'_>) -> PResult<WireType> {
    let token = r.u8()?;
    let w = |ty, len, plp| WireType {
        ty,
        token,
        len,
        plp,
    };
    Ok(match token {
        0x1F => w(SqlType::Int, 0, false), // NULLTYPE: the value is always NULL
        0x30 => w(SqlType::TinyInt, 1, false),
        0x32 => w(SqlType::Bit, 1, false),
        0x34 => w(SqlType::SmallInt, 2, false),
        0x38 => w(SqlType::Int, 4, false),
        0x7F => w(SqlType::BigInt, 8, false),
        0x3B => w(SqlType::Real, 4, false),
        0x3E => w(SqlType::Float, 8, false),
        0x3C => w(SqlType::Money, 8, false),
        0x7A => w(SqlType::SmallMoney, 4, false),
        0x3D => w(SqlType::DateTime, 8, false),
        0x3A => w(SqlType::SmallDateTime, 4, false),
        0x26 => {
            let n = r.u8()?;
            let ty = match n {
                1 => SqlType::TinyInt,
                2 => SqlType::SmallInt,
                4 => SqlType::Int,
                8 => SqlType::BigInt,
                _ => return perr(format!("INTN length {n}")),
            };
            w(ty, n as u32, false)
        }
        0x68 => {
            let n = r.u8()?;
            w(SqlType::Bit, n as u32, false)
        }
        0x6D => {
            let n = r.u8()?;
            w(
                if n == 4 {
                    SqlType::Real
                } else {
                    SqlType::Float
                },
                n as u32,
                false,
            )
        }
        0x6E => {
            let n = r.u8()?;
            w(
                if n == 4 {
                    SqlType::SmallMoney
                } else {
                    SqlType::Money
                },
                n as u32,
                false,
            )
        }
        0x6F => {
            let n = r.u8()?;
            w(
                if n == 4 {
                    SqlType::SmallDateTime
                } else {
                    SqlType::DateTime
                },
                n as u32,
                false,
            )
        }
        0x24 => {
            let n = r.u8()?;
            w(SqlType::UniqueIdentifier, n as u32, false)
        }
        0x6A | 0x6C | 0x37 | 0x3F => {
            let n = r.u8()?;
            let p = r.u8()?;
            let s = r.u8()?;
            if p == 0 || p > 38 || s > p {
                return perr(format!("decimal precision {p} scale {s}"));
            }
            let ty = if token == 0x6C || token == 0x3F {
                SqlType::Numeric { p, s }
            } else {
                SqlType::Decimal { p, s }
            };
            w(ty, n as u32, false)
        }
        0x28 => w(SqlType::Date, 3, false),
        0x29 | 0x2A | 0x2B => {
            let s = r.u8()?;
            if s > 7 {
                return perr(format!("time scale {s}"));
            }
            let ty = match token {
                0x29 => SqlType::Time(s),
                0x2A => SqlType::DateTime2(s),
                _ => SqlType::DateTimeOffset(s),
            };
            w(ty, 0, false)
        }
        0xE7 | 0xEF | 0xA7 | 0xAF | 0xA5 | 0xAD => {
            let n = r.u16()?;
            if matches!(token, 0xE7 | 0xEF | 0xA7 | 0xAF) {
                r.bytes(5)?; // collation
            }
            let plp = n == 0xFFFF;
            let len = |unit: u16| {
                if plp {
                    Len::Max
                } else {
                    Len::N((n / unit).max(1))
                }
            };
            let ty = match token {
                0xE7 => SqlType::NVarChar(len(2)),
                0xEF => SqlType::NChar((n / 2).max(1)),
                0xA7 => SqlType::VarChar(len(1)),
                0xAF => SqlType::Char(n.max(1)),
                0xA5 => SqlType::VarBinary(len(1)),
                _ => SqlType::Binary(n.max(1)),
            };
            w(ty, n as u32, plp)
        }
        0x63 | 0x23 | 0x22 => {
            // NTEXT / TEXT / IMAGE: u32 max length, collation (text types),
            // then the values carry a text pointer. Read them as (max) types.
            let n = r.u32()?;
            if token != 0x22 {
                r.bytes(5)?;
            }
            let ty = match token {
                0x63 => SqlType::NVarChar(Len::Max),
                0x23 => SqlType::VarChar(Len::Max),
                _ => SqlType::VarBinary(Len::Max),
            };
            w(ty, n, false)
        }
        other => return perr(format!("unsupported TYPE_INFO token {other:#04x}")),
    })
}

fn read_plp(r: &mut Reader<'_>) -> PResult<Option<Vec<u8>>> {
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

fn decode_str(ty: &SqlType, b: &[u8]) -> PResult<Value> {
    Ok(match ty {
        SqlType::NVarChar(_) | SqlType::NChar(_) => {
            if b.len() % 2 != 0 {
                return perr("odd UTF-16 byte count");
            }
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            Value::Str(String::from_utf16_lossy(&units))
        }
        SqlType::VarChar(_) | SqlType::Char(_) => {
            let (s, _, _) = encoding_rs::WINDOWS_1252.decode(b);
            Value::Str(s.into_owned())
        }
        _ => Value::Bytes(b.to_vec()),
    })
}

fn read_date(b: &[u8]) -> PResult<NaiveDate> {
    let days = u32::from_le_bytes([b[0], b[1], b[2], 0]);
    NaiveDate::from_ymd_opt(1, 1, 1)
        .unwrap()
        .checked_add_signed(Duration::days(days as i64))
        .ok_or_else(|| ProtocolError("date out of range".into()))
}

fn read_time_units(b: &[u8], scale: u8) -> PResult<u64> {
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    let units = u64::from_le_bytes(x);
    let ticks = units
        .checked_mul(10u64.pow(7 - scale as u32))
        .ok_or_else(|| ProtocolError("time".into()))?;
    if ticks >= 864_000_000_000 {
        return perr("time of day out of range");
    }
    Ok(ticks)
}

fn ticks_to_time(ticks: u64) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt(
        (ticks / 10_000_000) as u32,
        ((ticks % 10_000_000) * 100) as u32,
    )
    .unwrap_or(NaiveTime::MIN)
}

/// Decodes one value of a column or parameter of wire type `w`.
pub fn decode_value(r: &mut Reader<'_>, w: &WireType) -> PResult<Value> {
    if w.plp {
        return Ok(match read_plp(r)? {
            None => Value::Null,
            Some(b) => decode_str(&w.ty, &b)?,
        });
    }
    // Fixed-length tokens carry no length byte.
    let fixed = matches!(
        w.token,
        0x30 | 0x32 | 0x34 | 0x38 | 0x7F | 0x3B | 0x3E | 0x3C | 0x7A | 0x3D | 0x3A
    );
    if w.token == 0x1F {
        return Ok(Value::Null);
    }
    match w.token {
        0xE7 | 0xEF | 0xA7 | 0xAF | 0xA5 | 0xAD => {
            let n = r.u16()?;
            if n == 0xFFFF {
                return Ok(Value::Null);
            }
            let b = r.bytes(n as usize)?;
            return decode_str(&w.ty, b);
        }
        0x63 | 0x23 | 0x22 => {
            // Text pointer length (0 = NULL), pointer, timestamp, u32 data length.
            let tp = r.u8()?;
            if tp == 0 {
                return Ok(Value::Null);
            }
            r.bytes(tp as usize)?;
            r.bytes(8)?;
            let n = r.u32()? as usize;
            let b = r.bytes(n)?;
            return decode_str(&w.ty, b);
        }
        _ => {}
    }
    let n = if fixed {
        w.len as usize
    } else {
        r.u8()? as usize
    };
    if n == 0 {
        return Ok(Value::Null);
    }
    let b = r.bytes(n)?;
    Ok(match w.ty {
        SqlType::Bit | SqlType::TinyInt => Value::Int(if w.ty == SqlType::Bit {
            (b[0] != 0) as i64
        } else {
            b[0] as i64
        }),
        SqlType::SmallInt | SqlType::Int | SqlType::BigInt => match n {
            1 => Value::Int(b[0] as i64),
            2 => Value::Int(i16::from_le_bytes([b[0], b[1]]) as i64),
            4 => Value::Int(i32::from_le_bytes(b.try_into().unwrap()) as i64),
            8 => Value::Int(i64::from_le_bytes(b.try_into().unwrap())),
            _ => return perr(format!("integer of {n} bytes")),
        },
        SqlType::Real | SqlType::Float => match n {
            4 => Value::Float(f32::from_le_bytes(b.try_into().unwrap()) as f64),
            8 => Value::Float(f64::from_le_bytes(b.try_into().unwrap())),
            _ => return perr(format!("float of {n} bytes")),
        },
        SqlType::Money | SqlType::SmallMoney => {
            let m: i64 = match n {
                4 => i32::from_le_bytes(b.try_into().unwrap()) as i64,
                8 => {
                    let hi = i32::from_le_bytes(b[..4].try_into().unwrap()) as i64;
                    let lo = u32::from_le_bytes(b[4..].try_into().unwrap()) as i64;
                    (hi << 32) | lo
                }
                _ => return perr(format!("money of {n} bytes")),
            };
            Value::Dec(Dec {
                mantissa: m as i128,
                scale: 4,
            })
        }
        SqlType::Decimal { s, .. } | SqlType::Numeric { s, .. } => {
            if n < 2 || n > 17 {
                return perr(format!("decimal of {n} bytes"));
            }
            let mut mag = [0u8; 16];
            mag[..n - 1].copy_from_slice(&b[1..]);
            let m = u128::from_le_bytes(mag);
            if m > 10u128.pow(38) - 1 {
                return perr("decimal magnitude above 38 digits");
            }
            let m = m as i128;
            Value::Dec(Dec {
                mantissa: if b[0] == 0 { -m } else { m },
                scale: s,
            })
        }
        SqlType::DateTime | SqlType::SmallDateTime => {
            let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
            match n {
                8 => {
                    let days = i32::from_le_bytes(b[..4].try_into().unwrap());
                    let t300 = u32::from_le_bytes(b[4..].try_into().unwrap()) as u64;
                    let d = base
                        .checked_add_signed(Duration::days(days as i64))
                        .ok_or_else(|| ProtocolError("datetime".into()))?;
                    let ticks = (t300 * 10_000_000 + 150) / 300;
                    if ticks >= 864_000_000_000 {
                        return perr("datetime time out of range");
                    }
                    Value::DateTime(NaiveDateTime::new(d, ticks_to_time(ticks)))
                }
                4 => {
                    let days = u16::from_le_bytes([b[0], b[1]]);
                    let mins = u16::from_le_bytes([b[2], b[3]]);
                    let d = base
                        .checked_add_signed(Duration::days(days as i64))
                        .ok_or_else(|| ProtocolError("smalldatetime".into()))?;
                    if mins >= 1440 {
                        return perr("smalldatetime minutes out of range");
                    }
                    Value::DateTime(NaiveDateTime::new(
                        d,
                        ticks_to_time(mins as u64 * 600_000_000),
                    ))
                }
                _ => return perr(format!("datetime of {n} bytes")),
            }
        }
        SqlType::UniqueIdentifier => {
            if n != 16 {
                return perr(format!("guid of {n} bytes"));
            }
            Value::Guid(guid_from_sql_bytes(b.try_into().unwrap()))
        }
        SqlType::Date => {
            if n != 3 {
                return perr(format!("date of {n} bytes"));
            }
            Value::Date(read_date(b)?)
        }
        SqlType::Time(s) => {
            if n != time_bytes(s) {
                return perr(format!("time({s}) of {n} bytes"));
            }
            Value::Time(read_time_units(b, s)?)
        }
        SqlType::DateTime2(s) => {
            let t = time_bytes(s);
            if n != t + 3 {
                return perr(format!("datetime2({s}) of {n} bytes"));
            }
            let ticks = read_time_units(&b[..t], s)?;
            Value::DateTime(NaiveDateTime::new(
                read_date(&b[t..])?,
                ticks_to_time(ticks),
            ))
        }
        SqlType::DateTimeOffset(s) => {
            let t = time_bytes(s);
            if n != t + 5 {
                return perr(format!("datetimeoffset({s}) of {n} bytes"));
            }
            let ticks = read_time_units(&b[..t], s)?;
            let utc = NaiveDateTime::new(read_date(&b[t..t + 3])?, ticks_to_time(ticks));
            let off = i16::from_le_bytes([b[t + 3], b[t + 4]]);
            if off.abs() > 14 * 60 {
                return perr("offset out of range");
            }
            Value::DateTimeOffset(utc + Duration::minutes(off as i64), off)
        }
        _ => return perr("unexpected value"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::convert;

    fn round_trip(ty: SqlType, v: Value) {
        let mut ti = Vec::new();
        encode_type_info(&mut ti, &ty);
        let mut r = Reader::new(&ti);
        let w = decode_type_info(&mut r).unwrap();
        assert!(r.is_empty());
        let mut val = Vec::new();
        encode_value(&mut val, &ty, &v);
        let mut r = Reader::new(&val);
        let back = decode_value(&mut r, &w).unwrap();
        assert!(r.is_empty(), "{ty}: trailing bytes");
        assert_eq!(back, v, "{ty}");
    }

    #[test]
    fn every_type_round_trips() {
        let s = |t: SqlType, x: &str| (t, convert(&Value::Str(x.into()), &t, None).unwrap());
        let cases = vec![
            s(SqlType::Bit, "1"),
            s(SqlType::TinyInt, "255"),
            s(SqlType::SmallInt, "-32768"),
            s(SqlType::Int, "-2147483648"),
            s(SqlType::BigInt, "9223372036854775807"),
            s(
                SqlType::Decimal { p: 38, s: 6 },
                "-12345678901234567890123456789012.123456",
            ),
            s(SqlType::Numeric { p: 5, s: 2 }, "123.45"),
            s(SqlType::Money, "-922337203685477.5808"),
            s(SqlType::SmallMoney, "214748.3647"),
            s(SqlType::Float, "1.5e300"),
            s(SqlType::Real, "0.5"),
            s(SqlType::NVarChar(Len::N(10)), "åäö€"),
            s(SqlType::NVarChar(Len::Max), &"x".repeat(100_000)),
            s(SqlType::VarChar(Len::N(10)), "abc€"),
            s(SqlType::Char(5), "ab"),
            s(SqlType::NChar(3), "z"),
            s(
                SqlType::UniqueIdentifier,
                "00112233-4455-6677-8899-AABBCCDDEEFF",
            ),
            s(SqlType::Date, "0001-01-01"),
            s(SqlType::Date, "9999-12-31"),
            s(SqlType::Time(7), "23:59:59.9999999"),
            s(SqlType::Time(0), "12:00:01"),
            s(SqlType::DateTime, "2024-01-01 10:00:00.003"),
            s(SqlType::SmallDateTime, "2024-01-01 10:01:00"),
            s(SqlType::DateTime2(7), "2024-02-29 23:59:59.1234567"),
            s(SqlType::DateTime2(2), "1999-12-31 23:59:59.12"),
            s(
                SqlType::DateTimeOffset(7),
                "2024-06-30 01:30:00.1234567 +05:45",
            ),
            s(SqlType::DateTimeOffset(0), "2024-01-01 00:30:00 -08:00"),
            (
                SqlType::VarBinary(Len::N(4)),
                Value::Bytes(vec![0, 1, 2, 255]),
            ),
            (SqlType::VarBinary(Len::Max), Value::Bytes(vec![7; 70_000])),
            (SqlType::Binary(2), Value::Bytes(vec![9, 9])),
            (SqlType::NVarChar(Len::N(5)), Value::Str(String::new())),
            (SqlType::NVarChar(Len::Max), Value::Str(String::new())),
        ];
        for (t, v) in cases {
            round_trip(t, v);
            round_trip(t, Value::Null);
        }
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let w = WireType {
            ty: SqlType::NVarChar(Len::N(10)),
            token: 0xE7,
            len: 20,
            plp: false,
        };
        assert!(decode_value(&mut Reader::new(&[10, 0, 1]), &w).is_err());
        assert!(decode_type_info(&mut Reader::new(&[0x6A, 17, 40, 2])).is_err());
    }

    #[test]
    fn fixed_length_int_has_no_length_byte() {
        let mut r = Reader::new(&[0x38, 1, 0, 0, 0]);
        let w = decode_type_info(&mut r).unwrap();
        assert_eq!(decode_value(&mut r, &w).unwrap(), Value::Int(1));
    }
}
