//! TLS settings for the client: root certificates (webpki or the system's), extra CA
//! certificates, a client certificate, the explicit opt-out of verification, and
//! the three ALPN variants a session needs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// Which built-in roots a session trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's roots compiled in (webpki-roots): the same everywhere (default).
    #[default]
    Webpki,
    /// The operating system's store (rustls-native-certs).
    Native,
    /// Only the certificates added with `add_root_certificate_pem`.
    None,
}

/// A client certificate and its key.
pub(crate) struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    pub(crate) fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::builder("the client certificate PEM is invalid").with_source(e))?;
        if certs.is_empty() {
            return Err(Error::builder(
                "the client certificate PEM holds no certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::builder("the client key PEM is invalid").with_source(e))?;
        Ok(Self { certs, key })
    }
}

/// What the builder collected.
#[derive(Default)]
pub(crate) struct TlsSettings {
    pub(crate) roots: TlsRoots,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) identity: Option<Identity>,
    pub(crate) insecure: bool,
}

/// The session's three client configs, by ALPN offer.
#[derive(Debug, Clone)]
pub(crate) struct TlsConfigs {
    /// `h2`, `http/1.1`.
    pub(crate) auto: Arc<ClientConfig>,
    /// `http/1.1`.
    pub(crate) http1: Arc<ClientConfig>,
    /// `h2`.
    pub(crate) http2: Arc<ClientConfig>,
}

pub(crate) fn add_pem_roots(settings: &mut TlsSettings, pem: &[u8]) -> Result<()> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::builder("the CA certificate PEM is invalid").with_source(e))?;
    if certs.is_empty() {
        return Err(Error::builder(
            "the CA certificate PEM holds no certificate",
        ));
    }
    settings.extra_roots.extend(certs);
    Ok(())
}

impl TlsSettings {
    pub(crate) fn build(self) -> Result<TlsConfigs> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::builder("no usable TLS protocol version").with_source(e))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
        } else {
            let mut store = RootCertStore::empty();
            match self.roots {
                TlsRoots::Webpki => {
                    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                TlsRoots::Native => {
                    let found = rustls_native_certs::load_native_certs();
                    for e in &found.errors {
                        tracing::debug!(error = %e, "could not load a system root certificate");
                    }
                    store.add_parsable_certificates(found.certs);
                }
                TlsRoots::None => {}
            }
            for cert in self.extra_roots {
                store.add(cert).map_err(|e| {
                    Error::builder("a CA certificate could not be added").with_source(e)
                })?;
            }
            builder.with_root_certificates(store)
        };
        let config = match self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.certs, identity.key)
                .map_err(|e| Error::builder("the client certificate was refused").with_source(e))?,
            None => builder.with_no_client_auth(),
        };
        let with_alpn = |protocols: &[&[u8]]| {
            let mut config = config.clone();
            config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Arc::new(config)
        };
        Ok(TlsConfigs {
            auto: with_alpn(&[b"h2", b"http/1.1"]),
            http1: with_alpn(&[b"http/1.1"]),
            http2: with_alpn(&[b"h2"]),
        })
    }
}

/// `danger_accept_invalid_certs(true)`: any certificate for any name is accepted; the
/// handshake signatures are still checked so the session keys are sound.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
