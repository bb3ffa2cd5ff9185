//! OpenPGP for packages, behind a small interface of our own: load armored
//! keys, seal a byte stream (sign with the region's key, encrypt to one
//! caregiver), open one (decrypt with the caregiver's key, verify against the
//! accepted publisher keys), and generate a key pair.
//!
//! Choices, for GnuPG 2.2 to read what we write: v4 keys, SEIPDv1 (MDC) with
//! AES-256, SHA-256 signatures, no OpenPGP compression (the payload is zstd
//! already), binary literal data. We read SEIPDv1 and SEIPDv2, with or
//! without OpenPGP compression, so that packages made by gpg open too.
//!
//! Opening streams (bounded memory) and therefore releases plaintext before
//! the integrity check at the end; callers must treat nothing as valid until
//! `Opened::finish` has returned Ok. This module never logs key material or
//! plaintext, and never takes a passphrase from a command-line flag.

use pgp::composed::{
    ArmorOptions, Deserializable, EncryptionCaps, KeyType, Message, MessageBuilder,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder, TheRing,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::{KeyDetails, Password, Seipdv1ReadMode};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use super::validity;

/// How to make the key file that was expected. A secret key is never
/// suggested under a public key's name (a file that is sent to others) and
/// a public key never under a secret key's.
fn export_hint(path: &Path, what: &str) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if what == "secret key" {
        if name.contains("pub") {
            return "it looks like a public key file: name the secret key file instead (for example keys/region.sec.asc, made with `ctferry keys generate` or `gpg --armor --export-secret-keys KEYID > keys/region.sec.asc`), and never give that file to anyone".into();
        }
        format!(
            "export it with `gpg --armor --export-secret-keys KEYID > {}`",
            path.display()
        )
    } else {
        if name.contains("sec") {
            return "it looks like a secret key file: name the public key file instead (`gpg --armor --export KEYID > NAME.pub.asc`); a secret key is never shared".into();
        }
        format!(
            "export it with `gpg --armor --export KEYID > {}`",
            path.display()
        )
    }
}

