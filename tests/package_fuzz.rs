//! The package reader never panics and never accepts a damaged package,
//! whatever the bytes: proptest over (1) arbitrary files, (2) a real
//! package's plaintext with bytes flipped, cut or inserted, then re-sealed
//! with valid OpenPGP (so the fuzzing reaches the CBOR and value checks
//! behind the signature), (3) arbitrary CBOR-level bytes.
//! Runs a bounded number of cases in CI (see PROPTEST_CASES below).

use ctferry::format::cbor::{Decoder, Limits};
use ctferry::format::crypto::{self, PublicKey, SecretKey};
use ctferry::format::package::{
    self, ColumnSchema, Kind, Manifest, PackageReader, PackageWriter, TableSchema, WriterConfig,
};
use ctferry::format::value::{ColumnType, Decimal, Value};
use proptest::prelude::*;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

struct Fixture {
    dir: tempfile::TempDir,
    region: SecretKey,
    norr: SecretKey,
    plaintext: Vec<u8>,
}

fn key(dir: &Path, name: &str) -> SecretKey {
    let (public, secret) = crypto::generate(name, "x@example.invalid", None).unwrap();
    std::fs::write(dir.join(format!("{name}.pub.asc")), public).unwrap();
    let p = dir.join(format!("{name}.sec.asc"));
    std::fs::write(&p, secret).unwrap();
    SecretKey::load(&p, None).unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let region = key(dir.path(), "region");
        let norr = key(dir.path(), "norr");
        let col = |n: &str, t: &str| ColumnSchema {
            name: n.into(),
            ty: ColumnType::parse(t).unwrap(),
            nullable: n != "Id",
            masked: false,
            collation: None,
        };
        let schema = TableSchema {
            name: "dbo.T".into(),
            columns: vec![
                col("Id", "int"),
                col("S", "nvarchar(20)"),
                col("D", "decimal(10,2)"),
                col("T", "datetime2(7)"),
                col("G", "uniqueidentifier"),
            ],
            key: vec!["Id".into()],
        };
        let template = Manifest {
            publisher: "p".into(),
            subscriber: "s".into(),
            epoch: 1,
            sequence: 1,
            kind: Kind::Delta,
            part: 1,
            last_part: true,
            previous_sha256: None,
            ct_from: Some(1),
            ct_to: 2,
            source_commit_time: None,
            created_at: "2026-11-25T00:00:00Z".into(),
            tables: vec![],
        };
        let norr_pub = norr.public();
        let mut w = PackageWriter::new(
            WriterConfig {
                out_dir: dir.path().to_path_buf(),
                signer: &region,
                recipient: &norr_pub,
                part_bytes: 1 << 20,
                zstd_level: 1,
                zstd_workers: 1,
            },
            template,
        );
        let t = w.add_table(schema).unwrap();
        let when = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(1, 2, 3)
            .unwrap();
        for i in 0..5 {
            w.upsert(
                t,
                &[
                    Value::Int(i),
                    Value::Text(format!("r{i}")),
                    Value::Decimal(Decimal {
                        mantissa: 1234,
                        scale: 2,
                    }),
                    Value::DateTime(when),
                    Value::Guid([i as u8; 16]),
                ],
            )
            .unwrap();
        }
        w.delete(t, &[Value::Int(9)]).unwrap();
        let path = w.finish().unwrap().remove(0).path;
        // The plaintext: decrypt and decompress the real package.
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut opened = crypto::open(file, &norr, &[region.public()]).unwrap();
        let mut zst = Vec::new();
        opened.read_to_end(&mut zst).unwrap();
        opened.finish().unwrap();
        let plaintext = zstd::decode_all(&zst[..]).unwrap();
        Fixture {
            dir,
            region,
            norr,
            plaintext,
        }
    })
}

/// Seals `plain` as a package would be and reads it completely.
fn read_sealed(plain: &[u8], name: &str) -> Result<usize, package::PackageError> {
    let f = fixture();
    let zst = zstd::encode_all(plain, 1).unwrap();
    let p = f.dir.path().join(name);
    let mut out = std::fs::File::create(&p).unwrap();
    crypto::seal(&zst[..], &f.region, &f.norr.public(), &mut out).unwrap();
    drop(out);
    let publishers: Vec<PublicKey> = vec![f.region.public()];
    let mut r = PackageReader::open(&p, &f.norr, &publishers)?;
    let mut n = 0;
    while r.next_row()?.is_some() {
        n += 1;
    }
    r.finish()?;
    Ok(n)
}

#[test]
fn the_unmodified_plaintext_reads() {
    assert_eq!(
        read_sealed(&fixture().plaintext, "same.ctf.pgp").unwrap(),
        6
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_plaintext_is_refused_without_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), op in 0u8..3) {
        let mut p = fixture().plaintext.clone();
        let i = at.index(p.len());
        match op {
            0 => { if p[i] == byte { return Ok(()); } p[i] = byte; }
            1 => p.truncate(i),
            _ => p.insert(i, byte),
        }
        let name = format!("m{}-{}-{}.ctf.pgp", i, byte, op);
        prop_assert!(read_sealed(&p, &name).is_err(), "a modified package was accepted ({op} at {i})");
    }

    #[test]
    fn arbitrary_files_are_refused_without_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let f = fixture();
        let p = f.dir.path().join("arb.ctf.pgp");
        std::fs::write(&p, &data).unwrap();
        let publishers = vec![f.region.public()];
        let refused = match PackageReader::open(&p, &f.norr, &publishers) {
            Err(_) => true,
            Ok(mut r) => {
                while let Ok(Some(_)) = r.next_row() {}
                r.finish().is_err()
            }
        };
        prop_assert!(refused, "arbitrary bytes were accepted as a package");
    }

    #[test]
    fn arbitrary_cbor_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut d = Decoder::new(&data[..], Limits::default());
        while let Ok(item) = d.next_item() {
            for t in ["int", "decimal(38,2)", "nvarchar(max)", "datetimeoffset(7)", "uniqueidentifier", "date", "time(7)", "money", "real"] {
                let _ = ctferry::format::value::decode(&ColumnType::parse(t).unwrap(), &item);
            }
        }
    }
}
