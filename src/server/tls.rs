//! TLS for the HTTPS listener: the certificate and key from PEM files, or an in-memory
//! self-signed certificate for localhost when none is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why TLS cannot be set up; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("private key {key} does not match certificate {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// A certificate chain and its key, ready for rustls.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let cert_err = |message: String| TlsError::Cert {
            path: cert.to_path_buf(),
            message,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(pem_problem(e)))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(pem_problem(e)))?;
        if chain.is_empty() {
            return Err(cert_err("no CERTIFICATE block in the file".into()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_path_buf(),
            message: pem_problem(e),
        })?;
        Ok(Identity { chain, key: key_der })
    }

    /// A fresh self-signed certificate for `localhost` and `127.0.0.1` (ECDSA P-256: the
    /// cheapest signature for a full handshake), kept only in memory.
    pub fn self_signed() -> Result<Identity, TlsError> {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(e.to_string()))?;
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        Ok(Identity {
            chain: vec![certified.cert.der().clone()],
            key,
        })
    }

    /// SHA-256 fingerprint of the leaf certificate, as `AB:CD:…`, for pinning or for a
    /// browser's certificate dialog.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.chain[0].as_ref());
        digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }
}

/// aws-lc-rs with the cipher suites in the order that is cheapest per handshake and per
/// byte on current x86 and ARM servers: AES-128-GCM with SHA-256 first.
fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, default_provider};
    let mut provider = default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    provider
}

fn pem_problem(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind in the file".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The rustls server configuration: HTTP/2 and HTTP/1.1 by ALPN, a session cache and
/// stateless tickets for resumption. `files` only names the files in the mismatch error.
pub fn server_config(identity: Identity, files: Option<(&Path, &Path)>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| match (e, files) {
            (rustls::Error::InconsistentKeys(_), Some((cert, key))) => TlsError::Mismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            },
            (e, _) => TlsError::Setup(e.to_string()),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order, not the client's: OpenSSL clients list AES-256-GCM-SHA384 first, whose
    // SHA-384 key schedule costs more per handshake than SHA-256 (which has CPU support).
    config.ignore_client_order = true;
    // One ticket per connection is enough for the next one to resume; each costs an encryption.
    config.send_tls13_tickets = 1;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(16 * 1024);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(Arc::new(config))
}
