//! A real OpenSSH `sshd` on 127.0.0.1 for SFTP tests and benchmarks.
//!
//! Each `Sshd` runs its own server: its own config, host key, free port and
//! two SFTP-only accounts, each chrooted to its own folder with a writable
//! `upload/` inside (the two caregivers' areas). The system accounts
//! `ctferry-t-a` and `ctferry-t-b` are created on first use (the tests run as
//! root, as CI does; sshd needs root to chroot and to switch users).
//!
//! Everything lives under `/var/lib/ctferry-test-sftp/<random>/` because
//! sshd's ChrootDirectory must be root-owned all the way up and writable by
//! no one else (which rules out /tmp). Dropping the `Sshd` kills the server
//! and its session processes and removes the folder.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USERS: [&str; 2] = ["ctferry-t-a", "ctferry-t-b"];
pub const PASSWORDS: [&str; 2] = ["Ferry-a-7Qw!", "Ferry-b-3Zx!"];
const BASE: &str = "/var/lib/ctferry-test-sftp";

pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    /// More sshd_config lines (before the accounts' `Match` blocks).
    extra: String,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates the two test accounts (once per machine; serialized with flock
/// because test binaries run in parallel) and sets their passwords.
fn ensure_accounts() {
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "OpenSSH's sshd is not installed: run scripts/test.sh (it installs openssh-server)"
    );
    std::fs::create_dir_all(BASE).unwrap();
    let script = format!(
        "set -e\n\
         for u in {a} {b}; do id -u $u >/dev/null 2>&1 || useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin $u; done\n\
         printf '%s\\n' '{a}:{pa}' '{b}:{pb}' | chpasswd\n\
         mkdir -p /run/sshd\n",
        a = USERS[0],
        b = USERS[1],
        pa = PASSWORDS[0],
        pb = PASSWORDS[1]
    );
    run(Command::new("flock")
        .arg(format!("{BASE}/.lock"))
        .args(["sh", "-c", &script]));
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with("")
    }

    /// As `start`, with more sshd_config lines (`KexAlgorithms ...`).
    pub fn start_with(extra: &str) -> Sshd {
        ensure_accounts();
        let dir = tempfile::Builder::new()
            .prefix("sshd-")
            .tempdir_in(BASE)
            .unwrap()
            .keep();
        chmod(&dir, 0o755);
        for (i, u) in USERS.iter().enumerate() {
            let root = dir.join(format!("area{i}"));
            std::fs::create_dir(&root).unwrap();
            chmod(&root, 0o755);
            let up = root.join("upload");
            std::fs::create_dir(&up).unwrap();
            run(Command::new("chown").arg(format!("{u}:")).arg(&up));
        }
        std::fs::create_dir(dir.join("keys")).unwrap();
        chmod(&dir.join("keys"), 0o755);
        let mut s = Sshd {
            port: free_port(),
            dir,
            child: None,
            extra: extra.to_string(),
        };
        s.new_host_key();
        s.write_config();
        s.spawn();
        s
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let mut cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile none\n\
             UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nAuthorizedKeysFile {d}/keys/%u.pub\nStrictModes no\n\
             PermitRootLogin no\nAllowUsers {a} {b}\nMaxStartups 50\nLogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n{extra}\n",
            extra = self.extra,
            port = self.port,
            a = USERS[0],
            b = USERS[1]
        );
        for (i, u) in USERS.iter().enumerate() {
            cfg.push_str(&format!(
                "Match User {u}\n  ChrootDirectory {d}/area{i}\n  ForceCommand internal-sftp -d /upload\n  AllowTcpForwarding no\n  X11Forwarding no\n"
            ));
        }
        std::fs::write(self.dir.join("sshd_config"), cfg).unwrap();
    }

    /// Generates a new host key (takes effect at the next (re)start).
    pub fn new_host_key(&mut self) {
        let k = self.dir.join("host_key");
        let _ = std::fs::remove_file(&k);
        let _ = std::fs::remove_file(self.dir.join("host_key.pub"));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&k));
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let out = run(Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(self.dir.join("host_key.pub")));
        out.split_whitespace().nth(1).unwrap().to_string()
    }

    /// Creates a key pair for account `i` and authorizes it; returns the
    /// private key's path.
    pub fn user_key(&self, i: usize) -> PathBuf {
        let k = self.dir.join(format!("user{i}_key"));
        if !k.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&k));
            std::fs::copy(
                self.dir.join(format!("user{i}_key.pub")),
                self.dir.join("keys").join(format!("{}.pub", USERS[i])),
            )
            .unwrap();
            chmod(
                &self.dir.join("keys").join(format!("{}.pub", USERS[i])),
                0o644,
            );
        }
        k
    }

    /// The writable folder of account `i`, as seen on this machine.
    pub fn area(&self, i: usize) -> PathBuf {
        self.dir.join(format!("area{i}")).join("upload")
    }

    pub fn url(&self, i: usize) -> String {
        format!("sftp://{}@127.0.0.1:{}/upload", USERS[i], self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start /usr/sbin/sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).is_ok() && &b == b"SSH-" {
                    return;
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("sshd exited with {st}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and every session it runs (as a crash or a reboot
    /// of the caregiver's server would: transfers in flight are cut).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let mut pids = descendants(c.id());
            pids.push(c.id());
            for p in pids {
                let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
            }
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the current host key.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

/// Every process below `pid`, by walking /proc's parent links.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            if let Some(pp) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u32>().ok())
            {
                parent.push((p, pp));
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(x) = todo.pop() {
        for &(c, pp) in &parent {
            if pp == x && !out.contains(&c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
