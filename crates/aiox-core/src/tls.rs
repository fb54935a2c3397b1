//! [`TlsConfig`]: server TLS through rustls (ring provider, TLS 1.2 and 1.3) with ALPN
//! `h2` and `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// ALPN protocols a server offers, in preference order: HTTP/2, then HTTP/1.1.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A server's TLS configuration.
///
/// ```no_run
/// use aiox_core::tls::TlsConfig;
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// # Ok::<(), aiox_core::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) from files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        let cert = std::fs::read(cert.as_ref())
            .map_err(|e| Error::io("cannot read the TLS certificate file", e))?;
        let key = std::fs::read(key.as_ref())
            .map_err(|e| Error::io("cannot read the TLS private key file", e))?;
        Self::from_pem(&cert, &key)
    }

    /// Builds a configuration from an in-memory PEM certificate chain and private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::tls("invalid PEM certificate", Some(Box::new(e))))?;
        if certs.is_empty() {
            return Err(Error::tls("no certificate found in the PEM data", None));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::tls("invalid PEM private key", Some(Box::new(e))))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::tls("unsupported TLS protocol versions", Some(Box::new(e))))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                Error::tls(
                    "certificate and key do not form a valid pair",
                    Some(Box::new(e)),
                )
            })?;
        Ok(Self::from_rustls(config))
    }

    /// Uses a rustls configuration as is, adding ALPN `h2`/`http/1.1` if it offers none.
    pub fn from_rustls(mut config: rustls::ServerConfig) -> Self {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        }
        Self {
            config: Arc::new(config),
        }
    }

    /// The rustls configuration.
    pub fn rustls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_generated_pem_with_alpn() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsConfig::from_pem(
            cert.cert.pem().as_bytes(),
            cert.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            tls.rustls_config().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn garbage_is_a_tls_error_not_a_panic() {
        let err = TlsConfig::from_pem(b"not pem", b"not pem").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Tls);
        let err =
            TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Io);
    }
}
