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
    /// Show the whole job end to end on an embedded simulator, with checks.
    Demo {
        /// Where the demo writes its working setup (configs, keys, state,
        /// outbox, deliveries, databases). Replaced if a previous demo made it.
        #[arg(long, default_value = "ctferry-demo")]
        dir: PathBuf,
        /// `auto`: SFTP through a private local sshd when OpenSSH's sshd is
        /// installed, local folders otherwise.
        #[arg(long, value_parser = ["auto", "sftp", "folder"], default_value = "auto")]
        delivery: String,
    },
    /// SFTP delivery areas.
    Sftp {
        #[command(subcommand)]
        command: SftpCommand,
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
enum SftpCommand {
    /// Connect to a caregiver's SFTP server, show its host key and pin it in
    /// the configuration once you confirm it (compare it with the fingerprint
    /// the caregiver gave you).
    Trust {
        #[arg(short = 'c', long = "config", default_value = "ctferry.toml")]
        config: PathBuf,
        #[arg(long)]
        subscriber: String,
        /// Pin without asking (for scripts that checked the fingerprint otherwise).
        #[arg(long)]
        yes: bool,
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
    for (hsa, e) in &r.delivery_failures {
        println!("  delivery to {hsa} failed: {e}");
        tracing::warn!(subscriber = %hsa, error = %e, "delivery failed; the packages stay in the outbox and are retried");
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

/// A JSON number as text, `-` for null.
fn num(v: &serde_json::Value) -> String {
    if v.is_null() {
        "-".into()
    } else {
        v.to_string()
    }
}

fn status(cfg: &ctferry::config::Config, json: bool) -> Result<()> {
    let state = ctferry::state::State::open(&cfg.publisher.state)?;
    let w = state.watermark()?;
    let wt = state.watermark_time()?;
    let mut out = Vec::new();
    for s in &cfg.subscribers {
        let st = state.subscriber(&s.hsa_id)?.unwrap_or_default();
        let undelivered = state.undelivered(&s.hsa_id)?.len();
        let last = state.last_package(&s.hsa_id)?;
        let staged = state.staged_count(&s.hsa_id)?;
        let ds = state.delivery_status(&s.hsa_id)?;
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
        // Lag in seconds: how old the source state is that the caregiver's
        // copy shows once it applied what was delivered. With nothing staged
        // or waiting, that is the last cycle's read; otherwise the last
        // delivered package's "data as of".
        let parse = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let as_of = if staged == 0 && undelivered == 0 && st.epoch > 0 {
            wt.as_deref().and_then(parse)
        } else {
            match ds.last_delivered_sequence {
                Some(seq) => state
                    .package(&s.hsa_id, seq)?
                    .and_then(|p| p.data_as_of)
                    .as_deref()
                    .and_then(parse),
                None => None,
            }
        };
        let lag_seconds = as_of.map(|t| (chrono::Utc::now() - t).num_seconds().max(0));
        out.push(serde_json::json!({
            "stale": stale_reason,
            "lag_seconds": lag_seconds,
            "copy_as_of": as_of.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
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
            "delivered_sequence": ds.last_delivered_sequence,
            "delivered_at": ds.last_delivered_at,
            "delivery_failures": ds.failures,
            "last_error": ds.last_error,
            "last_error_at": ds.last_error_at,
            "next_attempt_at": ctferry::deliver::waiting_until(&ds),
            "deliver_to": match &s.deliver {
                ctferry::config::Deliver::Folder(d) => d.display().to_string(),
                ctferry::config::Deliver::Sftp(t) => t.url.to_string(),
            },
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
            "{:<22} {:>5} {:>6} {:>8} {:>6} {:>7} {:>9} {:>7}  {}",
            "subscriber",
            "epoch",
            "seq",
            "version",
            "lag v",
            "staged",
            "delivered",
            "backlog",
            "last package"
        );
        for o in &out {
            println!(
                "{:<22} {:>5} {:>6} {:>8} {:>6} {:>7} {:>9} {:>7}  {}",
                o["subscriber"].as_str().unwrap_or(""),
                o["epoch"].to_string(),
                o["last_sequence"].to_string(),
                num(&o["version"]),
                num(&o["lag_versions"]),
                o["staged"].to_string(),
                num(&o["delivered_sequence"]),
                o["undelivered"].to_string(),
                o["last_package_at"].as_str().unwrap_or("-"),
            );
            match (o["copy_as_of"].as_str(), o["lag_seconds"].as_i64()) {
                (Some(t), Some(l)) => println!("  copy shows the source as of {t} ({l} s ago)"),
                _ => println!("  no copy yet"),
            }
            println!("  deliver to {}", o["deliver_to"].as_str().unwrap_or(""));
            if let Some(e) = o["last_error"].as_str() {
                let state = if o["delivery_failures"].as_u64().unwrap_or(0) > 0 {
                    "failing"
                } else {
                    "recovered"
                };
                println!(
                    "  last delivery error ({}, {state}): {e}",
                    o["last_error_at"].as_str().unwrap_or("")
                );
            }
            if let Some(t) = o["next_attempt_at"].as_str() {
                println!("  next delivery try at {t}");
            }
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
            let (keys, publishers) = cfg.load_keys()?;
            if watch {
                stop_on_signals();
            }
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
                let r = apply::apply_all(&cfg, &mut db, &keys, &publishers, &mut report);
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
                if !pause(every) {
                    return Ok(());
                }
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
            delivery_result(&r)
        }
        Command::Run { config, every } => {
            let cfg = load_config(&config)?;
            let mut p = ctferry::publish::Publisher::open(&cfg)?;
            stop_on_signals();
            loop {
                let r = connect(&cfg).and_then(|mut db| Ok(p.once(&mut db, false)?));
                match r {
                    Ok(r) => print_cycle(&r),
                    Err(e) => {
                        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                        tracing::error!(error = %chain.join(": "), "cycle failed");
                    }
                }
                if !pause(every) {
                    tracing::info!("stopped by a signal after a complete cycle");
                    return Ok(());
                }
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
            delivery_result(&r)
        }
        Command::Audit {
            config,
            subscriber,
            since,
            format,
        } => {
            let cfg = ctferry::config::load_with(&config, ctferry::config::Pins::Optional)?;
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
            // Package records, plus the delivery log: when each file reached
            // (or failed to reach) the caregiver's area.
            let mut all = state.audit()?;
            for s in &cfg.subscribers {
                for d in state.delivery_log(&s.hsa_id)? {
                    let delivered = !d.result.starts_with("failed");
                    all.push(ctferry::state::AuditRecord {
                        time: d.time,
                        subscriber: d.subscriber,
                        event: if delivered {
                            "delivered"
                        } else {
                            "delivery failed"
                        }
                        .into(),
                        sequence: Some(d.sequence),
                        file: Some(d.file),
                        sha256: Some(d.sha256),
                        tables: vec![],
                        detail: Some(format!(
                            "{} ({} bytes, attempt {})",
                            d.result, d.bytes, d.attempts
                        )),
                    });
                }
            }
            all.sort_by(|a, b| a.time.cmp(&b.time));
            let records: Vec<_> = all
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
        Command::Demo { dir, delivery } => {
            use ctferry::demo::{Delivery, Options};
            let delivery = match delivery.as_str() {
                "sftp" => Delivery::Sftp,
                "folder" => Delivery::Folder,
                _ => Delivery::Auto,
            };
            Ok(ctferry::demo::run(&Options { dir, delivery })?)
        }
        Command::Sftp {
            command:
                SftpCommand::Trust {
                    config,
                    subscriber,
                    yes,
                },
        } => sftp_trust(&config, &subscriber, yes),
        Command::Status { config, json } => {
            let cfg = ctferry::config::load_with(&config, ctferry::config::Pins::Optional)?;
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

/// Set by the first SIGTERM or SIGINT: `run` and `apply --watch` finish the
/// step in progress (a cycle, a package) and exit 0.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the handlers (for the long-running commands only; one-shot
/// commands keep the default: a signal ends them at once, which is safe
/// because every step commits atomically). A second signal abandons the
/// current step: exit code 130, nothing half-done is kept (a cycle's state
/// commit or a package's transaction either happened or did not).
fn stop_on_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            let (Ok(mut term), Ok(mut int)) = (
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                #[cfg(unix)]
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                #[cfg(not(unix))]
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("ctferry: second signal: abandoning the current step (it is rolled back or redone, never half-kept)");
                    std::process::exit(130);
                }
                eprintln!("ctferry: stopping after the current step (signal again to abandon it)");
            }
        });
    });
}

/// Sleeps `secs` seconds; false when a stop signal arrived (before or during).
fn pause(secs: u64) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs.max(1));
    while std::time::Instant::now() < until {
        if STOP.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    !STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// `ctferry once` and `snapshot` exit non-zero when a delivery failed (the
/// cycle itself is committed; the packages wait in the outbox).
fn delivery_result(r: &ctferry::publish::CycleReport) -> Result<()> {
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

fn sftp_trust(config: &PathBuf, hsa: &str, yes: bool) -> Result<()> {
    use ctferry::config::{Deliver, Pins};
    use ctferry::sftp::{self, HostTrust, Known};
    let cfg = ctferry::config::load_with(config, Pins::Optional)?;
    let sub = cfg
        .subscriber(hsa)
        .with_context(|| format!("{hsa} is not a [[subscriber]] in {}", config.display()))?;
    let Deliver::Sftp(t) = &sub.deliver else {
        bail!("{hsa} delivers to a folder, not over SFTP; nothing to trust");
    };
    let info = sftp::probe_host_key(&t.url, cfg.publisher.delivery.timeout)?;
    println!(
        "{hsa}: {} presents host key {} {}",
        t.url, info.key_type, info.fingerprint
    );
    let what = match &t.trust {
        HostTrust::Pinned(fp) if fp.is_empty() => "no host key is pinned yet".to_string(),
        HostTrust::Pinned(fp) if *fp == info.fingerprint => {
            println!("already pinned in {}; nothing to do", config.display());
            return Ok(());
        }
        HostTrust::Pinned(fp) => format!("WARNING: this is NOT the pinned key {fp}"),
        HostTrust::KnownHosts(p) => {
            match sftp::known_hosts_check(p, &t.url, &info).map_err(anyhow::Error::msg)? {
                Known::Match => {
                    println!("already in {}; nothing to do", p.display());
                    return Ok(());
                }
                Known::Mismatch => format!(
                    "WARNING: {} holds a DIFFERENT key for this server",
                    p.display()
                ),
                Known::Absent => format!("{} has no key for this server yet", p.display()),
            }
        }
    };
    println!("{what}");
    if !yes {
        use std::io::Write;
        print!("Compare it with the fingerprint the caregiver gave you. Pin it? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            bail!("not pinned; nothing was changed");
        }
    }
    match &t.trust {
        HostTrust::KnownHosts(p) => {
            sftp::known_hosts_add(p, &t.url, &info)
                .with_context(|| format!("cannot write {}", p.display()))?;
            println!("wrote the key to {}", p.display());
        }
        HostTrust::Pinned(_) => {
            ctferry::config::pin_host_key(config, hsa, &info.fingerprint)
                .map_err(anyhow::Error::msg)?;
            println!(
                "pinned host_key = \"{}\" for {hsa} in {}",
                info.fingerprint,
                config.display()
            );
        }
    }
    Ok(())
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
    // The demo tells its own story on stdout; only errors go to the log.
    let level = if matches!(cli.command, Command::Demo { .. }) {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    };
    let sub = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(level);
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
