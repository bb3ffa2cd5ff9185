//! `ctferry inspect`: verify a package completely, then show its manifest
//! and first rows (`ctferry::format::inspect`).

use anyhow::{Context, Result};
use ctferry::format::crypto::{PublicKey, SecretKey};
use std::path::{Path, PathBuf};

pub fn run(
    file: &Path,
    key: &Path,
    signers: &[PathBuf],
    rows: usize,
    json: bool,
    passphrase_env: Option<&str>,
    passphrase_file: Option<&Path>,
) -> Result<()> {
    let pass = ctferry::config::passphrase(
        passphrase_env,
        passphrase_file,
        Some("CTFERRY_KEY_PASSPHRASE"),
    )?;
    let key = SecretKey::load(key, pass.map(|p| p.expose().to_string()))?;
    let publishers = signers
        .iter()
        .map(|p| PublicKey::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let report = ctferry::format::inspect::inspect(file, &key, &publishers, rows)
        .with_context(|| format!("package {} is refused", file.display()))?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
