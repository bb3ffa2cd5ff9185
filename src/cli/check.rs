//! `ctferry check`: the configuration against the live source and every
//! delivery area; lists each problem, exit 1 when there is one.

use anyhow::{bail, Result};
use std::path::Path;

pub fn run(config: &Path) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    for w in ctferry::publisher::check::warnings(&cfg) {
        eprintln!("{}: warning: {w}", config.display());
    }
    let problems = ctferry::publisher::check::check(&cfg);
    if problems.is_empty() {
        println!(
            "{}: OK ({} tables, {} subscribers)",
            config.display(),
            cfg.tables.len(),
            cfg.subscribers.len()
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{}: {p}", config.display());
        }
        bail!("{} problem(s) in {}", problems.len(), config.display())
    }
}
