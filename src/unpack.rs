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

use flate2::bufread::{GzDecoder, ZlibDecoder};
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
    #[error(
        "a failure notice without an ARF part (message/feedback-report, RFC 6591): kept, not parsed"
    )]
    FailureNotice,
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
    /// A JSON document that should be an SMTP TLS report.
    Json(&'a [u8]),
    /// The parts of an ARF (failure or other feedback) report.
    Arf(Arf),
    /// A part that could not be unpacked.
    Failed(UnpackError),
}

/// An ARF report's parts, transfer-decoded (RFC 5965 section 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arf {
    /// `From`, `Message-ID`, `Date` and `Subject` of the message that carries the report.
    pub report_headers: Vec<(String, String)>,
    /// The `message/feedback-report` part. Quirk: some reporters write the feedback fields as header
    /// fields of that MIME part rather than in its body; those fields (all but `Content-*`) come first
    /// here, then the body.
    pub feedback: Vec<u8>,
    /// The third part, `message/rfc822` or `text/rfc822-headers`, when there is one.
    pub original: Option<Vec<u8>>,
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
                // The member's last four bytes (ISIZE) give the size it unpacks to, modulo 2^32: a
                // hint for the buffer, wrong only when bytes follow (then the buffer grows).
                let size = bytes
                    .last_chunk::<4>()
                    .map_or(0, |b| u32::from_le_bytes(*b));
                let size = u64::from(size).min(deflated_at_most(bytes.len() as u64));
                let decoded = match gunzip_whole(bytes, size, self.limits.max_payload_size) {
                    Some(inner) => Ok(inner),
                    None => self.inflate(GzDecoder::new(bytes), size, UnpackError::Gzip),
                };
                self.walk_decoded(decoded, location, depth)
            }
            Content::Zlib => {
                let limit = self.limits.max_payload_size;
                let decoded = match inflate_whole(bytes, true, 0, limit) {
                    Some((inner, _)) => Ok(inner),
                    None => self.inflate(ZlibDecoder::new(bytes), 0, UnpackError::Zlib),
                };
                self.walk_decoded(decoded, location, depth)
            }
            Content::Zip => self.walk_zip(bytes, location, depth),
            Content::Xml => {
                (self.visit)(location, Leaf::Xml(bytes));
                1
            }
            Content::Email => self.walk_email(bytes, location, depth, true),
            Content::Json => {
                (self.visit)(location, Leaf::Json(bytes));
                1
            }
            Content::Unknown => {
                let start = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
                self.fail(location, UnpackError::Unrecognised(start));
                1
            }
        }
    }

    /// Decompresses into a buffer of `size` bytes (as the container says; bounded by the limit),
    /// growing it if the data is larger.
    fn inflate<R: Read>(
        &self,
        decoder: R,
        size: u64,
        wrap: fn(std::io::Error) -> UnpackError,
    ) -> Result<Vec<u8>, UnpackError> {
        read_bounded(decoder, size, self.limits.max_payload_size).map_err(|e| match e {
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
            let size = entry.size().min(deflated_at_most(entry.compressed_size()));
            let data = match unzip_whole(bytes, &entry, size, self.limits.max_payload_size) {
                Some(inner) => Ok(inner),
                None => self.inflate(&mut entry, size, |e| UnpackError::Zip(e.to_string())),
            };
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
        let emptied = empty_whitespace_lines(bytes);
        let bytes = emptied.as_deref().unwrap_or(bytes);
        let mail = match mailparse::parse_mail(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.fail(location, UnpackError::Mime(e.to_string()));
                return 1;
            }
        };
        let mut part_no = 0;
        let found = self.walk_part(&mail, &mail, location, depth, &mut part_no);
        if found > 0 || !top {
            return found;
        }
        let subject = mail
            .headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case("subject"))
            .map(|h| h.get_value().to_ascii_lowercase())
            .unwrap_or_default();
        self.fail(
            location,
            if subject.contains("failure") || subject.contains("forensic") {
                UnpackError::FailureNotice
            } else {
                UnpackError::NoReport
            },
        );
        1
    }

    /// `part` (a multipart, or a lone `message/feedback-report`) as an ARF report of `message`.
    fn arf(&mut self, message: &ParsedMail<'_>, part: &ParsedMail<'_>, here: &str) -> usize {
        let is = |p: &ParsedMail<'_>, mime: &str| p.ctype.mimetype.eq_ignore_ascii_case(mime);
        let feedback_part = if is(part, "message/feedback-report") {
            part
        } else {
            match part
                .subparts
                .iter()
                .find(|p| is(p, "message/feedback-report"))
            {
                Some(p) => p,
                None => return 0,
            }
        };
        let original_part = part
            .subparts
            .iter()
            .find(|p| is(p, "message/rfc822") || is(p, "text/rfc822-headers"));
        let mut feedback = Vec::new();
        // The headers of a report that is nothing but its feedback part are the message's own.
        let own_headers = !std::ptr::eq(feedback_part, message);
        for h in feedback_part.headers.iter().filter(|_| own_headers) {
            let name = h.get_key_ref();
            if !name.to_ascii_lowercase().starts_with("content-")
                && !name.eq_ignore_ascii_case("mime-version")
            {
                feedback.extend_from_slice(format!("{name}: {}\r\n", h.get_value()).as_bytes());
            }
        }
        let body = match feedback_part.get_body_raw() {
            Ok(b) => b,
            Err(e) => {
                self.fail(here, UnpackError::Mime(e.to_string()));
                return 1;
            }
        };
        feedback.extend_from_slice(&body);
        let original = original_part.and_then(|p| p.get_body_raw().ok());
        let report_headers = message
            .headers
            .iter()
            .filter(|h| {
                ["from", "message-id", "date", "subject"]
                    .iter()
                    .any(|n| h.get_key_ref().eq_ignore_ascii_case(n))
            })
            .map(|h| (h.get_key_ref().to_ascii_lowercase(), h.get_value()))
            .collect();
        (self.visit)(
            here,
            Leaf::Arf(Arf {
                report_headers,
                feedback,
                original,
            }),
        );
        1
    }

    /// `message`: the message `part` belongs to (its headers name the reporter of an ARF report).
    fn walk_part(
        &mut self,
        message: &ParsedMail<'_>,
        part: &ParsedMail<'_>,
        location: &str,
        depth: usize,
        part_no: &mut usize,
    ) -> usize {
        let mime = part.ctype.mimetype.to_ascii_lowercase();
        if mime.starts_with("multipart/") {
            // An ARF report is the multipart holding a `message/feedback-report` part, whatever the
            // multipart's subtype. Quirk: reporters send it as `multipart/mixed` as well as the
            // `multipart/report; report-type=feedback-report` of RFC 5965.
            if part.subparts.iter().any(|p| {
                p.ctype
                    .mimetype
                    .eq_ignore_ascii_case("message/feedback-report")
            }) {
                *part_no += 1;
                return self.arf(message, part, location);
            }
            return part
                .subparts
                .iter()
                .map(|p| self.walk_part(message, p, location, depth, part_no))
                .sum();
        }
        *part_no += 1;
        if mime == "message/feedback-report" {
            // Quirk: a report whose only part is the feedback report (no multipart around it).
            return self.arf(message, part, location);
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
            Content::Json if attached || mime.contains("tlsrpt") || mime.contains("json") => {
                (self.visit)(&here, Leaf::Json(&body));
                1
            }
            _ => 0,
        }
    }
}

