//! `ctferry audit`: every disclosure to every caregiver, for the region's
//! data-protection officer. The package records (what was disclosed, when,
//! to whom) and the delivery log (when each file reached, or failed to
//! reach, the caregiver's area) are merged into one time-ordered list of
//! `AuditRecord`s, filtered, and written as CSV or JSON. They are read from
//! the audit log file (`audit_log`), which `ctferry run` keeps appending to.

use crate::publisher::audit_log;
use crate::publisher::state::AuditRecord;
use crate::time::{self, Time};

/// Which records to keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this caregiver (HSA id).
    pub subscriber: Option<String>,
    /// Only records at or after this time.
    pub since: Option<Time>,
}

impl Filter {
    /// Whether `a` passes. A record whose time cannot be read is kept (an
    /// audit never hides a record).
    pub fn keeps(&self, a: &AuditRecord) -> bool {
        let who = self.subscriber.as_deref().is_none_or(|s| a.subscriber == s);
        let when = match (&self.since, time::parse(&a.time)) {
            (Some(s), Some(t)) => t >= *s,
            _ => true,
        };
        who && when
    }
}

/// The audit from the audit log file (`audit_log`), which `ctferry run`
/// keeps appending to: readable while it runs, without the state's lock.
/// The chain is verified on the way; a broken chain is an error.
pub fn from_log(
    state_dir: &std::path::Path,
    filter: &Filter,
) -> Result<Vec<AuditRecord>, audit_log::LogError> {
    let path = audit_log::path(state_dir);
    let mut all = Vec::new();
    for line in audit_log::read_verified(&path)? {
        let a: AuditRecord =
            serde_json::from_value(line.record).map_err(|e| audit_log::LogError::Broken {
                path: path.display().to_string(),
                line: line.n,
                why: format!("not an audit record ({e})"),
            })?;
        all.push(a);
    }
    all.sort_by(|a, b| a.time.cmp(&b.time));
    all.retain(|a| filter.keeps(a));
    Ok(all)
}

/// The CSV header line.
pub const CSV_HEADER: &str = "time,subscriber,event,sequence,file,sha256,tables,rows,detail";

/// One CSV field: quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One record as a CSV line (without the line break).
pub fn csv_line(a: &AuditRecord) -> String {
    let rows: u64 = a.tables.iter().map(|t| t.1 + t.2).sum();
    let tables: Vec<String> = a
        .tables
        .iter()
        .map(|t| format!("{}:{}+{}", t.0, t.1, t.2))
        .collect();
    format!(
        "{},{},{},{},{},{},{},{},{}",
        a.time,
        csv_field(&a.subscriber),
        a.event,
        a.sequence.map(|s| s.to_string()).unwrap_or_default(),
        csv_field(a.file.as_deref().unwrap_or("")),
        a.sha256.as_deref().unwrap_or(""),
        csv_field(&tables.join(" ")),
        rows,
        csv_field(a.detail.as_deref().unwrap_or(""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::state::DeliveryRecord;

    fn record(time: &str, who: &str) -> AuditRecord {
        AuditRecord {
            time: time.into(),
            subscriber: who.into(),
            event: "snapshot".into(),
            sequence: Some(1),
            file: Some("0000000001-x.ctf.pgp".into()),
            sha256: Some("ab".into()),
            tables: vec![("dbo.T".into(), 2, 1)],
            detail: Some("new caregiver, \"first\"".into()),
        }
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(
            csv_line(&record("2026-11-27T10:00:00.000Z", "SE-1")),
            "2026-11-27T10:00:00.000Z,SE-1,snapshot,1,0000000001-x.ctf.pgp,ab,dbo.T:2+1,3,\"new caregiver, \"\"first\"\"\""
        );
    }

    #[test]
    fn deliveries_and_failures_become_events() {
        let d = |result: &str| DeliveryRecord {
            time: "2026-11-27T10:00:01.000Z".into(),
            subscriber: "SE-1".into(),
            sequence: 4,
            file: "f".into(),
            bytes: 10,
            sha256: "cd".into(),
            attempts: 2,
            result: result.into(),
        };
        assert_eq!(d("delivered").to_audit().event, "delivered");
        assert_eq!(d("already there").to_audit().event, "delivered");
        let failed = d("failed: connection refused").to_audit();
        assert_eq!(failed.event, "delivery failed");
        assert_eq!(
            failed.detail.as_deref(),
            Some("failed: connection refused (10 bytes, attempt 2)")
        );
    }

    #[test]
    fn filter_by_caregiver_and_time() {
        let f = Filter {
            subscriber: Some("SE-1".into()),
            since: time::parse("2026-11-27T10:00:00+01:00"),
        };
        assert!(f.keeps(&record("2026-11-27T09:00:00.000Z", "SE-1")));
        assert!(!f.keeps(&record("2026-11-27T08:59:59.999Z", "SE-1")));
        assert!(!f.keeps(&record("2026-11-27T09:30:00.000Z", "SE-2")));
        assert!(f.keeps(&record("not a time", "SE-1")));
        assert!(Filter::default().keeps(&record("2026-01-01T00:00:00Z", "SE-9")));
    }
}
