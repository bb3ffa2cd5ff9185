//! `ctferry demo`: the whole job on one machine, end to end, checked.
//!
//! What it is for: a new user's first command. It starts an embedded
//! mssql-sim holding a PMO-like source database generated deterministically
//! (caregivers, care units, patients, visits, journal notes, diagnoses with a
//! shared code list, users with a password column that is masked), sets up
//! three caregivers (keys, delivery areas, apply.toml, a copy database
//! each), onboards them with snapshots, applies them, then makes a stream of
//! changes (updates, inserts, deletes, a visit and then a whole care unit
//! moving between caregivers, a code-list change), runs delta cycles,
//! applies, and after every round checks that each copy equals its
//! filtered, masked source and holds nothing of the others.
//!
//! It uses the library exactly as the commands do (Publisher, deliver,
//! apply); nothing here is a shortcut the real commands lack. What it must
//! never do: report success when a check failed (the exit code is 0 only
//! when every check passed), or touch a folder it did not create (an
//! existing non-empty DIR is refused unless a previous demo made it).
//!
//! The caregivers' copies live as separate databases on the same embedded
//! server as the source (a demo shortcut; in real life each caregiver has
//! its own SQL Server). Delivery goes over SFTP to a private OpenSSH sshd
//! when one is installed (one area per caregiver; the caregivers pick their
//! packages up over SFTP too), or to local folders otherwise.

use crate::caregiver::{self, ApplyReport};
use crate::config::{self, Secret};
use crate::format::crypto;
use crate::mssql::client::{self, Db, Param};
use crate::publisher::cycle::Publisher;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

