//! The MTA-STS policy over HTTPS (RFC 8461 §3.3): `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! through ureq, with the addresses our own resolver found (so `--resolver` holds for this too), the
//! trust anchors of the TLS checks, no redirects, a timeout and a bound on the body (64 KiB, as the
//! RFC allows).

use std::net::SocketAddr;
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::tls::Trust;
use crate::analyse::check::PolicyFetch;

/// Largest policy read.
const MAX_POLICY: u64 = 64 * 1024;

/// Resolves every name to the addresses given (those of `mta-sts.<domain>`).
#[derive(Debug)]
struct Fixed(Vec<SocketAddr>);

impl Resolver for Fixed {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for addr in self.0.iter().take(16) {
            out.push(*addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// Fetches the policy of `domain` from `addrs` (port 443).
pub fn policy(
    domain: &str,
    addrs: Vec<SocketAddr>,
    trust: &Trust,
    timeout: Duration,
) -> PolicyFetch {
    let certs: Vec<ureq::tls::Certificate<'static>> = trust
        .ders
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::from(certs))
        .build();
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(tls)
        .build();
    let agent = ureq::Agent::with_parts(config, DefaultConnector::new(), Fixed(addrs));
    let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
    let mut response = match agent.get(&url).call() {
        Ok(r) => r,
        Err(e) => return PolicyFetch::Failed(format!("{url}: {e}")),
    };
    let status = response.status();
    if !status.is_success() {
        return PolicyFetch::Failed(format!("{url}: HTTP status {}", status.as_u16()));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("text/plain") {
        return PolicyFetch::Failed(format!("{url}: served as {content_type:?}, not text/plain"));
    }
    match response
        .body_mut()
        .with_config()
        .limit(MAX_POLICY)
        .read_to_string()
    {
        Ok(body) => PolicyFetch::Body(body),
        Err(e) => PolicyFetch::Failed(format!("{url}: {e}")),
    }
}
