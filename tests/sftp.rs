//! SFTP delivery against a real OpenSSH sshd (tests/support/sshd.rs): two
//! caregivers, each with its own chrooted account; the publisher is the real
//! `ctferry` binary reading mssql-sim.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/sshd.rs"]
mod sshd;

use ctferry::format::crypto;
use ctferry::mssql::client::Db;
use sshd::{Sshd, PASSWORDS};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PW: &str = "Sim#Passw0rd";

struct Env {
    _sim_dir: tempfile::TempDir,
    sim: mssql_sim::Server,
    dir: tempfile::TempDir,
    sshd: Sshd,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Env {
    fn conn(&self, db: &str) -> String {
        format!(
            "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
            self.sim.addr().ip(),
            self.sim.addr().port()
        )
    }
    fn db(&self) -> Db {
        Db::connect(&self.conn("Pmo"), &ctferry::config::Secret::new(PW.into())).unwrap()
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ctferry"));
        c.args(args)
            .arg("-c")
            .arg(self.path("ctferry.toml"))
            .env("CTFERRY_SOURCE_PASSWORD", PW)
            .env("SFTP_A_PASSWORD", PASSWORDS[0])
            .env_remove("CTFERRY_FAILPOINT");
        c
    }
    fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[], "")
    }
    fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Out {
        let mut c = self.cmd(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            let _ = i.write_all(stdin.as_bytes());
        }
        let o = child.wait_with_output().unwrap();
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn exec(&self, sql: &str) {
        self.db()
            .execute(sql)
            .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    }
    /// Writes ctferry.toml with these two `deliver = { ... }` bodies.
    fn config(&self, a: &str, b: &str, publisher_extra: &str) {
        let toml = format!(
            r#"[source]
connection = "{conn}"
password_env = "CTFERRY_SOURCE_PASSWORD"

[publisher]
id = "region-pmo"
signing_key = "keys/region.sec.asc"
{timeout}{backoff}{publisher_extra}

[[table]]
name = "dbo.Vardenhet"
owner = {{ column = "HsaId" }}

[[table]]
name = "dbo.Bilaga"
owner = {{ column = "HsaId" }}

# Caregiver A logs in with a password.
[[subscriber]]
hsa_id = "SE-A"
keys = ["SE-E001"]
public_key = "keys/a.pub.asc"
interval = "1s"
deliver = {{ {a} }}

[[subscriber]]
hsa_id = "SE-B"
keys = ["SE-E002"]
public_key = "keys/b.pub.asc"
interval = "1s"
deliver = {{ {b} }}
"#,
            conn = self.conn("Pmo"),
            timeout = if publisher_extra.contains("delivery_timeout") {
                ""
            } else {
                "delivery_timeout_seconds = 10\n"
            },
            backoff = if publisher_extra.contains("delivery_backoff") {
                ""
            } else {
                "delivery_backoff_seconds = 1\ndelivery_backoff_max_seconds = 2\n"
            },
        );
        std::fs::write(self.path("ctferry.toml"), toml).unwrap();
    }
    fn sftp_a(&self, pin: bool) -> String {
        let mut s = format!(
            "sftp = \"{}\", password_env = \"SFTP_A_PASSWORD\"",
            self.sshd.url(0)
        );
        if pin {
            s.push_str(&format!(", host_key = \"{}\"", self.sshd.fingerprint()));
        }
        s
    }
    fn sftp_b(&self, pin: bool) -> String {
        let key = self.sshd.user_key(1);
        let mut s = format!(
            "sftp = \"{}\", identity = \"{}\"",
            self.sshd.url(1),
            key.display()
        );
        if pin {
            s.push_str(&format!(", host_key = \"{}\"", self.sshd.fingerprint()));
        }
        s
    }
    fn outbox(&self, hsa: &str) -> Vec<String> {
        names(&self.path("outbox").join(hsa))
    }
}