const MARKER: &str = ".ctferry-demo";
const SQL_PASSWORD: &str = "Demo#Passw0rd-2026";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Setup(String),
    #[error("the simulator: {0}")]
    Db(#[from] client::DbError),
    #[error(transparent)]
    Publish(#[from] crate::publisher::cycle::PublishError),
    #[error(transparent)]
    Apply(#[from] caregiver::ApplyError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("{0} check(s) failed; see the lines marked FAIL above")]
    ChecksFailed(usize),
}

/// One caregiver of the demo.
struct Caregiver {
    short: &'static str,
    hsa: &'static str,
    name: &'static str,
    subscribed: bool,
}

const CAREGIVERS: [Caregiver; 4] = [
    Caregiver {
        short: "norr",
        hsa: "SE2321000016-A1B2",
        name: "Vårdcentralen Norr AB",
        subscribed: true,
    },
    Caregiver {
        short: "syd",
        hsa: "SE2321000016-C3D4",
        name: "Hälsocentralen Syd AB",
        subscribed: true,
    },
    Caregiver {
        short: "ost",
        hsa: "SE2321000016-E5F6",
        name: "Östra Läkarhuset AB",
        subscribed: true,
    },
    // Not a subscriber: its rows must reach no one.
    Caregiver {
        short: "vast",
        hsa: "SE2321000016-G7H8",
        name: "Västra Kliniken AB",
        subscribed: false,
    },
];

const UNITS_PER_CAREGIVER: i64 = 4;
const PATIENTS: i64 = 20_000;
const VISITS: i64 = 40_000;
const DIAGNOSES: i64 = 12_000;
const CODES: i64 = 200;
const USERS: i64 = 160;

/// A published table: how the demo checks a copy against the source.
struct Table {
    name: &'static str,
    /// Columns as the copy has them (masked ones hold the mask's value).
    columns: &'static str,
    /// The same columns read from the source, masks applied.
    source_columns: &'static str,
    /// FROM … JOIN … up to the owner column, aliased `x` for the table.
    from: &'static str,
    /// The owner expression (None: shared).
    owner: Option<&'static str>,
    key: &'static str,
}

const TABLES: [Table; 8] = [
    Table { name: "dbo.Vardgivare", columns: "Id, HsaId, Namn", source_columns: "x.Id, x.HsaId, x.Namn", from: "dbo.Vardgivare AS x", owner: Some("x.HsaId"), key: "Id" },
    Table { name: "dbo.Vardenhet", columns: "Id, HsaId, VardgivareHsaId, Namn", source_columns: "x.Id, x.HsaId, x.VardgivareHsaId, x.Namn", from: "dbo.Vardenhet AS x", owner: Some("x.VardgivareHsaId"), key: "Id" },
    Table { name: "dbo.Patient", columns: "Id, Personnummer, Namn, ListadVardenhetId", source_columns: "x.Id, x.Personnummer, x.Namn, x.ListadVardenhetId", from: "dbo.Patient AS x JOIN dbo.Vardenhet AS v ON v.Id = x.ListadVardenhetId", owner: Some("v.VardgivareHsaId"), key: "Id" },
    Table { name: "dbo.Besok", columns: "Id, PatientId, VardenhetId, Tid, Orsak, Avgift", source_columns: "x.Id, x.PatientId, x.VardenhetId, x.Tid, x.Orsak, x.Avgift", from: "dbo.Besok AS x JOIN dbo.Vardenhet AS v ON v.Id = x.VardenhetId", owner: Some("v.VardgivareHsaId"), key: "Id" },
    Table { name: "dbo.Journalanteckning", columns: "Id, BesokId, Skapad, Text", source_columns: "x.Id, x.BesokId, x.Skapad, x.Text", from: "dbo.Journalanteckning AS x JOIN dbo.Besok AS b ON b.Id = x.BesokId JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId", owner: Some("v.VardgivareHsaId"), key: "Id" },
    Table { name: "dbo.Diagnos", columns: "Id, BesokId, Kod", source_columns: "x.Id, x.BesokId, x.Kod", from: "dbo.Diagnos AS x JOIN dbo.Besok AS b ON b.Id = x.BesokId JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId", owner: Some("v.VardgivareHsaId"), key: "Id" },
    Table { name: "dbo.Diagnoskod", columns: "Kod, Text", source_columns: "x.Kod, x.Text", from: "dbo.Diagnoskod AS x", owner: None, key: "Kod" },
    Table { name: "dbo.Anvandare", columns: "Id, VardenhetId, Namn, Losenord, Epost", source_columns: "x.Id, x.VardenhetId, x.Namn, CAST(NULL AS varbinary(64)), CAST(N'maskerad@example.invalid' AS nvarchar(200))", from: "dbo.Anvandare AS x JOIN dbo.Vardenhet AS v ON v.Id = x.VardenhetId", owner: Some("v.VardgivareHsaId"), key: "Id" },
];

/// How the demo delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// SFTP when OpenSSH's sshd and ssh-keygen are installed, folders otherwise.
    Auto,
    Folder,
    Sftp,
}

/// Options of `ctferry demo`.
pub struct Options {
    pub dir: PathBuf,
    pub delivery: Delivery,
}

/// A private OpenSSH sshd for the demo's SFTP areas: 127.0.0.1 only, its own
/// config and host key, key-only login as the user running the demo, one
/// port per caregiver, each port's session starting in that caregiver's
/// folder (`Match LocalPort` + `ForceCommand internal-sftp -d`). Not a
/// jail: a real caregiver's server confines the account (see README).
struct LocalSshd {
    child: std::process::Child,
    config: PathBuf,
    user: String,
    ports: Vec<u16>,
    fingerprint: String,
}

const SSHD: &str = "/usr/sbin/sshd";

fn sshd_available() -> bool {
    Path::new(SSHD).exists()
        && std::process::Command::new("ssh-keygen")
            .arg("-?")
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok()
}

fn run_tool(cmd: &mut std::process::Command) -> Result<String, DemoError> {
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
    fn start(dir: &Path, areas: &[PathBuf]) -> Result<LocalSshd, DemoError> {
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

fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::Setup(format!("no free port: {e}")))
}

/// What the demo prints as it goes.
fn say(line: &str) {
    println!("{line}");
}

/// A tiny deterministic generator (xorshift), so every run makes the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn prepare_dir(dir: &Path) -> Result<(), DemoError> {
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

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text)
        .map_err(|e| DemoError::Setup(format!("cannot write {}: {e}", path.display())))
}

