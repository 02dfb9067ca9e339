//! The test PKI: a CA made at test time and server certificates it signs for 127.0.0.1 and
//! localhost, as PEM text and files. Every suite that needs TLS trusts this one CA.

use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
use tempfile::TempDir;

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files; more
/// certificates from the same CA on request.
pub struct Pki {
    pub dir: TempDir,
    pub ca: CertificateDer<'static>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The server certificate and key of `cert_path` and `key_path`, as PEM text.
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA certificate as a PEM file, for clients given a `--ca` option.
    pub ca_path: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "v8help test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, issuer.pem()).unwrap();
        let mut pki = Pki {
            ca: issuer.der().clone(),
            dir,
            cert_path,
            key_path,
            cert_pem: String::new(),
            key_pem: String::new(),
            ca_path,
            issuer,
        };
        let (cert, key) = pki.issue();
        std::fs::write(&pki.cert_path, &cert).unwrap();
        std::fs::write(&pki.key_path, &key).unwrap();
        pki.cert_pem = cert;
        pki.key_pem = key;
        pki
    }

    /// A new server certificate (PEM) and its key (PEM) for 127.0.0.1 and localhost.
    pub fn issue(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}
