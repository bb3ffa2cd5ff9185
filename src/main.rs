//! The `ctferry` command line (DESIGN.md §8). Each subcommand is a thin
//! layer over the library: parse flags, load keys and configuration, call
//! one library function, print the result. Errors are printed as one line on
//! stderr: `ctferry: <what failed>: <why>`; exit code 1 (2 for usage errors).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ctferry::crypto::{self, PublicKey, SecretKey};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ctferry", version, about = "Per-caregiver, signed and encrypted increments of a SQL Server database.", long_about = None)]
struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate ctferry.toml against the live source database.
    Check {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
    },
    /// One cycle: read changes, stage, package and deliver for every subscriber with work.
    Once {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
    },
    /// Cycles forever, packaging each subscriber at its interval.
    Run {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// Seconds between cycles.
        #[arg(long, default_value_t = 60)]
        every: u64,
    },
    /// Start a new epoch with a fresh snapshot for one caregiver, or all (then runs one cycle).
    Snapshot {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long, required_unless_present = "all")]
        subscriber: Option<String>,
        /// Every caregiver; also accepts changed columns of published tables.
        #[arg(long, conflicts_with = "subscriber")]
        all: bool,
    },
    /// Export the audit log: every package and snapshot disclosed, to whom, when.
    Audit {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        /// Only this caregiver (HSA id).
        #[arg(long)]
        subscriber: Option<String>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_parser = ["csv", "json"], default_value = "csv")]
        format: String,
    },
    /// Per caregiver: epoch, sequence, staged changes, last package, delivery;
    /// exit code 1 when a caregiver is stale.
    Status {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// At the caregiver: verify and apply every new package, in order, to the local copy.
    Apply {
        #[arg(short = 'c', long = "config", default_value = "apply.toml")]
        config: PathBuf,
        /// Keep polling the folder for new packages.
        #[arg(long)]
        watch: bool,
        /// Seconds between polls with --watch.
        #[arg(long, default_value_t = 60)]
        every: u64,
        /// Show the copy's state instead of applying.
        #[arg(long)]
        status: bool,
    },
    /// Manage OpenPGP keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Verify a package completely, then show its manifest and first rows.
    Inspect {
        /// The package file (*.ctf.pgp).
        file: PathBuf,
        /// The caregiver's armored secret key that the package is encrypted to.
        #[arg(long)]
        key: PathBuf,
        /// The region's armored public key(s) whose signature is accepted.
        #[arg(long = "signer", required = true)]
        signers: Vec<PathBuf>,
        /// How many rows to show.
        #[arg(long, default_value_t = 10)]
        rows: usize,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Environment variable holding the secret key's passphrase
        /// (default: CTFERRY_KEY_PASSPHRASE when it is set).
        #[arg(long)]
        passphrase_env: Option<String>,
        /// File holding the secret key's passphrase (first line).
        #[arg(long, conflicts_with = "passphrase_env")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key pair: PREFIX.pub.asc and PREFIX.sec.asc (Ed25519 + Cv25519).
    Generate {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Path prefix of the two files written.
        #[arg(long)]
        out: PathBuf,
        /// Protect the secret key with the passphrase in this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
}

/// A passphrase from an environment variable or a file, never from a flag.
fn passphrase(
    env: Option<&str>,
    file: Option<&PathBuf>,
    default_env: &str,
) -> Result<Option<String>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read passphrase file {}", f.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_string()));
    }
    match env {
        Some(var) => match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(_) => bail!("environment variable {var} (named by --passphrase-env) is not set"),
        },
        None => Ok(std::env::var(default_env).ok()),
    }
}

fn load_config(path: &PathBuf) -> Result<ctferry::config::Config> {
    Ok(ctferry::config::load(path)?)
}

fn connect(cfg: &ctferry::config::Config) -> Result<ctferry::source::Db> {
    Ok(ctferry::source::Db::connect(
        &cfg.source.connection,
        &cfg.source.password,
    )?)
}

fn print_cycle(r: &ctferry::publish::CycleReport) {
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
    for p in &r.packages {
        println!(
            "  {} {} ({} rows, {} bytes)",
            p.subscriber, p.file, p.rows, p.bytes
        );
    }
}

