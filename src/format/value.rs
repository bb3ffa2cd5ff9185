//! SQL Server column types and typed values, as ctferry carries them from the
//! source database, through packages, into the caregiver's copy.
//!
//! A value is always exact: decimals keep their scale, date-times their 100 ns
//! ticks, datetimeoffset its offset, binary its bytes, and NULL is distinct
//! from the empty string. How each type is written into a package is defined
//! here and specified in docs/FORMAT.md ("Values"); the two must agree.
//!
//! This module must never round, trim or guess: a value that does not fit
//! its column type is an error naming both.

use crate::format::cbor::{self, Encoder, Item};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::fmt;

/// Length of a variable-length type: `n` or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    N(u16),
    Max,
}

impl fmt::Display for Len {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Len::N(n) => write!(f, "{n}"),
            Len::Max => write!(f, "max"),
        }
    }
}

/// A SQL Server column type, spelled as SQL Server spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Bit,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Decimal {
        p: u8,
        s: u8,
    },
    Numeric {
        p: u8,
        s: u8,
    },
    Money,
    SmallMoney,
    Float,
    Real,
    Char(u16),
    VarChar(Len),
    NChar(u16),
    NVarChar(Len),
    Binary(u16),
    VarBinary(Len),
    UniqueIdentifier,
    Date,
    Time(u8),
    DateTime,
    SmallDateTime,
    DateTime2(u8),
    DateTimeOffset(u8),
    /// Untyped xml, carried as its text (SQL Server's serialization).
    Xml,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ColumnType::*;
        match self {
            Bit => write!(f, "bit"),
            TinyInt => write!(f, "tinyint"),
            SmallInt => write!(f, "smallint"),
            Int => write!(f, "int"),
            BigInt => write!(f, "bigint"),
            Decimal { p, s } => write!(f, "decimal({p},{s})"),
            Numeric { p, s } => write!(f, "numeric({p},{s})"),
            Money => write!(f, "money"),
            SmallMoney => write!(f, "smallmoney"),
            Float => write!(f, "float"),
            Real => write!(f, "real"),
            Char(n) => write!(f, "char({n})"),
            VarChar(l) => write!(f, "varchar({l})"),
            NChar(n) => write!(f, "nchar({n})"),
            NVarChar(l) => write!(f, "nvarchar({l})"),
            Xml => write!(f, "xml"),
            Binary(n) => write!(f, "binary({n})"),
            VarBinary(l) => write!(f, "varbinary({l})"),
            UniqueIdentifier => write!(f, "uniqueidentifier"),
            Date => write!(f, "date"),
            Time(s) => write!(f, "time({s})"),
            DateTime => write!(f, "datetime"),
            SmallDateTime => write!(f, "smalldatetime"),
            DateTime2(s) => write!(f, "datetime2({s})"),
            DateTimeOffset(s) => write!(f, "datetimeoffset({s})"),
        }
    }
}

/// A type name that ctferry cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported or malformed column type '{0}'")]
pub struct BadType(pub String);

