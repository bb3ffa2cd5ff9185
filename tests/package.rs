//! Package formats 1 and 2 end to end through the library: write, read back exactly,
//! split into parts with a hash chain, and refuse every kind of bad package
//! with its own error.

use chrono::NaiveDate;
use ctferry::format::crypto::{self, CryptoError, PublicKey, SecretKey};
use ctferry::format::package::{
    self, Kind, Manifest, PackageError, PackageReader, PackageWriter, Row, SectionKind,
    TableSchema, WriterConfig,
};
use ctferry::format::value::{Decimal, Value};
use std::path::{Path, PathBuf};

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{col, key};

struct Keys {
    _dir: tempfile::TempDir,
    region: SecretKey,
    norr: SecretKey,
    syd: SecretKey,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    Keys {
        region: key(dir.path(), "region"),
        norr: key(dir.path(), "norr"),
        syd: key(dir.path(), "syd"),
        _dir: dir,
    }
}

fn patient_schema() -> TableSchema {
    TableSchema {
        name: "dbo.Patient".into(),
        columns: vec![
            col("Id", "int", false),
            col("Namn", "nvarchar(max)", true),
            col("Vikt", "decimal(9,3)", true),
            col("Fodd", "date", true),
            col("Andrad", "datetimeoffset(7)", true),
            col("Bild", "varbinary(max)", true),
            col("Guid", "uniqueidentifier", true),
        ],
        key: vec!["Id".into()],
    }
}

fn template(kind: Kind, sequence: u64) -> Manifest {
    Manifest {
        publisher: "region-pmo".into(),
        subscriber: "SE2321000016-A1B2".into(),
        epoch: 1,
        sequence,
        kind,
        part: 1,
        last_part: true,
        previous_sha256: None,
        ct_from: if kind == Kind::Delta { Some(10) } else { None },
        ct_to: 20,
        source_commit_time: Some("2026-11-25T08:00:00.0000000Z".into()),
        created_at: "2026-11-25T08:00:01Z".into(),
        tables: vec![],
    }
}

fn patient(i: i64) -> Vec<Value> {
    let t = NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_nano_opt(8, 0, 0, 123_456_700)
        .unwrap();
    vec![
        Value::Int(i),
        if i % 3 == 0 {
            Value::Text(String::new())
        } else {
            Value::Text(format!("Patient {i} åäö"))
        },
        Value::Decimal(Decimal {
            mantissa: 70_500 + i as i128,
            scale: 3,
        }),
        Value::Date(NaiveDate::from_ymd_opt(1950, 1, 1).unwrap()),
        Value::DateTimeOffset(t, 60),
        if i % 2 == 0 {
            Value::Null
        } else {
            Value::Bytes(vec![i as u8; 3])
        },
        Value::Guid([i as u8; 16]),
    ]
}

fn writer<'k>(
    out: &Path,
    k: &'k Keys,
    recipient: &'k PublicKey,
    part_bytes: usize,
) -> WriterConfig<'k> {
    WriterConfig {
        out_dir: out.to_path_buf(),
        signer: &k.region,
        recipient,
        part_bytes,
        zstd_level: 3,
        zstd_workers: package::default_zstd_workers(),
    }
}

fn read_all(
    path: &Path,
    key: &SecretKey,
    publishers: &[PublicKey],
) -> Result<(Manifest, Vec<Row>, package::Verified), PackageError> {
    let mut r = PackageReader::open(path, key, publishers)?;
    let mut rows = Vec::new();
    while let Some(row) = r.next_row()? {
        rows.push(row);
    }
    let m = r.manifest().clone();
    Ok((m, rows, r.finish()?))
}

#[test]
fn a_delta_reads_back_exactly() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let mut w = PackageWriter::new(
        writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
        template(Kind::Delta, 7),
    );
    let t = w.add_table(patient_schema()).unwrap();
    for i in 1..=50 {
        w.upsert(t, &patient(i)).unwrap();
    }
    w.delete(t, &[Value::Int(99)]).unwrap();
    let written = w.finish().unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].file_name, "0000000007-delta-10-20.ctf.pgp");
    assert!(written[0].path.exists());
    assert!(!out
        .path()
        .join("0000000007-delta-10-20.ctf.pgp.tmp")
        .exists());

    let (m, rows, v) = read_all(&written[0].path, &k.norr, &[k.region.public()]).unwrap();
    assert_eq!(m.sequence, 7);
    assert_eq!(m.tables[0].upserts, 50);
    assert_eq!(m.tables[0].deletes, 1);
    assert_eq!(
        m.source_commit_time.as_deref(),
        Some("2026-11-25T08:00:00.0000000Z")
    );
    // Deletes come before upserts within a table.
    assert_eq!(rows[0].kind, SectionKind::Deletes);
    assert_eq!(rows[0].values, vec![Value::Int(99)]);
    for (i, r) in rows[1..].iter().enumerate() {
        assert_eq!(r.kind, SectionKind::Upserts);
        assert_eq!(r.values, patient(i as i64 + 1));
    }
    assert_eq!(v.file_sha256, written[0].sha256);
    assert_eq!(v.signer, k.region.fingerprint());
}