/// File names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    let b = std::fs::read(p).unwrap();
    sha2::Sha256::digest(&b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn setup() -> Env {
    let sim_dir = tempfile::tempdir().unwrap();
    let sim = mssql_sim::Server::start(mssql_sim::Config::new(sim_dir.path(), PW)).unwrap();
    let env = Env {
        _sim_dir: sim_dir,
        sim,
        dir: tempfile::tempdir().unwrap(),
        sshd: Sshd::start(),
    };
    let mut m = Db::connect(
        &env.conn("master"),
        &ctferry::config::Secret::new(PW.into()),
    )
    .unwrap();
    m.execute("CREATE DATABASE Pmo").unwrap();
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON",
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Bilaga (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Data varbinary(max) NULL)",
        "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING",
        "ALTER TABLE dbo.Bilaga ENABLE CHANGE_TRACKING",
        "INSERT INTO dbo.Vardenhet VALUES (1, N'SE-E001', N'VC A'), (2, N'SE-E002', N'VC B')",
    ] {
        env.exec(s);
    }
    std::fs::create_dir_all(env.path("keys")).unwrap();
    for name in ["region", "a", "b"] {
        let (public, secret) =
            crypto::generate(name, &format!("{name}@example.invalid"), None).unwrap();
        std::fs::write(env.path(&format!("keys/{name}.pub.asc")), public).unwrap();
        std::fs::write(env.path(&format!("keys/{name}.sec.asc")), secret).unwrap();
    }
    env
}

fn status_json(env: &Env) -> serde_json::Value {
    let o = env.run(&["status", "--json"]);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

fn sub<'a>(st: &'a serde_json::Value, hsa: &str) -> &'a serde_json::Value {
    st["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subscriber"] == hsa)
        .unwrap()
}

fn audit(env: &Env) -> Vec<serde_json::Value> {
    let o = env.run(&["audit", "--format", "json"]);
    assert!(o.ok, "{}", o.stderr);
    serde_json::from_str::<Vec<serde_json::Value>>(&o.stdout).unwrap()
}