fn status(cfg: &ctferry::config::Config, json: bool) -> Result<()> {
    let state = ctferry::state::State::open(&cfg.publisher.state)?;
    let w = state.watermark()?;
    let mut out = Vec::new();
    for s in &cfg.subscribers {
        let st = state.subscriber(&s.hsa_id)?.unwrap_or_default();
        let pkgs = state.packages(&s.hsa_id)?;
        let undelivered = pkgs.iter().filter(|p| p.delivered_at.is_none()).count();
        let last = pkgs.last();
        let staged = state.staged_count(&s.hsa_id)?;
        // Stale: no copy yet, a snapshot pending, or work waiting (staged or
        // undelivered) while its last package is older than twice its interval.
        let age_ok = st
            .last_package_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| {
                chrono::Utc::now()
                    .signed_duration_since(t.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .map(|age| age <= s.interval * 2)
            .unwrap_or(false);
        let stale_reason = if st.epoch == 0 {
            Some("no snapshot delivered yet".to_string())
        } else if let Some(r) = &st.needs_snapshot {
            Some(format!("a new snapshot is pending ({r})"))
        } else if (staged > 0 || undelivered > 0) && !age_ok {
            Some(format!(
                "changes have waited longer than twice its interval ({} s)",
                s.interval.as_secs()
            ))
        } else {
            None
        };
        out.push(serde_json::json!({
            "stale": stale_reason,
            "subscriber": s.hsa_id,
            "name": s.name,
            "epoch": st.epoch,
            "last_sequence": st.next_sequence.saturating_sub(1),
            "version": st.version,
            "source_version": w,
            "lag_versions": match (w, st.version) { (Some(w), Some(v)) => Some(w - v), _ => None },
            "staged": staged,
            "last_package": last.map(|p| p.file.clone()),
            "last_package_at": st.last_package_at,
            "undelivered": undelivered,
            "needs_snapshot": st.needs_snapshot,
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"watermark": w, "subscribers": out})
        );
    } else {
        println!(
            "source version read: {}",
            w.map(|v| v.to_string()).unwrap_or_else(|| "(never)".into())
        );
        println!(
            "{:<22} {:>5} {:>6} {:>8} {:>7} {:>11}  {}",
            "subscriber", "epoch", "seq", "version", "staged", "undelivered", "last package"
        );
        for o in &out {
            println!(
                "{:<22} {:>5} {:>6} {:>8} {:>7} {:>11}  {}",
                o["subscriber"].as_str().unwrap_or(""),
                o["epoch"],
                o["last_sequence"],
                o["version"]
                    .as_i64()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                o["staged"],
                o["undelivered"],
                o["last_package_at"].as_str().unwrap_or("-"),
            );
            if let Some(r) = o["stale"].as_str() {
                println!("  STALE: {r}");
            }
        }
    }
    let stale: Vec<&str> = out
        .iter()
        .filter(|o| !o["stale"].is_null())
        .filter_map(|o| o["subscriber"].as_str())
        .collect();
    if !stale.is_empty() {
        bail!("{} caregiver(s) stale: {}", stale.len(), stale.join(", "));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply {
            config,
            watch,
            every,
            status,
        } => {
            use ctferry::apply;
            let cfg = apply::load_config(&config)?;
            let mut db = ctferry::source::Db::connect(&cfg.connection, &cfg.password)?;
            if status {
                apply::ensure_log(&mut db)?;
                match apply::last_applied(&mut db)? {
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
                return Ok(());
            }
            let key = SecretKey::load(
                &cfg.secret_key,
                cfg.passphrase.as_ref().map(|s| s.expose().to_string()),
            )?;
            let publishers = cfg
                .publisher_keys
                .iter()
                .map(|p| PublicKey::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            loop {
                let mut report = apply::ApplyReport::default();
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
                let r = apply::apply_all(&cfg, &mut db, &key, &publishers, &mut report);
                if let Some(pb) = bar {
                    pb.finish_and_clear();
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
                std::thread::sleep(std::time::Duration::from_secs(every.max(1)));
            }
        }
        Command::Check { config } => {
            let cfg = load_config(&config)?;
            let problems = ctferry::check::check(&cfg);
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
        Command::Once { config } => {
            let cfg = load_config(&config)?;
            let mut db = connect(&cfg)?;
            let mut p = ctferry::publish::Publisher::open(&cfg)?;
            let r = p.once(&mut db, true)?;
            print_cycle(&r);
            Ok(())
        }
        Command::Run { config, every } => {
            let cfg = load_config(&config)?;
            let mut p = ctferry::publish::Publisher::open(&cfg)?;
            loop {
                let r = connect(&cfg).and_then(|mut db| Ok(p.once(&mut db, false)?));
                match r {
                    Ok(r) => print_cycle(&r),
                    Err(e) => {
                        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                        tracing::error!(error = %chain.join(": "), "cycle failed");
                    }
                }
                std::thread::sleep(std::time::Duration::from_secs(every.max(1)));
            }
        }
        Command::Snapshot {
            config,
            subscriber,
            all,
        } => {
            let cfg = load_config(&config)?;
            let mut p = ctferry::publish::Publisher::open(&cfg)?;
            if all {
                p.snapshot_all_accepting_schema()?;
            } else {
                let subscriber = subscriber.unwrap_or_default();
                if cfg.subscriber(&subscriber).is_none() {
                    bail!(
                        "{subscriber} is not a [[subscriber]] in {}",
                        config.display()
                    );
                }
                p.request_snapshot(&subscriber, "requested with `ctferry snapshot`")?;
            }
            let mut db = connect(&cfg)?;
            let r = p.once(&mut db, true)?;
            print_cycle(&r);
            Ok(())
        }
        Command::Audit {
            config,
            subscriber,
            since,
            format,
        } => {
            let cfg = load_config(&config)?;
            let since = match since {
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .with_context(|| {
                            format!(
                                "--since {t}: write an RFC 3339 time such as 2026-11-01T00:00:00Z"
                            )
                        })?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            let state = ctferry::state::State::open(&cfg.publisher.state)?;
            let records: Vec<_> = state
                .audit()?
                .into_iter()
                .filter(|a| {
                    subscriber
                        .as_deref()
                        .map(|s| a.subscriber == s)
                        .unwrap_or(true)
                })
                .filter(
                    |a| match (&since, chrono::DateTime::parse_from_rfc3339(&a.time)) {
                        (Some(s), Ok(t)) => t.with_timezone(&chrono::Utc) >= *s,
                        _ => true,
                    },
                )
                .collect();
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                println!("time,subscriber,event,sequence,file,sha256,tables,rows,detail");
                for a in &records {
                    let rows: u64 = a.tables.iter().map(|t| t.1 + t.2).sum();
                    let tables: Vec<String> = a
                        .tables
                        .iter()
                        .map(|t| format!("{}:{}+{}", t.0, t.1, t.2))
                        .collect();
                    let csv = |s: &str| {
                        if s.contains([',', '"', '\n']) {
                            format!("\"{}\"", s.replace('"', "\"\""))
                        } else {
                            s.to_string()
                        }
                    };
                    println!(
                        "{},{},{},{},{},{},{},{},{}",
                        a.time,
                        csv(&a.subscriber),
                        a.event,
                        a.sequence.map(|s| s.to_string()).unwrap_or_default(),
                        csv(a.file.as_deref().unwrap_or("")),
                        a.sha256.as_deref().unwrap_or(""),
                        csv(&tables.join(" ")),
                        rows,
                        csv(a.detail.as_deref().unwrap_or(""))
                    );
                }
            }
            Ok(())
        }
        Command::Status { config, json } => {
            let cfg = load_config(&config)?;
            status(&cfg, json)
        }
        Command::Keys {
            command:
                KeysCommand::Generate {
                    name,
                    email,
                    out,
                    passphrase_env,
                },
        } => {
            let pass = match &passphrase_env {
                Some(_) => passphrase(passphrase_env.as_deref(), None, "")?,
                None => None,
            };
            let (public, secret) = crypto::generate(&name, &email, pass.as_deref())?;
            let base = out.display().to_string();
            let pub_path = PathBuf::from(format!("{base}.pub.asc"));
            let sec_path = PathBuf::from(format!("{base}.sec.asc"));
            for p in [&pub_path, &sec_path] {
                if p.exists() {
                    bail!(
                        "{} exists already; refusing to overwrite a key",
                        p.display()
                    );
                }
            }
            if let Some(dir) = pub_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&pub_path, public)
                .with_context(|| format!("cannot write {}", pub_path.display()))?;
            write_secret(&sec_path, secret.as_bytes())?;
            let key = PublicKey::load(&pub_path)?;
            println!(
                "wrote {} and {} (fingerprint {})",
                pub_path.display(),
                sec_path.display(),
                key.fingerprint()
            );
            Ok(())
        }
        Command::Inspect {
            file,
            key,
            signers,
            rows,
            json,
            passphrase_env,
            passphrase_file,
        } => {
            let pass = passphrase(
                passphrase_env.as_deref(),
                passphrase_file.as_ref(),
                "CTFERRY_KEY_PASSPHRASE",
            )?;
            let key = SecretKey::load(&key, pass)?;
            let publishers = signers
                .iter()
                .map(|p| PublicKey::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let report = ctferry::inspect::inspect(&file, &key, &publishers, rows)
                .with_context(|| format!("package {} is refused", file.display()))?;
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}

/// Writes a secret key readable by its owner only.
fn write_secret(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let sub = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO);
    if cli.log_format == "json" {
        sub.json().flatten_event(true).init();
    } else {
        sub.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("ctferry: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