/// Quirk (Lotus Notes and other ARF senders; fixture `failure/whitespace-blank-lines.eml`): the blank
/// line that ends a header block holds a space, so to a MIME parser the headers never end. Lines of
/// nothing but spaces and tabs are emptied; `None` when there are none (the usual case, no copy).
fn empty_whitespace_lines(bytes: &[u8]) -> Option<Vec<u8>> {
    let blank = |line: &[u8]| {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        !content.is_empty() && content.iter().all(|b| *b == b' ' || *b == b'\t')
    };
    if !bytes.split_inclusive(|b| *b == b'\n').any(blank) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if blank(line) {
            let ending: &[u8] = if line.ends_with(b"\r\n") {
                b"\r\n"
            } else if line.ends_with(b"\n") {
                b"\n"
            } else {
                b""
            };
            out.extend_from_slice(ending);
        } else {
            out.extend_from_slice(line);
        }
    }
    Some(out)
}

fn contains_feedback(body: &[u8]) -> bool {
    body.windows(9).any(|w| w == b"<feedback")
}

/// The most `compressed` bytes of deflate can unpack to (about 1,032 to 1), so that a size a
/// container claims reserves no more memory than its data could fill.
fn deflated_at_most(compressed: u64) -> u64 {
    compressed.saturating_mul(1032).saturating_add(1024)
}

