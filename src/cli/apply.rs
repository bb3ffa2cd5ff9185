//! `ctferry apply` at the caregiver: verify and apply every new package in
//! order (`--watch`: keep polling; `--status`: show the copy's state).

use super::signals;
use anyhow::Result;
use ctferry::caregiver::{self, ApplyReport};
use ctferry::mssql::client::Db;
use std::path::Path;

pub fn run(config: &Path, watch: bool, every: u64, status: bool) -> Result<()> {
    let cfg = ctferry::config::load_apply(config)?;
    for w in cfg.connection.warnings() {
        tracing::warn!("{}: [target] connection: {w}", config.display());
    }
    let mut db = Db::connect(&cfg.connection, &cfg.password)?;
    if status {
        return show_status(&mut db);
    }
    let (keys, publishers) = cfg.load_keys()?;
    if watch {
        signals::stop_on_signals();
    }
    loop {
        let mut report = ApplyReport::default();
        // A progress line on a terminal; plain lines (below) otherwise.
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            let pb2 = pb.clone();
            report.progress = Some(Box::new(move |f: &str, n: u64| {
                pb2.set_message(format!("{f}: {n} rows applied"));
            }));
            Some(pb)
        } else {
            None
        };
        let r = caregiver::apply_all(&cfg, &mut db, &keys, &publishers, &mut report);
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        for f in &report.downloaded {
            println!("{f}: downloaded");
        }
        for f in &report.skipped {
            println!("{f}: already applied, skipped");
        }
        for (f, n) in &report.applied {
            println!("{f}: applied ({n} rows)");
            tracing::info!(file = %f, rows = n, "package applied");
        }
        if !watch {
            r?;
            return Ok(());
        }
        if let Err(e) = r {
            eprintln!("ctferry: {e}");
        }
        if !signals::pause(every) {
            return Ok(());
        }
    }
}

fn show_status(db: &mut Db) -> Result<()> {
    caregiver::ensure_log(db)?;
    match caregiver::last_applied(db)? {
        None => println!("no package applied yet"),
        Some(a) => println!(
            "epoch {}\nlast sequence {} ({})\nversion {}\ndata as of {}",
            a.epoch,
            a.sequence,
            a.file,
            a.ct_to,
            a.data_as_of
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("(unknown)")
        ),
    }
    Ok(())
}
