//! The HTTP client of the token endpoint: `ureq` (blocking, rustls, like the rest of the program;
//! no async runtime), handed to the `oauth2` crate as its [`oauth2::SyncHttpClient`]. Certificates
//! are checked against the system's trust store plus the account's `ca_file`; answers are bounded.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, pem::PemObject};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::OAuthError;

/// Largest answer read from an OAuth2 endpoint.
const MAX_BODY: u64 = 1 << 20;

pub struct Http {
    agent: ureq::Agent,
    /// The status of the last answer, for errors about answers that are not OAuth2.
    status: Cell<Option<u16>>,
}

impl Http {
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Http, OAuthError> {
        let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if let Some(path) = ca_file {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                OAuthError::Setting(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            for cert in certs.flatten() {
                roots.push(Certificate::from_der(cert.as_ref()).to_owned());
            }
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // The oauth2 crate reads the error bodies (`invalid_client`, …) itself.
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("dmarc-warden/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Http {
            agent,
            status: Cell::new(None),
        })
    }

    /// The HTTP status of the last answer.
    pub fn status(&self) -> Option<u16> {
        self.status.get()
    }
}

impl oauth2::SyncHttpClient for Http {
    type Error = ureq::Error;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, ureq::Error> {
        let response = self.agent.run(request)?;
        let (parts, body) = response.into_parts();
        self.status.set(Some(parts.status.as_u16()));
        let bytes = body.into_with_config().limit(MAX_BODY).read_to_vec()?;
        Ok(oauth2::http::Response::from_parts(parts, bytes))
    }
}
