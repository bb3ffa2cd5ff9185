//! Rows that belong to several caregivers (issue 18): a patient is in every
//! copy where it has care (a visit at one of the caregiver's care units, a
//! referral to it) and leaves when the last care there goes. Checked the way
//! a caregiver uses its copy: every visit it holds finds its patient, and it
//! holds no patient it gives no care to, against what the source says,
//! after every cycle.
//!
//! Three caregivers (A, B, C) with their own copies (databases KopiaA..C on
//! one copy server); care unit 4 belongs to no caregiver.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/world.rs"]
mod world;

use ctferry::mssql::client::{int_at, text_at, Db};
use std::collections::BTreeSet;
use world::{conn, connect, PW};

const SUBSCRIBERS: [(&str, &str); 3] = [("SE-A", "EA"), ("SE-B", "EB"), ("SE-C", "EC")];

const DDL: &[&str] = &[
    "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)",
    "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(100) NOT NULL, ListadVardenhetId int NULL REFERENCES dbo.Vardenhet(Id))",
    "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), VardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id), Anteckning nvarchar(200) NULL)",
    "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), HsaId nvarchar(40) NOT NULL)",
    "CREATE TABLE dbo.PatientAdress (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), Adress nvarchar(100) NOT NULL)",
    "ALTER TABLE dbo.PatientAdress ENABLE CHANGE_TRACKING",
    "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING",
    "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING",
    "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING",
    "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING",
    "INSERT INTO dbo.Vardenhet VALUES (1, N'EA'), (2, N'EB'), (3, N'EC'), (4, N'EX')",
];

/// Patients by visits and referrals only.
const MEMBERS: &str = r#"owner = { members = ["dbo.Besok(PatientId)", "dbo.Remiss(PatientId)"] }"#;
/// The same, and the caregiver the patient is listed at.
const LISTED_AND_MEMBERS: &str = r#"owner = { path = "ListadVardenhetId -> dbo.Vardenhet(Id).HsaId", members = ["dbo.Besok(PatientId)", "dbo.Remiss(PatientId)"] }"#;

struct Region {
    w: world::World,
    listed: bool,
    /// Every patient each caregiver has had a care relation with, at the
    /// end of some cycle.
    ever: std::cell::RefCell<std::collections::HashMap<String, BTreeSet<i64>>>,
}

impl Region {
    fn new(patient_rule: &str, listed: bool) -> Region {
        Region::with_extra(patient_rule, listed, 0)
    }

    /// As `new`, with `extra` more caregivers that own nothing (keys no
    /// row has), to count what the number of caregivers costs.
    fn with_extra(patient_rule: &str, listed: bool, extra: usize) -> Region {
        let ddl: Vec<String> = DDL.iter().map(|s| s.to_string()).collect();
        let w = world::World::new(&ddl);
        let mut copy = connect(&w.copy, "master");
        let mut subs = String::new();
        for (hsa, key) in SUBSCRIBERS {
            let short = &hsa[3..];
            copy.execute(&format!("CREATE DATABASE Kopia{short}"))
                .unwrap();
            let (public, secret) =
                ctferry::format::crypto::generate(hsa, &format!("{short}@example.invalid"), None)
                    .unwrap();
            std::fs::write(w.path(&format!("keys/{short}.pub.asc")), public).unwrap();
            std::fs::write(w.path(&format!("keys/{short}.sec.asc")), secret).unwrap();
            subs.push_str(&format!(
                "[[subscriber]]\nhsa_id = \"{hsa}\"\nkeys = [\"{key}\"]\npublic_key = \"keys/{short}.pub.asc\"\ndeliver = {{ folder = \"out/{short}\" }}\n"
            ));
            std::fs::write(
                w.path(&format!("apply-{short}.toml")),
                format!(
                    "[target]\nconnection = \"{}\"\npassword_env = \"PW\"\n[keys]\nsecret_key = \"keys/{short}.sec.asc\"\npublisher_keys = [\"keys/region.pub.asc\"]\n[source]\nsubscriber = \"{hsa}\"\nfolder = \"out/{short}\"\n",
                    conn(&w.copy, &format!("Kopia{short}"))
                ),
            )
            .unwrap();
        }
        for i in 0..extra {
            let (public, _) =
                ctferry::format::crypto::generate(&format!("x{i}"), "x@example.invalid", None)
                    .unwrap();
            std::fs::write(w.path(&format!("keys/x{i}.pub.asc")), public).unwrap();
            subs.push_str(&format!(
                "[[subscriber]]\nhsa_id = \"SE-X{i}\"\nkeys = [\"X{i}\"]\npublic_key = \"keys/x{i}.pub.asc\"\ndeliver = {{ folder = \"out/x{i}\" }}\n"
            ));
        }
        let tables = format!(
            "[[table]]\nname = \"dbo.Patient\"\n{patient_rule}\n\
             [[table]]\nname = \"dbo.Besok\"\nowner = {{ path = \"VardenhetId -> dbo.Vardenhet(Id).HsaId\" }}\n\
             [[table]]\nname = \"dbo.Remiss\"\nowner = {{ column = \"HsaId\" }}\n\
             [[table]]\nname = \"dbo.PatientAdress\"\nowner = {{ path = \"PatientId -> dbo.Patient(Id)\" }}\n"
        );
        std::fs::write(
            w.path("ctferry.toml"),
            format!(
                "[source]\nconnection = \"{}\"\npassword_env = \"PW\"\n[publisher]\nid = \"region\"\nsigning_key = \"keys/region.sec.asc\"\n{tables}\n{subs}",
                conn(&w.source, "Pmo")
            ),
        )
        .unwrap();
        Region {
            w,
            listed,
            ever: Default::default(),
        }
    }

    /// Snapshots read in steps of `n` rows (`[publisher] snapshot_step_rows`).
    fn step_rows(&self, n: usize) {
        let path = self.w.path("ctferry.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen(
                "[publisher]\n",
                &format!("[publisher]\nsnapshot_step_rows = {n}\n"),
                1,
            ),
        )
        .unwrap();
    }

    /// Caregiver `short`'s package files in its delivery folder (or the
    /// outbox), by name, with their bytes.
    fn sql(&self, sql: &str) {
        self.w
            .pmo()
            .execute(sql)
            .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    }

    fn ctferry(&self, args: &[&str], config: &str) -> String {
        let (ok, out, err) = fixtures::run_ctferry(args, &self.w.path(config), &[("PW", PW)]);
        assert!(ok, "{args:?} {config}:\n{out}{err}");
        out
    }

    /// One publisher cycle, and every caregiver applies what it got.
    fn cycle(&self) -> String {
        let out = self.ctferry(&["once"], "ctferry.toml");
        for (hsa, _) in SUBSCRIBERS {
            self.ctferry(&["apply"], &format!("apply-{}.toml", &hsa[3..]));
        }
        out
    }

    fn copy(&self, hsa: &str) -> Db {
        connect(&self.w.copy, &format!("Kopia{}", &hsa[3..]))
    }

    /// What the source says caregiver `key` must hold: (patients with
    /// their names, visits, referrals).
    #[allow(clippy::type_complexity)]
    fn expected(
        &self,
        key: &str,
    ) -> (
        BTreeSet<String>,
        BTreeSet<i64>,
        BTreeSet<i64>,
        BTreeSet<String>,
    ) {
        let mut pmo = self.w.pmo();
        let related = related(key, self.listed);
        let patients = texts(
            &mut pmo,
            &format!(
                "SELECT CAST(p.Id AS nvarchar(20)) + N':' + p.Namn FROM dbo.Patient p WHERE {related}"
            ),
        );
        let addresses = texts(
            &mut pmo,
            &format!(
                "SELECT CAST(a.Id AS nvarchar(20)) + N':' + a.Adress FROM dbo.PatientAdress a JOIN dbo.Patient p ON p.Id = a.PatientId WHERE {related}"
            ),
        );
        let visits = ints(
            &mut pmo,
            &format!("SELECT b.Id FROM dbo.Besok b JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE v.HsaId = N'{key}'"),
        );
        let referrals = ints(
            &mut pmo,
            &format!("SELECT Id FROM dbo.Remiss WHERE HsaId = N'{key}'"),
        );
        (patients, visits, referrals, addresses)
    }

    /// Every copy holds exactly what the source says, and no visit or
    /// referral in it points at a patient it lacks.
    fn converged(&self, when: &str) {
        for (hsa, key) in SUBSCRIBERS {
            let mut copy = self.copy(hsa);
            let got = (
                texts(
                    &mut copy,
                    "SELECT CAST(Id AS nvarchar(20)) + N':' + Namn FROM dbo.Patient",
                ),
                ints(&mut copy, "SELECT Id FROM dbo.Besok"),
                ints(&mut copy, "SELECT Id FROM dbo.Remiss"),
                texts(
                    &mut copy,
                    "SELECT CAST(Id AS nvarchar(20)) + N':' + Adress FROM dbo.PatientAdress",
                ),
            );
            let want = self.expected(key);
            assert_eq!(got, want, "{hsa} {when}");
            self.ever
                .borrow_mut()
                .entry(hsa.to_string())
                .or_default()
                .extend(
                    want.0
                        .iter()
                        .map(|p| p.split(':').next().unwrap().parse::<i64>().unwrap()),
                );
            let dangling = ints(
                &mut copy,
                "SELECT b.Id FROM dbo.Besok b WHERE NOT EXISTS (SELECT 1 FROM dbo.Patient p WHERE p.Id = b.PatientId) \
                 UNION SELECT r.Id FROM dbo.Remiss r WHERE NOT EXISTS (SELECT 1 FROM dbo.Patient p WHERE p.Id = r.PatientId) \
                 UNION SELECT a.Id FROM dbo.PatientAdress a WHERE NOT EXISTS (SELECT 1 FROM dbo.Patient p WHERE p.Id = a.PatientId)",
            );
            assert!(dangling.is_empty(), "{hsa} {when}: dangling {dangling:?}");
        }
    }
}

