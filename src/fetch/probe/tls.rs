//! TLS client set-up shared by the SMTP and HTTPS probes: the system's trust store plus
//! `--ca-file`, and a verifier that records its verdict instead of aborting the handshake, so a
//! probe learns the protocol version and the certificate even when the certificate is bad.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Trust anchors for the TLS checks.
#[derive(Clone)]
pub struct Trust {
    pub roots: Arc<RootCertStore>,
    /// The same anchors as DER certificates (for the HTTP client).
    pub ders: Arc<Vec<CertificateDer<'static>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read the CA file {path} (--ca-file / DMARC_WARDEN_CA_FILE): {reason}")]
pub struct CaFileError {
    pub path: std::path::PathBuf,
    pub reason: String,
}

impl Trust {
    /// The system's trust store, and the certificates of `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, CaFileError> {
        let mut ders: Vec<CertificateDer<'static>> = rustls_native_certs::load_native_certs().certs;
        if let Some(path) = ca_file {
            let err = |reason: String| CaFileError {
                path: path.to_owned(),
                reason,
            };
            let before = ders.len();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
                ders.push(cert.map_err(|e| err(e.to_string()))?);
            }
            if ders.len() == before {
                return Err(err("no PEM certificate in it".into()));
            }
        }
        let mut roots = RootCertStore::empty();
        // Certificates the store cannot parse are skipped, as every TLS client does.
        let (_, _) = roots.add_parsable_certificates(ders.iter().cloned());
        Ok(Trust {
            roots: Arc::new(roots),
            ders: Arc::new(ders),
        })
    }

    /// A client configuration whose certificate verdict lands in the returned [`Verdict`].
    pub fn recording_config(&self) -> Result<(Arc<ClientConfig>, Arc<Verdict>), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
        let verdict = Arc::new(Verdict {
            inner,
            seen: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verdict.clone())
            .with_no_client_auth();
        Ok((Arc::new(config), verdict))
    }
}

/// What the verifier saw: the leaf certificate and why it is not trusted (`None`: trusted).
#[derive(Debug)]
pub struct Verdict {
    inner: Arc<WebPkiServerVerifier>,
    pub seen: Mutex<Option<(Vec<u8>, Option<String>)>>,
}

impl Verdict {
    /// The leaf certificate (DER) and the reason it is not trusted, once a handshake got that far.
    pub fn take(&self) -> Option<(Vec<u8>, Option<String>)> {
        self.seen.lock().ok().and_then(|mut s| s.take())
    }
}

impl ServerCertVerifier for Verdict {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let problem = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .err()
            .map(|e| e.to_string());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((end_entity.to_vec(), problem));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The end of a certificate's validity, seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}
