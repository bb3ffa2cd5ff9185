//! Test certificates, made for each run (never committed with their keys):
//! a CA, a server certificate it signs for `localhost` and 127.0.0.1, and an
//! unrelated CA. Included with `#[path]` by mssql-sim's and ctferry's TLS
//! tests.
#![allow(dead_code)]

use std::path::Path;

/// Writes `ca.pem`, `server.pem`, `server.key` and `other-ca.pem` into `dir`.
pub fn write(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["elsewhere".into()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other.cert.pem()).unwrap();
}
