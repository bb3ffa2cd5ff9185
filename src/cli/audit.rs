//! `ctferry audit`: every disclosure (packages and deliveries) as CSV or
//! JSON, and `--verify` of the audit log's hash chain. Both read the audit
//! log file, so they work while `ctferry run` holds the state. The filter
//! rules are `ctferry::publisher::audit`, the file `publisher::audit_log`.

use super::args::AuditFormat;
use anyhow::{Context, Result};
use ctferry::config::Pins;
use ctferry::publisher::audit::{self, Filter};
use ctferry::publisher::audit_log;
use ctferry::publisher::state::State;
use std::path::Path;

pub fn run(
    config: &Path,
    subscriber: Option<String>,
    since: Option<&str>,
    format: AuditFormat,
) -> Result<()> {
    let cfg = ctferry::config::load_with(config, Pins::Optional)?;
    let since = match since {
        Some(t) => Some(ctferry::time::parse(t).with_context(|| {
            format!("--since {t}: write an RFC 3339 time such as 2026-11-01T00:00:00Z")
        })?),
        None => None,
    };
    if let Some(s) = &subscriber {
        if !cfg.subscribers.iter().any(|x| &x.hsa_id == s) {
            let known: Vec<&str> = cfg.subscribers.iter().map(|x| x.hsa_id.as_str()).collect();
            anyhow::bail!(
                "--subscriber {s}: no such caregiver in {} (it has {})",
                config.display(),
                known.join(", ")
            );
        }
    }
    super::require_state(&cfg.publisher.state)?;
    ensure_log(&cfg.publisher.state)?;
    let records = audit::from_log(&cfg.publisher.state, &Filter { subscriber, since })?;
    match format {
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        AuditFormat::Csv => {
            println!("{}", audit::CSV_HEADER);
            for a in &records {
                println!("{}", audit::csv_line(a));
            }
        }
    }
    Ok(())
}

/// A state written before the audit log existed gets it now (opening the
/// state writes it); a running publisher has always written it.
fn ensure_log(state: &Path) -> Result<()> {
    if !audit_log::path(state).exists() {
        drop(State::open(state)?);
    }
    Ok(())
}

/// `ctferry audit --verify`: checks every line's number and hash.
pub fn verify(config: &Path) -> Result<()> {
    let cfg = ctferry::config::load_with(config, Pins::Optional)?;
    super::require_state(&cfg.publisher.state)?;
    ensure_log(&cfg.publisher.state)?;
    let path = audit_log::path(&cfg.publisher.state);
    let lines = audit_log::read_verified(&path)?;
    let time = |l: Option<&audit_log::Line>| {
        l.and_then(|l| l.record.get("time"))
            .and_then(|t| t.as_str())
            .unwrap_or("-")
            .to_string()
    };
    println!(
        "{}: {} records, the hash chain is intact (first {}, last {})",
        path.display(),
        lines.len(),
        time(lines.first()),
        time(lines.last())
    );
    Ok(())
}