impl ColumnType {
    /// Parses a type as SQL Server writes it (`nvarchar(50)`, `decimal(38, 10)`,
    /// `varbinary(max)`, `datetime2(3)`, `int`); case-insensitive.
    pub fn parse(text: &str) -> Result<ColumnType, BadType> {
        use ColumnType::*;
        let bad = || BadType(text.to_string());
        let t = text.trim().to_ascii_lowercase();
        let (name, args) = match t.find('(') {
            Some(i) => {
                let inner = t[i + 1..].strip_suffix(')').ok_or_else(bad)?;
                let args: Vec<&str> = inner.split(',').map(str::trim).collect();
                (t[..i].trim(), args)
            }
            None => (t.as_str(), vec![]),
        };
        let num = |i: usize| -> Result<u16, BadType> {
            args.get(i)
                .and_then(|a| a.parse::<u16>().ok())
                .ok_or_else(bad)
        };
        let len = |max: u16| -> Result<Len, BadType> {
            match args.as_slice() {
                [] => Ok(Len::N(1)),
                ["max"] => Ok(Len::Max),
                [_] => {
                    let n = num(0)?;
                    if n == 0 || n > max {
                        Err(bad())
                    } else {
                        Ok(Len::N(n))
                    }
                }
                _ => Err(bad()),
            }
        };
        let fixed = |max: u16| -> Result<u16, BadType> {
            match len(max)? {
                Len::N(n) => Ok(n),
                Len::Max => Err(bad()),
            }
        };
        let scale = |default: u8| -> Result<u8, BadType> {
            match args.as_slice() {
                [] => Ok(default),
                [_] => {
                    let s = num(0)?;
                    if s > 7 {
                        Err(bad())
                    } else {
                        Ok(s as u8)
                    }
                }
                _ => Err(bad()),
            }
        };
        let no_args = |ty: ColumnType| if args.is_empty() { Ok(ty) } else { Err(bad()) };
        match name {
            "bit" => no_args(Bit),
            "tinyint" => no_args(TinyInt),
            "smallint" => no_args(SmallInt),
            "int" => no_args(Int),
            "bigint" => no_args(BigInt),
            "decimal" | "numeric" => {
                let (p, s) = match args.as_slice() {
                    [] => (18, 0),
                    [_] => (num(0)?, 0),
                    [_, _] => (num(0)?, num(1)?),
                    _ => return Err(bad()),
                };
                if p == 0 || p > 38 || s > p {
                    return Err(bad());
                }
                let (p, s) = (p as u8, s as u8);
                Ok(if name == "decimal" {
                    Decimal { p, s }
                } else {
                    Numeric { p, s }
                })
            }
            "money" => no_args(Money),
            "smallmoney" => no_args(SmallMoney),
            "float" => no_args(Float),
            "real" => no_args(Real),
            "char" => Ok(Char(fixed(8000)?)),
            "varchar" => Ok(VarChar(len(8000)?)),
            "nchar" => Ok(NChar(fixed(4000)?)),
            "nvarchar" => Ok(NVarChar(len(4000)?)),
            "xml" => no_args(Xml),
            "binary" => Ok(Binary(fixed(8000)?)),
            "varbinary" => Ok(VarBinary(len(8000)?)),
            "uniqueidentifier" => no_args(UniqueIdentifier),
            "date" => no_args(Date),
            "time" => Ok(Time(scale(7)?)),
            "datetime" => no_args(DateTime),
            "smalldatetime" => no_args(SmallDateTime),
            "datetime2" => Ok(DateTime2(scale(7)?)),
            "datetimeoffset" => Ok(DateTimeOffset(scale(7)?)),
            _ => Err(bad()),
        }
    }

    /// char, varchar, nchar, nvarchar: the types with a collation.
    pub fn is_string(&self) -> bool {
        matches!(
            self,
            ColumnType::Char(_)
                | ColumnType::VarChar(_)
                | ColumnType::NChar(_)
                | ColumnType::NVarChar(_)
        )
    }

    /// The decimal scale of exact numeric types (money has 4).
    pub fn decimal_scale(&self) -> Option<u8> {
        match self {
            ColumnType::Decimal { s, .. } | ColumnType::Numeric { s, .. } => Some(*s),
            ColumnType::Money | ColumnType::SmallMoney => Some(4),
            _ => None,
        }
    }
}

/// An exact decimal: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u8,
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let s = self.scale as usize;
        let (int, frac) = if digits.len() > s {
            (
                digits[..digits.len() - s].to_string(),
                digits[digits.len() - s..].to_string(),
            )
        } else {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat(s - digits.len())),
            )
        };
        let sign = if neg { "-" } else { "" };
        if s == 0 {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{frac}")
        }
    }
}

impl Decimal {
    /// Parses `-123.4500` keeping every digit (and thus the scale).
    pub fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{int}{frac}");
        if digits.trim_start_matches('0').len() > 38 || frac.len() > 38 {
            return None;
        }
        let m: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        Some(Decimal {
            mantissa: if neg { -m } else { m },
            scale: frac.len() as u8,
        })
    }
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    Float(f64),
    Real(f32),
    Text(String),
    Bytes(Vec<u8>),
    /// A GUID in RFC 9562 (canonical text) byte order.
    Guid([u8; 16]),
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(NaiveDateTime),
    /// Local date-time and its offset from UTC in minutes.
    DateTimeOffset(NaiveDateTime, i16),
}