fn write_secret(path: &Path, text: &str) -> Result<(), DemoError> {
    write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

fn conn(addr: std::net::SocketAddr, db: &str) -> String {
    format!(
        "server=tcp:{},{};database={db};user id=sa;encrypt=DANGER_PLAINTEXT",
        addr.ip(),
        addr.port()
    )
}

fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("  {msg:<28} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Inserts rows with multi-row INSERTs of up to 1,000 rows (SQL Server's limit).
fn insert_rows(
    db: &mut Db,
    table: &str,
    rows: impl Iterator<Item = String>,
    pb: &indicatif::ProgressBar,
) -> Result<u64, DemoError> {
    let mut n = 0u64;
    let mut batch: Vec<String> = Vec::with_capacity(1000);
    let flush = |batch: &mut Vec<String>, db: &mut Db| -> Result<(), DemoError> {
        if batch.is_empty() {
            return Ok(());
        }
        db.execute(&format!("INSERT INTO {table} VALUES {}", batch.join(", ")))?;
        pb.inc(batch.len() as u64);
        batch.clear();
        Ok(())
    };
    for r in rows {
        batch.push(r);
        n += 1;
        if batch.len() == 1000 {
            flush(&mut batch, db)?;
        }
    }
    flush(&mut batch, db)?;
    Ok(n)
}

const FIRST: [&str; 12] = [
    "Anna", "Bo", "Cecilia", "David", "Eva", "Fredrik", "Greta", "Hassan", "Ingrid", "Johan",
    "Karin", "Leila",
];
const LAST: [&str; 10] = [
    "Andersson",
    "Berg",
    "Carlsson",
    "Dahl",
    "Ek",
    "Falk",
    "Gustafsson",
    "Holm",
    "Ismail",
    "Johansson",
];
const REASONS: [&str; 8] = [
    "Förkylning",
    "Kontroll",
    "Ryggbesvär",
    "Vaccination",
    "Huvudvärk",
    "Blodtryck",
    "Hudutslag",
    "Uppföljning",
];

fn units() -> Vec<(i64, String, &'static str, String)> {
    let mut out = Vec::new();
    let mut id = 1;
    for c in &CAREGIVERS {
        for u in 0..UNITS_PER_CAREGIVER {
            out.push((
                id,
                format!("{}-E{:03}", &c.hsa[..12], id),
                c.hsa,
                format!(
                    "{} enhet {}",
                    c.name.split(' ').next().unwrap_or("VC"),
                    u + 1
                ),
            ));
            id += 1;
        }
    }
    out
}

/// Creates the tables of the source database and fills them; returns the number of rows.
fn fill_source(db: &mut Db) -> Result<u64, DemoError> {
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON",
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON)",
        "CREATE TABLE dbo.Vardgivare (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, VardgivareHsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Personnummer char(12) NOT NULL, Namn nvarchar(100) NOT NULL, ListadVardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id))",
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Tid datetime2(7) NOT NULL, Orsak nvarchar(200) NOT NULL, Avgift decimal(9,2) NULL)",
        "CREATE TABLE dbo.Journalanteckning (Id bigint NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id), Skapad datetime2(7) NOT NULL, Text nvarchar(max) NULL)",
        "CREATE TABLE dbo.Diagnoskod (Kod nvarchar(10) NOT NULL PRIMARY KEY, Text nvarchar(200) NOT NULL)",
        "CREATE TABLE dbo.Diagnos (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id), Kod nvarchar(10) NOT NULL REFERENCES dbo.Diagnoskod(Kod))",
        "CREATE TABLE dbo.Anvandare (Id int NOT NULL PRIMARY KEY, VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Namn nvarchar(100) NOT NULL, Losenord varbinary(64) NULL, Epost nvarchar(200) NOT NULL)",
    ] {
        db.execute(s)?;
    }
    for t in &TABLES {
        db.execute(&format!("ALTER TABLE {} ENABLE CHANGE_TRACKING", t.name))?;
    }
    let units = units();
    let total = CAREGIVERS.len() as u64
        + units.len() as u64
        + (PATIENTS + 2 * VISITS + DIAGNOSES + CODES + USERS) as u64;
    let pb = progress(total, "generating the source");
    let mut n = 0;
    n += insert_rows(
        db,
        "dbo.Vardgivare",
        CAREGIVERS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("({}, N'{}', N'{}')", i + 1, c.hsa, c.name)),
        &pb,
    )?;
    n += insert_rows(
        db,
        "dbo.Vardenhet",
        units
            .iter()
            .map(|(id, hsa, owner, name)| format!("({id}, N'{hsa}', N'{owner}', N'{name}')")),
        &pb,
    )?;
    n += insert_rows(
        db,
        "dbo.Diagnoskod",
        (0..CODES).map(|i| {
            let letter = (b'A' + (i % 26) as u8) as char;
            format!(
                "(N'{letter}{:02}.{}', N'Diagnos {letter}{:02} variant {}')",
                i / 26,
                i % 10,
                i / 26,
                i % 10
            )
        }),
        &pb,
    )?;
    let mut rng = Rng(0x5EED_2026_1125);
    let nunits = units.len() as u64;
    let patient_unit: Vec<i64> = (0..PATIENTS)
        .map(|_| 1 + rng.below(nunits) as i64)
        .collect();
    n += insert_rows(
        db,
        "dbo.Patient",
        (0..PATIENTS).map(|i| {
            let mut r = Rng(0xA11CE ^ (i as u64 + 1) * 0x9E37_79B9);
            let year = 1930 + r.below(90);
            format!(
                "({}, '{year}{:02}{:02}{:04}', N'{} {}', {})",
                i + 1,
                1 + r.below(12),
                1 + r.below(28),
                r.below(10_000),
                FIRST[r.below(FIRST.len() as u64) as usize],
                LAST[r.below(LAST.len() as u64) as usize],
                patient_unit[i as usize]
            )
        }),
        &pb,
    )?;
    let visit_unit: Vec<(i64, i64)> = (0..VISITS)
        .map(|_| {
            let p = 1 + rng.below(PATIENTS as u64) as i64;
            // Mostly at the patient's own unit, sometimes elsewhere.
            let u = if rng.below(5) == 0 {
                1 + rng.below(nunits) as i64
            } else {
                patient_unit[(p - 1) as usize]
            };
            (p, u)
        })
        .collect();
    n += insert_rows(
        db,
        "dbo.Besok",
        (0..VISITS).map(|i| {
            let (p, u) = visit_unit[i as usize];
            let t = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
                .and_then(|d| d.and_hms_opt(8, 0, 0))
                .unwrap_or_default()
                + chrono::Duration::days(i * 7 % 365)
                + chrono::Duration::minutes((i * 13) % 480);
            let fee = if i % 3 == 0 {
                "NULL".to_string()
            } else {
                format!("{}.{:02}", 100 + i % 300, i % 100)
            };
            format!(
                "({}, {p}, {u}, '{}.1234567', N'{}', {fee})",
                i + 1,
                t.format("%Y-%m-%dT%H:%M:%S"),
                REASONS[(i % REASONS.len() as i64) as usize]
            )
        }),
        &pb,
    )?;
    n += insert_rows(
        db,
        "dbo.Journalanteckning",
        (0..VISITS).map(|i| {
            format!(
                "({}, {}, '2025-06-01T10:00:00', N'Anteckning {}: patienten mår {}.')",
                i + 1,
                i + 1,
                i + 1,
                ["bra", "bättre", "oförändrat", "sämre"][(i % 4) as usize]
            )
        }),
        &pb,
    )?;
    n += insert_rows(
        db,
        "dbo.Diagnos",
        (0..DIAGNOSES).map(|i| {
            let c = (i * 7) % CODES;
            let letter = (b'A' + (c % 26) as u8) as char;
            format!(
                "({}, {}, N'{letter}{:02}.{}')",
                i + 1,
                1 + (i * 3) % VISITS,
                c / 26,
                c % 10
            )
        }),
        &pb,
    )?;
    n += insert_rows(
        db,
        "dbo.Anvandare",
        (0..USERS).map(|i| {
            format!(
                "({}, {}, N'{} {}', 0x{:016X}, N'user{}@vard.example')",
                i + 1,
                1 + i % nunits as i64,
                FIRST[(i % 12) as usize],
                LAST[(i % 10) as usize],
                (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i + 1
            )
        }),
        &pb,
    )?;
    pb.finish_and_clear();
    Ok(n)
}