/// A deflate stream (`zlib`: with its zlib header and checksum) inflated whole, in one call where the
/// buffer of `size` bytes holds it: no zero-filling of the buffer ahead of the decoder (which
/// `read_to_end` does) and no copy of the output into the decoder's window (which only a decoder
/// called again needs). With the bytes of `data` it used.
///
/// `None` when anything is not as expected (corrupt or truncated data, more than `limit` bytes):
/// the caller then decodes through its `Read` path, which refuses the data as before, with the
/// same error. Measured (issue 21, callgrind, 100 gzip reports of 250-349 records): 30M of 858M
/// instructions fewer than through `read_to_end`. Public, with [`gunzip_whole`] and
/// [`unzip_whole`], for the floor (`benches/floor.rs`), which unpacks as cheaply as we do.
pub fn inflate_whole(data: &[u8], zlib: bool, size: u64, limit: u64) -> Option<(Vec<u8>, usize)> {
    use flate2::Decompress;
    thread_local! {
        /// A decoder per thread, reset for each stream rather than made anew (its state and
        /// window are allocated and cleared when made: 15,000 instructions a stream).
        static DECODER: std::cell::Cell<Option<Decompress>> = const { std::cell::Cell::new(None) };
    }
    let mut decoder = match DECODER.take() {
        Some(mut d) => {
            d.reset(zlib);
            d
        }
        None => Decompress::new(zlib),
    };
    let inflated = inflate_with(&mut decoder, data, size, limit);
    DECODER.set(Some(decoder));
    inflated
}

fn inflate_with(
    decoder: &mut flate2::Decompress,
    data: &[u8],
    size: u64,
    limit: u64,
) -> Option<(Vec<u8>, usize)> {
    use flate2::{FlushDecompress, Status};
    let mut out = Vec::with_capacity(size.min(limit).saturating_add(1) as usize);
    loop {
        let used = usize::try_from(decoder.total_in()).ok()?;
        let before = (decoder.total_in(), decoder.total_out());
        let status = decoder
            .decompress_vec(data.get(used..)?, &mut out, FlushDecompress::Finish)
            .ok()?;
        if out.len() as u64 > limit {
            return None;
        }
        match status {
            Status::StreamEnd => {
                let used = usize::try_from(decoder.total_in()).ok()?;
                return Some((out, used));
            }
            _ if out.len() == out.capacity() => {
                // Larger than announced: grow (bounded: one byte past the limit says too large).
                let room = limit.saturating_add(1).saturating_sub(out.len() as u64);
                out.reserve(room.min(out.capacity().max(1 << 15) as u64) as usize);
            }
            // The data ends before the stream does.
            _ if before == (decoder.total_in(), decoder.total_out()) => return None,
            _ => {}
        }
    }
}