/// The condition under which patient `p` has a care relation with the
/// caregiver of partition key `key`.
fn related(key: &str, listed: bool) -> String {
    let listed = if listed {
        format!(" OR EXISTS (SELECT 1 FROM dbo.Vardenhet v WHERE v.Id = p.ListadVardenhetId AND v.HsaId = N'{key}')")
    } else {
        String::new()
    };
    format!(
        "EXISTS (SELECT 1 FROM dbo.Besok b JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE b.PatientId = p.Id AND v.HsaId = N'{key}') \
         OR EXISTS (SELECT 1 FROM dbo.Remiss r WHERE r.PatientId = p.Id AND r.HsaId = N'{key}'){listed}"
    )
}

/// The patients each caregiver has a care relation with now, by HSA id.
fn cared_for(db: &mut Db, listed: bool) -> Vec<(String, BTreeSet<i64>)> {
    SUBSCRIBERS
        .iter()
        .map(|(hsa, key)| {
            (
                hsa.to_string(),
                ints(
                    db,
                    &format!(
                        "SELECT p.Id FROM dbo.Patient p WHERE {}",
                        related(key, listed)
                    ),
                ),
            )
        })
        .collect()
}

impl Region {
    /// Adds the care relations of the source now to those `isolated`
    /// accepts (for states no `converged` looked at).
    fn remember_care(&self, care: Vec<(String, BTreeSet<i64>)>) {
        let mut ever = self.ever.borrow_mut();
        for (hsa, set) in care {
            ever.entry(hsa).or_default().extend(set);
        }
    }

    /// Isolation: every patient named in any package a caregiver received
    /// (a row or a delete's key, snapshot or delta), read back with
    /// `ctferry inspect`, is one it had a care relation with.
    fn isolated(&self) {
        for (hsa, _) in SUBSCRIBERS {
            let short = &hsa[3..];
            let mut named = BTreeSet::new();
            let files = fixtures::walk(&self.w.path(&format!("out/{short}")));
            assert!(!files.is_empty(), "{hsa} received nothing");
            for f in files {
                if !f.to_string_lossy().ends_with(".ctf.pgp") {
                    continue;
                }
                let key = self.w.path(&format!("keys/{short}.sec.asc"));
                let signer = self.w.path("keys/region.pub.asc");
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
                    .args(["inspect", "--json", "--rows", "100000"])
                    .arg(&f)
                    .arg("--key")
                    .arg(&key)
                    .arg("--signer")
                    .arg(&signer)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                for row in v["rows"].as_array().unwrap() {
                    if row["table"] == "dbo.Patient" {
                        named.insert(row["values"]["Id"].as_i64().unwrap());
                    }
                    if row["table"] == "dbo.PatientAdress" && row["op"] != "delete" {
                        named.insert(row["values"]["PatientId"].as_i64().unwrap());
                    }
                }
            }
            let ever = self.ever.borrow().get(hsa).cloned().unwrap_or_default();
            let leaked: Vec<_> = named.difference(&ever).collect();
            assert!(
                leaked.is_empty(),
                "{hsa} was sent patients {leaked:?} it never gave care to"
            );
        }
    }
}

fn texts(db: &mut Db, sql: &str) -> BTreeSet<String> {
    db.rows("reading", sql, &[])
        .unwrap()
        .iter()
        .map(|r| text_at(r, 0).unwrap())
        .collect()
}

fn ints(db: &mut Db, sql: &str) -> BTreeSet<i64> {
    db.rows("reading", sql, &[])
        .unwrap()
        .iter()
        .map(|r| int_at(r, 0).unwrap())
        .collect()
}

fn patients(db: &mut Db) -> BTreeSet<i64> {
    ints(db, "SELECT Id FROM dbo.Patient")
}

#[test]
fn a_patient_is_in_every_copy_where_it_has_care_and_leaves_with_the_last() {
    let r = Region::new(MEMBERS, false);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', NULL), (2, N'Två', NULL), (3, N'Tre', NULL), (4, N'Fyra', NULL);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (20, 2, 1, NULL), (21, 2, 2, NULL), (40, 4, 4, NULL);
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1'), (2, 2, N'Lillgatan 2'), (4, 4, N'Fyrvägen 4')",
    );
    r.cycle();
    r.converged("after onboarding");
    assert_eq!(patients(&mut r.copy("SE-A")), BTreeSet::from([1, 2]));
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::from([2]));
    assert!(patients(&mut r.copy("SE-C")).is_empty());

    // Move-in: C's first visit of patient 1 brings the patient with it,
    // in the same package (one cycle, one package each).
    r.sql("INSERT INTO dbo.Besok VALUES (11, 1, 3, N'first at C')");
    let before = std::fs::read_dir(r.w.path("out/C")).unwrap().count();
    r.cycle();
    assert_eq!(
        std::fs::read_dir(r.w.path("out/C")).unwrap().count(),
        before + 1
    );
    assert_eq!(patients(&mut r.copy("SE-C")), BTreeSet::from([1]));
    r.converged("after a move-in");

    // An update of the patient (and of its address) reaches every member,
    // and only them.
    r.sql("UPDATE dbo.Patient SET Namn = N'Två B' WHERE Id = 2; UPDATE dbo.PatientAdress SET Adress = N'Nygatan 2' WHERE Id = 2");
    r.cycle();
    r.converged("after an update");

    // Move-out: B's last visit of patient 2 goes; A keeps the patient.
    r.sql("DELETE FROM dbo.Besok WHERE Id = 21");
    r.cycle();
    assert!(patients(&mut r.copy("SE-B")).is_empty());
    assert_eq!(patients(&mut r.copy("SE-A")), BTreeSet::from([1, 2]));
    r.converged("after a move-out");

    // A visit moved to another caregiver's care unit: out of A, into B.
    r.sql("UPDATE dbo.Besok SET VardenhetId = 2 WHERE Id = 10");
    r.cycle();
    r.converged("after a visit moved");
    assert_eq!(patients(&mut r.copy("SE-A")), BTreeSet::from([2]));

    // A visit re-pointed to another patient (a merge of duplicates).
    r.sql("UPDATE dbo.Besok SET PatientId = 3 WHERE Id = 11");
    r.cycle();
    r.converged("after a visit was re-pointed");
    assert_eq!(patients(&mut r.copy("SE-C")), BTreeSet::from([3]));

    // A referral makes a member too; a care unit changing caregiver moves
    // its visits, and their patients follow.
    r.sql("INSERT INTO dbo.Remiss VALUES (1, 4, N'EC'); UPDATE dbo.Vardenhet SET HsaId = N'EC' WHERE Id = 2");
    r.cycle();
    r.converged("after a referral and a care unit moved");
    assert_eq!(patients(&mut r.copy("SE-C")), BTreeSet::from([1, 3, 4]));
    assert!(patients(&mut r.copy("SE-B")).is_empty());

    // A patient deleted (its care first): gone from every copy that had it.
    r.sql("DELETE FROM dbo.Remiss WHERE PatientId = 4; DELETE FROM dbo.Besok WHERE PatientId = 4; DELETE FROM dbo.PatientAdress WHERE PatientId = 4; DELETE FROM dbo.Patient WHERE Id = 4");
    r.cycle();
    r.converged("after a patient was deleted");

    r.isolated();
    assert!(!r.ever.borrow()["SE-C"].contains(&2));
}

