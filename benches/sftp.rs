//! Upload speed of ctferry's SFTP delivery against OpenSSH's `sftp` client,
//! same file, same sshd, same loopback link, in one run.
//!
//!     cargo bench --bench sftp
//!
//! Needs root and openssh-server (as the tests do: scripts/test.sh installs
//! it). Starts a private sshd (tests/support/sshd.rs), writes a file of
//! CTFERRY_BENCH_MB (256) MiB of random bytes (a snapshot part is
//! incompressible after zstd and OpenPGP), then alternates three times:
//! ctferry's `sftp::Connection::upload` (1 MiB writes, `.part`, size check,
//! rename) and `sftp -b` with `put` (OpenSSH 32 KiB requests, 64 in flight),
//! both logging in with the same ed25519 key. Reports the median MiB/s of
//! each and their ratio (goal: ctferry ≥ 0.8× OpenSSH).

#[path = "../tests/support/sshd.rs"]
mod sshd;

use ctferry::config::{Auth, HostTrust, SftpUrl, Target};
use ctferry::sftp;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mb: usize = std::env::var("CTFERRY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let s = sshd::Sshd::start();
    let key = s.user_key(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("part.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mb {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            f.write_all(&buf).unwrap();
        }
        f.flush().unwrap();
    }
    let size = (mb as u64) << 20;
    let sha = {
        use sha2::Digest;
        let b = std::fs::read(&file).unwrap();
        sha2::Sha256::digest(&b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let target = Target {
        url: SftpUrl::parse(&s.url(0)).unwrap(),
        auth: Auth::Identity {
            key: key.clone(),
            passphrase: None,
        },
        trust: HostTrust::Pinned(s.fingerprint()),
        timeout: Duration::from_secs(60),
    };
    let batch = dir.path().join("batch");
    let mut ours = Vec::new();
    let mut openssh = Vec::new();
    for round in 0..3 {
        let _ = std::fs::remove_file(s.area(0).join("ours.bin"));
        let t = Instant::now();
        let c = sftp::connect(&target).unwrap();
        assert_eq!(
            c.upload(&file, "ours.bin", size, &sha).unwrap(),
            sftp::Uploaded::Sent
        );
        c.close();
        let secs = t.elapsed().as_secs_f64();
        ours.push(mb as f64 / secs);

        let _ = std::fs::remove_file(s.area(0).join("openssh.bin"));
        std::fs::write(&batch, format!("put {} openssh.bin\n", file.display())).unwrap();
        let t = Instant::now();
        let st = Command::new("sftp")
            .arg("-q")
            .arg("-b")
            .arg(&batch)
            .arg("-i")
            .arg(&key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-P",
            ])
            .arg(s.port.to_string())
            .arg(format!("{}@127.0.0.1", sshd::USERS[0]))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "sftp failed: {}", s.log());
        let secs = t.elapsed().as_secs_f64();
        openssh.push(mb as f64 / secs);
        assert_eq!(
            std::fs::metadata(s.area(0).join("openssh.bin"))
                .unwrap()
                .len(),
            size
        );
        println!(
            "round {}: ctferry {:.1} MiB/s, OpenSSH sftp {:.1} MiB/s",
            round + 1,
            ours[round],
            openssh[round]
        );
    }
    let (a, b) = (median(ours), median(openssh));
    println!("{mb} MiB upload over loopback, median of 3:");
    println!("  ctferry (libssh2, 1 MiB writes): {a:.1} MiB/s");
    println!("  OpenSSH sftp put:                {b:.1} MiB/s");
    println!("  ratio ctferry / OpenSSH:         {:.2}x", a / b);
}
