//! `ctferry schema accept`: publish columns held back (`publisher::accept`).

use anyhow::Result;
use ctferry::publisher::{accept, state::State};
use std::path::Path;

pub fn accept(config: &Path, table: &str, columns: &[String]) -> Result<()> {
    let cfg = ctferry::config::load_with(config, ctferry::config::Pins::Optional)?;
    super::require_state(&cfg.publisher.state)?;
    let state = State::open(&cfg.publisher.state)?;
    let (name, accepted) = accept::accept(&state, table, columns, &ctferry::time::now_text())?;
    println!(
        "{name}: {} accepted; the next cycle adds {} at every copy (and sends the table's rows again if {} values already)",
        accepted.join(", "),
        if accepted.len() == 1 { "it" } else { "them" },
        if accepted.len() == 1 { "it holds" } else { "they hold" },
    );
    Ok(())
}
