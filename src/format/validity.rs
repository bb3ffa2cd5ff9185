//! Whether an OpenPGP key or subkey may be used at a given time: not
//! revoked, not expired (RFC 4880 5.2.3.6, 5.2.3.23; RFC 9580 the same).
//!
//! - **Expiry** is the key's creation time plus the Key Expiration Time of
//!   its newest self-signature (a user ID certification or direct-key
//!   signature for the primary key, the newest binding signature for a
//!   subkey); none, or zero, means it never expires. Extending a key
//!   (`gpg --quick-set-expire`) adds a newer self-signature, which wins.
//! - **Revocation**: a key revocation signature (or a subkey revocation).
//!   With the reason "superseded" or "retired" the key was fine until the
//!   revocation: signatures made before it stay valid. With "compromised",
//!   no reason, or any other reason, nothing it ever signed is trusted.
//!
//! The signatures were verified when the key was loaded
//! (`verify_bindings`), so only their times and types are read here.

use pgp::composed::{SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{RevocationCode, Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

/// Why a key cannot be used at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Invalid {
    Revoked {
        /// When the revocation was made.
        at: Option<u32>,
        /// The reason given (code and text), for the operator.
        reason: String,
        /// Whether what it signed before the revocation stays valid.
        before_ok: bool,
    },
    Expired {
        at: u32,
    },
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Revoked { at, reason, .. } => {
                write!(f, "was revoked")?;
                if let Some(t) = at {
                    write!(f, " on {}", text(*t))?;
                }
                write!(f, " ({reason})")
            }
            Invalid::Expired { at } => write!(f, "expired on {}", text(*at)),
        }
    }
}

/// A time as RFC 3339 (UTC, seconds).
pub fn text(secs: u32) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Now, as OpenPGP counts time.
pub fn now() -> u32 {
    Timestamp::now().as_secs()
}

fn secs(t: Option<Timestamp>) -> Option<u32> {
    t.map(|t| t.as_secs())
}

fn revocation(sigs: &[&Signature]) -> Option<Invalid> {
    let sig = sigs.first()?;
    let code = sig.revocation_reason_code();
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|s| !s.is_empty());
    let name = match code {
        Some(RevocationCode::KeySuperseded) => "superseded",
        Some(RevocationCode::KeyRetired) => "retired",
        Some(RevocationCode::KeyCompromised) => "compromised",
        _ => "no reason given",
    };
    Some(Invalid::Revoked {
        at: secs(sig.created()),
        reason: match text {
            Some(t) => format!("{name}: {t}"),
            None => name.to_string(),
        },
        before_ok: matches!(
            code,
            Some(RevocationCode::KeySuperseded) | Some(RevocationCode::KeyRetired)
        ),
    })
}

/// The expiry time given by the newest of `sigs` (None: never expires).
fn expiry(created: u32, sigs: &[&Signature]) -> Option<u32> {
    let newest = sigs.iter().max_by_key(|s| secs(s.created()).unwrap_or(0))?;
    let d = newest.key_expiration_time()?;
    if d.as_secs() as u64 == 0 {
        return None;
    }
    Some(created.saturating_add((d.as_secs() as u64).min(u32::MAX as u64) as u32))
}

/// Whether something with this revocation and expiry is usable at `at`.
pub fn judge(revoked: Option<Invalid>, expires: Option<u32>, at: u32) -> Option<Invalid> {
    if let Some(Invalid::Revoked {
        at: when,
        before_ok,
        ..
    }) = &revoked
    {
        let signed_before = matches!(when, Some(w) if at < *w);
        if !(*before_ok && signed_before) {
            return revoked;
        }
    }
    match expires {
        Some(e) if at >= e => Some(Invalid::Expired { at: e }),
        _ => None,
    }
}

/// The primary key's state at `at`.
pub fn primary(key: &SignedPublicKey, at: u32) -> Option<Invalid> {
    let revs: Vec<&Signature> = key
        .details
        .revocation_signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::KeyRevocation))
        .collect();
    let selfsigs: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .filter(|s| {
            matches!(
                s.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                        | SignatureType::Key
                )
            )
        })
        .collect();
    judge(
        revocation(&revs),
        expiry(key.primary_key.created_at().as_secs(), &selfsigs),
        at,
    )
}

/// A subkey's own state at `at` (the primary key's is judged apart).
pub fn subkey(sub: &SignedPublicSubKey, at: u32) -> Option<Invalid> {
    let revs: Vec<&Signature> = sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
        .collect();
    let binds: Vec<&Signature> = sub
        .signatures
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .collect();
    judge(
        revocation(&revs),
        expiry(sub.key.created_at().as_secs(), &binds),
        at,
    )
}

/// When a key (or subkey) stops being usable by expiry, if it does (for
/// warnings ahead of time).
pub fn expires(key: &SignedPublicKey, sub: Option<&SignedPublicSubKey>) -> Option<u32> {
    let at_end = |i: Option<Invalid>| match i {
        Some(Invalid::Expired { at }) => Some(at),
        _ => None,
    };
    let p = at_end(primary(key, u32::MAX));
    let s = sub.and_then(|s| at_end(subkey(s, u32::MAX)));
    match (p, s) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoked(at: u32, before_ok: bool) -> Option<Invalid> {
        Some(Invalid::Revoked {
            at: Some(at),
            reason: "x".into(),
            before_ok,
        })
    }

    #[test]
    fn revocation_and_expiry_at_a_time() {
        // Never expires, not revoked.
        assert_eq!(judge(None, None, 5), None);
        // Expired: usable before, not at or after.
        assert_eq!(judge(None, Some(100), 99), None);
        assert_eq!(
            judge(None, Some(100), 100),
            Some(Invalid::Expired { at: 100 })
        );
        // Superseded at 50: a signature made at 40 stays valid, one at 60 not.
        assert_eq!(judge(revoked(50, true), None, 40), None);
        assert!(judge(revoked(50, true), None, 60).is_some());
        // Compromised (or no reason): nothing is valid, also from before.
        assert!(judge(revoked(50, false), None, 40).is_some());
        // Superseded, but expired anyway at the signing time.
        assert_eq!(
            judge(revoked(50, true), Some(30), 40),
            Some(Invalid::Expired { at: 30 })
        );
        assert_eq!(text(0), "1970-01-01T00:00:00Z");
    }
}
