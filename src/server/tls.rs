//! TLS for the HTTPS listener: the certificate and key from PEM files (reloaded when they
//! change), or an in-memory self-signed certificate for localhost when none is given.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// Why TLS cannot be set up, or why a renewed pair was refused; each names the file
/// involved. The text (one line, cause included) is what start-up prints and the reload
/// logs; the cause is a field, not an error `source`, so that a chain printer does not
/// repeat it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The `--cert` file could not be read or holds no usable PEM certificate chain.
    #[error("cannot read certificate {}: {cause}", path.display())]
    Cert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        cause: FileProblem,
    },
    /// The `--key` file could not be read or holds no usable PEM private key.
    #[error("cannot read private key {}: {cause}", path.display())]
    Key {
        /// The private key file.
        path: PathBuf,
        /// What is wrong with it.
        cause: FileProblem,
    },
    /// Both files load, but the key is not the certificate's (often: a renewal replaced
    /// only one of them).
    #[error("private key {} does not match certificate {}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// rustls or the self-signed certificate generator refused to set up TLS; not caused
    /// by a file.
    #[error("TLS setup failed: {0}")]
    Setup(SetupProblem),
}

/// What is wrong with a certificate or key file.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The file cannot be read.
    #[error("{0}")]
    Read(std::io::Error),
    /// The file is not PEM, or holds no block of the expected kind.
    #[error("{}", pem_problem(.0))]
    Pem(rustls::pki_types::pem::Error),
    /// The certificate file is PEM but holds no certificate.
    #[error("no CERTIFICATE block in the file")]
    NoCertificate,
    /// rustls refused what the file holds (an unsupported key type, a malformed chain).
    #[error("{0}")]
    Refused(rustls::Error),
}

/// Why TLS could not be set up, with no file to blame.
#[derive(Debug, thiserror::Error)]
pub enum SetupProblem {
    /// rustls refused the configuration or the key it was given.
    #[error("{0}")]
    Rustls(rustls::Error),
    /// The self-signed certificate could not be made.
    #[error("{0}")]
    SelfSigned(rcgen::Error),
    /// The generated key is not in a form rustls takes.
    #[error("{0}")]
    Key(&'static str),
}

/// The certificate being served. It can be replaced while the service runs (certbot-style
/// renewals): new handshakes get the new pair, open connections keep theirs, and a pair
/// that does not load or does not match is refused while the old one keeps serving.
#[derive(Debug)]
pub struct Certificate {
    current: ArcSwap<CertifiedKey>,
    /// Certificate and key files; `None` for the in-memory self-signed certificate.
    files: Option<(PathBuf, PathBuf)>,
    provider: Arc<CryptoProvider>,
    /// The bytes of both files as last loaded, to skip an unchanged pair.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl Certificate {
    /// Loads the pair from `files`, or makes a self-signed certificate for `localhost` and
    /// `127.0.0.1` (ECDSA P-256, the cheapest signature for a full handshake), kept only in
    /// memory.
    pub fn load(files: Option<(PathBuf, PathBuf)>) -> Result<Arc<Certificate>, TlsError> {
        let provider = Arc::new(provider());
        let (key, loaded) = match &files {
            Some((cert, key)) => {
                let bytes = read_pair(cert, key)?;
                (certified_key(&bytes, cert, key, &provider)?, bytes)
            }
            None => (self_signed(&provider)?, (Vec::new(), Vec::new())),
        };
        Ok(Arc::new(Certificate {
            current: ArcSwap::from_pointee(key),
            files,
            provider,
            loaded: Mutex::new(loaded),
        }))
    }

    /// The certificate and key files, to watch; `None` for the self-signed certificate.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        self.files.as_ref().map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// Whether this is the in-memory self-signed certificate.
    pub(crate) fn is_self_signed(&self) -> bool {
        self.files.is_none()
    }

    /// SHA-256 fingerprint of the leaf certificate being served, as `AB:CD:…`.
    pub(crate) fn fingerprint(&self) -> String {
        let current = self.current.load();
        let digest = Sha256::digest(current.cert.first().map_or(&[][..], |c| c.as_ref()));
        digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }

    /// Re-reads the files. `Ok(true)`: a new pair is being served; `Ok(false)`: nothing
    /// changed (or there are no files); `Err`: the new pair was refused and the old one stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let Some((cert, key)) = &self.files else {
            return Ok(false);
        };
        let bytes = read_pair(cert, key)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == bytes {
            return Ok(false);
        }
        let new = certified_key(&bytes, cert, key, &self.provider)?;
        self.current.store(Arc::new(new));
        *loaded = bytes;
        Ok(true)
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let c = std::fs::read(cert).map_err(|e| TlsError::Cert {
        path: cert.to_path_buf(),
        cause: FileProblem::Read(e),
    })?;
    let k = std::fs::read(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        cause: FileProblem::Read(e),
    })?;
    Ok((c, k))
}

/// Parses a PEM chain and a PEM key (PKCS#8, PKCS#1 or SEC1) and checks that they belong
/// together.
fn certified_key(
    (cert_pem, key_pem): &(Vec<u8>, Vec<u8>),
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_err = |cause: FileProblem| TlsError::Cert {
        path: cert.to_path_buf(),
        cause,
    };
    let key_err = |cause: FileProblem| TlsError::Key {
        path: key.to_path_buf(),
        cause,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(FileProblem::Pem(e)))?;
    if chain.is_empty() {
        return Err(cert_err(FileProblem::NoCertificate));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| key_err(FileProblem::Pem(e)))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| key_err(FileProblem::Refused(e)))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        Err(e) => Err(cert_err(FileProblem::Refused(e))),
    }
}

fn self_signed(provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(SetupProblem::SelfSigned(e)))?;
    let key =
        PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(|e| TlsError::Setup(SetupProblem::Key(e)))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Setup(SetupProblem::Rustls(e)))?;
    Ok(CertifiedKey::new(vec![made.cert.der().clone()], signing))
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

fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind in the file".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The rustls server configuration: HTTP/2 and HTTP/1.1 by ALPN, the certificate from
/// `cert` (replaceable), a session cache and stateless tickets for resumption.
pub(crate) fn server_config(cert: Arc<Certificate>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(cert.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(SetupProblem::Rustls(e)))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order, not the client's: OpenSSL clients list AES-256-GCM-SHA384 first, whose
    // SHA-384 key schedule costs more per handshake than SHA-256 (which has CPU support).
    config.ignore_client_order = true;
    // One ticket per connection is enough for the next one to resume; each costs an encryption.
    config.send_tls13_tickets = 1;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(16 * 1024);
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Setup(SetupProblem::Rustls(e)))?;
    Ok(Arc::new(config))
}
