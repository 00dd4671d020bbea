//! Containers → report payloads: RFC 822 messages (MIME parts, `message/rfc822` forwards), gzip, zlib
//! and zip, nested in any order up to [`MAX_NESTING`] deep. Content is recognised by its bytes, never by
//! a file name.
//!
//! Every decompression is bounded: we read `limit + 1` bytes through `Read::take` and refuse the part when
//! that last byte arrives, naming the setting that raises the limit. A part that fails is reported to the
//! visitor and the walk goes on with the next part, so one bad attachment never hides a good one.
//!
//! No I/O beyond reading from in-memory buffers.

use std::io::{Cursor, Read};

use flate2::read::{GzDecoder, ZlibDecoder};
use mailparse::{DispositionType, ParsedMail};

/// Size and count limits for one input. Defaults follow issue 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decompressed payload (one XML report), in bytes.
    pub max_payload_size: u64,
    /// Largest input read whole (one file, one mailbox message), in bytes.
    pub max_message_size: u64,
    /// Most entries a zip archive may list.
    pub max_zip_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_size: 32 << 20,
            max_message_size: 64 << 20,
            max_zip_entries: 1000,
        }
    }
}

/// Containers inside containers deeper than this are refused (a zip in a gzip in a message is 3).
pub const MAX_NESTING: usize = 8;

/// What a part of an input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Gzip,
    Zlib,
    Zip,
    Xml,
    Json,
    Email,
    Unknown,
}

/// Why a part could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("gzip data is corrupt: {0}")]
    Gzip(std::io::Error),
    #[error("zlib data is corrupt: {0}")]
    Zlib(std::io::Error),
    #[error("zip archive is unreadable: {0}")]
    Zip(String),
    #[error(
        "decompressed size exceeds the limit of {limit} bytes (raise --max-payload-size / DMARC_WARDEN_MAX_PAYLOAD_SIZE)"
    )]
    PayloadTooLarge { limit: u64 },
    #[error(
        "zip archive lists {entries} entries, more than the limit of {limit} (raise --max-zip-entries / DMARC_WARDEN_MAX_ZIP_ENTRIES)"
    )]
    TooManyEntries { entries: usize, limit: usize },
    #[error("containers nested more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("message is not valid MIME: {0}")]
    Mime(String),
    #[error("no DMARC report found in message")]
    NoReport,
    #[error("failure report (ARF): not stored by this version; kept for `dmarc-warden reprocess`")]
    FailureReport,
    #[error(
        "SMTP TLS report (JSON): not stored by this version; kept for `dmarc-warden reprocess`"
    )]
    TlsReport,
    #[error("unrecognised content, starting {0:?}")]
    Unrecognised(String),
}

/// Recognises content by its first bytes.
pub fn sniff(bytes: &[u8]) -> Content {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Content::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Content::Zip;
    }
    // zlib: CMF byte 0x78 (deflate, 32 KiB window) and a header checksum divisible by 31.
    if let [0x78, flg, ..] = bytes
        && (0x7800u16 | u16::from(*flg)).is_multiple_of(31)
    {
        return Content::Zlib;
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Content::Xml;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = text.trim_ascii_start();
    match text.first() {
        Some(b'<') => Content::Xml,
        Some(b'{') => Content::Json,
        _ if looks_like_email(text) => Content::Email,
        _ => Content::Unknown,
    }
}

/// An mbox `From ` separator line, or a first line shaped like an RFC 5322 header field.
fn looks_like_email(text: &[u8]) -> bool {
    if text.starts_with(b"From ") {
        return true;
    }
    let name_len = text
        .iter()
        .take_while(|&&b| b.is_ascii_graphic() && b != b':')
        .count();
    name_len > 0 && text.get(name_len) == Some(&b':')
}

/// What the walk hands to its visitor for each leaf.
pub enum Leaf<'a> {
    /// An XML document that should be an aggregate report.
    Xml(&'a [u8]),
    /// A part that could not be unpacked.
    Failed(UnpackError),
}

/// Walks `bytes` and every container inside it, calling `visit(location, leaf)` for each report payload
/// and each failed part. `location` names the path through the containers, e.g.
/// `part 2 "report.zip" > example.xml`; it is empty for the input itself.
pub fn walk(bytes: &[u8], limits: &Limits, visit: &mut dyn FnMut(&str, Leaf<'_>)) {
    let mut w = Walker { limits, visit };
    w.walk(bytes, "", 0);
}

struct Walker<'v> {
    limits: &'v Limits,
    visit: &'v mut dyn FnMut(&str, Leaf<'_>),
}

fn join(location: &str, step: &str) -> String {
    if location.is_empty() {
        step.to_owned()
    } else {
        format!("{location} > {step}")
    }
}

