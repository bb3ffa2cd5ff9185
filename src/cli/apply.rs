//! `ctferry apply` at the caregiver: verify and apply every new package in
//! order (`--watch`: keep polling; `--status`: show the copy's state).

use super::signals;
use anyhow::Result;
use ctferry::caregiver::{self, ApplyReport};
use ctferry::mssql::client::Db;
use std::path::Path;

/// Another `ctferry apply` with the same configuration holds its lock:
/// this run did nothing (exit code 75, EX_TEMPFAIL).
#[derive(Debug, thiserror::Error)]
#[error("another `ctferry apply` with {config} is running (it holds {lock}); this run did nothing. Scheduled runs overlap when one apply takes longer than the schedule's interval; the next run goes on")]
pub struct AlreadyRunning {
    config: String,
    lock: String,
}

/// One `apply` per configuration at a time, so that two scheduled runs
/// never apply at once: an operating-system lock (flock on Unix,
/// LockFileEx on Windows) on `<configuration file>.lock` beside it, which
/// the system releases when the process ends, however it ends. The file is
/// never removed (removing a locked file would let a second run lock a new
/// one) and never followed through a link.
fn lock(config: &Path) -> Result<std::fs::File> {
    let path = std::path::PathBuf::from(format!("{}.lock", config.display()));
    let mut o = std::fs::OpenOptions::new();
    o.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let f = o
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(AlreadyRunning {
            config: config.display().to_string(),
            lock: path.display().to_string(),
        }
        .into()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
        }
    }
}

/// Where the configuration is: as given, except that a task Windows' Task
/// Scheduler starts runs in C:\Windows\System32, so there a relative path
/// (the default `apply.toml` included) means `%ProgramData%\ctferry\...`,
/// where the caregiver's IT contact keeps it (README, "The caregiver on
/// Windows"). Paths inside the configuration are relative to its folder.
fn resolve_config(config: &Path) -> std::path::PathBuf {
    if cfg!(windows) && config.is_relative() {
        let in_system32 = std::env::current_dir()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.eq_ignore_ascii_case("system32")))
            .unwrap_or(false);
        if let (true, Some(pd)) = (in_system32, std::env::var_os("ProgramData")) {
            return std::path::PathBuf::from(pd).join("ctferry").join(config);
        }
    }
    config.to_path_buf()
}

pub fn run(config: &Path, watch: bool, every: u64, status: bool) -> Result<()> {
    let config = &resolve_config(config);
    let cfg = ctferry::config::load_apply(config)?;
    // `--status` only reads; it may run next to an apply.
    let _lock = if status { None } else { Some(lock(config)?) };
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
            for (_, what) in report.table_changes.iter().filter(|(cf, _)| cf == f) {
                println!("{f}: table {what}");
                tracing::info!(file = %f, change = %what, "table changed");
            }
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
