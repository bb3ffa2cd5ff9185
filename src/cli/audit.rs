//! `ctferry audit`: every disclosure (packages and deliveries) as CSV or JSON.
//! The merge and filter rules are `ctferry::publisher::audit`.

use super::args::AuditFormat;
use anyhow::{Context, Result};
use ctferry::config::Pins;
use ctferry::publisher::audit::{self, Filter};
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
    let state = State::open(&cfg.publisher.state)?;
    let records = audit::audit(&cfg, &state, &Filter { subscriber, since })?;
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
