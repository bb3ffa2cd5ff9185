//! Timestamps as ctferry records them in its state, logs and audit: RFC 3339
//! in UTC with milliseconds (`2026-11-27T14:20:43.123Z`). One place writes
//! and reads them, so every comparison is between instants, never strings.

use chrono::{DateTime, Utc};

/// An instant in UTC.
pub type Time = DateTime<Utc>;

/// Now.
pub fn now() -> Time {
    Utc::now()
}

/// `t` as stored: RFC 3339, UTC, milliseconds.
pub fn text(t: Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, as stored.
pub fn now_text() -> String {
    text(now())
}

/// A stored (or operator-given) RFC 3339 time, any offset, as UTC; `None`
/// when it is not RFC 3339.
pub fn parse(t: &str) -> Option<Time> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_offsets() {
        let t = parse("2026-11-27T15:20:43.123+01:00").unwrap();
        assert_eq!(text(t), "2026-11-27T14:20:43.123Z");
        assert_eq!(parse(&text(t)), Some(t));
        assert_eq!(parse("yesterday"), None);
    }
}
