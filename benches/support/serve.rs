//! `serve` as the benches drive it: waiting for the address it prints, and plain HTTP/1.1 GETs
//! (one connection each, so every request is timed from connect to the last byte).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

/// Reads `child`'s stderr (piped) until `serve` says where it listens, keeps draining it so that
/// `serve` never blocks on a full pipe, and returns `HOST:PORT`. Panics (after killing it) if it
/// ends first.
pub fn listening(child: &mut Child) -> String {
    let mut stderr = BufReader::new(child.stderr.take().expect("serve's stderr is piped"));
    let mut line = String::new();
    while !line.contains("serving http://") {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            panic!("serve ended before it listened");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .expect("serve's address")
        .trim_end_matches('/')
        .to_owned()
}

/// `GET path` on `addr`, waiting at most `timeout` for each read: the status (0 if there is
/// none) and the whole response, head and body.
pub fn get(addr: &str, path: &str, timeout: Duration) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect to serve");
    s.set_read_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let head = String::from_utf8_lossy(&raw[..raw.len().min(20)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}
