//! `ctferry keys generate`: a key pair, the secret half readable by its
//! owner only and never overwritten.

use anyhow::{bail, Context, Result};
use ctferry::format::crypto::{self, PublicKey};
use std::path::{Path, PathBuf};

pub fn generate(name: &str, email: &str, out: &Path, passphrase_env: Option<&str>) -> Result<()> {
    let pass = match passphrase_env {
        Some(_) => ctferry::config::passphrase(passphrase_env, None, None)?,
        None => None,
    };
    let (public, secret) = crypto::generate(name, email, pass.as_ref().map(|p| p.expose()))?;
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
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
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

/// Writes a secret key readable by its owner only.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
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
