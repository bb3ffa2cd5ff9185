//! decimal, numeric, money, smallmoney: DECIMALN/NUMERICN (0x6A/0x6C) and
//! MONEYN (0x6E) out; those, the legacy DECIMAL/NUMERIC tokens and the
//! fixed-length money tokens in. Values stay exact (`Dec`).

use super::reader::{perr, PResult, Reader};
use super::wire_type::{put_sized, WireType};
use crate::types::{decimal_bytes, Dec, SqlType, Value};

/// DECIMALN/NUMERICN (0x6A/0x6C) with length, precision and scale;
/// MONEYN (0x6E) with the byte length.
pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    let (token, p, s) = match *ty {
        SqlType::Decimal { p, s } => (0x6A, p, s),
        SqlType::Numeric { p, s } => (0x6C, p, s),
        SqlType::Money => return buf.extend_from_slice(&[0x6E, 8]),
        _ => return buf.extend_from_slice(&[0x6E, 4]), // smallmoney
    };
    buf.extend_from_slice(&[token, decimal_bytes(p) as u8 + 1, p, s]);
}

/// False when `v` is not a value of `ty` (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    let Value::Dec(d) = v else { return false };
    match ty {
        SqlType::Decimal { p, .. } | SqlType::Numeric { p, .. } => {
            let n = decimal_bytes(*p);
            buf.push(n as u8 + 1);
            buf.push(if d.mantissa < 0 { 0 } else { 1 });
            buf.extend_from_slice(&d.mantissa.unsigned_abs().to_le_bytes()[..n]);
        }
        SqlType::Money => {
            let m = d.rescale(4).map(|d| d.mantissa).unwrap_or(0) as i64;
            let mut b = ((m >> 32) as i32).to_le_bytes().to_vec();
            b.extend_from_slice(&(m as u32).to_le_bytes());
            put_sized(buf, &b);
        }
        SqlType::SmallMoney => {
            let m = d.rescale(4).map(|d| d.mantissa).unwrap_or(0) as i32;
            put_sized(buf, &m.to_le_bytes());
        }
        _ => return false,
    }
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let w = |ty, len| WireType::sized(ty, token, len);
    Ok(match token {
        0x3C => w(SqlType::Money, 8),
        0x7A => w(SqlType::SmallMoney, 4),
        0x6E => WireType::by_length(token, r, SqlType::SmallMoney, SqlType::Money)?,
        _ => {
            // 0x6A DECIMALN, 0x6C NUMERICN, 0x37 DECIMAL, 0x3F NUMERIC
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
            w(ty, n as u32)
        }
    })
}

/// The value in `b` (its bytes, without the length).
pub fn decode_value(ty: &SqlType, b: &[u8]) -> PResult<Value> {
    let n = b.len();
    Ok(match *ty {
        SqlType::Money | SqlType::SmallMoney => {
            let m: i64 = match n {
                4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                8 => {
                    let hi = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64;
                    let lo = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as i64;
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
            if !(2..=17).contains(&n) {
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
        _ => return perr("unexpected value"),
    })
}
