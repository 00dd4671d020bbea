//! Report payloads (bytes already unpacked from their containers) → model types: aggregate XML
//! ([`aggregate`]), ARF failure reports ([`failure`]) and SMTP TLS JSON ([`tls`]). No I/O.
//!
//! [`decode_xml`] turns whatever character encoding a reporter used into UTF-8 first, so the parsers
//! only ever see `&str`.

pub mod aggregate;
pub mod failure;
pub mod records;
pub mod tls;

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

pub use aggregate::{ParseError, parse_aggregate};
pub use failure::{FailureOptions, parse_failure};
pub use tls::parse_tls;

/// Decodes an XML payload to UTF-8 text.
///
/// Order of evidence, as XML 1.0 Appendix F has it: a byte-order mark, then the `encoding=` of the XML
/// declaration, then UTF-8.
///
/// Quirk (real reporters, fixture `quirks/invalid-utf8-cp1252.xml`): documents that declare UTF-8, or
/// nothing, yet carry Windows-1252 bytes such as 0x91 (a curly quote) in a comment or org name. Rather than
/// reject the whole report over one character, such text is decoded as Windows-1252, which maps every
/// byte, so no report is lost over it.
pub fn decode_xml(bytes: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return text;
    }
    let declared = declared_encoding(bytes)
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .filter(|e| *e != UTF_8);
    if let Some(encoding) = declared {
        // A document declaring UTF-16 without a BOM cannot have reached this point as ASCII-compatible
        // text; decode it as the UTF-8 it evidently is.
        if encoding.is_ascii_compatible() {
            return encoding.decode_without_bom_handling(bytes).0;
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// The `encoding="…"` label of an XML declaration at the very start of `bytes`, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(256))?;
    let head = head.strip_prefix(b"<?xml")?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_and_declarations() {
        assert_eq!(decode_xml(b"\xEF\xBB\xBF<a/>"), "<a/>");
        assert_eq!(decode_xml(b"\xFF\xFE<\0a\0/\0>\0"), "<a/>");
        let cp1252 = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><a>\x93x\x94</a>";
        assert!(decode_xml(cp1252).contains("\u{201c}x\u{201d}"));
        let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xe9</a>";
        assert!(decode_xml(latin1).contains('\u{e9}'));
        // Declared UTF-8, but a stray 0x91: decoded as Windows-1252, not rejected.
        assert!(
            decode_xml(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>\x91</a>")
                .contains('\u{2018}')
        );
    }
}
