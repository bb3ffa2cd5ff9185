//! The demo's private OpenSSH sshd (when `/usr/sbin/sshd` is installed).

use super::error::DemoError;
use super::files::write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A private OpenSSH sshd for the demo's SFTP areas: 127.0.0.1 only, its own
/// config and host key, key-only login as the user running the demo, one
/// port per caregiver, each port's session starting in that caregiver's
/// folder (`Match LocalPort` + `ForceCommand internal-sftp -d`). Not a
/// jail: a real caregiver's server confines the account (see README).
pub struct LocalSshd {
    child: std::process::Child,
    /// Its configuration file (printed so the operator can start it again).
    pub config: PathBuf,
    /// The account that logs in (the user running the demo).
    pub user: String,
    /// One port per area, in the order the areas were given.
    pub ports: Vec<u16>,
    /// The host key's fingerprint (`SHA256:...`).
    pub fingerprint: String,
}

pub const SSHD: &str = "/usr/sbin/sshd";

pub fn sshd_available() -> bool {
    Path::new(SSHD).exists()
        && std::process::Command::new("ssh-keygen")
            .arg("-?")
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok()
}

pub fn run_tool(cmd: &mut std::process::Command) -> Result<String, DemoError> {
    let out = cmd
        .output()
        .map_err(|e| DemoError::Setup(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(DemoError::Setup(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl LocalSshd {
    pub fn start(dir: &Path, areas: &[PathBuf]) -> Result<LocalSshd, DemoError> {
        let sdir = dir.join("ssh");
        std::fs::create_dir_all(&sdir).map_err(|e| DemoError::Setup(e.to_string()))?;
        let user = run_tool(std::process::Command::new("id").arg("-un"))?
            .trim()
            .to_string();
        for k in ["host_key", "demo_key"] {
            run_tool(
                std::process::Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", "ctferry-demo", "-f"])
                    .arg(sdir.join(k)),
            )?;
        }
        std::fs::copy(sdir.join("demo_key.pub"), sdir.join("authorized_keys"))
            .map_err(|e| DemoError::Setup(e.to_string()))?;
        let fp = run_tool(
            std::process::Command::new("ssh-keygen")
                .arg("-l")
                .arg("-f")
                .arg(sdir.join("host_key.pub")),
        )?;
        let fingerprint = fp.split_whitespace().nth(1).unwrap_or("").to_string();
        let ports: Vec<u16> = areas
            .iter()
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let d = sdir.display();
        let mut cfg = format!(
            "# Written by `ctferry demo`: a private sshd for the demo's SFTP areas.\n\
             ListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPermitRootLogin prohibit-password\n\
             AllowUsers {user}\nSubsystem sftp internal-sftp\n"
        );
        for p in &ports {
            cfg.push_str(&format!("Port {p}\n"));
        }
        for (p, a) in ports.iter().zip(areas) {
            cfg.push_str(&format!(
                "Match LocalPort {p}\n  ForceCommand internal-sftp -d {}\n  AllowTcpForwarding no\n  X11Forwarding no\n",
                a.display()
            ));
        }
        let config = sdir.join("sshd_config");
        write(&config, &cfg)?;
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = std::process::Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(sdir.join("sshd.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| DemoError::Setup(format!("cannot start {SSHD}: {e}")))?;
        let mut me = LocalSshd {
            child,
            config,
            user,
            ports,
            fingerprint,
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        for p in me.ports.clone() {
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", p)).is_ok() {
                    break;
                }
                if let Ok(Some(st)) = me.child.try_wait() {
                    let log = std::fs::read_to_string(sdir.join("sshd.log")).unwrap_or_default();
                    return Err(DemoError::Setup(format!(
                        "sshd exited ({st}): {}",
                        log.trim()
                    )));
                }
                if Instant::now() > deadline {
                    return Err(DemoError::Setup(
                        "sshd did not start listening within 20 s".into(),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Ok(me)
    }
}

impl Drop for LocalSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::Setup(format!("no free port: {e}")))
}
