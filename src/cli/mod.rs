//! The `ctferry` command line. Why it is built this way: every rule lives in
//! the library, where it can be unit-tested without spawning a process; this
//! folder only parses flags (`args`), calls one library function per command
//! (one file per command, named after it) and prints what it returns.
//! Errors are printed as one line on stderr, `ctferry: <what failed>: <why>`,
//! with exit code 1 (2 for usage errors); see README "Exit codes".

mod apply;
mod args;
mod audit;
mod check;
#[cfg(feature = "demo")]
mod demo;
mod inspect;
mod keys;
mod metrics;
mod once;
mod report;
mod run;
mod schema;
mod signals;
mod snapshot;
mod status;
mod trust;

pub use args::Cli;
use args::{Command, KeysCommand, LogFormat, SchemaCommand, SftpCommand};

use anyhow::Result;
use std::process::ExitCode;

/// Parses the command line, sets up logging, runs the command.
pub fn main() -> ExitCode {
    use clap::Parser;
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctferry: {}", error_text(&e));
            if e.downcast_ref::<apply::AlreadyRunning>().is_some() {
                ExitCode::from(75)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// An error and its causes on one line, each said once: the library's
/// errors already carry their cause's text (`"{file}: {source}"`), so a
/// cause whose text the line holds already is left out.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Log lines go to stderr (stdout is the command's output). The demo tells
/// its own story on stdout; only errors go to its log.
fn init_logging(cli: &Cli) {
    let level = if cli.command.is_demo() {
        tracing::Level::ERROR
    } else {
        tracing::Level::INFO
    };
    let sub = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(level);
    match cli.log_format {
        LogFormat::Json => sub.json().flatten_event(true).init(),
        LogFormat::Text => sub
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { config, json } => check::run(&config, json),
        Command::Once { config } => once::run(&config),
        Command::Run {
            config,
            every,
            metrics,
        } => run::run(&config, every, metrics),
        Command::Snapshot {
            config,
            subscriber,
            all,
        } => snapshot::run(&config, subscriber.as_deref(), all),
        Command::Audit {
            config,
            subscriber,
            since,
            format,
            verify,
        } => {
            if verify {
                audit::verify(&config)
            } else {
                audit::run(&config, subscriber, since.as_deref(), format)
            }
        }
        Command::Status { config, json } => status::run(&config, json),
        Command::Apply {
            config,
            watch,
            every,
            status,
        } => apply::run(&config, watch, every, status),
        #[cfg(feature = "demo")]
        Command::Demo { dir, delivery } => demo::run(dir, delivery),
        Command::Sftp {
            command:
                SftpCommand::Trust {
                    config,
                    subscriber,
                    yes,
                },
        } => trust::run(&config, &subscriber, yes),
        Command::Schema {
            command:
                SchemaCommand::Accept {
                    config,
                    table,
                    columns,
                },
        } => schema::accept(&config, &table, &columns),
        Command::Keys {
            command:
                KeysCommand::Generate {
                    name,
                    email,
                    out,
                    passphrase_env,
                },
        } => keys::generate(&name, &email, &out, passphrase_env.as_deref()),
        Command::Inspect {
            file,
            key,
            signers,
            rows,
            json,
            passphrase_env,
            passphrase_file,
        } => inspect::run(
            &file,
            &key,
            &signers,
            rows,
            json,
            passphrase_env.as_deref(),
            passphrase_file.as_deref(),
        ),
    }
}

/// `status` and `audit` read the publisher's state and never create one: a
/// missing state folder is a wrong path or a publisher that never ran.
fn require_state(path: &std::path::Path) -> Result<()> {
    if !path.is_dir() {
        anyhow::bail!(
            "no publisher state at {}: run `ctferry once` (or `ctferry run`) with this configuration first, or check [publisher] state",
            path.display()
        );
    }
    Ok(())
}