#[test]
fn listed_patients_and_members_are_the_union() {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', 1), (2, N'Två', 2), (3, N'Tre', 4);
         INSERT INTO dbo.Besok VALUES (10, 1, 2, NULL), (30, 3, 3, NULL)",
    );
    r.cycle();
    r.converged("after onboarding");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::from([1, 2]));
    // Listed elsewhere: the listing leaves B, the visit keeps patient 2 at
    // B? No visit: it leaves B and arrives at A.
    r.sql("UPDATE dbo.Patient SET ListadVardenhetId = 1 WHERE Id = 2");
    r.cycle();
    r.converged("after a listing moved");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::from([1]));
    // The visit at B goes; patient 1 stays listed at A only.
    r.sql("DELETE FROM dbo.Besok WHERE Id = 10");
    r.cycle();
    r.converged("after the visit went");
    assert!(patients(&mut r.copy("SE-B")).is_empty());
    r.isolated();
}

/// Random care over many cycles: patients visiting several caregivers,
/// visits moving and re-pointed, referrals, addresses, care units changing
/// caregiver, patients merged, deleted and new, and a caregiver's snapshot
/// in between; every copy equals what the source says after every cycle.
#[test]
fn membership_converges_under_random_changes() {
    let seeds: Vec<u64> = match std::env::var("CTFERRY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => vec![0x5eed_1234, 0xc0ff_ee11, 0x0dd_ba11],
    };
    for seed in seeds {
        random_run(seed);
    }
}

fn random_run(seed: u64) {
    let mut rng = fixtures::Rng(seed);
    let r = Region::new(LISTED_AND_MEMBERS, true);
    let mut sql = String::new();
    for p in 1..=8 {
        let listed = match rng.below(3) {
            0 => "NULL".to_string(),
            _ => (1 + rng.below(4)).to_string(),
        };
        sql.push_str(&format!(
            "INSERT INTO dbo.Patient VALUES ({p}, N'P{p}', {listed});\n"
        ));
    }
    for v in 1..=16 {
        sql.push_str(&format!(
            "INSERT INTO dbo.Besok VALUES ({v}, {}, {}, NULL);\n",
            1 + rng.below(8),
            1 + rng.below(4)
        ));
    }
    for a in 1..=8 {
        sql.push_str(&format!(
            "INSERT INTO dbo.PatientAdress VALUES ({a}, {a}, N'A{a}');\n"
        ));
    }
    r.sql(&sql);
    r.cycle();
    r.converged(&format!("seed {seed:#x}, onboarding"));
    let mut ids = Ids::default();
    for round in 0..16 {
        let sql = random_changes(&mut rng, round, &mut ids);
        r.sql(&sql);
        if round == 8 {
            r.ctferry(&["snapshot", "--subscriber", "SE-B"], "ctferry.toml");
        }
        r.cycle();
        r.converged(&format!("seed {seed:#x}, round {round}: {sql}"));
    }
    r.isolated();
}

/// The next free ids of the random changes' new rows.
struct Ids {
    visit: i64,
    patient: i64,
    remiss: i64,
    address: i64,
}

impl Default for Ids {
    fn default() -> Ids {
        Ids {
            visit: 100,
            patient: 100,
            remiss: 1,
            address: 8,
        }
    }
}

/// One to six random changes of patients, visits, referrals, addresses and
/// care units (moves in and out, merges, deletes), as one batch.
fn random_changes(rng: &mut fixtures::Rng, round: usize, ids: &mut Ids) -> String {
    let mut sql = String::new();
    for _ in 0..(1 + rng.below(6)) {
        let p = 1 + rng.below(8);
        let v = 1 + rng.below(16);
        let (iv, ip, ir) = (ids.visit, ids.patient, ids.remiss);
        match rng.below(11) {
            0 => {
                sql.push_str(&format!(
                    "INSERT INTO dbo.Besok SELECT {iv}, Id, {}, NULL FROM dbo.Patient WHERE Id = {p};\n",
                    1 + rng.below(4)
                ));
                ids.visit += 1;
            }
            1 => sql.push_str(&format!("DELETE FROM dbo.Besok WHERE Id = {v};\n")),
            2 => sql.push_str(&format!(
                "UPDATE dbo.Besok SET VardenhetId = {} WHERE Id = {v};\n",
                1 + rng.below(4)
            )),
            3 => sql.push_str(&format!(
                "UPDATE dbo.Besok SET PatientId = {p} WHERE Id = {v} AND EXISTS (SELECT 1 FROM dbo.Patient WHERE Id = {p});\n"
            )),
            4 => sql.push_str(&format!(
                "UPDATE dbo.Vardenhet SET HsaId = N'{}' WHERE Id = {};\n",
                ["EA", "EB", "EC", "EX"][rng.below(4) as usize],
                1 + rng.below(4)
            )),
            5 => sql.push_str(&format!(
                "UPDATE dbo.Patient SET Namn = N'P{p} r{round}' WHERE Id = {p};\n"
            )),
            6 => {
                sql.push_str(&format!(
                    "INSERT INTO dbo.Remiss SELECT {ir}, Id, N'{}' FROM dbo.Patient WHERE Id = {p};\n",
                    ["EA", "EB", "EC"][rng.below(3) as usize]
                ));
                ids.remiss += 1;
            }
            7 => sql.push_str(&format!(
                "DELETE FROM dbo.Remiss WHERE PatientId = {p}; DELETE FROM dbo.Besok WHERE PatientId = {p}; DELETE FROM dbo.PatientAdress WHERE PatientId = {p}; DELETE FROM dbo.Patient WHERE Id = {p};\n"
            )),
            8 => {
                let a = 1 + rng.below(ids.address as u64);
                sql.push_str(&match rng.below(4) {
                    0 => format!("DELETE FROM dbo.PatientAdress WHERE Id = {a};\n"),
                    1 => format!("UPDATE dbo.PatientAdress SET PatientId = {p} WHERE Id = {a} AND EXISTS (SELECT 1 FROM dbo.Patient WHERE Id = {p});\n"),
                    2 => format!("UPDATE dbo.PatientAdress SET Adress = N'A{a} r{round}' WHERE Id = {a};\n"),
                    _ => {
                        ids.address += 1;
                        let ia = ids.address;
                        format!("INSERT INTO dbo.PatientAdress SELECT {ia}, Id, N'A{ia}' FROM dbo.Patient WHERE Id = {p};\n")
                    }
                });
            }
            9 => {
                // Two records of one patient merged: everything of
                // the duplicate moves to the other, the duplicate goes.
                let dup = 1 + rng.below(8);
                if dup != p {
                    sql.push_str(&format!(
                        "IF EXISTS (SELECT 1 FROM dbo.Patient WHERE Id = {p}) BEGIN \
                         UPDATE dbo.Besok SET PatientId = {p} WHERE PatientId = {dup}; \
                         UPDATE dbo.Remiss SET PatientId = {p} WHERE PatientId = {dup}; \
                         UPDATE dbo.PatientAdress SET PatientId = {p} WHERE PatientId = {dup}; \
                         DELETE FROM dbo.Patient WHERE Id = {dup}; END;\n"
                    ));
                }
            }
            _ => {
                sql.push_str(&format!(
                    "INSERT INTO dbo.Patient VALUES ({ip}, N'N{ip}', NULL); INSERT INTO dbo.Besok VALUES ({iv}, {ip}, {}, NULL);\n",
                    1 + rng.below(4)
                ));
                ids.patient += 1;
                ids.visit += 1;
            }
        }
    }
    sql
}

