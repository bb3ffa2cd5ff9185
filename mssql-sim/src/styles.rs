//! Converting a date/time or binary value to text as SQL Server's CAST and
//! CONVERT do, by the value's static type and the CONVERT style ("CAST and
//! CONVERT (Transact-SQL)", "Date and time styles", "Binary styles";
//! learn.microsoft.com/sql/t-sql/functions/cast-and-convert-transact-sql).
//!
//! The styles the simulator has: for date and time types 0 (the default,
//! which for datetime and smalldatetime is `mon dd yyyy hh:miAM`), 20/120
//! (`yyyy-mm-dd hh:mi:ss`), 21/121 (with the fraction), 23
//! (`yyyy-mm-dd`), 112 (`yyyymmdd`), 126/127 (ISO 8601 with `T`); for binary
//! 0 (the bytes as characters), 1 (`0x` and hex digits) and 2 (hex digits).
//! Any other style is refused rather than ignored.

use crate::error::SqlError;
use crate::types::{SqlType, Value};
use chrono::{Datelike, NaiveDateTime, Timelike};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whether CAST/CONVERT from `from` to a string goes through `text`.
pub fn has_styles(from: &SqlType) -> bool {
    matches!(
        from,
        SqlType::Date
            | SqlType::Time(_)
            | SqlType::DateTime
            | SqlType::SmallDateTime
            | SqlType::DateTime2(_)
            | SqlType::DateTimeOffset(_)
            | SqlType::Binary(_)
            | SqlType::VarBinary(_)
            | SqlType::RowVersion
    )
}

fn refuse(from: &SqlType, style: u32) -> SqlError {
    SqlError::unsupported(format!("CONVERT style {style} from {}", from.base_name()))
}

/// `v` (a value of type `from`) as text in `style`.
pub fn text(v: &Value, from: &SqlType, style: u32) -> Result<String, SqlError> {
    match (v, from) {
        (Value::Bytes(b), _) => match style {
            0 => {
                let (s, _, _) = encoding_rs::WINDOWS_1252.decode(b);
                Ok(s.into_owned())
            }
            1 => Ok(format!("0x{}", hex_upper(b))),
            2 => Ok(hex_upper(b)),
            _ => Err(refuse(from, style)),
        },
        (Value::Date(d), SqlType::Date) => match style {
            0 | 23 | 126 | 127 => Ok(d.format("%Y-%m-%d").to_string()),
            112 => Ok(d.format("%Y%m%d").to_string()),
            _ => Err(refuse(from, style)),
        },
        (Value::Time(ticks), SqlType::Time(scale)) => match style {
            0 | 20 | 120 | 21 | 121 | 126 | 127 => Ok(clock(*ticks, *scale)),
            _ => Err(refuse(from, style)),
        },
        (Value::DateTime(dt), SqlType::DateTime | SqlType::SmallDateTime) => {
            let small = *from == SqlType::SmallDateTime;
            // datetime keeps 1/300 s; it shows milliseconds.
            let ms = ((dt.nanosecond() as u64 + 500_000) / 1_000_000).min(999);
            let (date, time) = (dt.format("%Y-%m-%d"), dt.format("%H:%M:%S"));
            match style {
                0 | 100 => Ok(mon_dd_yyyy(dt)),
                20 | 120 => Ok(format!("{date} {time}")),
                21 | 121 => Ok(format!("{date} {time}.{:03}", if small { 0 } else { ms })),
                23 => Ok(date.to_string()),
                112 => Ok(dt.format("%Y%m%d").to_string()),
                126 | 127 => Ok(if ms == 0 || small {
                    format!("{date}T{time}")
                } else {
                    format!("{date}T{time}.{ms:03}")
                }),
                _ => Err(refuse(from, style)),
            }
        }
        (Value::DateTime(dt), SqlType::DateTime2(scale)) => {
            let date = dt.format("%Y-%m-%d");
            let ticks = time_ticks(dt);
            match style {
                0 | 21 | 121 => Ok(format!("{date} {}", clock(ticks, *scale))),
                20 | 120 => Ok(format!("{date} {}", dt.format("%H:%M:%S"))),
                23 => Ok(date.to_string()),
                112 => Ok(dt.format("%Y%m%d").to_string()),
                126 | 127 => Ok(format!("{date}T{}", clock(ticks, *scale))),
                _ => Err(refuse(from, style)),
            }
        }
        (Value::DateTimeOffset(dt, off), SqlType::DateTimeOffset(scale)) => {
            let date = dt.format("%Y-%m-%d");
            let t = clock(time_ticks(dt), *scale);
            let sign = if *off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let zone = format!("{sign}{:02}:{:02}", a / 60, a % 60);
            match style {
                0 | 21 | 121 => Ok(format!("{date} {t} {zone}")),
                23 => Ok(date.to_string()),
                112 => Ok(dt.format("%Y%m%d").to_string()),
                // 127: UTC with Z (the value is held in local time).
                127 => {
                    let utc = *dt - chrono::Duration::minutes(*off as i64);
                    Ok(format!(
                        "{}T{}Z",
                        utc.format("%Y-%m-%d"),
                        clock(time_ticks(&utc), *scale)
                    ))
                }
                126 => Ok(format!("{date}T{t}{zone}")),
                _ => Err(refuse(from, style)),
            }
        }
        _ => Err(refuse(from, style)),
    }
}

