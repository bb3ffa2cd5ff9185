//! Whether a package may be applied on top of what the copy holds: the
//! sequence, the hash chain and the epoch, as a pure decision over the
//! package's manifest and the last row of `ctferry.applied`. No I/O here,
//! so every refusal is unit-tested; each says what to do.

use super::log::Applied;
use crate::format::package::{hex, Kind, Manifest};

/// Why a package is refused (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("package {next} is missing (the last applied is {last}); wait for it or ask the region to deliver it again")]
    Missing { next: u64, last: u64 },
    #[error(
        "the snapshot continues in package {next}, which is missing; nothing of it was applied"
    )]
    SnapshotPartMissing { next: u64 },
    #[error("it is for caregiver {found}, not for {expected}")]
    WrongCaregiver { found: String, expected: String },
    #[error("its manifest says sequence {manifest}, its name {name}: it was renamed or reordered")]
    Renamed { manifest: u64, name: u64 },
    #[error("its manifest makes it {manifest}: a package is applied only under its own name (kind and versions as well as sequence); deliver it again as the region wrote it")]
    NotItsName { manifest: String },
    #[error("its hash chain does not continue from the last applied package ({last_file}): expected previous SHA-256 {expected}, found {found}")]
    BrokenChain {
        last_file: String,
        expected: String,
        found: String,
    },
    #[error("a snapshot of epoch {epoch} does not start a new epoch (current {current})")]
    SnapshotNotNewEpoch { epoch: u64, current: u64 },
    #[error("a delta of epoch {epoch} cannot apply to a copy of epoch {current}")]
    DeltaWrongEpoch { epoch: u64, current: u64 },
}

/// What to do with the package numbered `seq` (from its file name) when the
/// copy's last applied sequence is `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Already applied: skip it.
    Skip,
    /// The next one: open and check it.
    Apply,
}

/// Skip, apply, or refuse a gap.
pub fn position(seq: u64, last: u64) -> Result<Next, Refusal> {
    if seq <= last {
        Ok(Next::Skip)
    } else if seq == last + 1 {
        Ok(Next::Apply)
    } else {
        Err(Refusal::Missing {
            next: last + 1,
            last,
        })
    }
}

/// Whether package `m` (named with sequence `name_seq`) continues the copy
/// of caregiver `subscriber` whose last applied package is `last`.
pub fn check(
    m: &Manifest,
    name_seq: u64,
    subscriber: &str,
    last: Option<&Applied>,
) -> Result<(), Refusal> {
    if m.subscriber != subscriber {
        return Err(Refusal::WrongCaregiver {
            found: m.subscriber.clone(),
            expected: subscriber.to_string(),
        });
    }
    if m.sequence != name_seq {
        return Err(Refusal::Renamed {
            manifest: m.sequence,
            name: name_seq,
        });
    }
    let want_prev = last.map(|l| l.sha256.clone());
    let got_prev = m.previous_sha256.map(|h| hex(&h));
    if want_prev != got_prev {
        return Err(Refusal::BrokenChain {
            last_file: last
                .map(|l| l.file.clone())
                .unwrap_or_else(|| "none".into()),
            expected: want_prev.unwrap_or_else(|| "none".into()),
            found: got_prev.unwrap_or_else(|| "none".into()),
        });
    }
    let current = last.map(|l| l.epoch).unwrap_or(0);
    match m.kind {
        Kind::Snapshot if m.part == 1 && m.epoch <= current => Err(Refusal::SnapshotNotNewEpoch {
            epoch: m.epoch,
            current,
        }),
        Kind::Delta if m.epoch != current || last.is_none() => Err(Refusal::DeltaWrongEpoch {
            epoch: m.epoch,
            current,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: Kind, seq: u64, epoch: u64, prev: Option<[u8; 32]>) -> Manifest {
        Manifest {
            publisher: "region".into(),
            subscriber: "SE-1".into(),
            epoch,
            sequence: seq,
            kind,
            part: 1,
            last_part: true,
            previous_sha256: prev,
            ct_from: None,
            ct_to: 10,
            source_commit_time: None,
            created_at: "2026-11-27T10:00:00.000Z".into(),
            tables: vec![],
        }
    }

    fn applied(seq: u64, epoch: u64, sha: [u8; 32]) -> Applied {
        Applied {
            sequence: seq,
            epoch,
            sha256: hex(&sha),
            ct_to: 9,
            data_as_of: None,
            file: format!("{seq:010}-delta-1-9.ctf.pgp"),
        }
    }

    #[test]
    fn gaps_and_repeats() {
        assert_eq!(position(3, 5), Ok(Next::Skip));
        assert_eq!(position(5, 5), Ok(Next::Skip));
        assert_eq!(position(6, 5), Ok(Next::Apply));
        assert_eq!(position(1, 0), Ok(Next::Apply));
        let e = position(8, 5).unwrap_err();
        assert_eq!(e, Refusal::Missing { next: 6, last: 5 });
        assert!(e
            .to_string()
            .contains("package 6 is missing (the last applied is 5)"));
    }

    #[test]
    fn the_first_snapshot_and_a_continuing_delta_pass() {
        assert_eq!(
            check(&manifest(Kind::Snapshot, 1, 1, None), 1, "SE-1", None),
            Ok(())
        );
        let last = applied(4, 1, [7; 32]);
        let d = manifest(Kind::Delta, 5, 1, Some([7; 32]));
        assert_eq!(check(&d, 5, "SE-1", Some(&last)), Ok(()));
        // A new epoch's snapshot continues the chain too.
        let s = manifest(Kind::Snapshot, 5, 2, Some([7; 32]));
        assert_eq!(check(&s, 5, "SE-1", Some(&last)), Ok(()));
    }

    #[test]
    fn each_refusal() {
        let last = applied(4, 1, [7; 32]);
        let d = manifest(Kind::Delta, 5, 1, Some([7; 32]));
        assert!(matches!(
            check(&d, 5, "SE-2", Some(&last)),
            Err(Refusal::WrongCaregiver { .. })
        ));
        assert_eq!(
            check(&d, 6, "SE-1", Some(&last)),
            Err(Refusal::Renamed {
                manifest: 5,
                name: 6
            })
        );
        let forged = manifest(Kind::Delta, 5, 1, Some([8; 32]));
        let e = check(&forged, 5, "SE-1", Some(&last)).unwrap_err();
        assert!(matches!(e, Refusal::BrokenChain { .. }));
        assert!(e.to_string().contains(&hex(&[7; 32])), "{e}");
        // A delta on an empty copy: no chain to continue.
        assert!(matches!(
            check(&manifest(Kind::Delta, 1, 1, None), 1, "SE-1", None),
            Err(Refusal::DeltaWrongEpoch {
                epoch: 1,
                current: 0
            })
        ));
        assert_eq!(
            check(
                &manifest(Kind::Delta, 5, 2, Some([7; 32])),
                5,
                "SE-1",
                Some(&last)
            ),
            Err(Refusal::DeltaWrongEpoch {
                epoch: 2,
                current: 1
            })
        );
        assert_eq!(
            check(
                &manifest(Kind::Snapshot, 5, 1, Some([7; 32])),
                5,
                "SE-1",
                Some(&last)
            ),
            Err(Refusal::SnapshotNotNewEpoch {
                epoch: 1,
                current: 1
            })
        );
    }
}