/// A region (`LISTED_AND_MEMBERS`, a copy per caregiver) with `many_rows`,
/// its snapshots written in steps of `step_rows` rows.
fn region_in_steps(step_rows: usize, rng: &mut fixtures::Rng) -> Region {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    r.step_rows(step_rows);
    many_rows(&r, rng);
    r
}

/// Patients, visits, referrals and addresses enough for a snapshot of many
/// steps.
fn many_rows(r: &Region, rng: &mut fixtures::Rng) {
    let mut sql = String::new();
    for p in 1..=30 {
        let listed = match rng.below(3) {
            0 => "NULL".to_string(),
            _ => (1 + rng.below(4)).to_string(),
        };
        sql.push_str(&format!(
            "INSERT INTO dbo.Patient VALUES ({p}, N'P{p}', {listed});\n"
        ));
        sql.push_str(&format!(
            "INSERT INTO dbo.PatientAdress VALUES ({p}, {p}, N'A{p}');\n"
        ));
    }
    for v in 1..=60 {
        sql.push_str(&format!(
            "INSERT INTO dbo.Besok VALUES ({v}, {}, {}, NULL);\n",
            1 + rng.below(30),
            1 + rng.below(4)
        ));
    }
    for x in 1..=10 {
        sql.push_str(&format!(
            "INSERT INTO dbo.Remiss VALUES ({x}, {}, N'{}');\n",
            1 + rng.below(30),
            ["EA", "EB", "EC"][rng.below(3) as usize]
        ));
    }
    r.sql(&sql);
}

/// Runs `args` while a writer keeps changing the source (random changes,
/// each batch one transaction); returns how many batches it committed. The
/// care relations after each batch count as ones the caregivers had
/// (`isolated`).
fn with_writer(r: &Region, seed: u64, ids: &mut Ids, args: &[&str]) -> usize {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut db = r.w.pmo();
    r.remember_care(cared_for(&mut db, r.listed));
    let listed = r.listed;
    let (made, care) = std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let mut rng = fixtures::Rng(seed);
            let mut made = 0;
            let mut round = 100;
            let mut care: Vec<(String, BTreeSet<i64>)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let sql = random_changes(&mut rng, round, ids);
                round += 1;
                let batch = format!("BEGIN TRANSACTION;\n{sql}COMMIT;");
                if db.execute(&batch).is_ok() {
                    made += 1;
                    care.extend(cared_for(&mut db, listed));
                } else {
                    let _ = db.execute("IF @@TRANCOUNT > 0 ROLLBACK");
                }
            }
            (made, care)
        });
        r.ctferry(args, "ctferry.toml");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.join().unwrap()
    });
    r.remember_care(care);
    made
}

/// A snapshot read in steps of a few rows (each its own short read at the
/// source, its own parts and commit) while the source keeps changing:
/// every copy holds exactly what the source says after the cycles that
/// follow, and no caregiver was sent a patient it never had care for.
#[test]
fn a_snapshot_in_steps_converges_while_the_source_changes() {
    let seeds: Vec<u64> = match std::env::var("CTFERRY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => vec![0x51e9_0001, 0x51e9_0002, 102, 103],
    };
    for seed in seeds {
        let mut rng = fixtures::Rng(seed);
        let r = region_in_steps(3, &mut rng);
        let mut ids = Ids::default();
        let made = with_writer(&r, seed, &mut ids, &["once"]);
        assert!(made > 0, "the writer made no change during the snapshot");
        let parts = r.w.packages("outbox/SE-A");
        assert!(
            parts.keys().filter(|f| f.contains("snapshot")).count() > 2,
            "not read in steps: {:?}",
            parts.keys()
        );
        r.cycle();
        r.cycle();
        r.converged(&format!(
            "seed {seed:#x}, after onboarding in steps ({made} batches during it)"
        ));
        // A new snapshot of one caregiver, in steps, while the source changes.
        let made = with_writer(
            &r,
            seed ^ 0xffff,
            &mut ids,
            &["snapshot", "--subscriber", "SE-B"],
        );
        r.cycle();
        r.cycle();
        r.converged(&format!(
            "seed {seed:#x}, after a new snapshot of SE-B in steps ({made} batches during it)"
        ));
        r.isolated();
    }
}

/// kill -9 in the middle of a snapshot read in steps: the next run goes
/// on from the step that was lost (the parts registered before stay, byte
/// for byte, and are delivered as they were), and the copies converge.
#[test]
fn kill_9_mid_snapshot_resumes_at_its_next_step() {
    let mut rng = fixtures::Rng(0x6b11_0009);
    let r = region_in_steps(4, &mut rng);
    assert!(
        r.w.killed_after(&["once"], "snapshot-written", 6),
        "the 7th step was not reached"
    );
    let before = r.w.packages("outbox/SE-A");
    assert!(before.len() >= 5, "{:?}", before.keys());
    assert!(
        r.w.packages("out/A").is_empty(),
        "parts of an unfinished snapshot were delivered"
    );
    // The operator sees how far it came.
    let (_, out, err) =
        fixtures::run_ctferry(&["status"], &r.w.path("ctferry.toml"), &[("PW", world::PW)]);
    assert!(
        out.contains("SE-A: snapshot being written (onboarding: ") && out.contains(" rows in "),
        "{out}{err}"
    );
    // The source changes while the publisher is down.
    r.sql("UPDATE dbo.Besok SET VardenhetId = 2 WHERE Id IN (1, 2, 3); DELETE FROM dbo.PatientAdress WHERE Id = 30");
    r.cycle();
    r.converged("after kill -9 mid-snapshot and a restart");
    let delivered = r.w.packages("out/A");
    // The last file written before the kill was not registered: it is
    // written again (its creation time differs). Every other one is kept.
    let mut kept: Vec<&String> = before.keys().collect();
    kept.sort();
    kept.pop();
    for f in kept {
        assert_eq!(
            delivered.get(f),
            before.get(f),
            "{f}: the snapshot started over instead of resuming"
        );
    }
    r.isolated();
}

/// `ctferry run` gives snapshot steps one interval per cycle: a snapshot
/// too big for it continues at the next cycle (the other caregivers'
/// changes keep flowing meanwhile), a SIGTERM lets the step under way
/// finish and stops, and the next run finishes the snapshot; the copies
/// converge.
#[test]
fn run_writes_a_large_snapshot_over_several_cycles_and_stops_between_steps() {
    use std::io::{BufRead, BufReader};
    let mut rng = fixtures::Rng(0x00c0_ffee);
    let r = region_in_steps(1, &mut rng);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["run", "--every", "1s", "-c"])
        .arg(r.w.path("ctferry.toml"))
        .env("PW", world::PW)
        // One step takes 1.5 s: longer than the cycle's 1 s for steps.
        .env("CTFERRY_FAILPOINT", "snapshot-step-committed")
        .env("CTFERRY_FAILPOINT_PAUSE_MS", "1500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let continued = loop {
        let Some(Ok(line)) = lines.next() else {
            break false;
        };
        seen.push(line.clone());
        if line.contains("continues at the next cycle") {
            break true;
        }
        if seen.iter().filter(|l| l.starts_with("cycle:")).count() >= 3 {
            break false;
        }
    };
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        continued,
        "no cycle left a snapshot for the next: {seen:#?}"
    );
    assert!(
        status.success(),
        "run did not stop cleanly on SIGTERM: {status:?}"
    );
    r.cycle();
    r.cycle();
    r.converged("after a snapshot written over several cycles of `run`");
    r.isolated();
}