#[test]
fn a_large_snapshot_is_split_into_chained_parts() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let mut tpl = template(Kind::Snapshot, 1);
    tpl.previous_sha256 = Some([7u8; 32]);
    let mut w = PackageWriter::new(writer(out.path(), &k, &norr, 20_000), tpl);
    let t = w.add_table(patient_schema()).unwrap();
    for i in 1..=2_000 {
        w.upsert(t, &patient(i)).unwrap();
    }
    let written = w.finish().unwrap();
    assert!(written.len() > 3, "{} parts", written.len());
    let mut prev = Some([7u8; 32]);
    let mut total = 0;
    for (i, p) in written.iter().enumerate() {
        let (m, rows, v) = read_all(&p.path, &k.norr, &[k.region.public()]).unwrap();
        assert_eq!(m.sequence, 1 + i as u64);
        assert_eq!(m.part, 1 + i as u32);
        assert_eq!(m.last_part, i + 1 == written.len());
        assert_eq!(m.previous_sha256, prev);
        assert!(p
            .file_name
            .starts_with(&format!("{:010}-snapshot-0-20", 1 + i)));
        prev = Some(v.file_sha256);
        total += rows.len();
    }
    assert_eq!(total, 2_000);
}

fn one_delta(k: &Keys, out: &Path, recipient: &PublicKey) -> PathBuf {
    let mut w = PackageWriter::new(
        writer(out, k, recipient, package::DEFAULT_PART_BYTES),
        template(Kind::Delta, 1),
    );
    let t = w.add_table(patient_schema()).unwrap();
    for i in 1..=200 {
        w.upsert(t, &patient(i)).unwrap();
    }
    w.finish().unwrap().remove(0).path
}

#[test]
fn bad_packages_are_refused_each_with_its_reason() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let good = one_delta(&k, out.path(), &norr);
    let region = [k.region.public()];

    // Not for this caregiver.
    match read_all(&good, &k.syd, &region) {
        Err(PackageError::Crypto(CryptoError::NotForUs { .. })) => {}
        other => panic!("expected NotForUs, got {:?}", other.map(|_| ())),
    }
    // Signed by a key that is not an accepted publisher key.
    match read_all(&good, &k.norr, &[k.syd.public()]) {
        Err(PackageError::Crypto(CryptoError::UnknownSigner { .. })) => {}
        other => panic!("expected UnknownSigner, got {:?}", other.map(|_| ())),
    }
    let bytes = std::fs::read(&good).unwrap();
    // Truncated anywhere: refused, never accepted, never a panic.
    for cut in [
        10,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 1,
    ] {
        let p = out.path().join("cut.ctf.pgp");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(
            read_all(&p, &k.norr, &region).is_err(),
            "a package cut at {cut} was accepted"
        );
    }
    // Any byte flipped: refused.
    for at in [200, bytes.len() / 2, bytes.len() - 40] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let p = out.path().join("flip.ctf.pgp");
        std::fs::write(&p, &b).unwrap();
        assert!(
            read_all(&p, &k.norr, &region).is_err(),
            "a package with byte {at} flipped was accepted"
        );
    }
    // The good one still reads.
    assert!(read_all(&good, &k.norr, &region).is_ok());
}