fn config_text(addr: std::net::SocketAddr, deliver: &[String]) -> String {
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
        ("dbo.Patient", "{ path = \"ListadVardenhetId -> dbo.Vardenhet(Id).VardgivareHsaId\" }", ""),
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

fn apply_text(addr: std::net::SocketAddr, c: &Caregiver, source: &str) -> String {
    format!(
        "# Written by `ctferry demo`: {name}'s side.\n[target]\nconnection = \"{conn}\"\npassword_file = \"../../secrets/sql-password\"\n\n[keys]\nsecret_key = \"../../keys/{short}.sec.asc\"\npublisher_keys = [\"../../keys/region.pub.asc\"]\n\n[source]\nsubscriber = \"{hsa}\"\n{source}",
        name = c.name,
        conn = conn(addr, &copy_db(c)),
        short = c.short,
        hsa = c.hsa
    )
}

fn copy_db(c: &Caregiver) -> String {
    format!("Kopia_{}", c.short)
}

/// Every row of a result as text, in order (types compared exactly: the
/// copy's columns have the source's types).
fn rows_text(db: &mut Db, sql: &str, params: &[Param]) -> Result<Vec<String>, DemoError> {
    let mut out = Vec::new();
    db.query("reading rows to compare", sql, params, |r| {
        out.push(client::row_debug(r));
        Ok(())
    })?;
    Ok(out)
}

/// Compares every table of one caregiver's copy with its filtered, masked source.
fn verify(src: &mut Db, copy: &mut Db, c: &Caregiver) -> Result<Vec<String>, DemoError> {
    let mut problems = Vec::new();
    for t in &TABLES {
        let (filter, params) = match t.owner {
            Some(o) => (
                format!(" WHERE {o} = @P1"),
                vec![Param::Str(c.hsa.to_string())],
            ),
            None => (String::new(), vec![]),
        };
        let want = rows_text(
            src,
            &format!(
                "SELECT {} FROM {}{filter} ORDER BY x.{}",
                t.source_columns, t.from, t.key
            ),
            &params,
        )?;
        let got = rows_text(
            copy,
            &format!("SELECT {} FROM {} ORDER BY {}", t.columns, t.name, t.key),
            &[],
        )?;
        if want != got {
            let first = want
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            problems.push(format!(
                "{}: {} has {} rows, the filtered source {} (first difference at row {})",
                c.short,
                t.name,
                got.len(),
                want.len(),
                first + 1
            ));
        }
    }
    Ok(problems)
}

/// Rows each caregiver should have, and the other caregivers' rows in its copy.
fn count_foreign(copy: &mut Db, c: &Caregiver) -> Result<u64, DemoError> {
    let rows = copy.rows(
        "counting foreign rows",
        "SELECT COUNT(*) FROM dbo.Vardenhet WHERE VardgivareHsaId <> @P1",
        &[Param::Str(c.hsa.to_string())],
    )?;
    Ok(rows.first().and_then(|r| client::int_at(r, 0)).unwrap_or(0) as u64)
}

struct Step<'a> {
    cfg: &'a config::Config,
    dir: &'a Path,
    addr: std::net::SocketAddr,
    secret: Secret,
    failures: usize,
}