/// A snapshot under way starts over when the published tables change
/// under it (here a mask): the parts it had written are taken back (never
/// delivered), the caregiver's chain goes on from where it stood, and the
/// copy applies the new snapshot.
#[test]
fn a_snapshot_whose_tables_change_under_it_starts_over() {
    let mut rng = fixtures::Rng(0x0b5e_55ed);
    let r = region_in_steps(4, &mut rng);
    assert!(
        r.w.killed_after(&["once"], "snapshot-written", 4),
        "the 5th step was not reached"
    );
    let abandoned = r.w.packages("outbox/SE-A");
    assert!(!abandoned.is_empty());
    let path = r.w.path("ctferry.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "name = \"dbo.PatientAdress\"\n",
            "name = \"dbo.PatientAdress\"\nmask = { Adress = \"N'(skyddad)'\" }\n",
            1,
        ),
    )
    .unwrap();
    let out = r.cycle();
    assert!(out.contains("starts over"), "{out}");
    // A new part may have an abandoned one's name (its sequence and
    // versions), never its bytes (another epoch).
    let now = r.w.packages("outbox/SE-A");
    let delivered = r.w.packages("out/A");
    for (f, bytes) in &abandoned {
        assert_ne!(
            now.get(f),
            Some(bytes),
            "{f} of the abandoned snapshot is still in the outbox"
        );
        assert_ne!(
            delivered.get(f),
            Some(bytes),
            "{f} of the abandoned snapshot was delivered"
        );
    }
    let mut copy = r.copy("SE-A");
    let masked = texts(&mut copy, "SELECT DISTINCT Adress FROM dbo.PatientAdress");
    assert!(masked.iter().all(|a| a == "(skyddad)"), "{masked:?}");
    let mut pmo = r.w.pmo();
    let want = ints(
        &mut pmo,
        "SELECT a.Id FROM dbo.PatientAdress a JOIN dbo.Patient p ON p.Id = a.PatientId WHERE EXISTS (SELECT 1 FROM dbo.Besok b JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE b.PatientId = p.Id AND v.HsaId = N'EA') OR EXISTS (SELECT 1 FROM dbo.Remiss x WHERE x.PatientId = p.Id AND x.HsaId = N'EA') OR EXISTS (SELECT 1 FROM dbo.Vardenhet v WHERE v.Id = p.ListadVardenhetId AND v.HsaId = N'EA')",
    );
    assert_eq!(ints(&mut copy, "SELECT Id FROM dbo.PatientAdress"), want);
}

#[test]
fn check_says_membership_keeps_references_complete() {
    let r = Region::new(MEMBERS, false);
    let out = r.ctferry(&["check", "--json"], "ctferry.toml");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let refs = v["references"].as_array().unwrap();
    let judged = |from: &str| {
        refs.iter()
            .find(|x| x["from"] == from && x["to"] == "dbo.Patient")
            .unwrap_or_else(|| panic!("{out}"))
            .clone()
    };
    assert_eq!(judged("dbo.Besok")["complete"], true, "{out}");
    assert_eq!(judged("dbo.Remiss")["complete"], true, "{out}");
}

/// kill -9 at each of the cycle's commit boundaries, while patients move
/// in and out: the next cycle loses and duplicates nothing.
#[test]
fn kill_9_mid_cycle_loses_no_move_in_or_move_out() {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', NULL), (2, N'Två', 1);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (11, 2, 2, NULL);
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Ett 1'), (2, 2, N'Två 2')",
    );
    r.cycle();
    r.converged("after onboarding");
    let steps = [
        ("cycle-committed", "UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 10"),
        ("delta-written", "UPDATE dbo.Besok SET PatientId = 1 WHERE Id = 11"),
        ("snapshot-written", "INSERT INTO dbo.Remiss VALUES (1, 2, N'EB')"),
        ("cycle-committed", "DELETE FROM dbo.Besok WHERE Id = 10; UPDATE dbo.Patient SET Namn = N'Ett!' WHERE Id = 1"),
    ];
    for (point, change) in steps {
        r.sql(change);
        let args: &[&str] = if point == "snapshot-written" {
            &["snapshot", "--subscriber", "SE-B"]
        } else {
            &["once"]
        };
        assert!(r.w.killed_at(args, point), "{point} was not reached");
        r.cycle();
        r.converged(&format!("after kill -9 at {point} ({change})"));
    }
    r.isolated();
}