impl Walker<'_> {
    fn fail(&mut self, location: &str, error: UnpackError) {
        (self.visit)(location, Leaf::Failed(error));
    }

    /// Returns how many payloads (or failures) were handed to the visitor.
    fn walk(&mut self, bytes: &[u8], location: &str, depth: usize) -> usize {
        if depth > MAX_NESTING {
            self.fail(location, UnpackError::TooDeep);
            return 1;
        }
        match sniff(bytes) {
            Content::Gzip => {
                // Quirk: some senders append bytes (a CRLF, a mail footer) after the gzip member.
                // `GzDecoder` reads exactly one member and ignores what follows, which is what we want.
                let decoded = self.inflate(GzDecoder::new(bytes), UnpackError::Gzip);
                self.walk_decoded(decoded, location, depth)
            }
            Content::Zlib => {
                let decoded = self.inflate(ZlibDecoder::new(bytes), UnpackError::Zlib);
                self.walk_decoded(decoded, location, depth)
            }
            Content::Zip => self.walk_zip(bytes, location, depth),
            Content::Xml => {
                (self.visit)(location, Leaf::Xml(bytes));
                1
            }
            Content::Email => self.walk_email(bytes, location, depth, true),
            Content::Json => {
                self.fail(location, UnpackError::TlsReport);
                1
            }
            Content::Unknown => {
                let start = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
                self.fail(location, UnpackError::Unrecognised(start));
                1
            }
        }
    }

    fn inflate<R: Read>(
        &self,
        decoder: R,
        wrap: fn(std::io::Error) -> UnpackError,
    ) -> Result<Vec<u8>, UnpackError> {
        read_bounded(decoder, self.limits.max_payload_size).map_err(|e| match e {
            Bounded::TooLarge => UnpackError::PayloadTooLarge {
                limit: self.limits.max_payload_size,
            },
            Bounded::Io(e) => wrap(e),
        })
    }

    fn walk_decoded(
        &mut self,
        decoded: Result<Vec<u8>, UnpackError>,
        location: &str,
        depth: usize,
    ) -> usize {
        match decoded {
            Ok(inner) => self.walk(&inner, location, depth + 1),
            Err(e) => {
                self.fail(location, e);
                1
            }
        }
    }

    fn walk_zip(&mut self, bytes: &[u8], location: &str, depth: usize) -> usize {
        let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
            Ok(a) => a,
            Err(e) => {
                self.fail(location, UnpackError::Zip(e.to_string()));
                return 1;
            }
        };
        if archive.len() > self.limits.max_zip_entries {
            self.fail(
                location,
                UnpackError::TooManyEntries {
                    entries: archive.len(),
                    limit: self.limits.max_zip_entries,
                },
            );
            return 1;
        }
        let mut found = 0;
        for i in 0..archive.len() {
            let mut entry = match archive.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    self.fail(
                        &join(location, &format!("entry {}", i + 1)),
                        UnpackError::Zip(e.to_string()),
                    );
                    found += 1;
                    continue;
                }
            };
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            // Quirk: archives made on macOS carry `__MACOSX/` AppleDouble metadata and `.DS_Store`
            // beside the report; they are not reports and are skipped silently.
            let base = name.rsplit('/').next().unwrap_or(&name);
            if entry.is_dir()
                || name.starts_with("__MACOSX/")
                || base.starts_with("._")
                || base == ".DS_Store"
            {
                continue;
            }
            let here = join(location, &name);
            if entry.size() > self.limits.max_payload_size {
                self.fail(
                    &here,
                    UnpackError::PayloadTooLarge {
                        limit: self.limits.max_payload_size,
                    },
                );
                found += 1;
                continue;
            }
            let data = self.inflate(&mut entry, |e| UnpackError::Zip(e.to_string()));
            drop(entry);
            found += self.walk_decoded(data, &here, depth);
        }
        if found == 0 {
            self.fail(
                location,
                UnpackError::Zip("archive holds no report file".into()),
            );
            found = 1;
        }
        found
    }

    /// `top`: the input itself (or a container's member) rather than a `message/rfc822` part. Only a
    /// top-level message without a report is a failure; a forwarded original inside a report (the
    /// third part of an ARF report, say) usually carries none.
    fn walk_email(&mut self, bytes: &[u8], location: &str, depth: usize, top: bool) -> usize {
        // Quirk: blank or whitespace-only lines before the first header (seen in saved messages).
        let bytes = bytes.trim_ascii_start();
        // An mbox `From ` line before the headers (a single message saved from a mail client).
        let bytes = if bytes.starts_with(b"From ") {
            bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&bytes[bytes.len()..], |i| &bytes[i + 1..])
        } else {
            bytes
        };
        let mail = match mailparse::parse_mail(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.fail(location, UnpackError::Mime(e.to_string()));
                return 1;
            }
        };
        let mut part_no = 0;
        let mut arf = false;
        let found = self.walk_part(&mail, location, depth, &mut part_no, &mut arf);
        if found > 0 || !top {
            return found;
        }
        self.fail(
            location,
            if arf {
                UnpackError::FailureReport
            } else {
                UnpackError::NoReport
            },
        );
        1
    }

    fn walk_part(
        &mut self,
        part: &ParsedMail<'_>,
        location: &str,
        depth: usize,
        part_no: &mut usize,
        arf: &mut bool,
    ) -> usize {
        let mime = part.ctype.mimetype.to_ascii_lowercase();
        if mime.starts_with("multipart/") {
            if mime == "multipart/report"
                && part
                    .ctype
                    .params
                    .get("report-type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("feedback-report"))
            {
                *arf = true;
            }
            return part
                .subparts
                .iter()
                .map(|p| self.walk_part(p, location, depth, part_no, arf))
                .sum();
        }
        *part_no += 1;
        if mime == "message/feedback-report" {
            *arf = true;
            return 0;
        }
        if mime == "text/html" || mime == "text/rfc822-headers" {
            return 0;
        }
        let body = match part.get_body_raw() {
            Ok(b) => b,
            Err(e) => {
                self.fail(
                    &join(location, &format!("part {part_no}")),
                    UnpackError::Mime(e.to_string()),
                );
                return 1;
            }
        };
        let disposition = part.get_content_disposition();
        let filename = disposition
            .params
            .get("filename")
            .or_else(|| part.ctype.params.get("name"));
        let here = match filename {
            Some(f) => join(location, &format!("part {part_no} {f:?}")),
            None => join(location, &format!("part {part_no}")),
        };
        let content = sniff(&body);
        let attached = disposition.disposition == DispositionType::Attachment;
        match content {
            Content::Gzip | Content::Zlib | Content::Zip => self.walk(&body, &here, depth + 1),
            Content::Email if mime == "message/rfc822" => {
                if depth + 1 > MAX_NESTING {
                    self.fail(&here, UnpackError::TooDeep);
                    return 1;
                }
                self.walk_email(&body, &here, depth + 1, false)
            }
            // A text body that merely starts with `<` (an HTML-ish note) is not a report: plain-text
            // parts count only when they hold a `<feedback>` element. Attachments always count.
            Content::Xml if attached || !mime.starts_with("text/") || contains_feedback(&body) => {
                (self.visit)(&here, Leaf::Xml(&body));
                1
            }
            Content::Json if attached || mime.contains("tlsrpt") => {
                self.fail(&here, UnpackError::TlsReport);
                1
            }
            _ => 0,
        }
    }
}

