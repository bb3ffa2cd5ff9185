//! OpenPGP interop with GnuPG (`gpg`), both directions, with keys made by
//! `gpg --quick-gen-key` (Ed25519/Cv25519 and RSA 3072) and by
//! `ctferry keys generate`:
//! - gpg decrypts and verifies a package that ctferry wrote, and
//!   `gpg --decrypt | zstd -d | python3 docs/read_package.py -` prints it;
//! - ctferry (`ctferry inspect`) reads a payload that gpg signed and encrypted.

use ctferry::format::crypto::{PublicKey, SecretKey};
use ctferry::format::package::{
    self, ColumnSchema, Kind, Manifest, PackageWriter, TableSchema, WriterConfig,
};
use ctferry::format::value::{ColumnType, Decimal, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "support/fixtures.rs"]
mod fixtures;

struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = fixtures::private_tmp("gpg");
        fixtures::start_gpg_agent(home.path());
        Gpg { home }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = fixtures::gpg_command(self.home.path());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("gpg is installed (scripts/test.sh installs it)");
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a key and exports it to `<dir>/<name>.pub.asc` and `.sec.asc`.
    fn key(&self, dir: &Path, name: &str, algo: &str, passphrase: &str) -> (PathBuf, PathBuf) {
        let uid = format!("{name} <{name}@example.invalid>");
        self.ok(
            &[
                "--passphrase",
                passphrase,
                "--quick-gen-key",
                &uid,
                algo,
                "default",
                "never",
            ],
            None,
        );
        let public = self.ok(&["--armor", "--export", &uid], None);
        let secret = self.ok(
            &[
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                &uid,
            ],
            None,
        );
        let p = dir.join(format!("{name}.pub.asc"));
        let s = dir.join(format!("{name}.sec.asc"));
        std::fs::write(&p, public).unwrap();
        std::fs::write(&s, secret).unwrap();
        (p, s)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

fn ctferry(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctferry"));
    cmd.args(args).env_remove("CTFERRY_KEY_PASSPHRASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

impl Gpg {
    /// gpg signs with `signer` and encrypts to `recipient` (both uids),
    /// with its own defaults otherwise; `extra` goes first.
    fn seal(&self, extra: &[&str], signer: &str, recipient: &str, data: &[u8]) -> Vec<u8> {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "--sign",
            "--encrypt",
            "--local-user",
            signer,
            "--recipient",
            recipient,
            "--trust-model",
            "always",
            "--output",
            "-",
        ]);
        self.ok(&args, Some(data))
    }
}

/// `ctferry inspect FILE --key KEY --signer SIGNER --json [extra]`, which
/// must succeed; its JSON.
fn inspect_json(
    file: &Path,
    key: &Path,
    signer: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> serde_json::Value {
    let mut args = vec![
        "inspect",
        file.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--signer",
        signer.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = ctferry(&args, env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn schema() -> TableSchema {
    let col = |n: &str, t: &str| ColumnSchema {
        name: n.into(),
        ty: ColumnType::parse(t).unwrap(),
        nullable: n != "Id",
        masked: n == "Losenord",
        collation: None,
    };
    TableSchema {
        name: "dbo.Anvandare".into(),
        columns: vec![
            col("Id", "bigint"),
            col("Namn", "nvarchar(100)"),
            col("Saldo", "decimal(38,4)"),
            col("Losenord", "varbinary(64)"),
            col("Skapad", "datetime2(7)"),
        ],
        key: vec!["Id".into()],
    }
}

fn rows() -> Vec<Vec<Value>> {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
        .unwrap()
        .and_hms_nano_opt(3, 4, 5, 600_000_700)
        .unwrap();
    (1..=3)
        .map(|i| {
            vec![
                Value::Int(9_007_199_254_740_993 + i),
                Value::Text(format!("Användare {i}")),
                Value::Decimal(Decimal::parse("12345678901234567890123456789012.3456").unwrap()),
                Value::Null,
                Value::DateTime(t),
            ]
        })
        .collect()
}

/// Writes a one-table delta signed by `signer` and encrypted to `recipient`.
fn write_package(out: &Path, signer: &SecretKey, recipient: &PublicKey) -> PathBuf {
    write_package_with(out, signer, recipient, None)
}

/// `write_package`, with a second table carrying `change` (format 2).
fn write_package_with(
    out: &Path,
    signer: &SecretKey,
    recipient: &PublicKey,
    change: Option<ctferry::format::change::TableChange>,
) -> PathBuf {
    let template = Manifest {
        publisher: "region-pmo".into(),
        subscriber: "SE2321000016-A1B2".into(),
        epoch: 1,
        sequence: 3,
        kind: Kind::Delta,
        part: 1,
        last_part: true,
        previous_sha256: Some([1u8; 32]),
        ct_from: Some(100),
        ct_to: 120,
        source_commit_time: Some("2026-11-25T08:00:00.0000000Z".into()),
        created_at: "2026-11-25T08:00:05Z".into(),
        tables: vec![],
    };
    let mut w = PackageWriter::new(
        WriterConfig {
            out_dir: out.to_path_buf(),
            signer,
            recipient,
            part_bytes: package::DEFAULT_PART_BYTES,
            zstd_level: 3,
            zstd_workers: package::default_zstd_workers(),
        },
        template,
    );
    let t = w.add_table(schema()).unwrap();
    for r in rows() {
        w.upsert(t, &r).unwrap();
    }
    w.delete(t, &[Value::Int(42)]).unwrap();
    if let Some(change) = change {
        let mut other = schema();
        other.name = "dbo.Remiss".into();
        let t = w.add_changed_table(other, Some(change)).unwrap();
        w.upsert(t, &rows()[0]).unwrap();
    }
    w.finish().unwrap().remove(0).path
}

fn pipe(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs docs/read_package.py on a decompressed package with the cbor2 that
/// `pip install cbor2` installs today (6.x or later, which scripts/test.sh
/// installs) and with cbor2 5.x (target/py-cbor2-5); both must print the
/// same. Returns what they print.
fn read_package_with_every_cbor2(plain: &[u8]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/read_package.py");
    let old = concat!(env!("CARGO_MANIFEST_DIR"), "/target/py-cbor2-5");
    assert!(
        Path::new(old).join("cbor2").is_dir(),
        "cbor2 5.x is not in {old}: run scripts/test.sh (it installs it there)"
    );
    let version = |pythonpath: Option<&str>| {
        let mut c = Command::new("python3");
        c.args([
            "-c",
            "import importlib.metadata as m; print(m.version('cbor2'))",
        ]);
        if let Some(p) = pythonpath {
            c.env("PYTHONPATH", p);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout)
            .trim()
            .to_string()
    };
    let newest = version(None);
    assert!(
        newest.split('.').next().and_then(|m| m.parse::<u32>().ok()) >= Some(6),
        "the default cbor2 is {newest}, not what pip installs today: run scripts/test.sh"
    );
    assert!(
        version(Some(old)).starts_with("5."),
        "{}",
        version(Some(old))
    );
    let mut outputs = Vec::new();
    for pythonpath in [None, Some(old)] {
        let mut c = Command::new("python3");
        c.args([script, "-"]);
        if let Some(p) = pythonpath {
            c.env("PYTHONPATH", p);
        }
        let read = pipe(&mut c, plain);
        let text = String::from_utf8_lossy(&read.stdout).to_string();
        assert!(
            read.status.success(),
            "read_package.py with cbor2 {} failed:\n{text}\n{}",
            version(pythonpath),
            String::from_utf8_lossy(&read.stderr)
        );
        outputs.push(text);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "cbor2 {newest} and 5.x read differently"
    );
    outputs.remove(0)
}

/// gpg decrypts and verifies; zstd and docs/read_package.py read the rows.
fn gpg_reads_ctferry_package(gpg: &Gpg, pkg: &Path) -> Vec<u8> {
    let out = gpg.run(
        &["--status-fd", "2", "--decrypt", pkg.to_str().unwrap()],
        None,
    );
    let status = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "gpg --decrypt failed:\n{status}");
    assert!(
        status.contains("[GNUPG:] GOODSIG"),
        "gpg did not verify the signature:\n{status}"
    );
    assert!(status.contains("[GNUPG:] DECRYPTION_OKAY"), "{status}");
    let zstd_data = out.stdout;
    let plain = pipe(Command::new("zstd").args(["-d", "-c"]), &zstd_data);
    assert!(plain.status.success(), "zstd -d failed");
    let text = read_package_with_every_cbor2(&plain.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + 4, "{text}");
    let m = &lines[0]["manifest"];
    assert_eq!(m["subscriber"], "SE2321000016-A1B2");
    assert_eq!(m["sequence"], 3);
    assert_eq!(m["tables"][0]["columns"][3]["masked"], true);
    assert_eq!(lines[1]["op"], "delete");
    assert_eq!(lines[1]["key"]["Id"], 42);
    assert_eq!(lines[2]["op"], "upsert");
    assert_eq!(lines[2]["values"]["Id"], "9007199254740994");
    assert_eq!(lines[2]["values"]["Namn"], "Användare 1");
    assert_eq!(
        lines[2]["values"]["Saldo"],
        "12345678901234567890123456789012.3456"
    );
    assert_eq!(lines[2]["values"]["Losenord"], serde_json::Value::Null);
    assert_eq!(lines[2]["values"]["Skapad"], "2026-01-02T03:04:05.6000007");
    zstd_data
}

/// A format 2 package (a table created before its rows) read without
/// ctferry: gpg, zstd, and docs/read_package.py with every cbor2.
#[test]
fn read_package_reads_a_table_change_of_format_2() {
    use ctferry::format::change::{TableAction, TableChange};
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (norr_pub, _) = gpg.key(d, "norr", "future-default", "");
    let (_, region_sec) = gpg.key(d, "region", "future-default", "");
    let region = SecretKey::load(&region_sec, None).unwrap();
    let norr = PublicKey::load(&norr_pub).unwrap();
    let pkg = write_package_with(
        d,
        &region,
        &norr,
        Some(TableChange {
            action: TableAction::Create,
            why: "added to the configuration".into(),
        }),
    );
    let out = gpg.run(&["--decrypt", pkg.to_str().unwrap()], None);
    assert!(out.status.success());
    let plain = pipe(Command::new("zstd").args(["-d", "-c"]), &out.stdout);
    let text = read_package_with_every_cbor2(&plain.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["manifest"]["format"], 2, "{text}");
    assert_eq!(lines[1]["table"], "dbo.Remiss", "{text}");
    assert_eq!(lines[1]["op"], "change", "{text}");
    assert_eq!(lines[1]["change"]["action"], "create", "{text}");
    assert_eq!(lines[1]["change"]["why"], "added to the configuration");
    assert_eq!(lines.len(), 2 + 4 + 1, "{text}");
    assert_eq!(lines.last().unwrap()["table"], "dbo.Remiss", "{text}");
}

#[test]
fn ed25519_keys_both_directions() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The region's key made by ctferry; the caregiver's by gpg.
    let prefix = d.join("region");
    let out = ctferry(
        &[
            "keys",
            "generate",
            "--name",
            "Region PMO",
            "--email",
            "pmo@example.invalid",
            "--out",
            prefix.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (norr_pub, norr_sec) = gpg.key(d, "norr", "future-default", "");
    gpg.ok(
        &["--import", d.join("region.pub.asc").to_str().unwrap()],
        None,
    );

    // ctferry → gpg
    let region = SecretKey::load(&d.join("region.sec.asc"), None).unwrap();
    let norr = PublicKey::load(&norr_pub).unwrap();
    let pkg = write_package(d, &region, &norr);
    let zstd_data = gpg_reads_ctferry_package(&gpg, &pkg);

    // gpg → ctferry: a gpg-made region key signs, gpg encrypts (with its own
    // compression on) to the caregiver key; ctferry inspect verifies and reads.
    gpg.key(d, "region2", "future-default", "");
    let sealed = gpg.seal(
        &[],
        "region2@example.invalid",
        "norr@example.invalid",
        &zstd_data,
    );
    let from_gpg = d.join("0000000003-delta-100-120.ctf.pgp");
    std::fs::remove_file(&from_gpg).unwrap();
    std::fs::write(&from_gpg, sealed).unwrap();
    let report = inspect_json(
        &from_gpg,
        &norr_sec,
        &d.join("region2.pub.asc"),
        &["--rows", "2"],
        &[],
    );
    assert_eq!(report["manifest"]["ct_to"], 120);
    assert_eq!(report["rows"].as_array().unwrap().len(), 2);
    assert_eq!(
        report["rows"][1]["values"]["Saldo"],
        "12345678901234567890123456789012.3456"
    );

    // The same payload signed by the wrong key is refused with a clear reason.
    let out = ctferry(
        &[
            "inspect",
            from_gpg.to_str().unwrap(),
            "--key",
            norr_sec.to_str().unwrap(),
            "--signer",
            d.join("region.pub.asc").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an accepted publisher key"), "{err}");
}

#[test]
fn rsa_keys_with_passphrases_both_directions() {
    let gpg = Gpg::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `default` is RSA 3072 with an RSA 3072 encryption subkey in GnuPG 2.2;
    // an explicit `rsa4096` is a signing-only primary key.
    let (syd_pub, syd_sec) = gpg.key(d, "syd", "default", "syd-secret");
    let (reg_pub, reg_sec) = gpg.key(d, "regionrsa", "rsa4096", "region-secret");
    let listing = String::from_utf8_lossy(&gpg.ok(&["--list-keys"], None)).to_string();
    assert!(
        listing.contains("rsa3072") && listing.contains("rsa4096"),
        "{listing}"
    );
    // A key that cannot encrypt is refused as a recipient, with the reason.
    match PublicKey::load(&reg_pub).unwrap().check_can_encrypt() {
        Err(e) => assert!(e.to_string().contains("has no encryption key"), "{e}"),
        Ok(()) => panic!("a signing-only key was accepted as a recipient"),
    }

    // ctferry signs with the gpg-made RSA region key and encrypts to the RSA caregiver.
    let region = SecretKey::load(&reg_sec, Some("region-secret".into())).unwrap();
    assert!(SecretKey::load(&reg_sec, Some("wrong".into())).is_err());
    let syd = PublicKey::load(&syd_pub).unwrap();
    let pkg = write_package(d, &region, &syd);
    let zstd_data = {
        let out = gpg.run(
            &[
                "--passphrase",
                "syd-secret",
                "--status-fd",
                "2",
                "--decrypt",
                pkg.to_str().unwrap(),
            ],
            None,
        );
        let status = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success() && status.contains("[GNUPG:] GOODSIG"),
            "{status}"
        );
        out.stdout
    };
    // ctferry inspect with the passphrase from the environment.
    let args = [
        "inspect",
        pkg.to_str().unwrap(),
        "--key",
        syd_sec.to_str().unwrap(),
        "--signer",
        reg_pub.to_str().unwrap(),
    ];
    let out = ctferry(&args, &[("CTFERRY_KEY_PASSPHRASE", "syd-secret")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("signed by  ") && text.contains("dbo.Anvandare: 3 upserts, 1 deletes"),
        "{text}"
    );
    let out = ctferry(&args, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase"));

    // gpg → ctferry with RSA.
    let sealed = gpg.seal(
        &["--passphrase", "region-secret"],
        "regionrsa@example.invalid",
        "syd@example.invalid",
        &zstd_data,
    );
    let p = d.join("from-gpg.ctf.pgp");
    std::fs::write(&p, sealed).unwrap();
    let report = inspect_json(
        &p,
        &syd_sec,
        &reg_pub,
        &[],
        &[("CTFERRY_KEY_PASSPHRASE", "syd-secret")],
    );
    assert_eq!(report["rows"].as_array().unwrap().len(), 4);
}