/// Parses `0x`-prefixed (style 1) or bare (style 2) hex digits into bytes,
/// as CONVERT(binary, string, 1|2) does; None when they are not hex.
pub fn hex_bytes(s: &str, style: u32) -> Option<Vec<u8>> {
    let digits = match style {
        1 => s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?,
        _ => s,
    };
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn time_ticks(dt: &NaiveDateTime) -> u64 {
    (dt.num_seconds_from_midnight() as u64) * 10_000_000 + (dt.nanosecond() as u64 / 100)
}

/// `hh:mi:ss` with `scale` fraction digits (none for scale 0).
fn clock(ticks: u64, scale: u8) -> String {
    let secs = ticks / 10_000_000;
    let base = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if scale == 0 {
        return base;
    }
    let frac = format!("{:07}", ticks % 10_000_000);
    format!("{base}.{}", &frac[..scale as usize])
}

/// Style 0 of datetime: `Jan  2 2024  3:04AM` (day and hour padded with a
/// blank to two characters).
fn mon_dd_yyyy(dt: &NaiveDateTime) -> String {
    let (pm, h12) = dt.hour12();
    format!(
        "{} {:>2} {} {:>2}:{:02}{}",
        MONTHS[dt.month0() as usize],
        dt.day(),
        dt.year(),
        h12,
        dt.minute(),
        if pm { "PM" } else { "AM" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn dt(h: u32, mi: u32, s: u32, nano: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, 2)
            .unwrap()
            .and_hms_nano_opt(h, mi, s, nano)
            .unwrap()
    }

    #[test]
    fn datetime_styles_are_sql_servers() {
        // datetime keeps 1/300 s: .123 is held as .1233333.
        let v = Value::DateTime(dt(15, 4, 5, 123_333_300));
        let t = |s| text(&v, &SqlType::DateTime, s).unwrap();
        assert_eq!(t(0), "Jan  2 2024  3:04PM");
        assert_eq!(t(120), "2024-01-02 15:04:05");
        assert_eq!(t(121), "2024-01-02 15:04:05.123");
        assert_eq!(t(23), "2024-01-02");
        assert_eq!(t(112), "20240102");
        assert_eq!(t(126), "2024-01-02T15:04:05.123");
        let midnight = Value::DateTime(dt(0, 0, 0, 0));
        assert_eq!(
            text(&midnight, &SqlType::DateTime, 126).unwrap(),
            "2024-01-02T00:00:00"
        );
        assert_eq!(
            text(&midnight, &SqlType::DateTime, 0).unwrap(),
            "Jan  2 2024 12:00AM"
        );
        assert!(
            text(&v, &SqlType::DateTime, 103).is_err(),
            "dd/mm/yyyy is not done"
        );
    }

    #[test]
    fn datetime2_datetimeoffset_date_and_time_follow_their_scale() {
        let v = Value::DateTime(dt(3, 4, 5, 123_456_700));
        assert_eq!(
            text(&v, &SqlType::DateTime2(7), 0).unwrap(),
            "2024-01-02 03:04:05.1234567"
        );
        assert_eq!(
            text(&v, &SqlType::DateTime2(3), 121).unwrap(),
            "2024-01-02 03:04:05.123"
        );
        assert_eq!(
            text(&v, &SqlType::DateTime2(0), 0).unwrap(),
            "2024-01-02 03:04:05"
        );
        let o = Value::DateTimeOffset(dt(3, 4, 5, 0), 60);
        assert_eq!(
            text(&o, &SqlType::DateTimeOffset(0), 0).unwrap(),
            "2024-01-02 03:04:05 +01:00"
        );
        assert_eq!(
            text(&o, &SqlType::DateTimeOffset(0), 127).unwrap(),
            "2024-01-02T02:04:05Z"
        );
        let d = Value::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap());
        assert_eq!(text(&d, &SqlType::Date, 112).unwrap(), "20240102");
        assert_eq!(
            text(
                &Value::Time(5 * 10_000_000 + 1_230_000),
                &SqlType::Time(3),
                0
            )
            .unwrap(),
            "00:00:05.123"
        );
    }

    #[test]
    fn binary_styles_are_hex() {
        let b = Value::Bytes(vec![0, 0x07, 0xD1, 0xAB]);
        assert_eq!(text(&b, &SqlType::RowVersion, 1).unwrap(), "0x0007D1AB");
        assert_eq!(
            text(&b, &SqlType::VarBinary(crate::types::Len::N(4)), 2).unwrap(),
            "0007D1AB"
        );
        assert_eq!(hex_bytes("0x0007d1AB", 1), Some(vec![0, 0x07, 0xD1, 0xAB]));
        assert_eq!(hex_bytes("0007D1AB", 2), Some(vec![0, 0x07, 0xD1, 0xAB]));
        assert_eq!(hex_bytes("0007D1A", 2), None);
        assert_eq!(hex_bytes("0007D1AB", 1), None);
    }
}