/// `ctferry inspect` of a delivered file with a caregiver's key.
fn inspect(env: &Env, file: &Path, key: &str) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .arg("inspect")
        .arg(file)
        .arg("--key")
        .arg(env.path(&format!("keys/{key}.sec.asc")))
        .arg("--signer")
        .arg(env.path("keys/region.pub.asc"))
        .arg("--json")
        .output()
        .unwrap();
    Out {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn trust_pins_the_host_key_then_both_areas_receive_only_their_own_packages() {
    let env = setup();
    std::fs::write(env.path("known_hosts"), "").unwrap();
    let b = format!("{}, known_hosts = \"known_hosts\"", env.sftp_b(false));
    env.config(&env.sftp_a(false), &b, "");
    let fp = env.sshd.fingerprint();

    // Unpinned: nothing runs, and the message says what to do.
    let o = env.run(&["once"]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("host key is not pinned") && o.stderr.contains("ctferry sftp trust"),
        "{}",
        o.stderr
    );
    assert!(!env.path("state").exists() || env.outbox("SE-A").is_empty());

    // trust shows the fingerprint; answering no changes nothing.
    let before = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
    let o = env.run_with(&["sftp", "trust", "--subscriber", "SE-A"], &[], "n\n");
    assert!(!o.ok);
    assert!(o.stdout.contains(&fp), "{}", o.stdout);
    assert!(o.stderr.contains("not pinned"), "{}", o.stderr);
    assert_eq!(
        std::fs::read_to_string(env.path("ctferry.toml")).unwrap(),
        before
    );
    // ... answering yes pins it, keeping the file's comments.
    let o = env.run_with(&["sftp", "trust", "--subscriber", "SE-A"], &[], "y\n");
    assert!(o.ok, "{}{}", o.stdout, o.stderr);
    let after = std::fs::read_to_string(env.path("ctferry.toml")).unwrap();
    assert!(after.contains(&format!("host_key = \"{fp}\"")), "{after}");
    assert!(after.contains("# Caregiver A logs in with a password."));
    let o = env.run(&["sftp", "trust", "--subscriber", "SE-A", "--yes"]);
    assert!(o.ok && o.stdout.contains("already pinned"), "{}", o.stdout);

    // B's known_hosts file does not know the server: A is delivered, B refused.
    let o = env.run(&["once"]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-B") && o.stderr.contains("has no key for") && o.stderr.contains(&fp),
        "{}",
        o.stderr
    );
    let area_a = names(&env.sshd.area(0));
    assert_eq!(area_a, env.outbox("SE-A"));
    assert_eq!(area_a.len(), 1);
    assert!(names(&env.sshd.area(1)).is_empty());

    // trust --yes writes the key to B's known_hosts; OpenSSH's own tool finds it there.
    let o = env.run(&["sftp", "trust", "--subscriber", "SE-B", "--yes"]);
    assert!(o.ok, "{}{}", o.stdout, o.stderr);
    let found = Command::new("ssh-keygen")
        .arg("-F")
        .arg(format!("[127.0.0.1]:{}", env.sshd.port))
        .arg("-f")
        .arg(env.path("known_hosts"))
        .output()
        .unwrap();
    assert!(found.status.success(), "ssh-keygen -F did not find the key");
    let o = env.run(&["check"]);
    assert!(o.ok, "{}", o.stderr);
    let o = env.run(&["once"]);
    assert!(o.ok, "{}{}", o.stdout, o.stderr);

    // Changes for both; each area receives its own deltas, in order.
    env.exec(
        "INSERT INTO dbo.Vardenhet VALUES (3, N'SE-E001', N'VC A2'), (4, N'SE-E002', N'VC B2')",
    );
    env.exec("UPDATE dbo.Vardenhet SET Namn = N'VC B!' WHERE Id = 2");
    let o = env.run(&["once"]);
    assert!(o.ok, "{}{}", o.stdout, o.stderr);
    for (i, hsa, own, other) in [(0, "SE-A", "a", "b"), (1, "SE-B", "b", "a")] {
        let area = names(&env.sshd.area(i));
        assert_eq!(area, env.outbox(hsa), "{hsa}: the area equals its outbox");
        assert_eq!(area.len(), 2);
        assert!(
            area[0].starts_with("0000000001-snapshot") && area[1].starts_with("0000000002-delta")
        );
        for f in &area {
            let p = env.sshd.area(i).join(f);
            assert_eq!(
                sha256_file(&p),
                sha256_file(&env.path("outbox").join(hsa).join(f))
            );
            let mine = inspect(&env, &p, own);
            assert!(mine.ok, "{}", mine.stderr);
            let j: serde_json::Value = serde_json::from_str(&mine.stdout).unwrap();
            assert_eq!(j["manifest"]["subscriber"], hsa);
            // The other caregiver's key cannot open it.
            assert!(!inspect(&env, &p, other).ok);
        }
    }

    // Status: delivered sequence, no backlog; B's earlier error kept as history.
    let st = status_json(&env);
    for hsa in ["SE-A", "SE-B"] {
        let s = sub(&st, hsa);
        assert_eq!(s["delivered_sequence"], 2, "{s}");
        assert_eq!(s["undelivered"], 0);
        assert_eq!(s["delivery_failures"], 0);
    }
    assert!(sub(&st, "SE-B")["last_error"]
        .as_str()
        .unwrap()
        .contains("has no key"));
    assert!(sub(&st, "SE-A")["last_error"].is_null());
    let human = env.run(&["status"]);
    assert!(
        human
            .stdout
            .contains("deliver to sftp://ctferry-t-a@127.0.0.1"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("recovered"), "{}", human.stdout);

    // The audit lists every delivery with its size and hash.
    let a = audit(&env);
    let delivered: Vec<_> = a.iter().filter(|r| r["event"] == "delivered").collect();
    assert_eq!(delivered.len(), 4);
    assert!(a
        .iter()
        .any(|r| r["event"] == "delivery failed" && r["subscriber"] == "SE-B"));

    // The caregiver picks its packages up over SFTP and applies them.
    let tdir = tempfile::tempdir().unwrap();
    let target =
        mssql_sim::Server::start(mssql_sim::Config::new(tdir.path(), "Kopia#Passw0rd")).unwrap();
    let tconn = |db: &str| {
        format!(
            "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
            target.addr().ip(),
            target.addr().port()
        )
    };
    Db::connect(
        &tconn("master"),
        &ctferry::config::Secret::new("Kopia#Passw0rd".into()),
    )
    .unwrap()
    .execute("CREATE DATABASE AKopia")
    .unwrap();
    std::fs::write(
        env.path("apply.toml"),
        format!(
            "[target]\nconnection = \"{}\"\npassword_env = \"CTFERRY_TARGET_PASSWORD\"\n\n[keys]\nsecret_key = \"keys/a.sec.asc\"\npublisher_keys = [\"keys/region.pub.asc\"]\n\n[source]\nsubscriber = \"SE-A\"\nsftp = \"{}\"\npassword_env = \"SFTP_A_PASSWORD\"\nhost_key = \"{fp}\"\n",
            tconn("AKopia"),
            env.sshd.url(0)
        ),
    )
    .unwrap();
    let apply = || {
        let o = Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args(["apply", "-c"])
            .arg(env.path("apply.toml"))
            .env("CTFERRY_TARGET_PASSWORD", "Kopia#Passw0rd")
            .env("SFTP_A_PASSWORD", PASSWORDS[0])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let out = apply();
    assert!(
        out.contains("downloaded") && out.contains("0000000002-delta"),
        "{out}"
    );
    let mut t = Db::connect(
        &tconn("AKopia"),
        &ctferry::config::Secret::new("Kopia#Passw0rd".into()),
    )
    .unwrap();
    let rows = t
        .rows(
            "read",
            "SELECT Id, HsaId, Namn FROM dbo.Vardenhet ORDER BY Id",
            &[],
        )
        .unwrap();
    let got: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                ctferry::mssql::client::int_at(r, 0).unwrap(),
                ctferry::mssql::client::text_at(r, 2).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, "VC A".to_string()), (3, "VC A2".to_string())]);
    // The remote files stay; the local download cache is emptied of applied
    // packages on the next run, which has nothing new to apply.
    let out = apply();
    assert!(!out.contains("applied ("), "{out}");
    assert!(
        names(&env.path("incoming")).is_empty(),
        "{:?}",
        names(&env.path("incoming"))
    );
    assert_eq!(names(&env.sshd.area(0)).len(), 2);
}

