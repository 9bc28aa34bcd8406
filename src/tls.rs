//! PEM certificates and private keys, and the rustls set-ups made of them, with the ring
//! provider: the broker connection's (`publish`), the local endpoint's server side (`local`)
//! and its client (`local::client`, which trusts exactly the endpoint's own certificate).
//!
//! Errors say what is wrong with a file, never what is in it: a private key's content never
//! reaches a message or a log.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The one crypto provider: ring.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of the PEM file at `path`, in order (a chain: the server's or client's own
/// certificate first).
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate (the reason, without the path).
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    certificates_from_pem(&std::fs::read(path).map_err(|e| e.to_string())?)
}

/// The certificates in PEM `text`, in order.
///
/// # Errors
/// Not PEM, or no certificate in it.
pub(crate) fn certificates_from_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certificates.is_empty() {
        return Err("no PEM certificate in it".to_owned());
    }
    Ok(certificates)
}

/// The private key (PKCS#8, PKCS#1 or SEC1) of the PEM file at `path`.
///
/// # Errors
/// The file cannot be read or holds no readable key (the reason, without the path or the
/// file's content).
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    private_key_from_pem(&std::fs::read(path).map_err(|e| e.to_string())?)
}

/// The private key in PEM `text`.
///
/// # Errors
/// No readable PEM private key in it; the reason never quotes `text`.
pub(crate) fn private_key_from_pem(text: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(text).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no PEM private key in it (expected PKCS#8, PKCS#1 or SEC1)".to_owned()
        }
        // Other PEM errors may quote the text: keep the key's content out of the message.
        _ => "not a readable PEM private key".to_owned(),
    })
}

/// Why a certificate and a private key cannot serve together.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyMismatch {
    /// The key is not the certificate's.
    #[error("is not the private key of the certificate")]
    NotItsKey,
    /// rustls refuses them for another reason.
    #[error("cannot be used with the certificate ({0})")]
    Unusable(String),
}

/// A rustls server configuration for HTTP/1.1 with `chain` (the server's certificate first)
/// and its `key`; no client certificates.
///
/// # Errors
/// [`KeyMismatch`]: the key does not belong to the certificate, or rustls refuses them.
pub(crate) fn http_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, KeyMismatch> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| KeyMismatch::Unusable(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => KeyMismatch::NotItsKey,
            other => KeyMismatch::Unusable(other.to_string()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A verifier of server certificates that accepts them as `accept` says, without a CA, and
/// always checks the handshake's signatures; for
/// `ClientConfig::builder().dangerous().with_custom_certificate_verifier`.
pub(crate) fn accepting(accept: Accept) -> Arc<dyn ServerCertVerifier> {
    Arc::new(SignatureOnly {
        provider: provider(),
        accept,
    })
}

/// Which server certificate [`accepting`] accepts: no chain and no name are checked.
#[derive(Debug)]
pub(crate) enum Accept {
    /// Any (`mqtt.tls_verify = false`): the connection is encrypted, but anyone on the path
    /// can pose as the server.
    Any,
    /// Only this very certificate (byte for byte): the local endpoint's own, which the client
    /// reads from the same configuration on the same device. Its names and dates are not looked
    /// at: the key that signs the handshake is what matters.
    Only(CertificateDer<'static>),
}

/// Checks the handshake's signatures (by the provider), so that the session keys belong to
/// whoever holds the certificate's key; which certificate is accepted is [`Accept`]'s.
#[derive(Debug)]
struct SignatureOnly {
    provider: Arc<CryptoProvider>,
    accept: Accept,
}

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.accept {
            Accept::Any => Ok(ServerCertVerified::assertion()),
            Accept::Only(expected) if expected.as_ref() == end_entity.as_ref() => {
                Ok(ServerCertVerified::assertion())
            }
            Accept::Only(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pem_and_server_configs_from_table() {
        let (cert_a, key_a) = self_signed();
        let (_cert_b, key_b) = self_signed();
        let garbage_key = "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n";
        assert_eq!(certificates_from_pem(cert_a.as_bytes()).unwrap().len(), 1);
        // (certificate PEM, key PEM, Ok or Err(start of the reason))
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            (&cert_a, &key_a, Ok(())),
            (
                &cert_a,
                &key_b,
                Err("is not the private key of the certificate"),
            ),
            ("", &key_a, Err("no PEM certificate in it")),
            ("hello\n", &key_a, Err("no PEM certificate in it")),
            (&key_a, &key_a, Err("no PEM certificate in it")),
            (&cert_a, &cert_a, Err("no PEM private key in it")),
            (&cert_a, "", Err("no PEM private key in it")),
            (&cert_a, garbage_key, Err("not a readable PEM private key")),
        ];
        for (cert, key, expected) in cases {
            let got = certificates_from_pem(cert.as_bytes()).and_then(|chain| {
                let key = private_key_from_pem(key.as_bytes())?;
                http_server_config(chain, key)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            match (&got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(reason), Err(start)) => {
                    assert!(reason.starts_with(start), "{reason}");
                    assert!(!reason.contains("not base64"), "{reason}");
                    assert!(!reason.contains("BEGIN"), "{reason}");
                }
                _ => panic!("{cert:.30} / {key:.30}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
