//! `ctferry sftp trust`: show a caregiver's SFTP host key and pin it once
//! the operator confirms it (compared with the caregiver's fingerprint).

use anyhow::{bail, Context, Result};
use ctferry::config::{Deliver, HostTrust, Pins};
use ctferry::sftp::{self, Known};
use std::path::Path;

pub fn run(config: &Path, hsa: &str, yes: bool) -> Result<()> {
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
        HostTrust::KnownHosts(p) => match sftp::known_hosts_check(p, &t.url, &info)? {
            Known::Match => {
                println!("already in {}; nothing to do", p.display());
                return Ok(());
            }
            Known::Mismatch => format!(
                "WARNING: {} holds a DIFFERENT key for this server",
                p.display()
            ),
            Known::Absent => format!("{} has no key for this server yet", p.display()),
        },
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
            ctferry::config::pin_host_key(config, hsa, &info.fingerprint)?;
            println!(
                "pinned host_key = \"{}\" for {hsa} in {}",
                info.fingerprint,
                config.display()
            );
        }
    }
    Ok(())
}