#[test]
fn wrong_password_and_a_changed_host_key_are_refused_without_showing_secrets() {
    let mut env = setup();
    env.config(
        &env.sftp_a(true),
        &env.sftp_b(true),
        "delivery_attempts = 2",
    );
    let o = env.run_with(&["once"], &[("SFTP_A_PASSWORD", "Wrong-Secret-991")], "");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-A")
            && o.stderr
                .contains(&format!("ctferry-t-a@127.0.0.1:{}/upload", env.sshd.port))
            && o.stderr.contains("login refused"),
        "{}",
        o.stderr
    );
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(!all.contains("Wrong-Secret-991"));
    // B (a key) is delivered although A failed.
    assert_eq!(names(&env.sshd.area(1)).len(), 1);
    assert!(names(&env.sshd.area(0)).is_empty());
    let st = status_json(&env);
    let a = sub(&st, "SE-A");
    assert_eq!(a["undelivered"], 1);
    assert_eq!(a["delivery_failures"], 1);
    assert!(a["last_error"].as_str().unwrap().contains("login refused"));
    // A failed try is logged with its attempts (2: delivery_attempts).
    let fails: Vec<_> = audit(&env)
        .into_iter()
        .filter(|r| r["event"] == "delivery failed")
        .collect();
    assert_eq!(fails.len(), 1);
    assert!(
        fails[0]["detail"].as_str().unwrap().contains("attempt 2"),
        "{}",
        fails[0]
    );
    // No secret anywhere in the state or the outbox names.
    for e in fixtures::walk(&env.path("state")) {
        let b = std::fs::read(&e).unwrap();
        assert!(
            !b.windows(16).any(|w| w == b"Wrong-Secret-991")
                && !b.windows(12).any(|w| w == PASSWORDS[0].as_bytes()),
            "{} holds a password",
            e.display()
        );
    }

    // The right password: the backlog goes.
    let o = env.run(&["once"]);
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(names(&env.sshd.area(0)).len(), 1);

    // The caregiver's server gets a new host key: refused at once (no
    // retries: a person must confirm it), naming the key seen.
    env.sshd.new_host_key();
    env.sshd.restart();
    env.exec("INSERT INTO dbo.Vardenhet VALUES (3, N'SE-E001', N'VC A2')");
    let started = std::time::Instant::now();
    let o = env.run(&["once"]);
    assert!(!o.ok);
    let new_fp = env.sshd.fingerprint();
    assert!(
        o.stderr.contains("not the pinned")
            && o.stderr.contains(&new_fp)
            && o.stderr.contains("ctferry sftp trust"),
        "{}",
        o.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        names(&env.sshd.area(0)).len(),
        1,
        "nothing sent to an unverified server"
    );
    let fails: Vec<_> = audit(&env)
        .into_iter()
        .filter(|r| r["event"] == "delivery failed" && r["subscriber"] == "SE-A")
        .collect();
    assert!(fails.last().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("attempt 1"));
    // trust shows the change loudly and, confirmed, pins the new key.
    let o = env.run(&["sftp", "trust", "--subscriber", "SE-A", "--yes"]);
    assert!(
        o.ok && o.stdout.contains("NOT the pinned key"),
        "{}",
        o.stdout
    );
    let o = env.run(&["once"]);
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(names(&env.sshd.area(0)).len(), 2);
}