impl Value {
    /// About how many bytes of memory the value takes (its text or bytes,
    /// and the value itself): what bounds a buffer of rows.
    pub fn size_hint(&self) -> usize {
        std::mem::size_of::<Value>()
            + match self {
                Value::Text(s) => s.len(),
                Value::Bytes(b) => b.len(),
                _ => 0,
            }
    }
}

/// A value that does not match its column's type, or a package value that
/// is not what the format says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn verr(msg: impl Into<String>) -> ValueError {
    ValueError(msg.into())
}

/// Formats a GUID as SQL Server prints it (upper case).
pub fn guid_text(g: &[u8; 16]) -> String {
    let h: String = g.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn ticks(t: &NaiveTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:07}",
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// `HH:MM:SS.fffffff`
pub fn time_text(t: &NaiveTime) -> String {
    ticks(t)
}

/// `YYYY-MM-DDTHH:MM:SS.fffffff`
pub fn datetime_text(d: &NaiveDateTime) -> String {
    format!("{}T{}", date_text(&d.date()), ticks(&d.time()))
}

/// `YYYY-MM-DD` (years 0001-9999)
pub fn date_text(d: &NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `YYYY-MM-DDTHH:MM:SS.fffffff+HH:MM`
pub fn datetimeoffset_text(d: &NaiveDateTime, offset: i16) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    format!("{}{sign}{:02}:{:02}", datetime_text(d), o / 60, o % 60)
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    if y < 1 {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[2] != b':' || b[5] != b':' || b[8] != b'.' {
        return None;
    }
    let h: u32 = s[0..2].parse().ok()?;
    let m: u32 = s[3..5].parse().ok()?;
    let sec: u32 = s[6..8].parse().ok()?;
    let frac = &s[9..16];
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t: u32 = frac.parse().ok()?;
    NaiveTime::from_hms_nano_opt(h, m, sec, t * 100)
}

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    if s.len() != 27 || s.as_bytes()[10] != b'T' {
        return None;
    }
    Some(NaiveDateTime::new(
        parse_date(&s[..10])?,
        parse_time(&s[11..])?,
    ))
}

fn parse_datetimeoffset(s: &str) -> Option<(NaiveDateTime, i16)> {
    if s.len() != 33 {
        return None;
    }
    let dt = parse_datetime(&s[..27])?;
    let sign = match &s[27..28] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    if s.as_bytes()[30] != b':' {
        return None;
    }
    let h: i16 = s[28..30].parse().ok()?;
    let m: i16 = s[31..33].parse().ok()?;
    if h > 14 || m > 59 || h * 60 + m > 840 {
        return None;
    }
    Some((dt, sign * (h * 60 + m)))
}

fn int_range(ty: &ColumnType) -> Option<(i64, i64)> {
    Some(match ty {
        ColumnType::TinyInt => (0, 255),
        ColumnType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
        ColumnType::Int => (i32::MIN as i64, i32::MAX as i64),
        ColumnType::BigInt => (i64::MIN, i64::MAX),
        _ => return None,
    })
}

fn max_len(l: &Len) -> usize {
    match l {
        Len::N(n) => *n as usize,
        Len::Max => usize::MAX,
    }
}

fn precision_of(ty: &ColumnType) -> u8 {
    match ty {
        ColumnType::Decimal { p, .. } | ColumnType::Numeric { p, .. } => *p,
        ColumnType::Money => 19,
        ColumnType::SmallMoney => 10,
        _ => 38,
    }
}

/// Checks that `v` fits column type `ty` (length, precision, range, kind).
pub fn check(ty: &ColumnType, v: &Value) -> Result<(), ValueError> {
    use ColumnType as T;
    let wrong = || verr(format!("a {} value does not fit a {ty} column", kind(v)));
    match (ty, v) {
        (_, Value::Null) => Ok(()),
        (T::Bit, Value::Bool(_)) => Ok(()),
        (t, Value::Int(i)) if int_range(t).is_some() => {
            let (lo, hi) = int_range(t).unwrap_or((0, 0));
            if *i < lo || *i > hi {
                Err(verr(format!("{i} is out of range for {ty}")))
            } else {
                Ok(())
            }
        }
        (t, Value::Decimal(d)) if t.decimal_scale().is_some() => {
            if Some(d.scale) != t.decimal_scale() {
                return Err(verr(format!(
                    "{d} has scale {}, the column {ty} has scale {}",
                    d.scale,
                    t.decimal_scale().unwrap_or(0)
                )));
            }
            let digits = d.mantissa.unsigned_abs().to_string().len() as u8;
            if d.mantissa != 0 && digits > precision_of(t) {
                return Err(verr(format!("{d} has more digits than {ty} holds")));
            }
            Ok(())
        }
        (T::Float, Value::Float(_)) | (T::Real, Value::Real(_)) => Ok(()),
        (T::Char(n), Value::Text(s)) | (T::VarChar(Len::N(n)), Value::Text(s)) => {
            if s.len() > *n as usize {
                Err(verr(format!(
                    "a string of {} bytes is longer than {ty}",
                    s.len()
                )))
            } else {
                Ok(())
            }
        }
        (T::VarChar(Len::Max), Value::Text(_)) => Ok(()),
        (T::NChar(n), Value::Text(s)) | (T::NVarChar(Len::N(n)), Value::Text(s)) => {
            let units = s.encode_utf16().count();
            if units > *n as usize {
                Err(verr(format!(
                    "a string of {units} UTF-16 units is longer than {ty}"
                )))
            } else {
                Ok(())
            }
        }
        (T::NVarChar(Len::Max), Value::Text(_)) => Ok(()),
        (T::Xml, Value::Text(_)) => Ok(()),
        (T::Binary(n), Value::Bytes(b)) => {
            if b.len() > *n as usize {
                Err(verr(format!("{} bytes are longer than {ty}", b.len())))
            } else {
                Ok(())
            }
        }
        (T::VarBinary(l), Value::Bytes(b)) => {
            if b.len() > max_len(l) {
                Err(verr(format!("{} bytes are longer than {ty}", b.len())))
            } else {
                Ok(())
            }
        }
        (T::UniqueIdentifier, Value::Guid(_)) => Ok(()),
        (T::Date, Value::Date(_)) => Ok(()),
        (T::Time(_), Value::Time(_)) => Ok(()),
        (T::DateTime | T::SmallDateTime | T::DateTime2(_), Value::DateTime(_)) => Ok(()),
        (T::DateTimeOffset(_), Value::DateTimeOffset(..)) => Ok(()),
        _ => Err(wrong()),
    }
}

/// A short name of a value's kind, for messages (never the value itself:
/// values may be health data).
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Bool(_) => "bit",
        Value::Int(_) => "integer",
        Value::Decimal(_) => "decimal",
        Value::Float(_) => "float",
        Value::Real(_) => "real",
        Value::Text(_) => "string",
        Value::Bytes(_) => "binary",
        Value::Guid(_) => "uniqueidentifier",
        Value::Date(_) => "date",
        Value::Time(_) => "time",
        Value::DateTime(_) => "datetime",
        Value::DateTimeOffset(..) => "datetimeoffset",
    }
}

