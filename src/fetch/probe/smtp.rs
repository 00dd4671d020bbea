//! One MX host over SMTP on port 25: greeting, EHLO, STARTTLS, the TLS handshake (any certificate
//! accepted so that the handshake completes, the verdict recorded), QUIT. Every read and write has
//! the timeout given; replies are read with a bound on their size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::tls::{Trust, not_after};
use crate::analyse::check::MxTls;

/// Longest reply line read, and most lines of one reply.
const MAX_LINE: u64 = 4096;
const MAX_LINES: usize = 100;

/// Connects to `host` at `addr` and reports what STARTTLS showed.
pub fn probe(host: &str, addr: SocketAddr, trust: &Trust, timeout: Duration) -> MxTls {
    let mut out = MxTls {
        host: host.to_owned(),
        addr: Some(addr.ip().to_string()),
        ..MxTls::default()
    };
    if let Err(e) = talk(host, addr, trust, timeout, &mut out) {
        out.error = Some(e);
    }
    out
}

fn talk(
    host: &str,
    addr: SocketAddr,
    trust: &Trust,
    timeout: Duration,
    out: &mut MxTls,
) -> Result<(), String> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(tcp.try_clone().map_err(|e| e.to_string())?);
    let mut writer = tcp;
    let (code, _) = reply(&mut reader).map_err(|e| format!("greeting: {e}"))?;
    if code != 220 {
        return Err(format!("greeting: the server answered {code}"));
    }
    writer
        .write_all(b"EHLO dmarc-warden.invalid\r\n")
        .map_err(|e| format!("EHLO: {e}"))?;
    let (code, lines) = reply(&mut reader).map_err(|e| format!("EHLO: {e}"))?;
    if code != 250 {
        return Err(format!("EHLO: the server answered {code}"));
    }
    out.starttls = lines.iter().skip(1).any(|l| {
        l.split_ascii_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !out.starttls {
        let _ = writer.write_all(b"QUIT\r\n");
        return Ok(());
    }
    writer
        .write_all(b"STARTTLS\r\n")
        .map_err(|e| format!("STARTTLS: {e}"))?;
    let (code, _) = reply(&mut reader).map_err(|e| format!("STARTTLS: {e}"))?;
    if code != 220 {
        return Err(format!("STARTTLS: the server answered {code}"));
    }
    if !reader.buffer().is_empty() {
        return Err("the server sent data before the TLS handshake".into());
    }
    let (config, verdict) = trust.recording_config()?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?} is not a valid host name: {e}"))?;
    let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, writer);
    let handshake = (|| {
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok::<(), std::io::Error>(())
    })();
    if let Some((der, problem)) = verdict.take() {
        out.not_after = not_after(&der);
        out.certificate_error = problem;
    }
    match handshake {
        Ok(()) => {
            out.tls_version = tls.conn.protocol_version().map(|v| format!("{v:?}"));
            let _ = tls.write_all(b"QUIT\r\n");
            let _ = tls.flush();
            let mut buf = [0u8; 512];
            let _ = tls.read(&mut buf);
        }
        Err(e) => out.handshake_error = Some(e.to_string()),
    }
    Ok(())
}

/// One SMTP reply: its code and its lines (text after the code).
fn reply(reader: &mut impl BufRead) -> Result<(u16, Vec<String>), String> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        reader
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if line.is_empty() {
            return Err("the server closed the connection".into());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let code: u16 = text
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an SMTP reply: {text:?}"))?;
        let more = text.as_bytes().get(3) == Some(&b'-');
        lines.push(text.get(4..).unwrap_or_default().to_owned());
        if !more {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_LINES {
            return Err("a reply of too many lines".into());
        }
    }
}
