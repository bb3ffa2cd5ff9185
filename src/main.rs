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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
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
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("ctferry: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