/// A gzip member (RFC 1952) inflated by [`inflate_whole`], its CRC-32 and size checked; what follows
/// the member is ignored, as `GzDecoder` does. `None` as there, and for a header with its own CRC
/// (`FHCRC`) or reserved flags, left to `GzDecoder`.
pub fn gunzip_whole(bytes: &[u8], size: u64, limit: u64) -> Option<Vec<u8>> {
    const FTEXT: u8 = 1;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let [0x1f, 0x8b, 8, flags, ..] = *bytes else {
        return None;
    };
    if flags & !(FTEXT | FEXTRA | FNAME | FCOMMENT) != 0 {
        return None;
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = bytes.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += bytes.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    let (out, used) = inflate_whole(bytes.get(at..)?, false, size, limit)?;
    let trailer = bytes.get(at + used..)?.first_chunk::<8>()?;
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    let sum = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    (crc.sum() == sum && len == out.len() as u32).then_some(out)
}

/// A zip entry compressed with deflate, inflated by [`inflate_whole`] from the archive's bytes and
/// its CRC-32 checked; `None` for any other entry (stored, encrypted) or when anything is not as
/// expected, left to the zip crate's reader.
pub fn unzip_whole<R: Read>(
    archive: &[u8],
    entry: &zip::read::ZipFile<'_, R>,
    size: u64,
    limit: u64,
) -> Option<Vec<u8>> {
    if entry.compression() != zip::CompressionMethod::Deflated || entry.encrypted() {
        return None;
    }
    let start = usize::try_from(entry.data_start()?).ok()?;
    let end = start.checked_add(usize::try_from(entry.compressed_size()).ok()?)?;
    let (out, _) = inflate_whole(archive.get(start..end)?, false, size, limit)?;
    if out.len() as u64 != entry.size() {
        return None;
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    (crc.sum() == entry.crc32()).then_some(out)
}

enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

/// Reads at most `limit` bytes; one more means the data is too large. `size` is the size expected,
/// for the first allocation (one more byte, so that reading to the end needs no second one).
fn read_bounded(reader: impl Read, size: u64, limit: u64) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::with_capacity(size.min(limit).saturating_add(1) as usize);
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
                    Leaf::Xml(x) | Leaf::Json(x) => Ok(x.to_vec()),
                    Leaf::Arf(arf) => Ok(arf.feedback),
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
    fn inflated_whole_or_refused_as_before() {
        use std::io::Write;
        let xml = b"<feedback>a report</feedback>".repeat(50);
        let ok = |data: &[u8]| leaves(data, &Limits::default());
        let corrupt = |data: &[u8], kind: &str| {
            let got = ok(data);
            assert!(
                matches!(&got[..], [(_, Err(e))] if e.starts_with(kind)),
                "{kind}: {got:?}"
            );
        };
        // A gzip header with a file name and a comment; a zlib stream.
        let mut e = flate2::GzBuilder::new()
            .filename("r.xml")
            .comment("c")
            .write(Vec::new(), flate2::Compression::default());
        e.write_all(&xml).unwrap();
        let named = e.finish().unwrap();
        assert_eq!(ok(&named), vec![(String::new(), Ok(xml.clone()))]);
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&xml).unwrap();
        let zlib = e.finish().unwrap();
        assert_eq!(ok(&zlib), vec![(String::new(), Ok(xml.clone()))]);
        // Both by the whole buffer, even from a size hint too small.
        assert_eq!(gunzip_whole(&named, 10, 1 << 20), Some(xml.clone()));
        assert_eq!(
            inflate_whole(&zlib, true, 0, 1 << 20).map(|d| d.0),
            Some(xml.clone())
        );
        // A wrong CRC-32, a wrong size, a truncated stream: refused by the decoder as before.
        let mut data = gzip(&xml);
        let n = data.len();
        data[n - 8] ^= 1;
        corrupt(&data, "gzip data is corrupt");
        data[n - 8] ^= 1;
        data[n - 4] ^= 1;
        corrupt(&data, "gzip data is corrupt");
        corrupt(&data[..n / 2], "gzip data is corrupt");
        corrupt(&zlib[..zlib.len() - 1], "zlib data is corrupt");
        // A zip entry; then its CRC-32 (in the local and the central header) made wrong.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("r.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&xml).unwrap();
        let mut archive = w.finish().unwrap().into_inner();
        assert_eq!(ok(&archive), vec![("r.xml".into(), Ok(xml.clone()))]);
        for (signature, at) in [(b"PK\x03\x04", 14), (b"PK\x01\x02", 16)] {
            let header = archive.windows(4).position(|w| w == signature).unwrap();
            archive[header + at] ^= 1;
        }
        corrupt(&archive, "zip archive is unreadable");
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
    fn whitespace_only_lines_end_header_blocks() {
        let mail =
            b"Subject: x\r\nContent-Type: message/feedback-report\r\n \r\nFeedback-Type: abuse\r\n";
        let got = leaves(mail, &Limits::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.as_deref(), Ok(&b"Feedback-Type: abuse\r\n"[..]));
        assert!(empty_whitespace_lines(b"a\r\n\r\nb").is_none());
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
