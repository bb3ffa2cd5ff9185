//! What `once`, `run` and `snapshot` print after a cycle, and the exit code
//! rule when a delivery failed.

use anyhow::{bail, Result};
use ctferry::publisher::CycleReport;

/// One log line (tracing) and the human summary (stdout) of a cycle.
pub fn print_cycle(r: &CycleReport) {
    let routed: Vec<String> = r.routed.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!(
        previous = r.previous,
        version = r.version,
        changes_read = r.changes_read,
        routed = %routed.join(" "),
        snapshots = r.snapshots.len(),
        packages = r.packages.len(),
        delivered = r.delivered,
        statements = r.statements,
        duration_ms = r.duration_ms,
        "cycle"
    );
    println!(
        "cycle: versions {} -> {}, {} changes read, routed [{}], {} snapshot(s), {} package(s), {} delivered, {} statements",
        r.previous.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        r.version,
        r.changes_read,
        routed.join(" "),
        r.snapshots.len(),
        r.packages.len(),
        r.delivered,
        r.statements
    );
    for (hsa, why) in &r.snapshots {
        println!("  snapshot for {hsa}: {why}");
    }
    for (hsa, progress) in &r.snapshots_continuing {
        println!("  snapshot for {hsa} continues at the next cycle: {progress}");
        tracing::info!(subscriber = %hsa, progress = %progress, "snapshot continues at the next cycle");
    }
    for (table, why) in &r.reshaped {
        println!("  {table}: {why} (each copy follows in its next package)");
        tracing::warn!(table = %table, change = %why, "table changed; the copies follow without a new epoch");
    }
    for (table, cols) in &r.held {
        println!(
            "  {table}: new column(s) {} held back, not published: `ctferry schema accept --table {table}` publishes them (or list them under mask or exclude)",
            cols.join(", ")
        );
        tracing::warn!(table = %table, columns = %cols.join(","), "new columns held back");
    }
    for (table, why) in r
        .resent
        .iter()
        .filter(|(t, _)| !r.reshaped.iter().any(|(x, _)| x == t))
    {
        println!("  {table} re-sent to every caregiver that has it: {why}");
        tracing::warn!(table = %table, reason = %why, "table re-sent as a delta; no new epoch");
    }
    for (hsa, how) in &r.rekeyed {
        println!("  partition keys of {hsa} changed ({how}): its rows moved in this cycle");
        tracing::info!(subscriber = %hsa, change = %how, "partition keys changed; rows moved without a new epoch");
    }
    for (hsa, e) in &r.delivery_failures {
        println!("  delivery to {hsa} failed: {e}");
        tracing::warn!(subscriber = %hsa, error = %e, "delivery failed; the packages stay in the outbox and are retried");
    }
    for (hsa, e) in &r.key_problems {
        println!("  no package for {hsa}: {e}");
        tracing::warn!(subscriber = %hsa, error = %e, "no package: the caregiver's key cannot be used");
    }
    for hsa in &r.delivery_waiting {
        println!("  delivery to {hsa} waits for its retry time (see ctferry status)");
    }
    for p in &r.packages {
        println!(
            "  {} {} ({} rows, {} bytes)",
            p.subscriber, p.file, p.rows, p.bytes
        );
    }
}

/// `ctferry once` and `snapshot` exit non-zero when a delivery failed (the
/// cycle itself is committed; the packages wait in the outbox).
pub fn delivery_result(r: &CycleReport) -> Result<()> {
    if let Some((hsa, e)) = r.key_problems.first() {
        bail!("no package for {hsa}: {e}");
    }
    if r.delivery_failures.is_empty() {
        return Ok(());
    }
    let who: Vec<&str> = r.delivery_failures.iter().map(|f| f.0.as_str()).collect();
    bail!(
        "delivery failed for {} (packages kept in the outbox; they are retried at the next cycle): {}",
        who.join(", "),
        r.delivery_failures[0].1
    )
}