/// A membership rule that cannot hold is refused before anything is read,
/// saying what to write instead; one that follows no foreign key is named
/// by `check`.
#[test]
fn a_membership_rule_that_cannot_hold_is_refused() {
    let r = Region::new(MEMBERS, false);
    let original = std::fs::read_to_string(r.w.path("ctferry.toml")).unwrap();
    let refused = |from: &str, to: &str| {
        assert!(original.contains(from), "{from}");
        std::fs::write(r.w.path("ctferry.toml"), original.replace(from, to)).unwrap();
        let (ok, out, err) =
            fixtures::run_ctferry(&["check"], &r.w.path("ctferry.toml"), &[("PW", PW)]);
        assert!(!ok, "accepted:\n{out}");
        err + &out
    };
    let cases = [
        (
            MEMBERS,
            r#"owner = { members = ["dbo.Okand(PatientId)"] }"#,
            "dbo.Okand is not published",
        ),
        (
            MEMBERS,
            r#"owner = { members = ["dbo.Patient(Id)"] }"#,
            "the table itself",
        ),
        (MEMBERS, r#"owner = { members = [] }"#, "members is empty"),
        (
            MEMBERS,
            r#"owner = { members = ["dbo.Besok"] }"#,
            "a member is written `schema.Table(Column)`",
        ),
        (
            MEMBERS,
            r#"owner = { column = "X", path = "A -> dbo.B(Id).C" }"#,
            "both a column and a path",
        ),
        (
            MEMBERS,
            r#"owner = { members = ["dbo.Besok(PatientId)", "dbo.besok(patientid)"] }"#,
            "twice",
        ),
        (
            "owner = { column = \"HsaId\" }",
            "owner = \"shared\"",
            "dbo.Remiss is shared",
        ),
        (
            "owner = { column = \"HsaId\" }",
            "owner = { path = \"PatientId -> dbo.Patient(Id)\" }",
            "membership rules form a loop (dbo.Patient -> dbo.Remiss -> dbo.Patient)",
        ),
        (
            MEMBERS,
            r#"owner = { members = ["dbo.Besok(VardenhetId)"] }"#,
            "does not follow a foreign key to dbo.Patient(Id)",
        ),
    ];
    for (from, to, says) in cases {
        let err = refused(from, to);
        assert!(err.contains(says), "{to}: {err}");
    }
    std::fs::write(r.w.path("ctferry.toml"), original).unwrap();
}

/// The statements a cycle sends to the source do not grow with the number
/// of caregivers: the same changes, with 3 and with 103 caregivers.
#[test]
fn membership_statements_do_not_grow_with_caregivers() {
    let mut counts = Vec::new();
    for extra in [0, 100] {
        let r = Region::with_extra(LISTED_AND_MEMBERS, true, extra);
        r.sql(
            "INSERT INTO dbo.Patient VALUES (1, N'Ett', 1), (2, N'Två', 2);
             INSERT INTO dbo.Besok VALUES (10, 1, 2, NULL), (11, 2, 3, NULL);
             INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Ett 1')",
        );
        r.ctferry(&["once"], "ctferry.toml");
        r.sql(
            "UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 10; INSERT INTO dbo.Besok VALUES (12, 2, 1, NULL);
             UPDATE dbo.Patient SET Namn = N'Ett!' WHERE Id = 1; INSERT INTO dbo.Remiss VALUES (1, 1, N'EB')",
        );
        let out = r.ctferry(&["once"], "ctferry.toml");
        assert!(out.contains("0 snapshot(s)"), "{out}");
        let n: u64 = out
            .lines()
            .next()
            .unwrap_or_default()
            .split(", ")
            .find_map(|p| p.strip_suffix(" statements"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no statement count in {out}"));
        counts.push(n);
    }
    assert_eq!(counts[0], counts[1], "statements with 3 and 103 caregivers");
}

/// Membership through a composite key (`members = ["dbo.Handelse(Land,
/// Nr)"]`): an account is in the copy while one of its events is, in
/// snapshots and in deltas.
#[test]
fn membership_through_a_composite_key() {
    let w = world::World::new(&[
        "CREATE TABLE dbo.Konto (Land char(2) NOT NULL, Nr int NOT NULL, Namn nvarchar(50) NOT NULL, PRIMARY KEY (Land, Nr))".into(),
        "CREATE TABLE dbo.Handelse (Id int NOT NULL PRIMARY KEY, Land char(2) NOT NULL, Nr int NOT NULL, HsaId nvarchar(40) NOT NULL, FOREIGN KEY (Land, Nr) REFERENCES dbo.Konto (Land, Nr))".into(),
        "ALTER TABLE dbo.Konto ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Handelse ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Konto VALUES ('SE', 1, N'ett'), ('SE', 2, N'två'), ('NO', 1, N'en')".into(),
        "INSERT INTO dbo.Handelse VALUES (1, 'SE', 1, N'E1'), (2, 'NO', 1, N'E2')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Konto\"\nowner = { members = [\"dbo.Handelse(Land, Nr)\"] }\n\
         [[table]]\nname = \"dbo.Handelse\"\nowner = { column = \"HsaId\" }\n",
        "[\"E1\"]",
    );
    let accounts = |w: &world::World| -> BTreeSet<String> {
        texts(
            &mut w.kopia(),
            "SELECT Land + N':' + CAST(Nr AS nvarchar(10)) + N':' + Namn FROM dbo.Konto",
        )
    };
    w.cycle();
    assert_eq!(accounts(&w), BTreeSet::from(["SE:1:ett".to_string()]));
    // Move-in of (SE, 2) and (NO, 1); an update reaches the holder.
    w.pmo()
        .execute("INSERT INTO dbo.Handelse VALUES (3, 'SE', 2, N'E1'); UPDATE dbo.Handelse SET HsaId = N'E1' WHERE Id = 2; UPDATE dbo.Konto SET Namn = N'ETT' WHERE Land = 'SE' AND Nr = 1")
        .unwrap();
    w.cycle();
    assert_eq!(
        accounts(&w),
        BTreeSet::from([
            "SE:1:ETT".to_string(),
            "SE:2:två".to_string(),
            "NO:1:en".to_string()
        ])
    );
    // Move-out: (SE, 1)'s only event goes elsewhere; (NO, 1)'s is re-pointed.
    w.pmo()
        .execute("UPDATE dbo.Handelse SET HsaId = N'E2' WHERE Id = 1; UPDATE dbo.Handelse SET Land = 'SE', Nr = 2 WHERE Id = 2")
        .unwrap();
    w.cycle();
    assert_eq!(accounts(&w), BTreeSet::from(["SE:2:två".to_string()]));
    // And `check` knows the composite foreign key.
    let out = w.run(&["check"]);
    assert!(
        out.contains("reference dbo.Handelse.Land, Nr -> dbo.Konto: complete"),
        "{out}"
    );
}

/// `check` names every foreign-key column a cycle looks rows up by that
/// leads no index (each would be a scan of the table every cycle), and the
/// string owner column a snapshot selects each caregiver's rows by, with
/// the statement that fixes it; run as written, they leave no warning. An
/// owner compared as text through a path (`dbo.Vardenhet.HsaId`) is not
/// named: no index serves that comparison.
#[test]
fn check_warns_of_lookup_columns_without_an_index() {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    // More referrals than a snapshot step reads: each caregiver's snapshot
    // would scan dbo.Remiss for its rows without an index on its owner.
    let toml = std::fs::read_to_string(r.w.path("ctferry.toml")).unwrap();
    std::fs::write(
        r.w.path("ctferry.toml"),
        toml.replacen(
            "signing_key = \"keys/region.sec.asc\"\n",
            "signing_key = \"keys/region.sec.asc\"\nsnapshot_step_rows = 1\n",
            1,
        ),
    )
    .unwrap();
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', NULL);
         INSERT INTO dbo.Remiss VALUES (1, 1, N'E1'), (2, 1, N'E2')",
    );
    let warnings = || world::index_warnings(&r.ctferry(&["check", "--json"], "ctferry.toml"));
    let first = warnings();
    for column in [
        "dbo.Patient.ListadVardenhetId",
        "dbo.Besok.VardenhetId",
        "dbo.Besok.PatientId",
        "dbo.Remiss.PatientId",
        "dbo.PatientAdress.PatientId",
        "dbo.Remiss.HsaId",
    ] {
        assert!(
            first
                .iter()
                .any(|w| w.starts_with(&format!("{column} leads no index"))),
            "{column}: {first:?}"
        );
    }
    assert!(
        first.iter().any(|w| w.starts_with("dbo.Remiss.HsaId leads no index, so each caregiver's snapshot finds its rows of dbo.Remiss by scanning the table")),
        "{first:?}"
    );
    assert!(
        !first.iter().any(|w| w.contains("Vardenhet.HsaId")),
        "{first:?}"
    );
    for w in &first {
        let fix = w.split("; ").last().unwrap();
        assert!(fix.starts_with("CREATE INDEX"), "{w}");
        r.sql(fix);
    }
    assert!(warnings().is_empty(), "{:?}", warnings());
}

/// Membership through membership: a patient belongs to every caregiver
/// that received one of its referrals, and a referral to every caregiver
/// among its receivers; the patient's address follows the patient. Random
/// changes (receivers added, removed and moved, referrals re-pointed,
/// patients renamed, addresses), a snapshot between; after every cycle the
/// copy holds exactly what the source says, whatever order the tables are
/// configured in.
#[test]
fn membership_through_membership_converges() {
    let w = world::World::new(&[
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Namn nvarchar(50) NOT NULL)".into(),
        "CREATE TABLE dbo.Remiss (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id))".into(),
        "CREATE TABLE dbo.RemissMottagare (Id int NOT NULL PRIMARY KEY, RemissId int NOT NULL REFERENCES dbo.Remiss(Id), HsaId nvarchar(40) NOT NULL)".into(),
        "CREATE TABLE dbo.PatientAdress (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), Adress nvarchar(50) NOT NULL)".into(),
        "ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.Remiss ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.RemissMottagare ENABLE CHANGE_TRACKING".into(),
        "ALTER TABLE dbo.PatientAdress ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Patient VALUES (1, N'P1'), (2, N'P2'), (3, N'P3'), (4, N'P4')".into(),
        "INSERT INTO dbo.PatientAdress VALUES (1, 1, N'A1'), (2, 2, N'A2'), (3, 3, N'A3')".into(),
        "INSERT INTO dbo.Remiss VALUES (1, 1), (2, 2), (3, 3), (4, 1)".into(),
        "INSERT INTO dbo.RemissMottagare VALUES (1, 1, N'E1'), (2, 2, N'E2'), (3, 3, N'E1'), (4, 3, N'E2')".into(),
    ]);
    // The patient first: the cycle orders the membership tables itself.
    w.configure(
        "[[table]]\nname = \"dbo.Patient\"\nowner = { members = [\"dbo.Remiss(PatientId)\"] }\n\
         [[table]]\nname = \"dbo.PatientAdress\"\nowner = { path = \"PatientId -> dbo.Patient(Id)\" }\n\
         [[table]]\nname = \"dbo.Remiss\"\nowner = { members = [\"dbo.RemissMottagare(RemissId)\"] }\n\
         [[table]]\nname = \"dbo.RemissMottagare\"\nowner = { column = \"HsaId\" }\n",
        "[\"E1\"]",
    );
    let mine = "SELECT RemissId FROM dbo.RemissMottagare WHERE HsaId = N'E1'";
    let expected = |w: &world::World| {
        let mut pmo = w.pmo();
        let patients = format!("SELECT PatientId FROM dbo.Remiss WHERE Id IN ({mine})");
        (
            texts(&mut pmo, &format!("SELECT CAST(Id AS nvarchar(9)) + N':' + Namn FROM dbo.Patient WHERE Id IN ({patients})")),
            ints(&mut pmo, &format!("SELECT Id FROM dbo.Remiss WHERE Id IN ({mine})")),
            ints(&mut pmo, "SELECT Id FROM dbo.RemissMottagare WHERE HsaId = N'E1'"),
            texts(&mut pmo, &format!("SELECT CAST(Id AS nvarchar(9)) + N':' + Adress FROM dbo.PatientAdress WHERE PatientId IN ({patients})")),
        )
    };
    let copy = |w: &world::World| {
        let mut k = w.kopia();
        (
            texts(
                &mut k,
                "SELECT CAST(Id AS nvarchar(9)) + N':' + Namn FROM dbo.Patient",
            ),
            ints(&mut k, "SELECT Id FROM dbo.Remiss"),
            ints(&mut k, "SELECT Id FROM dbo.RemissMottagare"),
            texts(
                &mut k,
                "SELECT CAST(Id AS nvarchar(9)) + N':' + Adress FROM dbo.PatientAdress",
            ),
        )
    };
    w.cycle();
    assert_eq!(copy(&w), expected(&w), "after onboarding");
    assert_eq!(copy(&w).0.len(), 2, "patients 1 and 3");
    let mut rng = fixtures::Rng(0x0e57_ed00);
    let (mut next_r, mut next_m, mut next_a) = (10, 10, 10);
    for round in 0..14 {
        let mut sql = String::new();
        for _ in 0..(1 + rng.below(4)) {
            let p = 1 + rng.below(4);
            let r = 1 + rng.below(next_r as u64 - 1);
            let m = 1 + rng.below(next_m as u64 - 1);
            let hsa = ["E1", "E2"][rng.below(2) as usize];
            sql.push_str(&match rng.below(8) {
                0 => {
                    next_m += 1;
                    format!("INSERT INTO dbo.RemissMottagare SELECT {}, Id, N'{hsa}' FROM dbo.Remiss WHERE Id = {r};\n", next_m - 1)
                }
                1 => format!("DELETE FROM dbo.RemissMottagare WHERE Id = {m};\n"),
                2 => format!("UPDATE dbo.RemissMottagare SET HsaId = N'{hsa}' WHERE Id = {m};\n"),
                3 => format!("UPDATE dbo.Remiss SET PatientId = {p} WHERE Id = {r};\n"),
                4 => format!("UPDATE dbo.Patient SET Namn = N'P{p} r{round}' WHERE Id = {p};\n"),
                5 => {
                    next_a += 1;
                    format!("INSERT INTO dbo.PatientAdress VALUES ({}, {p}, N'A{p} r{round}');\n", next_a - 1)
                }
                6 => {
                    next_r += 1;
                    format!("INSERT INTO dbo.Remiss VALUES ({}, {p});\n", next_r - 1)
                }
                _ => format!("DELETE FROM dbo.PatientAdress WHERE Id = {};\n", 1 + rng.below(next_a as u64 - 1)),
            });
        }
        w.pmo().execute(&sql).unwrap();
        if round == 7 {
            w.run(&["snapshot", "--subscriber", "SE-NORR"]);
        }
        w.cycle();
        assert_eq!(copy(&w), expected(&w), "round {round}: {sql}");
    }
}

/// A care unit changes caregiver in the configuration (issue 19): SE-C
/// gains EB from SE-B, which gets unit 4's key instead; the visits move
/// and the patients follow them, as deltas, without a new epoch.
#[test]
fn a_partition_key_changing_hands_moves_the_patients_too() {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', 2), (2, N'Två', NULL), (3, N'Tre', 4);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (11, 2, 2, NULL), (12, 3, 4, NULL);
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Ett 1'), (2, 2, N'Två 2'), (3, 3, N'Tre 3')",
    );
    r.cycle();
    r.converged("before");
    let toml = std::fs::read_to_string(r.w.path("ctferry.toml")).unwrap();
    let toml = toml
        .replace("keys = [\"EB\"]", "keys = [\"EX\"]")
        .replace("keys = [\"EC\"]", "keys = [\"EC\", \"EB\"]");
    std::fs::write(r.w.path("ctferry.toml"), toml).unwrap();
    let out = r.cycle();
    assert!(!out.contains("snapshot for"), "{out}");
    assert!(
        out.contains("partition keys of SE-B changed (gained EX; lost EB)"),
        "{out}"
    );
    assert!(
        out.contains("partition keys of SE-C changed (gained EB)"),
        "{out}"
    );
    // What the source says with the new keys: EB's rows at SE-C, EX's at SE-B.
    for (hsa, keys) in [("SE-A", "EA"), ("SE-B", "EX"), ("SE-C", "EC,EB")] {
        let mut copy = r.copy(hsa);
        let want = {
            let mut pmo = r.w.pmo();
            let ks: Vec<String> = keys.split(',').map(|k| format!("N'{k}'")).collect();
            let ks = ks.join(", ");
            ints(
                &mut pmo,
                &format!(
                    "SELECT p.Id FROM dbo.Patient p WHERE \
                     EXISTS (SELECT 1 FROM dbo.Besok b JOIN dbo.Vardenhet v ON v.Id = b.VardenhetId WHERE b.PatientId = p.Id AND v.HsaId IN ({ks})) \
                     OR EXISTS (SELECT 1 FROM dbo.Vardenhet v WHERE v.Id = p.ListadVardenhetId AND v.HsaId IN ({ks}))"
                ),
            )
        };
        assert_eq!(patients(&mut copy), want, "{hsa}");
        assert_eq!(
            ints(&mut copy, "SELECT PatientId FROM dbo.PatientAdress"),
            want,
            "{hsa}'s addresses"
        );
    }
}

/// Columns added with values to a membership table (patients) and to the
/// member table that makes the memberships (visits), accepted while
/// visits move (issue 19): both tables' rows travel again in the same
/// delta as the moves, with no new epoch, and every copy ends exact,
/// the new columns included.
#[test]
fn columns_added_to_membership_tables_travel_without_a_new_epoch() {
    let r = Region::new(MEMBERS, false);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', NULL), (2, N'Två', NULL), (3, N'Tre', NULL);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (20, 2, 1, NULL), (21, 2, 2, NULL), (30, 3, 3, NULL);
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1')",
    );
    r.cycle();
    r.converged("after onboarding");
    r.sql(
        "ALTER TABLE dbo.Patient ADD Blodgrupp nvarchar(5) NULL;
         UPDATE dbo.Patient SET Blodgrupp = N'A+' WHERE Id IN (1, 3);
         ALTER TABLE dbo.Besok ADD Rum nvarchar(10) NULL;
         UPDATE dbo.Besok SET Rum = N'R' + CAST(Id AS nvarchar(5));
         UPDATE dbo.Besok SET VardenhetId = 2 WHERE Id = 10",
    );
    let out = r.cycle();
    assert!(
        out.contains("held back") && out.contains("0 snapshot(s)"),
        "{out}"
    );
    r.converged("columns held, a visit moved");
    r.ctferry(
        &["schema", "accept", "--table", "dbo.Patient"],
        "ctferry.toml",
    );
    r.ctferry(
        &["schema", "accept", "--table", "dbo.Besok"],
        "ctferry.toml",
    );
    r.sql("UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 20; INSERT INTO dbo.Besok VALUES (31, 1, 3, NULL, N'R31')");
    let out = r.cycle();
    assert!(
        out.contains("0 snapshot(s)")
            && out.contains("dbo.Patient: column Blodgrupp added; Blodgrupp already holds values")
            && out.contains("dbo.Besok: column Rum added; Rum already holds values"),
        "{out}"
    );
    r.converged("columns published with values, visits moved");
    for (hsa, key) in SUBSCRIBERS {
        let mut copy = r.copy(hsa);
        let got = texts(
            &mut copy,
            "SELECT CAST(Id AS nvarchar(20)) + N':' + ISNULL(Blodgrupp, N'-') FROM dbo.Patient",
        );
        let ids: Vec<String> = r
            .expected(key)
            .0
            .iter()
            .map(|p| p.split(':').next().unwrap().to_string())
            .collect();
        let want = if ids.is_empty() {
            BTreeSet::new()
        } else {
            texts(
                &mut r.w.pmo(),
                &format!("SELECT CAST(Id AS nvarchar(20)) + N':' + ISNULL(Blodgrupp, N'-') FROM dbo.Patient WHERE Id IN ({})", ids.join(", ")),
            )
        };
        assert_eq!(got, want, "{hsa}");
        let rooms = texts(
            &mut copy,
            "SELECT CAST(Id AS nvarchar(20)) + N':' + Rum FROM dbo.Besok",
        );
        assert_eq!(rooms.len(), r.expected(key).1.len(), "{hsa}: {rooms:?}");
        assert!(
            rooms
                .iter()
                .all(|x| x.ends_with(&format!("R{}", x.split(':').next().unwrap()))),
            "{rooms:?}"
        );
    }
    r.isolated();
}