/// Writes `v` (already checked against `ty`) as docs/FORMAT.md says.
pub fn encode(e: &mut Encoder, v: &Value) {
    match v {
        Value::Null => e.null(),
        Value::Bool(b) => e.bool(*b),
        Value::Int(i) => e.int(*i),
        Value::Decimal(d) => {
            e.tag(cbor::TAG_DECIMAL);
            e.array(2);
            e.int(-(d.scale as i64));
            e.big_int(d.mantissa);
        }
        Value::Float(f) => e.f64(*f),
        Value::Real(f) => e.f32(*f),
        Value::Text(s) => e.text(s),
        Value::Bytes(b) => e.bytes(b),
        Value::Guid(g) => {
            e.tag(cbor::TAG_UUID);
            e.bytes(g);
        }
        Value::Date(d) => {
            e.tag(cbor::TAG_DATE);
            e.text(&date_text(d));
        }
        Value::Time(t) => e.text(&time_text(t)),
        Value::DateTime(d) => e.text(&datetime_text(d)),
        Value::DateTimeOffset(d, o) => e.text(&datetimeoffset_text(d, *o)),
    }
}

/// Reads a value of column type `ty` from a decoded item, checking it.
pub fn decode(ty: &ColumnType, item: &Item) -> Result<Value, ValueError> {
    use ColumnType as T;
    let wrong = || verr(format!("a {ty} value is encoded as {}", item_kind(item)));
    let v = match (ty, item) {
        (_, Item::Null) => Value::Null,
        (T::Bit, Item::Bool(b)) => Value::Bool(*b),
        (t, Item::Int(i)) if int_range(t).is_some() => Value::Int(
            i64::try_from(*i).map_err(|_| verr(format!("{i} is out of range for {ty}")))?,
        ),
        (t, Item::Tag(cbor::TAG_DECIMAL, inner)) if t.decimal_scale().is_some() => {
            let parts = inner.as_array().ok_or_else(wrong)?;
            let [exp, mant] = parts else {
                return Err(wrong());
            };
            let exp = exp.as_int().ok_or_else(wrong)?;
            if !(-38..=0).contains(&exp) {
                return Err(verr(format!("decimal exponent {exp} is out of range")));
            }
            let mantissa = match mant {
                Item::Int(i) => *i,
                Item::Tag(tag, b) => match b.as_ref() {
                    Item::Bytes(bytes) => cbor::bignum(*tag, bytes).ok_or_else(wrong)?,
                    _ => return Err(wrong()),
                },
                _ => return Err(wrong()),
            };
            Value::Decimal(Decimal {
                mantissa,
                scale: (-exp) as u8,
            })
        }
        (T::Float, Item::F64(f)) => Value::Float(*f),
        (T::Real, Item::F32(f)) => Value::Real(*f),
        (T::Char(_) | T::VarChar(_) | T::NChar(_) | T::NVarChar(_) | T::Xml, Item::Text(s)) => {
            Value::Text(s.clone())
        }
        (T::Binary(_) | T::VarBinary(_), Item::Bytes(b)) => Value::Bytes(b.clone()),
        (T::UniqueIdentifier, Item::Tag(cbor::TAG_UUID, inner)) => match inner.as_ref() {
            Item::Bytes(b) if b.len() == 16 => {
                let mut g = [0u8; 16];
                g.copy_from_slice(b);
                Value::Guid(g)
            }
            _ => return Err(wrong()),
        },
        (T::Date, Item::Tag(cbor::TAG_DATE, inner)) => {
            let s = inner.as_text().ok_or_else(wrong)?;
            Value::Date(parse_date(s).ok_or_else(|| verr("a malformed date"))?)
        }
        (T::Time(_), Item::Text(s)) => {
            Value::Time(parse_time(s).ok_or_else(|| verr("a malformed time"))?)
        }
        (T::DateTime | T::SmallDateTime | T::DateTime2(_), Item::Text(s)) => {
            Value::DateTime(parse_datetime(s).ok_or_else(|| verr("a malformed date-time"))?)
        }
        (T::DateTimeOffset(_), Item::Text(s)) => {
            let (d, o) =
                parse_datetimeoffset(s).ok_or_else(|| verr("a malformed datetimeoffset"))?;
            Value::DateTimeOffset(d, o)
        }
        _ => return Err(wrong()),
    };
    check(ty, &v)?;
    Ok(v)
}