#[test]
fn unsigned_and_foreign_payloads_are_refused() {
    use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey};
    use pgp::crypto::sym::SymmetricKeyAlgorithm;
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    // An encrypted but unsigned message to norr.
    let pubkey = std::fs::read(k.norr.path.with_file_name("norr.pub.asc")).unwrap();
    let (pk, _) = SignedPublicKey::from_reader_single(&pubkey[..]).unwrap();
    let mut rng = rand::thread_rng();
    let mut b = MessageBuilder::from_bytes("", b"hello".to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    b.encrypt_to_key(&mut rng, &pk.public_subkeys[0].key)
        .unwrap();
    let p = out.path().join("unsigned.ctf.pgp");
    std::fs::write(&p, b.to_vec(&mut rng).unwrap()).unwrap();
    match read_all(&p, &k.norr, &[k.region.public()]) {
        Err(PackageError::Crypto(CryptoError::Unsigned)) => {}
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // Signed and encrypted, but not a ctferry payload.
    let p2 = out.path().join("foreign.ctf.pgp");
    let plain = zstd::encode_all(&b"\xa1\x61x\x01"[..], 3).unwrap();
    let mut f = std::fs::File::create(&p2).unwrap();
    crypto::seal(&plain[..], &k.region, &k.norr.public(), &mut f).unwrap();
    drop(f);
    assert!(matches!(
        read_all(&p2, &k.norr, &[k.region.public()]),
        Err(PackageError::NotAPackage)
    ));
    // Not OpenPGP at all.
    let p3 = out.path().join("garbage.ctf.pgp");
    std::fs::write(&p3, b"this is not a package").unwrap();
    assert!(read_all(&p3, &k.norr, &[k.region.public()]).is_err());
}

#[test]
fn each_refusal_names_its_reason() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let good = one_delta(&k, out.path(), &norr);
    let region = [k.region.public()];
    let bytes = std::fs::read(&good).unwrap();
    let msg = |p: &Path| match read_all(p, &k.norr, &region) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    // Truncated.
    let p = out.path().join("t.ctf.pgp");
    for cut in [bytes.len() / 2, bytes.len() - 20] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let m = msg(&p);
        assert!(
            m.contains("truncated") || m.contains("ends early"),
            "cut at {cut}: {m}"
        );
    }
    // Tampered ciphertext.
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    let m = msg(&p);
    assert!(m.contains("tampered") || m.contains("corrupt"), "{m}");
    // Corrupt zstd behind a valid signature.
    let seal = |plain: &[u8], name: &str| {
        let p = out.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        crypto::seal(plain, &k.region, &norr, &mut f).unwrap();
        p
    };
    let m = msg(&seal(
        b"\x28\xb5\x2f\xfd garbage that is not zstd",
        "z.ctf.pgp",
    ));
    assert!(m.contains("compressed data is corrupt"), "{m}");
    // Unknown format version.
    let mut e = ctferry::format::cbor::Encoder::new();
    e.map(2);
    e.text("magic");
    e.text(package::MAGIC);
    e.text("format");
    e.uint(3);
    let m = msg(&seal(
        &zstd::encode_all(&e.buf[..], 3).unwrap(),
        "f.ctf.pgp",
    ));
    assert!(
        m.contains("format version 3") && m.contains("upgrade ctferry"),
        "{m}"
    );
}

#[test]
fn many_megabyte_values_and_empty_strings_survive() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let mut w = PackageWriter::new(
        writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
        template(Kind::Delta, 1),
    );
    let schema = TableSchema {
        name: "dbo.Dokument".into(),
        columns: vec![
            col("Id", "int", false),
            col("Text", "nvarchar(max)", true),
            col("Fil", "varbinary(max)", true),
            col("Tom", "varchar(10)", true),
        ],
        key: vec!["Id".into()],
    };
    let t = w.add_table(schema).unwrap();
    let big_text: String = "Journaltext med åäö. ".repeat(800_000); // ~18 MB
    let big_bin: Vec<u8> = (0..12_000_000u32).map(|i| (i % 251) as u8).collect();
    let row = vec![
        Value::Int(1),
        Value::Text(big_text.clone()),
        Value::Bytes(big_bin.clone()),
        Value::Text(String::new()),
    ];
    w.upsert(t, &row).unwrap();
    w.upsert(t, &[Value::Int(2), Value::Null, Value::Null, Value::Null])
        .unwrap();
    let p = w.finish().unwrap().remove(0).path;
    let (_, rows, _) = read_all(&p, &k.norr, &[k.region.public()]).unwrap();
    assert_eq!(rows[0].values, row);
    assert_eq!(
        rows[1].values,
        vec![Value::Int(2), Value::Null, Value::Null, Value::Null]
    );
    assert_ne!(rows[0].values[3], Value::Null);
}