impl Step<'_> {
    fn cycle(&mut self, title: &str) -> Result<(), DemoError> {
        let t = Instant::now();
        let mut db = Db::connect(&self.cfg.source.connection, &self.secret)?;
        let mut p = Publisher::open(self.cfg)?;
        let r = p.once(&mut db, true)?;
        let rows: u64 = r.packages.iter().map(|p| p.rows).sum();
        say(&format!(
            "{title}: versions {} → {}, {} changes read, {} package(s) with {rows} rows delivered in {:.1} s",
            r.previous.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            r.version,
            r.changes_read,
            r.packages.len(),
            t.elapsed().as_secs_f64()
        ));
        for (hsa, why) in &r.snapshots {
            say(&format!("  snapshot for {hsa}: {why}"));
        }
        if !r.delivery_failures.is_empty() {
            self.failures += r.delivery_failures.len();
            for (h, e) in &r.delivery_failures {
                say(&format!("  FAIL delivery to {h}: {e}"));
            }
        }
        Ok(())
    }

    fn apply_and_verify(&mut self, what: &str) -> Result<(), DemoError> {
        let mut src = Db::connect(&conn(self.addr, "Pmo"), &self.secret)?;
        for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
            let acfg = crate::config::load_apply(
                &self.dir.join("caregivers").join(c.short).join("apply.toml"),
            )?;
            let (keys, publishers) = acfg.load_keys()?;
            let mut db = Db::connect(&acfg.connection, &acfg.password)?;
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(format!("{}: applying", c.short));
            let pb2 = pb.clone();
            let mut report = ApplyReport {
                progress: Some(Box::new(move |f: &str, n: u64| {
                    pb2.set_message(format!("{f}: {n} rows"));
                    pb2.tick();
                })),
                ..ApplyReport::default()
            };
            let t = Instant::now();
            caregiver::apply_all(&acfg, &mut db, &keys, &publishers, &mut report)?;
            pb.finish_and_clear();
            let rows: u64 = report.applied.iter().map(|a| a.1).sum();
            let problems = verify(&mut src, &mut db, c)?;
            let foreign = count_foreign(&mut db, c)?;
            if problems.is_empty() && foreign == 0 {
                say(&format!(
                    "  {:<5} applied {} package(s), {rows} rows in {:.1} s; copy = filtered, masked source ({what}): OK",
                    c.short,
                    report.applied.len(),
                    t.elapsed().as_secs_f64()
                ));
            } else {
                for p in &problems {
                    say(&format!("  FAIL {p}"));
                }
                if foreign > 0 {
                    say(&format!(
                        "  FAIL {}: {foreign} care units of other caregivers in the copy",
                        c.short
                    ));
                }
                self.failures += problems.len() + usize::from(foreign > 0);
            }
        }
        Ok(())
    }
}

