//! `ctferry check`: the configuration against the live source and every
//! delivery area; lists each problem, exit 1 when there is one. It also
//! says, for every foreign key between published tables, whether the
//! owner rules keep the referenced row in every copy that holds the
//! referencing one (`ctferry::publisher::check::Reference`); a reference
//! that may dangle is a warning, not a failure, as is a foreign-key column
//! a cycle looks rows up by that leads no index.

use anyhow::{bail, Result};
use std::path::Path;

pub fn run(config: &Path, json: bool) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    for w in ctferry::publisher::check::warnings(&cfg) {
        eprintln!("{}: warning: {w}", config.display());
    }
    let (problems, references) = ctferry::publisher::check::check_with_references(&cfg);
    let notes = ctferry::publisher::check::source_notes(&cfg);
    let indexes = notes.index_warnings;
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "problems": problems,
                "references": references,
                "index_warnings": indexes,
                "schema_changes": notes.schema_changes,
            }))?
        );
    } else {
        for w in &indexes {
            eprintln!("{}: warning: {w}", config.display());
        }
        for c in &notes.schema_changes {
            println!("schema change: {c}");
        }
        for r in &references {
            if r.complete {
                println!("reference {r}");
            } else {
                eprintln!("{}: warning: reference {r}", config.display());
            }
        }
    }
    if problems.is_empty() {
        if !json {
            println!(
                "{}: OK ({} tables, {} subscribers)",
                config.display(),
                cfg.tables.len(),
                cfg.subscribers.len()
            );
        }
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{}: {p}", config.display());
        }
        bail!("{} problem(s) in {}", problems.len(), config.display())
    }
}
