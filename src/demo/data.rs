//! The demo's PMO-like source database, generated deterministically: the
//! caregivers and their care units, patients, visits, journal notes,
//! diagnoses with a shared code list, patients' addresses, and users whose
//! password and e-mail columns are masked; and how each published table is
//! checked in a copy: against what the caregiver may hold, written from its
//! point of view (a patient with care there), and for references that
//! dangle.

use super::error::DemoError;
use crate::mssql::client::{self, Db};

/// One caregiver of the demo.
pub struct Caregiver {
    pub short: &'static str,
    pub hsa: &'static str,
    pub name: &'static str,
    pub subscribed: bool,
}

pub const CAREGIVERS: [Caregiver; 4] = [
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

pub const UNITS_PER_CAREGIVER: i64 = 4;
pub const PATIENTS: i64 = 20_000;
pub const VISITS: i64 = 40_000;
pub const DIAGNOSES: i64 = 12_000;
pub const CODES: i64 = 200;
pub const USERS: i64 = 160;

/// A published table: how the demo checks a copy against the source.
pub struct Table {
    pub name: &'static str,
    /// Columns as the copy has them (masked ones hold the mask's value).
    pub columns: &'static str,
    /// The same columns read from the source, masks applied.
    pub source_columns: &'static str,
    /// FROM … JOIN … up to the owner column, aliased `x` for the table.
    pub from: &'static str,
    /// Which rows the caregiver @P1 (its HSA id) holds, written from the
    /// caregiver's point of view, independently of ctferry's rules (None:
    /// shared).
    pub filter: Option<&'static str>,
    pub key: &'static str,
}

/// A patient with care at caregiver @P1: listed at one of its units, or
/// with a visit at one. (`p` is the patient.)
macro_rules! cared_for {
    () => {
        "(p.ListadVardenhetId IN (SELECT lv.Id FROM dbo.Vardenhet AS lv WHERE lv.VardgivareHsaId = @P1) \
         OR p.Id IN (SELECT b.PatientId FROM dbo.Besok AS b JOIN dbo.Vardenhet AS bv ON bv.Id = b.VardenhetId WHERE bv.VardgivareHsaId = @P1))"
    };
}

pub const TABLES: [Table; 9] = [
    Table { name: "dbo.Vardgivare", columns: "Id, HsaId, Namn", source_columns: "x.Id, x.HsaId, x.Namn", from: "dbo.Vardgivare AS x", filter: Some("x.HsaId = @P1"), key: "Id" },
    Table { name: "dbo.Vardenhet", columns: "Id, HsaId, VardgivareHsaId, Namn", source_columns: "x.Id, x.HsaId, x.VardgivareHsaId, x.Namn", from: "dbo.Vardenhet AS x", filter: Some("x.VardgivareHsaId = @P1"), key: "Id" },
    Table { name: "dbo.Patient", columns: "Id, Personnummer, Namn, ListadVardenhetId", source_columns: "p.Id, p.Personnummer, p.Namn, p.ListadVardenhetId", from: "dbo.Patient AS p", filter: Some(cared_for!()), key: "Id" },
    Table { name: "dbo.PatientAdress", columns: "Id, PatientId, Gatuadress, Postnummer", source_columns: "x.Id, x.PatientId, x.Gatuadress, x.Postnummer", from: "dbo.PatientAdress AS x JOIN dbo.Patient AS p ON p.Id = x.PatientId", filter: Some(cared_for!()), key: "Id" },
    Table { name: "dbo.Besok", columns: "Id, PatientId, VardenhetId, Tid, Orsak, Avgift", source_columns: "x.Id, x.PatientId, x.VardenhetId, x.Tid, x.Orsak, x.Avgift", from: "dbo.Besok AS x JOIN dbo.Vardenhet AS v ON v.Id = x.VardenhetId", filter: Some("v.VardgivareHsaId = @P1"), key: "Id" },
    Table { name: "dbo.Journalanteckning", columns: "Id, BesokId, Skapad, Text", source_columns: "x.Id, x.BesokId, x.Skapad, x.Text", from: "dbo.Journalanteckning AS x JOIN dbo.Besok AS b ON b.Id = x.BesokId JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId", filter: Some("v.VardgivareHsaId = @P1"), key: "Id" },
    Table { name: "dbo.Diagnos", columns: "Id, BesokId, Kod", source_columns: "x.Id, x.BesokId, x.Kod", from: "dbo.Diagnos AS x JOIN dbo.Besok AS b ON b.Id = x.BesokId JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId", filter: Some("v.VardgivareHsaId = @P1"), key: "Id" },
    Table { name: "dbo.Diagnoskod", columns: "Kod, Text", source_columns: "x.Kod, x.Text", from: "dbo.Diagnoskod AS x", filter: None, key: "Kod" },
    Table { name: "dbo.Anvandare", columns: "Id, VardenhetId, Namn, Losenord, Epost", source_columns: "x.Id, x.VardenhetId, x.Namn, CAST(NULL AS varbinary(64)), CAST(N'maskerad@example.invalid' AS nvarchar(200))", from: "dbo.Anvandare AS x JOIN dbo.Vardenhet AS v ON v.Id = x.VardenhetId", filter: Some("v.VardgivareHsaId = @P1"), key: "Id" },
];

/// dbo.Besok once the demo's column Rum is published (round 9).
pub const BESOK_WITH_RUM: Table = Table {
    name: "dbo.Besok",
    columns: "Id, PatientId, VardenhetId, Tid, Orsak, Avgift, Rum",
    source_columns: "x.Id, x.PatientId, x.VardenhetId, x.Tid, x.Orsak, x.Avgift, x.Rum",
    from: "dbo.Besok AS x JOIN dbo.Vardenhet AS v ON v.Id = x.VardenhetId",
    filter: Some("v.VardgivareHsaId = @P1"),
    key: "Id",
};

/// Prescriptions: in the source from the start, published only in round 9
/// (a table added to the configuration of a running setup).
pub const RECEPT: Table = Table { name: "dbo.Recept", columns: "Id, BesokId, Lakemedel, Utfardad", source_columns: "x.Id, x.BesokId, x.Lakemedel, x.Utfardad", from: "dbo.Recept AS x JOIN dbo.Besok AS b ON b.Id = x.BesokId JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId", filter: Some("v.VardgivareHsaId = @P1"), key: "Id" };

/// References a caregiver follows in its copy, each as a query counting the
/// rows whose referenced row is missing from the copy (a visit whose
/// patient it lacks, say): the demo checks that every one is 0.
pub const REFERENCES: [(&str, &str); 4] = [
    ("visits whose patient is missing", "SELECT COUNT(*) FROM dbo.Besok AS b WHERE NOT EXISTS (SELECT 1 FROM dbo.Patient AS p WHERE p.Id = b.PatientId)"),
    ("addresses whose patient is missing", "SELECT COUNT(*) FROM dbo.PatientAdress AS a WHERE NOT EXISTS (SELECT 1 FROM dbo.Patient AS p WHERE p.Id = a.PatientId)"),
    ("notes whose visit is missing", "SELECT COUNT(*) FROM dbo.Journalanteckning AS j WHERE NOT EXISTS (SELECT 1 FROM dbo.Besok AS b WHERE b.Id = j.BesokId)"),
    ("diagnoses whose code is missing", "SELECT COUNT(*) FROM dbo.Diagnos AS d WHERE NOT EXISTS (SELECT 1 FROM dbo.Diagnoskod AS k WHERE k.Kod = d.Kod)"),
];

/// A tiny deterministic generator (xorshift), so every run makes the same data.
pub struct Rng(u64);
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

pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
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
pub fn insert_rows(
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

pub const FIRST: [&str; 12] = [
    "Anna", "Bo", "Cecilia", "David", "Eva", "Fredrik", "Greta", "Hassan", "Ingrid", "Johan",
    "Karin", "Leila",
];
pub const LAST: [&str; 10] = [
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
pub const REASONS: [&str; 8] = [
    "Förkylning",
    "Kontroll",
    "Ryggbesvär",
    "Vaccination",
    "Huvudvärk",
    "Blodtryck",
    "Hudutslag",
    "Uppföljning",
];

pub fn units() -> Vec<(i64, String, &'static str, String)> {
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
pub fn fill_source(db: &mut Db) -> Result<u64, DemoError> {
    for s in [
        "ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON",
        "ALTER DATABASE Pmo SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 7 DAYS, AUTO_CLEANUP = ON)",
        "CREATE TABLE dbo.Vardgivare (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, VardgivareHsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)",
        "CREATE TABLE dbo.Patient (Id int NOT NULL PRIMARY KEY, Personnummer char(12) NOT NULL, Namn nvarchar(100) NOT NULL, ListadVardenhetId int NOT NULL REFERENCES dbo.Vardenhet(Id))",
        "CREATE TABLE dbo.PatientAdress (Id int NOT NULL PRIMARY KEY, PatientId int NOT NULL REFERENCES dbo.Patient(Id), Gatuadress nvarchar(100) NOT NULL, Postnummer char(5) NOT NULL)",
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
        + (PATIENTS + PATIENTS / 2 + 2 * VISITS + DIAGNOSES + CODES + USERS) as u64;
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
            let mut r = Rng(0xA11CE ^ ((i as u64 + 1) * 0x9E37_79B9));
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
    n += insert_rows(
        db,
        "dbo.PatientAdress",
        (0..PATIENTS / 2).map(|i| {
            format!(
                "({}, {}, N'{} {}', '{:05}')",
                i + 1,
                2 * i + 1,
                ["Storgatan", "Kyrkvägen", "Skolgatan", "Ängsvägen"][(i % 4) as usize],
                1 + i % 90,
                10_000 + (i * 37) % 89_999
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
    // Prescriptions, tracked but not published until round 9.
    db.execute("CREATE TABLE dbo.Recept (Id int NOT NULL PRIMARY KEY, BesokId int NOT NULL REFERENCES dbo.Besok(Id), Lakemedel nvarchar(100) NOT NULL, Utfardad date NOT NULL)")?;
    db.execute("ALTER TABLE dbo.Recept ENABLE CHANGE_TRACKING")?;
    db.execute("INSERT INTO dbo.Recept SELECT Id, Id, N'Läkemedel ' + CAST(Id % 50 AS nvarchar(5)), '2026-01-15' FROM dbo.Besok WHERE Id % 7 = 0")?;
    n += (VISITS / 7) as u64;
    Ok(n)
}

/// A visit at caregiver `from` that is the only care there of a patient
/// with no care at caregiver `to` (not listed there, no visit there), and
/// has an address: (visit, patient). Moving it to `to` moves the patient.
pub fn last_care_visit(src: &mut Db, from: &str, to: &str) -> Result<(i64, i64), DemoError> {
    let rows = src.rows(
        "finding a patient's last visit at one caregiver",
        "SELECT TOP (1) b.Id, b.PatientId FROM dbo.Besok AS b
         JOIN dbo.Vardenhet AS v ON v.Id = b.VardenhetId
         JOIN dbo.Patient AS p ON p.Id = b.PatientId
         JOIN dbo.Vardenhet AS lv ON lv.Id = p.ListadVardenhetId
         WHERE v.VardgivareHsaId = @P1 AND lv.VardgivareHsaId NOT IN (@P1, @P2)
           AND EXISTS (SELECT 1 FROM dbo.PatientAdress AS a WHERE a.PatientId = p.Id)
           AND NOT EXISTS (SELECT 1 FROM dbo.Besok AS b2 JOIN dbo.Vardenhet AS v2 ON v2.Id = b2.VardenhetId
                           WHERE b2.PatientId = p.Id AND b2.Id <> b.Id AND v2.VardgivareHsaId IN (@P1, @P2))
         ORDER BY b.Id",
        &[
            client::Param::Str(from.to_string()),
            client::Param::Str(to.to_string()),
        ],
    )?;
    rows.first()
        .and_then(|r| Some((client::int_at(r, 0)?, client::int_at(r, 1)?)))
        .ok_or_else(|| DemoError::Setup("no patient with its last visit at one caregiver".into()))
}

/// A visit at one of Norr's units, not at unit 2 (which moves later).
pub fn moving_visit(src: &mut Db) -> Result<i64, DemoError> {
    let rows = src.rows(
        "finding a visit to move",
        "SELECT MIN(Id) FROM dbo.Besok WHERE VardenhetId = 1",
        &[],
    )?;
    rows.first()
        .and_then(|r| client::int_at(r, 0))
        .ok_or_else(|| DemoError::Setup("no visit at unit 1".into()))
}