/// What can go wrong with keys and OpenPGP messages. Each variant says what
/// to do next; none carries plaintext or secrets.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an armored OpenPGP {what} ({detail}); {hint}", hint = export_hint(path, what))]
    NotAKey {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("{path}: the key has no {what} key (primary or subkey); generate one with `ctferry keys generate` or `gpg --quick-gen-key`")]
    NoUsableKey { path: PathBuf, what: &'static str },
    #[error("the secret key {path} cannot be unlocked: wrong or missing passphrase (set it with the configured *_env variable or *_file)")]
    Locked { path: PathBuf },
    #[error("OpenPGP {what} failed: {detail}")]
    Pgp { what: &'static str, detail: String },
    #[error("the package is not encrypted to this caregiver's key {ours}; it is for {theirs}")]
    NotForUs { ours: String, theirs: String },
    #[error("the package is not signed; it was not made by the region's ctferry and is refused")]
    Unsigned,
    #[error("the package is signed by a key that is not an accepted publisher key (accepted: {accepted}); ask the region which key signs its packages")]
    UnknownSigner { accepted: String },
    #[error("the key {path} ({fingerprint}) {why}; {todo}")]
    KeyUnusable {
        path: PathBuf,
        fingerprint: String,
        why: String,
        todo: &'static str,
    },
    #[error("the package is signed by the publisher key {fingerprint} on {signed_at}, but that key {why}, so the package is refused; ask the region for its current public key and list it in publisher_keys")]
    SignerInvalid {
        fingerprint: String,
        signed_at: String,
        why: String,
    },
    #[error("the package is corrupt or has been tampered with: {detail}")]
    Tampered { detail: String },
    #[error("the package is truncated (the OpenPGP data ends early)")]
    Truncated,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn pgp_err(what: &'static str) -> impl Fn(pgp::errors::Error) -> CryptoError {
    move |e| CryptoError::Pgp {
        what,
        detail: e.to_string(),
    }
}

/// An upper-case hex fingerprint.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A secret key and what unlocks it.
pub struct SecretKey {
    pub path: PathBuf,
    key: SignedSecretKey,
    passphrase: String,
}

impl SecretKey {
    /// Whether the key can sign now (not revoked or expired).
    pub fn check_can_sign_now(&self) -> Result<(), CryptoError> {
        signing_key(self).map(|_| ())
    }

    /// When signing with this key stops working by expiry (RFC 3339), if
    /// it does.
    pub fn expires(&self) -> Option<String> {
        validity::expires(&self.key.to_public_key(), None).map(validity::text)
    }

    /// Loads an armored secret key; `passphrase` comes from the environment
    /// or a file, never from a flag.
    pub fn load(path: &Path, passphrase: Option<String>) -> Result<SecretKey, CryptoError> {
        let text = crate::private::read_small(path).map_err(|source| CryptoError::KeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        let (key, _) =
            SignedSecretKey::from_reader_single(&text[..]).map_err(|e| CryptoError::NotAKey {
                path: path.to_path_buf(),
                what: "secret key",
                detail: e.to_string(),
            })?;
        key.verify_bindings().map_err(|e| CryptoError::NotAKey {
            path: path.to_path_buf(),
            what: "secret key",
            detail: format!("its self-signatures do not verify: {e}"),
        })?;
        let passphrase = passphrase.unwrap_or_default();
        // Unlock once now, so a wrong passphrase is reported before any work.
        let unlocked = key
            .primary_key
            .unlock(&Password::from(passphrase.as_str()), |_, _| Ok(()))
            .map(|r| r.is_ok())
            .unwrap_or(false);
        if !unlocked {
            return Err(CryptoError::Locked {
                path: path.to_path_buf(),
            });
        }
        Ok(SecretKey {
            path: path.to_path_buf(),
            key,
            passphrase,
        })
    }

    pub fn fingerprint(&self) -> String {
        hex(self.key.fingerprint().as_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            path: self.path.clone(),
            key: self.key.to_public_key(),
        }
    }
}

/// A public key (a caregiver's, to encrypt to; the region's, to verify).
#[derive(Clone)]
pub struct PublicKey {
    pub path: PathBuf,
    key: SignedPublicKey,
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<PublicKey, CryptoError> {
        let text = crate::private::read_small(path).map_err(|source| CryptoError::KeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        let (key, _) =
            SignedPublicKey::from_reader_single(&text[..]).map_err(|e| CryptoError::NotAKey {
                path: path.to_path_buf(),
                what: "public key",
                detail: e.to_string(),
            })?;
        key.verify_bindings().map_err(|e| CryptoError::NotAKey {
            path: path.to_path_buf(),
            what: "public key",
            detail: format!("its self-signatures do not verify: {e}"),
        })?;
        let pk = PublicKey {
            path: path.to_path_buf(),
            key,
        };
        Ok(pk)
    }

    pub fn fingerprint(&self) -> String {
        hex(self.key.fingerprint().as_bytes())
    }

    /// Checks that the key has an encryption subkey at all (whatever its
    /// validity): a key file that can never work.
    pub fn check_can_encrypt(&self) -> Result<(), CryptoError> {
        if self.encryption_subkeys().next().is_some() {
            Ok(())
        } else {
            Err(CryptoError::NoUsableKey {
                path: self.path.clone(),
                what: "encryption",
            })
        }
    }

    fn encryption_subkeys(&self) -> impl Iterator<Item = &pgp::composed::SignedPublicSubKey> {
        self.key.public_subkeys.iter().filter(|sk| {
            sk.key.algorithm().can_encrypt()
                && sk.signatures.iter().any(|s| {
                    let f = s.key_flags();
                    f.encrypt_comms() || f.encrypt_storage()
                })
        })
    }

    /// The subkey to encrypt to at `at` (OpenPGP seconds): the newest
    /// encryption subkey that is neither revoked nor expired, of a primary
    /// key that is neither. An error names the key and why.
    pub fn encryption_subkey_at(
        &self,
        at: u32,
    ) -> Result<&pgp::composed::SignedPublicSubKey, CryptoError> {
        const TODO: &str = "ask the caregiver for its new (or extended) public key and put it in this file; until then it gets no package and its changes wait";
        let unusable = |why: String| CryptoError::KeyUnusable {
            path: self.path.clone(),
            fingerprint: self.fingerprint(),
            why,
            todo: TODO,
        };
        if let Some(i) = validity::primary(&self.key, at) {
            return Err(unusable(i.to_string()));
        }
        self.check_can_encrypt()?;
        let valid = self
            .encryption_subkeys()
            .filter(|sk| validity::subkey(sk, at).is_none())
            .max_by_key(|sk| sk.key.created_at().as_secs());
        match valid {
            Some(sk) => Ok(sk),
            None => {
                let newest = self
                    .encryption_subkeys()
                    .max_by_key(|sk| sk.key.created_at().as_secs())
                    .and_then(|sk| validity::subkey(sk, at))
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                Err(unusable(format!(
                    "has no valid encryption subkey (the newest {newest})"
                )))
            }
        }
    }

    /// Whether the key can be encrypted to now (not revoked or expired).
    pub fn check_usable_now(&self) -> Result<(), CryptoError> {
        self.encryption_subkey_at(validity::now()).map(|_| ())
    }

    /// When encrypting to this key stops working by expiry (RFC 3339),
    /// if it does: for warnings ahead of time.
    pub fn expires(&self) -> Option<String> {
        let sub = self.encryption_subkey_at(validity::now()).ok();
        validity::expires(&self.key, sub).map(validity::text)
    }

    /// The key ids this key can be addressed by (primary and subkeys).
    fn key_ids(&self) -> Vec<String> {
        let mut v = vec![hex(self.key.legacy_key_id().as_ref())];
        for sk in &self.key.public_subkeys {
            v.push(hex(sk.key.legacy_key_id().as_ref()));
        }
        v
    }
}

/// The signing-capable part of a secret key, usable now: the primary key
/// when its flags allow signing, else the newest valid signing subkey; an
/// error when the key is revoked or expired.
fn signing_key(sk: &SecretKey) -> Result<&dyn pgp::types::SigningKey, CryptoError> {
    const TODO: &str = "extend it (gpg --quick-set-expire) or make a new signing key (ctferry keys generate), and send every caregiver the new public key before switching";
    let public = sk.key.to_public_key();
    let now = validity::now();
    let unusable = |why: String| CryptoError::KeyUnusable {
        path: sk.path.clone(),
        fingerprint: sk.fingerprint(),
        why,
        todo: TODO,
    };
    if let Some(i) = validity::primary(&public, now) {
        return Err(unusable(i.to_string()));
    }
    let primary_signs = sk
        .key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .any(|s| s.key_flags().sign())
        || sk
            .key
            .details
            .direct_signatures
            .iter()
            .any(|s| s.key_flags().sign());
    if primary_signs && sk.key.primary_key.algorithm().can_sign() {
        return Ok(&sk.key.primary_key);
    }
    let signing: Vec<(usize, &pgp::composed::SignedSecretSubKey)> = sk
        .key
        .secret_subkeys
        .iter()
        .enumerate()
        .filter(|(_, sub)| {
            sub.key.algorithm().can_sign() && sub.signatures.iter().any(|s| s.key_flags().sign())
        })
        .collect();
    let valid = signing
        .iter()
        .filter(|(j, _)| {
            public
                .public_subkeys
                .get(sk.key.public_subkeys.len() + *j)
                .is_some_and(|p| validity::subkey(p, now).is_none())
        })
        .max_by_key(|(_, sub)| sub.key.created_at().as_secs());
    if let Some((_, sub)) = valid {
        return Ok(&sub.key);
    }
    if !signing.is_empty() {
        return Err(unusable("has no valid signing subkey".into()));
    }
    Err(CryptoError::NoUsableKey {
        path: sk.path.clone(),
        what: "signing",
    })
}

/// Signs `plaintext` with `signer` and encrypts it to `recipient`, writing
/// the binary OpenPGP message to `out`. Streams: memory does not grow with
/// the size of `plaintext`.
pub fn seal<R: Read, W: Write>(
    plaintext: R,
    signer: &SecretKey,
    recipient: &PublicKey,
    out: W,
) -> Result<(), CryptoError> {
    let sub = recipient.encryption_subkey_at(validity::now())?;
    let key = signing_key(signer)?;
    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_reader("", plaintext)
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder
        .encrypt_to_key(&mut rng, &sub.key)
        .map_err(pgp_err("encryption"))?;
    builder.sign(
        key,
        Password::from(signer.passphrase.as_str()),
        HashAlgorithm::Sha256,
    );
    builder
        .partial_chunk_size(1 << 20)
        .map_err(pgp_err("encryption"))?;
    builder.to_writer(&mut rng, out).map_err(|e| {
        // A write error of the output (disk full) is an I/O error, not a crypto one.
        CryptoError::Pgp {
            what: "signing and encryption",
            detail: e.to_string(),
        }
    })
}

/// An opened (decrypted, streaming) message. Read it to the end, then call
/// `finish` to learn whether it was intact and signed by a publisher key.
pub struct Opened<'a> {
    msg: Message<'a>,
    publishers: Vec<PublicKey>,
}

impl Read for Opened<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.msg.read(buf)
    }
}

impl Opened<'_> {
    /// Call after reading to the end: checks the signature against the
    /// accepted publisher keys. Returns the signing key's fingerprint.
    pub fn finish(mut self) -> Result<String, CryptoError> {
        // Drain whatever the caller did not read (and hit the MDC check).
        let mut sink = [0u8; 64 * 1024];
        loop {
            match self.msg.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(read_error(e)),
            }
        }
        if !self.msg.is_signed() {
            return Err(CryptoError::Unsigned);
        }
        // The signature must also have been made while the key was valid:
        // not after it expired, and not by a revoked key (a superseded or
        // retired key's signatures from before its revocation stand).
        let judged = |p: &PublicKey,
                      sig: &pgp::packet::Signature,
                      sub: Option<&pgp::composed::SignedPublicSubKey>| {
            let at = sig.created().map(|t| t.as_secs()).unwrap_or(0);
            let why =
                validity::primary(&p.key, at).or_else(|| sub.and_then(|s| validity::subkey(s, at)));
            match why {
                None => Ok(p.fingerprint()),
                Some(i) => Err(CryptoError::SignerInvalid {
                    fingerprint: p.fingerprint(),
                    signed_at: validity::text(at),
                    why: i.to_string(),
                }),
            }
        };
        for p in &self.publishers {
            if let Ok(sig) = self.msg.verify(&p.key) {
                return judged(p, sig, None);
            }
            for sub in &p.key.public_subkeys {
                if let Ok(sig) = self.msg.verify(sub) {
                    return judged(p, sig, Some(sub));
                }
            }
        }
        Err(CryptoError::UnknownSigner {
            accepted: self
                .publishers
                .iter()
                .map(|p| p.fingerprint())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Maps an error met while reading decrypted data.
pub fn read_error(e: std::io::Error) -> CryptoError {
    let text = e.to_string();
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return CryptoError::Truncated;
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("mdc") || lower.contains("modification") || lower.contains("integrity") {
        CryptoError::Tampered { detail: text }
    } else if lower.contains("eof")
        || lower.contains("unexpected end")
        || lower.contains("not enough")
    {
        CryptoError::Truncated
    } else {
        CryptoError::Tampered { detail: text }
    }
}

/// Decrypts an OpenPGP message with `key` (streaming). Signature and
/// integrity are only known after reading to the end (`Opened::finish`).
pub fn open<'a, R: BufRead + std::fmt::Debug + Send + 'a>(
    input: R,
    key: &'a SecretKey,
    publishers: &[PublicKey],
) -> Result<Opened<'a>, CryptoError> {
    let msg = Message::from_bytes(input).map_err(|e| classify_parse(e.to_string()))?;
    let recipients: Vec<String> = match &msg {
        Message::Encrypted { esk, .. } => esk
            .iter()
            .filter_map(|e| match e {
                pgp::composed::Esk::PublicKeyEncryptedSessionKey(p) => {
                    p.id().ok().map(|id| hex(id.as_ref()))
                }
                _ => None,
            })
            .collect(),
        _ => {
            return Err(CryptoError::Tampered {
                detail: "the file is not an encrypted OpenPGP message".into(),
            })
        }
    };
    let ours = key.public().key_ids();
    if !recipients.is_empty() && !recipients.iter().any(|r| ours.contains(r)) {
        return Err(CryptoError::NotForUs {
            ours: key.fingerprint(),
            theirs: recipients.join(", "),
        });
    }
    let password = Password::from(key.passphrase.as_str());
    let ring = TheRing {
        secret_keys: vec![&key.key],
        key_passwords: vec![&password],
        decrypt_options: pgp::composed::DecryptionOptions::new()
            .set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
        ..Default::default()
    };
    let (mut msg, _) = msg
        .decrypt_the_ring(ring, true)
        .map_err(|e| classify_parse(e.to_string()))?;
    if msg.is_compressed() {
        msg = msg
            .decompress()
            .map_err(|e| classify_parse(e.to_string()))?;
    }
    if !msg.is_signed() {
        return Err(CryptoError::Unsigned);
    }
    Ok(Opened {
        msg,
        publishers: publishers.to_vec(),
    })
}

fn classify_parse(detail: String) -> CryptoError {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("eof")
        || lower.contains("unexpected end")
        || lower.contains("incomplete")
        || lower.contains("shorter than expected")
    {
        CryptoError::Truncated
    } else {
        CryptoError::Tampered { detail }
    }
}

/// A new key pair for the region (signing) or a caregiver (encryption):
/// Ed25519 primary (certify, sign) and Curve25519 encryption subkey, v4 keys
/// as GnuPG 2.2 reads them. Returns (public armored, secret armored).
pub fn generate(
    name: &str,
    email: &str,
    passphrase: Option<&str>,
) -> Result<(String, String), CryptoError> {
    let mut enc = SubkeyParamsBuilder::default();
    enc.key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_sign(false)
        .can_encrypt(EncryptionCaps::All)
        .can_authenticate(false);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id(format!("{name} <{email}>"))
        .subkeys(vec![enc.build().map_err(|e| CryptoError::Pgp {
            what: "key generation",
            detail: e.to_string(),
        })?]);
    if let Some(p) = passphrase {
        params.passphrase(Some(p.to_string()));
    }
    let params = params.build().map_err(|e| CryptoError::Pgp {
        what: "key generation",
        detail: e.to_string(),
    })?;
    let secret = params
        .generate(rand::thread_rng())
        .map_err(pgp_err("key generation"))?;
    let public = secret.to_public_key();
    let pub_text = public
        .to_armored_string(ArmorOptions::default())
        .map_err(pgp_err("key export"))?;
    let sec_text = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(pgp_err("key export"))?;
    Ok((pub_text, sec_text))
}