/// Rows of incompressible bytes so the package spans several 1 MiB writes.
fn big_rows(env: &Env, hsa: &str, first_id: i64, rows: usize, bytes: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ first_id as u64;
    for r in 0..rows {
        let mut hex = String::with_capacity(bytes * 2);
        for _ in 0..bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            hex.push_str(&format!("{:02X}", x as u8));
        }
        env.exec(&format!(
            "INSERT INTO dbo.Bilaga VALUES ({}, N'{hsa}', 0x{hex})",
            first_id + r as i64
        ));
    }
}

#[test]
fn sshd_stopped_mid_upload_then_restarted_completes_without_partial_or_duplicate() {
    let mut env = setup();
    env.config(
        &env.sftp_a(true),
        "folder = \"deliveries/b\"",
        "delivery_attempts = 5",
    );
    big_rows(&env, "SE-E001", 1, 6, 512 * 1024);
    let mut child = env
        .cmd(&["once"])
        .env("CTFERRY_FAILPOINT", "sftp-mid-upload")
        .env("CTFERRY_FAILPOINT_PAUSE_MS", "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no failpoint; stderr so far:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("failpoint sftp-mid-upload reached") {
            break;
        }
    }
    // Mid-upload: only the .part is in the area.
    let file = env.outbox("SE-A")[0].clone();
    let area = env.sshd.area(0);
    assert_eq!(names(&area), vec![format!("{file}.part")]);
    env.sshd.stop();
    assert_eq!(
        names(&area),
        vec![format!("{file}.part")],
        "no final name after the cut"
    );
    env.sshd.restart();
    let status = child.wait().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "{log}{}", rest.join("\n"));
    assert_eq!(
        names(&area),
        vec![file.clone()],
        "one complete file, no .part"
    );
    assert_eq!(
        sha256_file(&area.join(&file)),
        sha256_file(&env.path("outbox/SE-A").join(&file))
    );
    assert!(std::fs::metadata(area.join(&file)).unwrap().len() > 2 << 20);
    let d: Vec<_> = audit(&env)
        .into_iter()
        .filter(|r| r["event"] == "delivered" && r["subscriber"] == "SE-A")
        .collect();
    assert_eq!(d.len(), 1);
    assert!(
        d[0]["detail"].as_str().unwrap().contains("attempt 2"),
        "{}",
        d[0]
    );
    // B (a folder) was delivered too.
    assert_eq!(names(&env.path("deliveries/b")).len(), 1);
}

