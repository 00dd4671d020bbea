//! Webhooks: an HTTPS POST of the message's JSON (ureq, blocking, rustls), the certificate checked
//! against the system's roots and an optional `ca_file`. No redirects are followed, and the URL
//! (which may hold a token) never appears in an error.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::NotifyError;
use super::render::Message;
use super::settings::Webhook;

/// POSTs `m.json` to the webhook; any status but 2xx is a failure.
pub fn post(w: &Webhook, m: &Message) -> Result<(), NotifyError> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = &w.ca_file {
        let ca_err = |reason: String| NotifyError::CaFile {
            path: path.clone(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))?;
        for c in certs {
            let c = c.map_err(|e| ca_err(e.to_string()))?;
            roots.push(Certificate::from_der(c.as_ref()).to_owned());
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(w.timeout))
        .max_redirects(0)
        .http_status_as_error(true)
        .build()
        .into();
    let url = w.url.expose();
    let body = serde_json::to_vec(&m.json).unwrap_or_default();
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            &format!("dmarc-warden/{}", env!("CARGO_PKG_VERSION")),
        )
        .send(&body[..])
        .map_err(|e| NotifyError::Webhook(e.to_string().replace(url, "<url>")))?;
    Ok(())
}
