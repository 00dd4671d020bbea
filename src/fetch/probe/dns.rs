//! DNS questions for `check`, through hickory-resolver: to one server (`--resolver`) or the system's
//! (`/etc/resolv.conf`). Each question has a timeout; every answer, a failure included, becomes an
//! [`Answer`], so a broken zone is a finding and never an error of the run.
//!
//! hickory is asynchronous: a small tokio runtime lives here, and the blocking methods of [`Dns`] run
//! one question each on it, so the rest of the program stays synchronous and several threads (one
//! per domain) can ask at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::analyse::check::{Answer, Mx};

/// A resolver and the runtime it runs on.
pub struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    #[error("cannot start the DNS runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "cannot read the system's DNS configuration (set --resolver / DMARC_WARDEN_RESOLVER): {0}"
    )]
    System(String),
    #[error("cannot set up the resolver: {0}")]
    Build(String),
}

impl Dns {
    /// Asks `server` (all questions, over UDP and, for long answers, TCP), or the system's resolvers.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Dns, DnsSetupError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(DnsSetupError::Runtime)?;
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => {
                TokioResolver::builder_tokio().map_err(|e| DnsSetupError::System(e.to_string()))?
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        // One retry after a timeout: a lost UDP packet is not a finding, a dead server costs two
        // timeouts per question.
        opts.attempts = 1;
        // Names are asked fully qualified; no search domain is ever appended.
        opts.ndots = 0;
        let resolver = {
            let _guard = runtime.enter();
            builder
                .build()
                .map_err(|e| DnsSetupError::Build(e.to_string()))?
        };
        Ok(Dns { runtime, resolver })
    }

    /// TXT records of `name`, each record's strings joined (RFC 7208 §3.3).
    pub fn txt(&self, name: &str) -> Answer<String> {
        self.ask(name, RecordType::TXT, |rdata| match rdata {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect::<String>(),
            ),
            _ => None,
        })
    }

    /// MX records, by preference.
    pub fn mx(&self, name: &str) -> Answer<Mx> {
        let mut answer = self.ask(name, RecordType::MX, |rdata| match rdata {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                host: host_name(&mx.exchange.to_ascii()),
            }),
            _ => None,
        });
        if let Answer::Records(r) = &mut answer {
            r.sort_by(|a, b| (a.preference, &a.host).cmp(&(b.preference, &b.host)));
        }
        answer
    }

    /// A and AAAA addresses; a failure of one type fails the whole only when the other found
    /// nothing.
    pub fn addrs(&self, name: &str) -> Answer<IpAddr> {
        let v4 = self.ask(name, RecordType::A, |rdata| match rdata {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        });
        let v6 = self.ask(name, RecordType::AAAA, |rdata| match rdata {
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        });
        match (v4, v6) {
            (Answer::Records(mut a), Answer::Records(b)) => {
                a.extend(b);
                Answer::Records(a)
            }
            (Answer::Records(a), Answer::Failed(e)) | (Answer::Failed(e), Answer::Records(a)) => {
                if a.is_empty() {
                    Answer::Failed(e)
                } else {
                    Answer::Records(a)
                }
            }
            (Answer::Failed(e), Answer::Failed(_)) => Answer::Failed(e),
        }
    }

    fn ask<T>(
        &self,
        name: &str,
        kind: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Answer<T> {
        // Fully qualified: no search domains are appended.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self
            .runtime
            .block_on(self.resolver.lookup(fqdn.as_str(), kind))
        {
            Ok(lookup) => Answer::Records(
                lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == kind)
                    .filter_map(|r| pick(&r.data))
                    .collect(),
            ),
            Err(e) => failure(e),
        }
    }
}

/// A name as it is compared: lower case, without the final dot.
pub fn host_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// No such name or no such record is an empty answer; anything else is a failure named as
/// dig names it (`SERVFAIL`, `REFUSED`, `timed out`).
fn failure<T>(e: NetError) -> Answer<T> {
    let code = |c: ResponseCode| match c {
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        other => other.to_string(),
    };
    match e {
        NetError::Dns(DnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Answer::Records(Vec::new()),
            other => Answer::Failed(code(other)),
        },
        NetError::Dns(DnsError::ResponseCode(c)) => Answer::Failed(code(c)),
        NetError::Timeout => Answer::Failed("timed out".into()),
        other => Answer::Failed(other.to_string()),
    }
}
