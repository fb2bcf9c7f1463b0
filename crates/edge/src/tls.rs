//! TLS for every listener: the certificate chain and key of `[http]` loaded once at start-up
//! (rustls with the *ring* provider, the one our own HTTP clients use), and the client
//! settings this process uses to reach its own listeners over HTTPS.
//!
//! Errors name the file and never carry a key's bytes: a PEM parser's own message may
//! quote a line of what it read, so a key file's errors say only what kind of fault it is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::verify_tls13_signature;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring, verify_tls12_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, Error as RustlsError, ServerConfig, SignatureScheme,
};

pub use tokio_rustls::rustls::ClientConfig;

/// ALPN protocols offered, in our order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the certificate or key of `[http]` cannot be used. Each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the TLS {what} file {}: {source}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file is not PEM, or holds no certificate.
    #[error(
        "the TLS certificate file {} holds no usable PEM certificate \
         (-----BEGIN CERTIFICATE-----): {reason}", path.display()
    )]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is not PEM, or holds no private key.
    #[error(
        "the TLS private key file {} holds no usable PEM private key (PKCS#8, PKCS#1 or \
         SEC1): {reason}", path.display()
    )]
    Key {
        /// The file.
        path: PathBuf,
        /// What kind of fault it is, without the file's content.
        reason: &'static str,
    },
    /// The key does not fit the certificate, or rustls cannot use the pair.
    #[error(
        "the TLS private key in {} cannot serve the certificate in {}: {reason}",
        key.display(), cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason (no key material).
        reason: String,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The acceptor of a listener serving the chain in `cert` with the key in `key`, offering
/// HTTP/2 and HTTP/1.1 by ALPN.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = read_certificates(cert)?;
    let private_key = read_key(key)?;
    let mismatch = |e: RustlsError| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(mismatch)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client settings that trust exactly the first certificate in `cert`, whatever name it
/// carries: how this process reaches its own listeners (its registry on 127.0.0.1, say),
/// whose certificate names the host people use. Pinning our own certificate is stricter
/// than a CA would be: only the holder of its key passes.
pub fn pinned_client_config(cert: &Path) -> Result<ClientConfig, TlsError> {
    let ours =
        read_certificates(cert)?
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::Certificate {
                path: cert.to_path_buf(),
                reason: "no certificate found".into(),
            })?;
    let provider = provider();
    let verifier = Arc::new(Pinned {
        ours,
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Certificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in the PEM file at `path`, leaf first.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, "certificate")?;
    let invalid = |reason: String| TlsError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if chain.is_empty() {
        return Err(invalid("no certificate found".into()));
    }
    Ok(chain)
}

/// The first private key in the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    use tokio_rustls::rustls::pki_types::pem::Error as PemError;
    let pem = read_file(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        reason: match e {
            PemError::NoItemsFound => "no private key found",
            PemError::MissingSectionEnd { .. } => "a PEM section has no END line",
            PemError::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
            PemError::Base64Decode(_) => "a PEM section is not valid base64",
            PemError::SectionTooLarge => "a PEM section is too large",
            _ => "the PEM does not parse",
        },
    })
}

/// Accepts the one certificate it was given (signatures still checked with it).
#[derive(Debug)]
struct Pinned {
    ours: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        if end_entity.as_ref() == self.ours.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(RustlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