fn contains_feedback(body: &[u8]) -> bool {
    body.windows(9).any(|w| w == b"<feedback")
}

enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

/// Reads at most `limit` bytes; one more means the data is too large.
fn read_bounded(reader: impl Read, limit: u64) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Bounded::Io)?;
    if out.len() as u64 > limit {
        return Err(Bounded::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(bytes: &[u8], limits: &Limits) -> Vec<(String, Result<Vec<u8>, String>)> {
        let mut out = Vec::new();
        walk(bytes, limits, &mut |loc, leaf| {
            out.push((
                loc.to_owned(),
                match leaf {
                    Leaf::Xml(x) => Ok(x.to_vec()),
                    Leaf::Failed(e) => Err(e.to_string()),
                },
            ))
        });
        out
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn double_gzip_with_trailing_garbage() {
        let mut data = gzip(&gzip(b"<feedback/>"));
        data.extend_from_slice(b"\r\n");
        assert_eq!(
            leaves(&data, &Limits::default()),
            vec![(String::new(), Ok(b"<feedback/>".to_vec()))]
        );
    }

    #[test]
    fn bomb_is_refused_naming_the_setting() {
        let data = gzip(&vec![b'<'; 1 << 20]);
        let limits = Limits {
            max_payload_size: 1000,
            ..Limits::default()
        };
        let got = leaves(&data, &limits);
        let err = got[0].1.as_ref().unwrap_err();
        assert!(err.contains("--max-payload-size"), "{err}");
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\xEF\xBB\xBF <?xml"), Content::Xml);
        assert_eq!(sniff(b"Received: from x\r\n"), Content::Email);
        assert_eq!(sniff(b"From a@b Mon Jan 1\n"), Content::Email);
        assert_eq!(sniff(b"x\x9c"), Content::Zlib);
        assert_eq!(sniff(b"hello world"), Content::Unknown);
    }
}