/// Change tracking begins again on the member table (visits) and then on
/// the membership table (patients), with changes in between that it never
/// saw (issue 19): a visit moved and one deleted, a patient renamed and
/// one re-pointed. No new epoch: the visits are re-sent, the patients'
/// holders learnt again (the patients themselves reloaded when their own
/// history is lost), and every copy ends exact, with nothing sent where
/// it does not belong.
#[test]
fn a_membership_table_s_lost_history_is_learnt_again_without_a_new_epoch() {
    let r = Region::new(LISTED_AND_MEMBERS, true);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', 1), (2, N'Två', NULL), (3, N'Tre', NULL), (4, N'Fyra', 4);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (20, 2, 1, NULL), (21, 2, 2, NULL), (30, 3, 3, NULL), (40, 4, 2, NULL);
         INSERT INTO dbo.Remiss VALUES (1, 3, N'EB');
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1'), (2, 2, N'Lillgatan 2'), (3, 3, N'Tregatan 3')",
    );
    r.cycle();
    r.converged("after onboarding");
    // Visits: tracking off while they change, then on again.
    r.sql(
        "ALTER TABLE dbo.Besok DISABLE CHANGE_TRACKING;
         UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 20;
         DELETE FROM dbo.Besok WHERE Id = 21;
         INSERT INTO dbo.Besok VALUES (22, 2, 3, N'ny');
         ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING",
    );
    let out = r.cycle();
    assert!(out.contains("0 snapshot(s)"), "{out}");
    assert!(
        out.contains("dbo.Besok re-sent") && out.contains("dbo.Patient re-sent"),
        "{out}"
    );
    r.converged("after the visits' history was lost");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::from([3, 4]));
    // Patients: the same, with the rows changing unseen.
    r.sql(
        "ALTER TABLE dbo.Patient DISABLE CHANGE_TRACKING;
         UPDATE dbo.Patient SET Namn = N'Ett (ändrad)' WHERE Id = 1;
         UPDATE dbo.Patient SET ListadVardenhetId = 3 WHERE Id = 4;
         ALTER TABLE dbo.Patient ENABLE CHANGE_TRACKING",
    );
    let out = r.cycle();
    assert!(
        out.contains("0 snapshot(s)") && out.contains("dbo.Patient re-sent"),
        "{out}"
    );
    r.converged("after the patients' history was lost");
    // And changes flow as deltas again.
    r.sql(
        "DELETE FROM dbo.Besok WHERE Id = 30; UPDATE dbo.Patient SET Namn = N'Tre B' WHERE Id = 3",
    );
    let out = r.cycle();
    assert!(!out.contains("re-sent"), "{out}");
    r.converged("after more changes");
    r.isolated();
    let status = r.ctferry(&["apply", "--status"], "apply-A.toml");
    assert!(status.contains("epoch 1"), "{status}");
}

