//! Reverse DNS for `senders --resolve` / `advise --resolve`: the name behind a source IP often says
//! which service sends (`o1.ptr1234.sendgrid.net`). Lookups use the system resolver (getnameinfo,
//! through the dns-lookup crate), run on a few threads at once, and are given up after a deadline,
//! so a slow resolver delays a listing by at most that long. Results are cached by the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lookups running at once.
const THREADS: usize = 16;

/// Looks up the names of `ips`; `None` for an address without a name (or not an address). Those
/// not answered by `deadline` are left out of the result, to be tried another time.
pub fn resolve(ips: &[String], deadline: Duration) -> HashMap<String, Option<String>> {
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(ips.to_vec()));
    let (tx, rx) = mpsc::channel();
    for _ in 0..THREADS.min(ips.len()) {
        let (queue, tx) = (Arc::clone(&queue), tx.clone());
        // Detached: a lookup stuck in the resolver must not hold up the run past `deadline`.
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(ip) = next else { break };
                let name = ip
                    .parse::<IpAddr>()
                    .ok()
                    .and_then(|addr| dns_lookup::lookup_addr(&addr).ok())
                    .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
                    // getnameinfo answers with the address itself when there is no name.
                    .filter(|name| *name != ip && name.parse::<IpAddr>().is_err());
                if tx.send((ip, name)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut out = HashMap::new();
    while out.len() < ips.len() {
        let left = deadline.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok((ip, name)) => {
                out.insert(ip, name);
            }
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolves_through_the_system_resolver() {
        let got = resolve(
            &["127.0.0.1".to_owned(), "not an ip".to_owned()],
            Duration::from_secs(10),
        );
        assert_eq!(got["127.0.0.1"].as_deref(), Some("localhost"));
        assert_eq!(got["not an ip"], None);
    }
}
