//! OpenPGP key validity, with keys GnuPG made (expired ones by
//! `--faked-system-time`, revoked ones with the revocation certificate gpg
//! writes for every key it makes): the publisher never encrypts to a
//! revoked or expired caregiver key and says so (the caregiver's changes
//! wait), picks the newest valid encryption subkey when an older one
//! expired, refuses to sign with a revoked or expired key, and `apply`
//! refuses a package signed by a revoked publisher key.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/world.rs"]
mod world;
use std::path::Path;
use world::World;

struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = fixtures::private_tmp("ctf-kv");
        fixtures::start_gpg_agent(home.path());
        Gpg { home }
    }

    /// Runs gpg (at `faked` time when given); stdout.
    fn run(&self, faked: Option<&str>, args: &[&str]) -> String {
        let mut cmd = fixtures::gpg_command(self.home.path());
        cmd.args(["--passphrase", ""]);
        if let Some(t) = faked {
            cmd.args(["--faked-system-time", t]);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Makes a key; its fingerprint.
    fn generate(
        &self,
        faked: Option<&str>,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
    ) -> String {
        self.run(faked, &["--quick-gen-key", uid, algo, usage, expire]);
        self.fingerprint(uid)
    }

    fn fingerprint(&self, uid: &str) -> String {
        let colons = self.run(None, &["--with-colons", "--list-keys", uid]);
        colons
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .unwrap()
            .split(':')
            .nth(9)
            .unwrap()
            .to_string()
    }

    /// The key ids of a key's subkeys, oldest first.
    fn subkey_ids(&self, fpr: &str) -> Vec<String> {
        self.run(None, &["--with-colons", "--list-keys", fpr])
            .lines()
            .filter(|l| l.starts_with("sub:"))
            .map(|l| l.split(':').nth(4).unwrap().to_string())
            .collect()
    }

    /// Revokes a key with the certificate gpg wrote when it made it.
    fn revoke(&self, fpr: &str) {
        let cert =
            std::fs::read_to_string(self.home.path().join(format!("openpgp-revocs.d/{fpr}.rev")))
                .unwrap();
        // gpg prefixes the armor line with ':' so that it is not imported by accident.
        let cert = cert.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        let file = self.home.path().join("rev.asc");
        std::fs::write(&file, cert).unwrap();
        self.run(None, &["--import", file.to_str().unwrap()]);
    }

    fn export(&self, fpr: &str, to: &Path) {
        std::fs::write(to, self.run(None, &["--armor", "--export", fpr])).unwrap();
    }

    fn export_secret(&self, fpr: &str, to: &Path) {
        std::fs::write(
            to,
            self.run(None, &["--armor", "--export-secret-keys", fpr]),
        )
        .unwrap();
    }
}

fn world() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }",
        "[\"E1\"]",
    );
    w
}