/// A membership table and its follower added to the configuration of a
/// running setup (issue 19): created and loaded at every copy with the
/// patients each caregiver has care of, their references learnt from the
/// visits and referrals already published; then moves flow as deltas. No
/// new epoch.
#[test]
fn a_membership_table_added_to_a_running_setup_is_loaded_without_a_new_epoch() {
    let r = Region::new(MEMBERS, false);
    let full = std::fs::read_to_string(r.w.path("ctferry.toml")).unwrap();
    // Start without the patients and their addresses.
    let start = full.find("[[table]]\nname = \"dbo.Patient\"").unwrap();
    let end = full.find("[[table]]\nname = \"dbo.Besok\"").unwrap();
    let without = format!("{}{}", &full[..start], &full[end..]).replace(
        "[[table]]\nname = \"dbo.PatientAdress\"\nowner = { path = \"PatientId -> dbo.Patient(Id)\" }\n",
        "",
    );
    std::fs::write(r.w.path("ctferry.toml"), &without).unwrap();
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', NULL), (2, N'Två', NULL), (3, N'Tre', NULL);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (20, 2, 1, NULL), (21, 2, 2, NULL);
         INSERT INTO dbo.Remiss VALUES (1, 3, N'EC');
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1'), (2, 2, N'Lillgatan 2')",
    );
    let out = r.ctferry(&["once"], "ctferry.toml");
    assert!(out.contains("3 snapshot(s)"), "{out}");
    for (hsa, _) in SUBSCRIBERS {
        r.ctferry(&["apply"], &format!("apply-{}.toml", &hsa[3..]));
    }
    std::fs::write(r.w.path("ctferry.toml"), &full).unwrap();
    r.sql("UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 10");
    let out = r.cycle();
    assert!(
        out.contains("0 snapshot(s)")
            && out.contains("dbo.Patient: added to the configuration")
            && out.contains("dbo.PatientAdress: added to the configuration"),
        "{out}"
    );
    r.converged("after the patients were added");
    assert_eq!(patients(&mut r.copy("SE-C")), BTreeSet::from([1, 3]));
    // B's only visit of patient 2 deleted: the patient leaves B (known
    // only by the reference learnt from the visit when the patients were
    // added), and stays at A.
    r.sql("DELETE FROM dbo.Besok WHERE Id = 21");
    let out = r.cycle();
    assert!(!out.contains("added"), "{out}");
    r.converged("after a visit deleted");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::new());
    assert_eq!(patients(&mut r.copy("SE-A")), BTreeSet::from([2]));
    // A visit moved takes its patient out and in.
    r.sql("UPDATE dbo.Besok SET VardenhetId = 3 WHERE Id = 20");
    r.cycle();
    r.converged("after a move");
    r.isolated();
}

/// The patients' owner rule changed in the configuration (listed patients
/// now count too): their holders are learnt again by the new rule, and the
/// addresses that follow them; no new epoch.
#[test]
fn a_membership_rule_changed_in_the_configuration_is_learnt_without_a_new_epoch() {
    let r = Region::new(MEMBERS, false);
    r.sql(
        "INSERT INTO dbo.Patient VALUES (1, N'Ett', 2), (2, N'Två', NULL), (3, N'Tre', 3);
         INSERT INTO dbo.Besok VALUES (10, 1, 1, NULL), (20, 2, 1, NULL);
         INSERT INTO dbo.PatientAdress VALUES (1, 1, N'Storgatan 1'), (3, 3, N'Tregatan 3')",
    );
    r.cycle();
    r.converged("after onboarding");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::new());
    let cfg = std::fs::read_to_string(r.w.path("ctferry.toml"))
        .unwrap()
        .replace(MEMBERS, LISTED_AND_MEMBERS);
    std::fs::write(r.w.path("ctferry.toml"), cfg).unwrap();
    let r = Region { listed: true, ..r };
    let out = r.cycle();
    assert!(
        out.contains("0 snapshot(s)")
            && out.contains("its owner rule changed in the configuration"),
        "{out}"
    );
    r.converged("after the rule changed");
    assert_eq!(patients(&mut r.copy("SE-B")), BTreeSet::from([1]));
    assert_eq!(patients(&mut r.copy("SE-C")), BTreeSet::from([3]));
    r.isolated();
}