/// How to run this very binary again, as short as is still exact.
fn command_path() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(e), Some(c)) => match e.strip_prefix(&c) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => e.display().to_string(),
        },
        (Some(e), None) => e.display().to_string(),
        _ => "ctferry".into(),
    }
}

/// The simulator's command: the binary next to this one when it was built,
/// otherwise how to build and run it from the repository.
fn sim_command() -> String {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.join("mssql-sim")))
        .filter(|p| p.exists());
    match sibling {
        Some(p) => p.display().to_string(),
        None => "cargo run --release -p mssql-sim --".into(),
    }
}

/// A visit at one of Norr's units, not at unit 2 (which moves later).
fn moving_visit(src: &mut Db) -> Result<i64, DemoError> {
    let rows = src.rows(
        "finding a visit to move",
        "SELECT MIN(Id) FROM dbo.Besok WHERE VardenhetId = 1",
        &[],
    )?;
    rows.first()
        .and_then(|r| client::int_at(r, 0))
        .ok_or_else(|| DemoError::Setup("no visit at unit 1".into()))
}

/// Runs the demo; Ok only when every check passed.
pub fn run(opts: &Options) -> Result<(), DemoError> {
    let started = Instant::now();
    let dir = &opts.dir;
    prepare_dir(dir)?;
    let dir = &dir
        .canonicalize()
        .map_err(|e| DemoError::Setup(format!("{}: {e}", dir.display())))?;
    say(&format!("ctferry demo in {}", dir.display()));

    // 1. The region's source: an embedded mssql-sim with a PMO-like database.
    let sim = mssql_sim::Server::start(mssql_sim::Config::new(dir.join("sql"), SQL_PASSWORD))
        .map_err(|e| DemoError::Setup(format!("cannot start the embedded simulator: {e}")))?;
    let addr = sim.addr();
    let secret = Secret::new(SQL_PASSWORD.to_string());
    write_secret(
        &dir.join("secrets/sql-password"),
        &format!("{SQL_PASSWORD}\n"),
    )?;
    let mut master = Db::connect(&conn(addr, "master"), &secret)?;
    master.execute("CREATE DATABASE Pmo")?;
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        master.execute(&format!("CREATE DATABASE {}", copy_db(c)))?;
    }
    let mut src = Db::connect(&conn(addr, "Pmo"), &secret)?;
    let t = Instant::now();
    let n = fill_source(&mut src)?;
    say(&format!(
        "1. source database Pmo on the embedded simulator at {addr}: {n} rows in {} tables, change tracking on ({:.1} s)",
        TABLES.len(),
        t.elapsed().as_secs_f64()
    ));

    // 2. Keys, delivery areas and configuration for the region and three caregivers.
    let subscribed: Vec<&Caregiver> = CAREGIVERS.iter().filter(|c| c.subscribed).collect();
    let use_sftp = match opts.delivery {
        Delivery::Folder => false,
        Delivery::Sftp => true,
        Delivery::Auto => sshd_available(),
    };
    let areas: Vec<PathBuf> = subscribed
        .iter()
        .map(|c| dir.join("deliveries").join(c.short))
        .collect();
    for a in &areas {
        std::fs::create_dir_all(a)
            .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", a.display())))?;
    }
    let sshd = match (use_sftp, opts.delivery) {
        (false, _) => None,
        (true, Delivery::Sftp) => Some(LocalSshd::start(dir, &areas)?),
        (true, _) => match LocalSshd::start(dir, &areas) {
            Ok(s) => Some(s),
            Err(e) => {
                say(&format!(
                    "   (cannot start a local sshd, delivering to folders instead: {e})"
                ));
                None
            }
        },
    };
    let (deliver, sources): (Vec<String>, Vec<String>) = match &sshd {
        None => subscribed
            .iter()
            .map(|c| {
                (
                    format!("folder = \"deliveries/{}\"", c.short),
                    format!("folder = \"../../deliveries/{}\"\n", c.short),
                )
            })
            .unzip(),
        Some(s) => subscribed
            .iter()
            .zip(&s.ports)
            .zip(&areas)
            .map(|((_, p), a)| {
                let url = format!("sftp://{}@127.0.0.1:{p}{}", s.user, a.display());
                (
                    format!("sftp = \"{url}\", identity = \"ssh/demo_key\", host_key = \"{}\"", s.fingerprint),
                    format!(
                        "sftp = \"{url}\"\nidentity = \"../../ssh/demo_key\"\nhost_key = \"{}\"\nfolder = \"incoming\"\n",
                        s.fingerprint
                    ),
                )
            })
            .unzip(),
    };
    let (public, secret_key) = crypto::generate("Region Demo", "region@demo.invalid", None)?;
    write(&dir.join("keys/region.pub.asc"), &public)?;
    write_secret(&dir.join("keys/region.sec.asc"), &secret_key)?;
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        let (public, secret_key) =
            crypto::generate(c.name, &format!("it@{}.demo.invalid", c.short), None)?;
        write(&dir.join(format!("keys/{}.pub.asc", c.short)), &public)?;
        write_secret(&dir.join(format!("keys/{}.sec.asc", c.short)), &secret_key)?;
        let cdir = dir.join("caregivers").join(c.short);
        std::fs::create_dir_all(&cdir).map_err(|e| DemoError::Setup(e.to_string()))?;
        let i = subscribed.iter().position(|x| x.hsa == c.hsa).unwrap_or(0);
        write(&cdir.join("apply.toml"), &apply_text(addr, c, &sources[i]))?;
    }
    write(&dir.join("ctferry.toml"), &config_text(addr, &deliver))?;
    let cfg = config::load(&dir.join("ctferry.toml"))?;
    let problems = crate::publisher::check::check(&cfg);
    if !problems.is_empty() {
        for p in &problems {
            say(&format!("  FAIL check: {p}"));
        }
        return Err(DemoError::ChecksFailed(problems.len()));
    }
    say("2. keys for the region and 3 caregivers, ctferry.toml and an apply.toml each; `ctferry check`: OK");
    match &sshd {
        Some(s) => say(&format!(
            "   delivery: SFTP, a private OpenSSH sshd on 127.0.0.1 ports {:?} (one per caregiver, host key {} pinned), caregivers pick up over SFTP",
            s.ports, s.fingerprint
        )),
        None => say("   delivery: local folders deliveries/<caregiver>/ (`--delivery sftp` uses a local OpenSSH sshd instead)"),
    }
    say(&format!(
        "   ({} is in the source too but subscribes to nothing: its rows must reach no one)",
        CAREGIVERS[3].name
    ));

    let mut step = Step {
        cfg: &cfg,
        dir,
        addr,
        secret: secret.clone(),
        failures: 0,
    };
    // 3. Onboarding: one snapshot each, applied to each caregiver's copy.
    step.cycle("3. onboarding cycle")?;
    step.apply_and_verify("snapshot")?;

    // 4. A stream of changes, in rounds; a delta cycle and an apply after each.
    let rounds: [(&str, Vec<String>); 3] = [
        (
            "updates, new visits and notes, deletes, one visit moving to another caregiver, a password change",
            vec![
                "UPDATE dbo.Journalanteckning SET Text = Text + N' Tillägg.' WHERE Id % 97 = 0".into(),
                format!("INSERT INTO dbo.Besok SELECT Id + {VISITS}, PatientId, VardenhetId, '2026-02-01T10:30:00', N'Återbesök', NULL FROM dbo.Besok WHERE Id % 150 = 0"),
                format!("INSERT INTO dbo.Journalanteckning SELECT Id + {VISITS}, Id + {VISITS}, '2026-01-01T09:00:00', N'Återbesök, ny anteckning.' FROM dbo.Besok WHERE Id % 150 = 0 AND Id <= {VISITS}"),
                "DELETE FROM dbo.Journalanteckning WHERE Id % 211 = 0".into(),
                // Visit 6 (at a unit of Norr, see `moving_visit`) moves to
                // Öst's first unit: it and its notes and diagnoses leave one
                // copy and enter another.
                format!("UPDATE dbo.Besok SET VardenhetId = {} WHERE Id = {}", 2 * UNITS_PER_CAREGIVER + 1, moving_visit(&mut src)?),
                "UPDATE dbo.Anvandare SET Losenord = 0xDEADBEEF WHERE Id % 10 = 1".into(),
            ],
        ),
        (
            "a whole care unit (unit 2) moves from Norr to Syd, with its patients, visits, notes, diagnoses and users",
            vec![format!("UPDATE dbo.Vardenhet SET VardgivareHsaId = N'{}' WHERE Id = 2", CAREGIVERS[1].hsa)],
        ),
        (
            "the shared diagnosis code list changes; visits are deleted with their notes and diagnoses",
            vec![
                "UPDATE dbo.Diagnoskod SET Text = Text + N' (reviderad)' WHERE Kod LIKE N'A%'".into(),
                "INSERT INTO dbo.Diagnoskod VALUES (N'Z99.9', N'Ny kod')".into(),
                "DELETE FROM dbo.Diagnos WHERE BesokId % 500 = 1".into(),
                "DELETE FROM dbo.Journalanteckning WHERE BesokId % 500 = 1".into(),
                "DELETE FROM dbo.Besok WHERE Id % 500 = 1".into(),
            ],
        ),
    ];
    for (i, (what, stmts)) in rounds.iter().enumerate() {
        say(&format!("{}. changes: {what}", 4 + i));
        for s in stmts {
            src.execute(s)?;
        }
        step.cycle("   delta cycle")?;
        step.apply_and_verify("delta")?;
    }
    let failures = step.failures;

    // Summary per caregiver.
    let state = crate::publisher::state::State::open(&cfg.publisher.state)
        .map_err(crate::publisher::cycle::PublishError::from)?;
    say("");
    say(&format!(
        "{:<24} {:>8} {:>10} {:>9}  {}",
        "caregiver", "packages", "bytes", "rows", "data as of"
    ));
    for c in CAREGIVERS.iter().filter(|c| c.subscribed) {
        let pk = state
            .packages(c.hsa)
            .map_err(crate::publisher::cycle::PublishError::from)?;
        let acfg =
            crate::config::load_apply(&dir.join("caregivers").join(c.short).join("apply.toml"))?;
        let mut db = Db::connect(&acfg.connection, &acfg.password)?;
        let asof = caregiver::last_applied(&mut db)?
            .and_then(|a| a.data_as_of)
            .unwrap_or_else(|| "-".into());
        say(&format!(
            "{:<24} {:>8} {:>10} {:>9}  {asof}",
            format!("{} ({})", c.short, c.hsa),
            pk.len(),
            pk.iter().map(|p| p.bytes).sum::<u64>(),
            pk.iter().map(|p| p.rows).sum::<u64>(),
        ));
    }
    drop(state);
    drop(src);
    drop(master);
    sim.shutdown();
    let sshd_config = sshd.as_ref().map(|s| s.config.display().to_string());
    drop(sshd);
    let d = dir.display();
    let me = command_path();
    say("");
    say(&format!("Everything is in {d}:"));
    say("  ctferry.toml                  the region's configuration (docs/CONFIG.md)");
    say("  state/  outbox/               the publisher's state and its packages");
    say("  deliveries/<caregiver>/       each caregiver's delivery area (folder or SFTP)");
    if sshd_config.is_some() {
        say("  ssh/                          the demo's sshd config, host key and login key");
    }
    say("  caregivers/<caregiver>/apply.toml   each caregiver's side");
    say("  keys/  secrets/               generated keys and the simulator's password");
    say("  sql/                          the simulator's databases (Pmo and one copy per caregiver)");
    say("Now try:");
    say(&format!("  {me} status -c {d}/ctferry.toml"));
    say(&format!(
        "  {me} audit -c {d}/ctferry.toml --subscriber {}",
        CAREGIVERS[0].hsa
    ));
    say(&format!(
        "  {me} inspect {d}/deliveries/norr/0000000001-*.ctf.pgp --key {d}/keys/norr.sec.asc --signer {d}/keys/region.pub.asc"
    ));
    say("To run more cycles, start the simulator again on the same data and port:");
    say(&format!(
        "  {} --listen {addr} --data {d}/sql --password \"$(cat {d}/secrets/sql-password)\" &",
        sim_command()
    ));
    if let Some(c) = &sshd_config {
        say(&format!("  {SSHD} -D -f {c} &   (the SFTP areas)"));
    }
    say(&format!(
        "  then: {me} once -c {d}/ctferry.toml; {me} apply -c {d}/caregivers/norr/apply.toml; {me} apply -c {d}/caregivers/norr/apply.toml --status"
    ));
    say(&format!(
        "demo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if failures > 0 {
        return Err(DemoError::ChecksFailed(failures));
    }
    say("every check passed");
    Ok(())
}