#[test]
fn a_collation_travels_and_a_name_that_is_not_one_is_refused() {
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let write = |collation: &str, seq: u64| {
        let mut schema = patient_schema();
        schema.columns[1].collation = Some(collation.into());
        let mut w = PackageWriter::new(
            writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
            template(Kind::Delta, seq),
        );
        let t = w.add_table(schema).unwrap();
        w.upsert(t, &patient(1)).unwrap();
        w.finish().unwrap().remove(0).path
    };
    let good = write("Finnish_Swedish_CS_AS", 1);
    let (m, _, _) = read_all(&good, &k.norr, &[k.region.public()]).unwrap();
    let cols = &m.tables[0].schema.columns;
    assert_eq!(cols[1].collation.as_deref(), Some("Finnish_Swedish_CS_AS"));
    assert_eq!(cols[0].collation, None);
    // The copy's CREATE TABLE writes the name unquoted: only a name passes.
    let bad = write("Latin1_General_CI_AS; DROP TABLE x", 2);
    let e = read_all(&bad, &k.norr, &[k.region.public()]).unwrap_err();
    assert!(
        e.to_string().contains("Namn") && e.to_string().contains("collation"),
        "{e}"
    );
}

/// Format 2 (issue 19): a delta carries what happens to a copy's table
/// before its rows; it is written as format 2 only then, and read back
/// exactly. A snapshot carries none, and a reloaded or dropped table no
/// delete.
#[test]
fn table_changes_travel_as_format_2_and_only_then() {
    use ctferry::format::change::{AlterStep, TableAction, TableChange};
    let k = keys();
    let out = tempfile::tempdir().unwrap();
    let norr = k.norr.public();
    let region = [k.region.public()];
    let mut plain = PackageWriter::new(
        writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
        template(Kind::Delta, 1),
    );
    let t = plain.add_table(patient_schema()).unwrap();
    plain.upsert(t, &patient(1)).unwrap();
    let p = plain.finish().unwrap().remove(0);
    assert_eq!(p.manifest.format(), 1);
    let (m, _, _) = read_all(&p.path, &k.norr, &region).unwrap();
    assert_eq!(m.format(), 1);

    let mut w = PackageWriter::new(
        writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
        template(Kind::Delta, 2),
    );
    let mut altered = patient_schema();
    altered
        .columns
        .push(col("Kommentar", "nvarchar(200)", true));
    altered.columns.retain(|c| c.name != "Bild");
    altered.columns[1] = col("Namn", "nvarchar(max)", true);
    let alter = TableChange {
        action: TableAction::Alter {
            steps: vec![
                AlterStep::Add(col("Kommentar", "nvarchar(200)", true)),
                AlterStep::Alter(col("Vikt", "decimal(9,3)", true)),
                AlterStep::Drop("Bild".into()),
            ],
            reset: false,
        },
        why: "columns changed at the source".into(),
    };
    let t = w
        .add_changed_table(altered.clone(), Some(alter.clone()))
        .unwrap();
    let mut row = patient(2);
    row.remove(5);
    row.push(Value::Text("ny".into()));
    w.upsert(t, &row).unwrap();
    w.delete(t, &[Value::Int(3)]).unwrap();
    let mut created = patient_schema();
    created.name = "dbo.Remiss".into();
    let create = TableChange {
        action: TableAction::Create,
        why: "added to the configuration".into(),
    };
    let c = w.add_changed_table(created, Some(create.clone())).unwrap();
    w.upsert(c, &patient(1)).unwrap();
    let e = w.delete(c, &[Value::Int(1)]).unwrap_err();
    assert!(e.to_string().contains("create"), "{e}");
    let mut gone = patient_schema();
    gone.name = "dbo.Gammal".into();
    let drop = TableChange {
        action: TableAction::Drop,
        why: "removed from the configuration".into(),
    };
    let d = w.add_changed_table(gone, Some(drop.clone())).unwrap();
    assert!(w.upsert(d, &patient(1)).is_err());
    let p = w.finish().unwrap().remove(0);
    assert_eq!(p.manifest.format(), 2);
    let (m, rows, _) = read_all(&p.path, &k.norr, &region).unwrap();
    assert_eq!(m.format(), 2);
    assert_eq!(m.tables[0].change.as_ref(), Some(&alter));
    assert_eq!(m.tables[0].schema, altered);
    assert_eq!(m.tables[1].change.as_ref(), Some(&create));
    assert_eq!(m.tables[2].change.as_ref(), Some(&drop));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].values, row);

    // A snapshot recreates every table anyway: it carries no change.
    let mut s = PackageWriter::new(
        writer(out.path(), &k, &norr, package::DEFAULT_PART_BYTES),
        template(Kind::Snapshot, 3),
    );
    assert!(s.add_changed_table(patient_schema(), Some(create)).is_err());
}