fn item_kind(i: &Item) -> &'static str {
    match i {
        Item::Int(_) => "an integer",
        Item::Bytes(_) => "a byte string",
        Item::Text(_) => "a text string",
        Item::Array(_) => "an array",
        Item::Map(_) => "a map",
        Item::Tag(..) => "a tagged item",
        Item::Bool(_) => "a boolean",
        Item::Null => "null",
        Item::F32(_) => "a float32",
        Item::F64(_) => "a float64",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::cbor::{Decoder, Limits};

    #[test]
    fn types_parse_and_print_as_sql_server_spells_them() {
        for t in [
            "bit",
            "tinyint",
            "smallint",
            "int",
            "bigint",
            "decimal(38,10)",
            "numeric(9,2)",
            "money",
            "smallmoney",
            "float",
            "real",
            "char(4)",
            "varchar(max)",
            "nchar(3)",
            "nvarchar(4000)",
            "binary(16)",
            "varbinary(max)",
            "uniqueidentifier",
            "date",
            "time(7)",
            "datetime",
            "smalldatetime",
            "datetime2(3)",
            "datetimeoffset(7)",
            "xml",
        ] {
            assert_eq!(ColumnType::parse(t).unwrap().to_string(), t);
        }
        assert_eq!(
            ColumnType::parse("NVARCHAR( 10 )").unwrap().to_string(),
            "nvarchar(10)"
        );
        assert_eq!(
            ColumnType::parse("decimal").unwrap().to_string(),
            "decimal(18,0)"
        );
        for bad in [
            "xml(dbo.Schema)",
            "sql_variant",
            "nvarchar(5000)",
            "decimal(39,2)",
            "decimal(5,6)",
            "time(8)",
            "int(4)",
            "varchar(0)",
        ] {
            assert!(ColumnType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decimals_keep_scale() {
        let d = Decimal::parse("-0.0500").unwrap();
        assert_eq!(
            d,
            Decimal {
                mantissa: -500,
                scale: 4
            }
        );
        assert_eq!(d.to_string(), "-0.0500");
        assert_eq!(
            Decimal::parse("12345678901234567890123456.1234567891")
                .unwrap()
                .to_string(),
            "12345678901234567890123456.1234567891"
        );
        assert!(Decimal::parse("1e5").is_none());
    }

    #[test]
    fn every_type_round_trips_through_cbor() {
        let dt = NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 999_999_900)
            .unwrap();
        let cases: Vec<(&str, Value)> = vec![
            ("bit", Value::Bool(true)),
            ("tinyint", Value::Int(255)),
            ("bigint", Value::Int(i64::MIN)),
            (
                "decimal(38,10)",
                Value::Decimal(Decimal::parse("-1234567890123456789012345678.1234567890").unwrap()),
            ),
            (
                "money",
                Value::Decimal(Decimal::parse("-922337203685477.5808").unwrap()),
            ),
            ("float", Value::Float(1.5e300)),
            ("real", Value::Real(0.1)),
            ("nvarchar(max)", Value::Text("åäö €".into())),
            ("varchar(5)", Value::Text(String::new())),
            ("varbinary(max)", Value::Bytes(vec![0, 1, 255])),
            (
                "uniqueidentifier",
                Value::Guid(parse_guid("00112233-4455-6677-8899-AABBCCDDEEFF").unwrap()),
            ),
            (
                "date",
                Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).unwrap()),
            ),
            (
                "time(7)",
                Value::Time(NaiveTime::from_hms_nano_opt(12, 34, 56, 123_456_700).unwrap()),
            ),
            ("datetime2(7)", Value::DateTime(dt)),
            (
                "datetimeoffset(7)",
                Value::DateTimeOffset(dt, -(5 * 60 + 45)),
            ),
            ("int", Value::Null),
        ];
        for (t, v) in cases {
            let ty = ColumnType::parse(t).unwrap();
            check(&ty, &v).unwrap();
            let mut e = Encoder::new();
            encode(&mut e, &v);
            let item = Decoder::new(&e.buf[..], Limits::default())
                .next_item()
                .unwrap();
            assert_eq!(decode(&ty, &item).unwrap(), v, "{t}");
        }
        assert_eq!(
            datetimeoffset_text(&dt, 345),
            "2024-02-29T23:59:59.9999999+05:45"
        );
    }

    #[test]
    fn misfits_are_refused() {
        let t = ColumnType::parse("nvarchar(3)").unwrap();
        assert!(check(&t, &Value::Text("abcd".into())).is_err());
        assert!(check(&t, &Value::Text("åäö".into())).is_ok());
        let t = ColumnType::parse("tinyint").unwrap();
        assert!(check(&t, &Value::Int(256)).is_err());
        let t = ColumnType::parse("decimal(5,2)").unwrap();
        assert!(check(&t, &Value::Decimal(Decimal::parse("1234.56").unwrap())).is_err());
        assert!(check(&t, &Value::Decimal(Decimal::parse("1.5").unwrap())).is_err());
        assert!(check(&t, &Value::Text("1".into())).is_err());
    }
}
