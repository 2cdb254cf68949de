//! TLS for both listeners: rustls with its aws-lc-rs provider, TLS 1.3 only (a client offering only TLS 1.2
//! or lower fails the handshake), certificates and keys from PEM files. With `client_ca_file`, every client
//! must present a certificate chaining to those CAs, and the certificate's subject becomes its identity.
//!
//! Start-up refuses, with a message naming the file, a file that is missing or unreadable, one holding no
//! certificate (or no private key) where one is expected, and a key file that group or others can read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::secret;

/// Why TLS cannot be set up. Messages name the file, never key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A certificate file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key could not be read (missing, too open, unset variable).
    #[error("tls.key_file: {0}")]
    Key(#[from] secret::SecretError),
    /// The file holds no PEM block of the expected kind.
    #[error("{what} holds no {expected} (is it the right file?)")]
    WrongKind {
        /// The file (or `env:NAME`).
        what: String,
        /// What was expected in it.
        expected: &'static str,
    },
    /// rustls refused the material (a key that does not match the certificate, an unusable CA).
    #[error("{0}")]
    Rustls(String),
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsSetupError::WrongKind {
            what: path.display().to_string(),
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

/// A certificate chain and its private key: `cert_file` a PEM file, `key_source` a secret source (a file
/// private to its owner, or `env:NAME`).
///
/// # Errors
/// [`TlsSetupError`] naming the file (never key bytes).
pub(crate) fn load_identity(
    cert_file: &Path,
    key_source: &str,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let certs = read_certs(&resolve(cert_file))?;
    let key_pem = secret::read(key_source, &resolve)?;
    // `key_pem` is zeroized on drop; rustls keeps its own copy of the DER for the life of the config.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsSetupError::WrongKind {
        what: key_source.to_owned(),
        expected: "PEM private key",
    })?;
    Ok((certs, key))
}

/// Why an outgoing TLS client cannot be set up. Messages name the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientTlsError {
    /// `ca_file` is missing or unreadable.
    #[error("ca_file: cannot read {path}: {source}")]
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `ca_file` holds no PEM certificate.
    #[error("ca_file: {0} holds no PEM certificate (is it the right file?)")]
    CaEmpty(PathBuf),
    /// rustls refused the material (an unusable CA, a client key that does not match its certificate).
    #[error("{0}")]
    Tls(String),
}

/// The TLS client set-up shared by every outgoing connection (the alert webhook, proxy mode's upstreams):
/// rustls on aws-lc-rs, TLS 1.3 and 1.2 — a listener chooses its clients, a client does not choose its server,
/// and rustls' TLS 1.2 is limited to forward-secret AEAD suites. Server certificates chain to `ca_file` alone
/// when given (a private CA), else to Mozilla's roots compiled in (`webpki-roots`), the same on every host.
/// `identity` is the client certificate and key presented for mTLS. ALPN is left to the caller.
///
/// # Errors
/// [`ClientTlsError`] naming the file.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, ClientTlsError> {
    let roots = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| ClientTlsError::CaRead {
                path: path.to_path_buf(),
                source,
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
                roots.add(cert).map_err(|e| {
                    ClientTlsError::Tls(format!("ca_file: {}: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(ClientTlsError::CaEmpty(path.to_path_buf()));
            }
            roots
        }
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientTlsError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| ClientTlsError::Tls(format!("client certificate and key: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Builds the acceptor both listeners use.
///
/// # Errors
/// [`TlsSetupError`] naming the file.
pub fn acceptor(
    cfg: &TlsConfig,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<TlsAcceptor, TlsSetupError> {
    let (certs, key) = load_identity(&cfg.cert_file, &cfg.key_file, &resolve)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let builder = match &cfg.client_ca_file {
        Some(ca) => {
            let ca = resolve(ca);
            let mut roots = RootCertStore::empty();
            for c in read_certs(&ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsSetupError::Rustls(format!("{}: {e}", ca.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsSetupError::Rustls(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsSetupError::Rustls(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The identity a verified client certificate names: its first SAN URI, else its subject CN.
pub(crate) fn peer_identity(cert: &CertificateDer<'_>) -> Option<Arc<str>> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                return Some(Arc::from(*uri));
            }
        }
    }
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    (!cn.is_empty()).then(|| Arc::from(cn))
}