fn packages(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.path("out"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".ctf.pgp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn expired_and_revoked_caregiver_keys_get_nothing_and_the_newest_valid_subkey_is_used() {
    let w = world();
    let gpg = Gpg::new();
    // Expired: made on 2020-01-01, valid one day.
    let old = gpg.generate(
        Some("20200101T000000"),
        "Old <old@norr.example>",
        "future-default",
        "default",
        "1d",
    );
    gpg.export(&old, &w.path("keys/norr.pub.asc"));
    let (ok, out, err) = w.ctferry(&["check"]);
    let text = format!("{out}{err}");
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("[[subscriber]] SE-NORR: public_key: the key {} ({old}) expired on 2020-01-02T00:00:00Z; ask the caregiver for its new (or extended) public key", w.path("keys/norr.pub.asc").display())),
        "{text}"
    );
    let (ok, out, err) = w.ctferry(&["once"]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("no package for SE-NORR: the key")
            && err.contains("expired on 2020-01-02T00:00:00Z"),
        "{err}"
    );
    assert!(
        packages(&w).is_empty(),
        "a package was made for an expired key"
    );
    let (ok, out, _) = w.ctferry(&["status"]);
    assert!(
        !ok && out.contains("STALE: no snapshot delivered yet"),
        "{out}"
    );

    // Revoked (gpg's own revocation certificate: no reason given).
    let revoked = gpg.generate(
        None,
        "Revoked <rev@norr.example>",
        "future-default",
        "default",
        "never",
    );
    gpg.revoke(&revoked);
    gpg.export(&revoked, &w.path("keys/norr.pub.asc"));
    let (ok, out, err) = w.ctferry(&["once"]);
    assert!(
        !ok && err.contains(&format!("({revoked}) was revoked on "))
            && err.contains("(no reason given)"),
        "{out}{err}"
    );
    assert!(packages(&w).is_empty());
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(!ok && err.contains("was revoked on"), "{out}{err}");

    // A key whose first encryption subkey expired and a newer one is valid:
    // the package is encrypted to the newer one, and the caregiver applies it.
    let good = gpg.generate(
        Some("20200101T000000"),
        "Norr <it@norr.example>",
        "ed25519",
        "sign",
        "never",
    );
    gpg.run(
        Some("20200101T000000"),
        &["--quick-add-key", &good, "cv25519", "encr", "1d"],
    );
    gpg.run(
        None,
        &["--quick-add-key", &good, "cv25519", "encr", "never"],
    );
    let subs = gpg.subkey_ids(&good);
    assert_eq!(subs.len(), 2);
    gpg.export(&good, &w.path("keys/norr.pub.asc"));
    gpg.export_secret(&good, &w.path("keys/norr.sec.asc"));
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(ok, "{out}{err}");
    w.run(&["once"]);
    let made = packages(&w);
    assert_eq!(made.len(), 1, "{made:?}");
    let listed = fixtures::gpg_command(gpg.home.path())
        .args([
            "--list-packets",
            w.path(&format!("out/{}", made[0])).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let listed = format!(
        "{}{}",
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        listed.contains(&format!("keyid {}", subs[1])),
        "not encrypted to the newest subkey {}:\n{listed}",
        subs[1]
    );
    assert!(!listed.contains(&format!("keyid {}", subs[0])), "{listed}");
    w.run(&["apply"]);
    assert_eq!(
        world::count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"),
        1
    );

    // Later the key file holds an expired key again: a change waits, staged,
    // and travels in the next delta once a valid key is back.
    gpg.export(&old, &w.path("keys/norr.pub.asc"));
    w.pmo()
        .execute("INSERT INTO dbo.Besok VALUES (2, N'E1')")
        .unwrap();
    let (ok, _, err) = w.ctferry(&["once"]);
    assert!(!ok && err.contains("no package for SE-NORR"), "{err}");
    assert_eq!(packages(&w).len(), 1);
    gpg.export(&good, &w.path("keys/norr.pub.asc"));
    w.run(&["once"]);
    assert_eq!(packages(&w).len(), 2);
    w.run(&["apply"]);
    assert_eq!(
        world::count(&mut w.kopia(), "SELECT COUNT(*) FROM dbo.Besok"),
        2
    );
}

#[test]
fn a_revoked_or_expired_publisher_key_signs_nothing_and_apply_refuses_what_it_signed() {
    let w = world();
    let gpg = Gpg::new();
    let region = gpg.generate(
        None,
        "Region <ctferry@region.example>",
        "future-default",
        "default",
        "never",
    );
    gpg.export_secret(&region, &w.path("keys/region.sec.asc"));
    gpg.export(&region, &w.path("keys/region.pub.asc"));
    w.run(&["once"]);
    assert_eq!(packages(&w).len(), 1);

    // The region revokes its key; the caregiver gets the revoked public key.
    gpg.revoke(&region);
    gpg.export(&region, &w.path("keys/region.pub.asc"));
    let (ok, out, err) = w.ctferry(&["apply"]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains(&format!(
            "the package is signed by the publisher key {region} on "
        )) && err.contains("but that key was revoked on")
            && err.contains("so the package is refused"),
        "{err}"
    );
    assert!(
        err.contains(&packages(&w)[0]),
        "the error names the package: {err}"
    );
    assert_eq!(
        world::count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM sys.tables WHERE name = N'Besok'"
        ),
        0,
        "nothing of the package applied"
    );

    // The publisher's own secret key, revoked: it signs nothing more.
    gpg.export_secret(&region, &w.path("keys/region.sec.asc"));
    let (ok, out, err) = w.ctferry(&["once"]);
    assert!(
        !ok && err.contains("was revoked on") && err.contains("make a new signing key"),
        "{out}{err}"
    );
    let (ok, _, err) = w.ctferry(&["check"]);
    assert!(
        !ok && err.contains("[publisher] signing_key: the key"),
        "{err}"
    );

    // An expired signing key: check and once say so.
    let expired = gpg.generate(
        Some("20200101T000000"),
        "Old region <old@region.example>",
        "future-default",
        "default",
        "1d",
    );
    gpg.export_secret(&expired, &w.path("keys/region.sec.asc"));
    let (ok, out, err) = w.ctferry(&["check"]);
    assert!(
        !ok && err.contains("[publisher] signing_key: the key")
            && err.contains("expired on 2020-01-02T00:00:00Z"),
        "{out}{err}"
    );
}