#[test]
fn an_unwritable_area_does_not_hold_up_the_other_and_delivered_files_leave_the_outbox() {
    let env = setup();
    env.config(
        &env.sftp_a(true),
        &env.sftp_b(true),
        "delivery_attempts = 3\noutbox_retention = \"0\"\ndelivery_backoff_seconds = 2\ndelivery_backoff_max_seconds = 4",
    );
    let area_b = env.sshd.area(1);
    // The caregiver's folder is not writable for its account.
    Command::new("chown")
        .arg("root:")
        .arg(&area_b)
        .status()
        .unwrap();
    let o = env.run(&["once"]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-B") && o.stderr.contains("permission denied"),
        "{}",
        o.stderr
    );
    assert_eq!(names(&env.sshd.area(0)).len(), 1);
    assert!(names(&area_b).is_empty());
    // A was delivered before B gave up (they run side by side).
    let a = audit(&env);
    let a_done = a
        .iter()
        .find(|r| r["event"] == "delivered" && r["subscriber"] == "SE-A")
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    let b_failed = a
        .iter()
        .find(|r| r["event"] == "delivery failed" && r["subscriber"] == "SE-B")
        .unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(a_done < b_failed, "{a_done} vs {b_failed}");
    // Retention 0: A's delivered file left the outbox; B's waits there.
    assert!(env.outbox("SE-A").is_empty());
    assert_eq!(env.outbox("SE-B").len(), 1);
    let st = status_json(&env);
    assert_eq!(sub(&st, "SE-B")["undelivered"], 1);
    assert!(sub(&st, "SE-B")["last_error"]
        .as_str()
        .unwrap()
        .contains("permission denied"));

    // `ctferry check` names the problem without delivering anything.
    let o = env.run(&["check"]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-B: deliver:") && o.stderr.contains("permission denied"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("SE-A"), "{}", o.stderr);

    // `ctferry run`: A keeps receiving while B waits out its backoff
    // (tried once per cycle at most, not before its next try time).
    assert!(sub(&st, "SE-B")["next_attempt_at"].is_string());
    let tries_before = audit(&env)
        .iter()
        .filter(|r| r["event"] == "delivery failed" && r["subscriber"] == "SE-B")
        .count();
    let started = std::time::Instant::now();
    let mut run = env
        .cmd(&["run", "--every", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.exec(
        "INSERT INTO dbo.Vardenhet VALUES (3, N'SE-E001', N'VC A2'), (4, N'SE-E002', N'VC B2')",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while names(&env.sshd.area(0)).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "A got no delta while B was broken"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(names(&area_b).is_empty());
    let secs = started.elapsed().as_secs_f64();
    let b_tries = audit(&env)
        .iter()
        .filter(|r| r["event"] == "delivery failed" && r["subscriber"] == "SE-B")
        .count()
        - tries_before;
    // Cycles every 1 s, B's backoff 2 s doubling to 4 s: B is tried every
    // second cycle or less often, never every cycle.
    assert!(
        b_tries >= 1 && (b_tries as f64) <= secs / 2.0 + 1.0,
        "{b_tries} failed rounds for B in {secs:.1} s"
    );

    // Fixed by the caregiver: the next cycle delivers it.
    Command::new("chown")
        .arg(format!("{}:", sshd::USERS[1]))
        .arg(&area_b)
        .status()
        .unwrap();
    let o = env.run(&["check"]);
    assert!(o.ok, "{}", o.stderr);
    assert!(names(&area_b).is_empty(), "check leaves nothing behind");
    let o = env.run(&["once"]);
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(names(&area_b).len(), 2);
    assert!(env.outbox("SE-B").is_empty());
    let st = status_json(&env);
    assert_eq!(sub(&st, "SE-B")["delivery_failures"], 0);
    assert_eq!(sub(&st, "SE-B")["delivered_sequence"], 2);
}

#[test]
fn a_crash_between_upload_and_record_sends_no_second_copy_and_replaces_a_leftover_part() {
    let env = setup();
    env.config(
        &env.sftp_a(true),
        &env.sftp_b(true),
        "delivery_concurrency = 1",
    );
    let mut child = env
        .cmd(&["once"])
        .env("CTFERRY_FAILPOINT", "delivered-unrecorded")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let l = lines.next().expect("failpoint not reached").unwrap();
        if l.contains("failpoint delivered-unrecorded reached") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let area_a = env.sshd.area(0);
    assert_eq!(names(&area_a).len(), 1, "A's file arrived before the crash");
    // A stale partial upload of B's package is lying in B's area.
    let b_file = env.outbox("SE-B")[0].clone();
    std::fs::write(
        env.sshd.area(1).join(format!("{b_file}.part")),
        b"half a package",
    )
    .unwrap();

    let o = env.run(&["once"]);
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(names(&area_a), env.outbox("SE-A"), "no second copy");
    assert_eq!(
        names(&env.sshd.area(1)),
        vec![b_file.clone()],
        "the .part was replaced"
    );
    assert_eq!(
        sha256_file(&env.sshd.area(1).join(&b_file)),
        sha256_file(&env.path("outbox/SE-B").join(&b_file))
    );
    let a = audit(&env);
    assert!(a.iter().any(|r| r["subscriber"] == "SE-A"
        && r["detail"].as_str().unwrap_or("").contains("already there")));
    let st = status_json(&env);
    assert_eq!(sub(&st, "SE-A")["delivered_sequence"], 1);
}

#[test]
fn a_server_that_accepts_but_never_answers_times_out_and_is_retried_later() {
    let env = setup();
    // A "server" that accepts connections and then says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h2 = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            h2.lock().unwrap().push(s);
        }
    });
    let b = format!(
        "sftp = \"sftp://{}@127.0.0.1:{port}/upload\", password_env = \"SFTP_A_PASSWORD\", host_key = \"{}\"",
        sshd::USERS[1],
        env.sshd.fingerprint()
    );
    env.config(
        &env.sftp_a(true),
        &b,
        "delivery_attempts = 2\ndelivery_timeout_seconds = 2",
    );
    let started = std::time::Instant::now();
    let o = env.run(&["once"]);
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-B") && o.stderr.contains("timed out"),
        "{}",
        o.stderr
    );
    // Bounded: 2 tries of a 2 s timeout and a 1 s backoff, not a hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        names(&env.sshd.area(0)).len(),
        1,
        "A is delivered meanwhile"
    );
    let st = status_json(&env);
    assert_eq!(sub(&st, "SE-B")["undelivered"], 1);
    assert!(sub(&st, "SE-B")["next_attempt_at"].is_string());
    assert!(
        held.lock().unwrap().len() >= 2,
        "both tries reached the server"
    );
}

/// An area whose server offers no key exchange that ctferry has (only
/// OpenSSH's post-quantum hybrid here): the error says so and what to ask
/// for, and is not called a connection problem to wait out.
#[test]
fn a_server_with_no_key_exchange_in_common_is_named_as_such() {
    let env = setup();
    let odd = sshd::Sshd::start_with("KexAlgorithms sntrup761x25519-sha512@openssh.com");
    let b = format!(
        "sftp = \"{}\", password_env = \"SFTP_B_PASSWORD\", host_key = \"{}\"",
        odd.url(1),
        odd.fingerprint()
    );
    env.config(&env.sftp_a(true), &b, "delivery_attempts = 1");
    let o = env.run_with(&["once"], &[("SFTP_B_PASSWORD", sshd::PASSWORDS[1])], "");
    assert!(!o.ok);
    assert!(
        o.stderr.contains("SE-B")
            && o.stderr
                .contains("no key exchange, cipher, MAC or host key algorithm")
            && !o.stderr.contains("will retry"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains(sshd::PASSWORDS[1]), "{}", o.stderr);
    assert_eq!(
        names(&env.sshd.area(0)).len(),
        1,
        "A is delivered meanwhile"
    );
}
