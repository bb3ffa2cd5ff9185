//! datetime, smalldatetime (DATETIMN 0x6F; fixed 0x3D/0x3A in), date (0x28),
//! time (0x29), datetime2 (0x2A), datetimeoffset (0x2B): days since their
//! epoch, time in units of the scale, the offset in minutes.

use super::reader::{perr, PResult, ProtocolError, Reader};
use super::wire_type::{put_sized, WireType};
use crate::types::{time_bytes, SqlType, Value};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

pub fn encode_type_info(buf: &mut Vec<u8>, ty: &SqlType) {
    match *ty {
        SqlType::DateTime => buf.extend_from_slice(&[0x6F, 8]),
        SqlType::SmallDateTime => buf.extend_from_slice(&[0x6F, 4]),
        SqlType::Date => buf.push(0x28),
        SqlType::Time(s) => buf.extend_from_slice(&[0x29, s]),
        SqlType::DateTime2(s) => buf.extend_from_slice(&[0x2A, s]),
        SqlType::DateTimeOffset(s) => buf.extend_from_slice(&[0x2B, s]),
        _ => {}
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

/// False when `v` is not a value of `ty` (the caller sends NULL).
pub fn encode_value(buf: &mut Vec<u8>, ty: &SqlType, v: &Value) -> bool {
    match (ty, v) {
        (SqlType::DateTime, Value::DateTime(dt)) => {
            let days = days_since(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(), dt.date()) as i32;
            let ticks = dt.time().num_seconds_from_midnight() as u64 * 10_000_000
                + (dt.time().nanosecond() as u64) / 100;
            let t300 = ((ticks * 300 + 5_000_000) / 10_000_000) as u32;
            let mut b = days.to_le_bytes().to_vec();
            b.extend_from_slice(&t300.to_le_bytes());
            put_sized(buf, &b);
        }
        (SqlType::SmallDateTime, Value::DateTime(dt)) => {
            let days = days_since(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(), dt.date()) as u16;
            let mins = (dt.time().num_seconds_from_midnight() / 60) as u16;
            let mut b = days.to_le_bytes().to_vec();
            b.extend_from_slice(&mins.to_le_bytes());
            put_sized(buf, &b);
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
        _ => return false,
    }
    true
}

pub fn decode_type_info(token: u8, r: &mut Reader<'_>) -> PResult<WireType> {
    let w = |ty, len| WireType::sized(ty, token, len);
    Ok(match token {
        0x3D => w(SqlType::DateTime, 8),
        0x3A => w(SqlType::SmallDateTime, 4),
        0x6F => WireType::by_length(token, r, SqlType::SmallDateTime, SqlType::DateTime)?,
        0x28 => w(SqlType::Date, 3),
        _ => {
            // 0x29 time, 0x2A datetime2, 0x2B datetimeoffset
            let s = r.u8()?;
            if s > 7 {
                return perr(format!("time scale {s}"));
            }
            let ty = match token {
                0x29 => SqlType::Time(s),
                0x2A => SqlType::DateTime2(s),
                _ => SqlType::DateTimeOffset(s),
            };
            w(ty, 0)
        }
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

/// The value in `b` (its bytes, without the length).
pub fn decode_value(ty: &SqlType, b: &[u8]) -> PResult<Value> {
    let n = b.len();
    Ok(match *ty {
        SqlType::DateTime | SqlType::SmallDateTime => {
            let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
            match n {
                8 => {
                    let days = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let t300 = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as u64;
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
