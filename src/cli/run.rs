//! `ctferry run`: cycles until a signal; a failed cycle is logged and the
//! next one tried after the pause (it reconnects).

use super::report::print_cycle;
use super::signals;
use anyhow::Result;
use ctferry::mssql::client::Db;
use ctferry::publisher::Publisher;
use std::path::Path;

pub fn run(config: &Path, every: u64) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    let mut p = Publisher::open(&cfg)?;
    signals::stop_on_signals();
    loop {
        let r = Db::connect(&cfg.source.connection, &cfg.source.password)
            .map_err(anyhow::Error::from)
            .and_then(|mut db| Ok(p.once(&mut db, false)?));
        match r {
            Ok(r) => print_cycle(&r),
            Err(e) => {
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                tracing::error!(error = %chain.join(": "), "cycle failed");
            }
        }
        if !signals::pause(every) {
            tracing::info!("stopped by a signal after a complete cycle");
            return Ok(());
        }
    }
}
