//! The demo's working folder and the configuration files it writes.

use super::data::{Caregiver, CAREGIVERS};
use super::error::DemoError;
use std::fmt::Write as _;
use std::path::Path;

/// The file that marks a folder as the demo's own (a rerun may replace it).
pub const MARKER: &str = ".ctferry-demo";

pub fn prepare_dir(dir: &Path) -> Result<(), DemoError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut r| r.next().is_none())
            .unwrap_or(false);
        if !empty {
            if !dir.join(MARKER).exists() {
                return Err(DemoError::Setup(format!(
                    "{} exists and was not made by ctferry demo; give another --dir or remove it",
                    dir.display()
                )));
            }
            std::fs::remove_dir_all(dir).map_err(|e| {
                DemoError::Setup(format!(
                    "cannot clear the previous demo in {}: {e}",
                    dir.display()
                ))
            })?;
        }
    }
    for sub in ["keys", "secrets", "sql", "deliveries", "caregivers"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
            DemoError::Setup(format!("cannot create {}: {e}", dir.join(sub).display()))
        })?;
    }
    std::fs::write(
        dir.join(MARKER),
        "made by ctferry demo; `ctferry demo` may replace this folder\n",
    )
    .map_err(|e| DemoError::Setup(format!("cannot write in {}: {e}", dir.display())))?;
    Ok(())
}

pub fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text)
        .map_err(|e| DemoError::Setup(format!("cannot write {}: {e}", path.display())))
}

pub fn write_secret(path: &Path, text: &str) -> Result<(), DemoError> {
    write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

pub fn conn(addr: std::net::SocketAddr, db: &str) -> String {
    format!(
        "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
        addr.ip(),
        addr.port()
    )
}

pub fn config_text(addr: std::net::SocketAddr, deliver: &[String]) -> String {
    let mut t = format!(
        r#"# Written by `ctferry demo`: the region's publisher configuration.
# The source is the embedded simulator's database Pmo; restart it with the
# command shown at the end of the demo to run more cycles.
[source]
connection = "{}"
password_file = "secrets/sql-password"

[publisher]
id = "region-demo"
signing_key = "keys/region.sec.asc"
state = "state"
outbox = "outbox"

"#,
        conn(addr, "Pmo")
    );
    let owners = [
        ("dbo.Vardgivare", "{ column = \"HsaId\" }", ""),
        ("dbo.Vardenhet", "{ column = \"VardgivareHsaId\" }", ""),
        // A patient is in every copy where it has care: listed there, or a
        // visit there; its address follows it.
        ("dbo.Patient", "{ path = \"ListadVardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\", members = [\"dbo.Besok(PatientId)\"] }", ""),
        ("dbo.PatientAdress", "{ path = \"PatientId -> dbo.Patient(Id)\" }", ""),
        ("dbo.Besok", "{ path = \"VardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }", ""),
        ("dbo.Journalanteckning", "{ path = \"BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }", ""),
        ("dbo.Diagnos", "{ path = \"BesokId -> dbo.Besok(Id).VardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }", ""),
        ("dbo.Diagnoskod", "\"shared\"", ""),
        ("dbo.Anvandare", "{ path = \"VardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }", "mask = { Losenord = \"NULL\", Epost = \"N'maskerad@example.invalid'\" }\n"),
    ];
    for (name, owner, mask) in owners {
        let _ = write!(t, "[[table]]\nname = \"{name}\"\nowner = {owner}\n{mask}\n");
    }
    for (c, d) in CAREGIVERS.iter().filter(|c| c.subscribed).zip(deliver) {
        let _ = write!(
            t,
            "[[subscriber]]\nhsa_id = \"{}\"\nname = \"{}\"\nkeys = [\"{}\"]\npublic_key = \"keys/{}.pub.asc\"\ninterval = \"15m\"\ndeliver = {{ {d} }}\n\n",
            c.hsa, c.name, c.hsa, c.short
        );
    }
    t
}

pub fn apply_text(addr: std::net::SocketAddr, c: &Caregiver, source: &str) -> String {
    format!(
        "# Written by `ctferry demo`: {name}'s side.\n[target]\nconnection = \"{conn}\"\npassword_file = \"../../secrets/sql-password\"\n\n[keys]\nsecret_key = \"../../keys/{short}.sec.asc\"\npublisher_keys = [\"../../keys/region.pub.asc\"]\n\n[source]\nsubscriber = \"{hsa}\"\n{source}",
        name = c.name,
        conn = conn(addr, &copy_db(c)),
        short = c.short,
        hsa = c.hsa
    )
}

pub fn copy_db(c: &Caregiver) -> String {
    format!("Kopia_{}", c.short)
}
