//! DMARC aggregate report XML (RFC 7489 Appendix C, RFC 9990 `dmarc-2.0`) → [`AggregateReport`].
//!
//! A single streaming pass with quick-xml over a stack of known tags: no DOM, no serde derive, so unknown
//! elements (vendor extensions, future fields) are skipped wherever they appear and the known ones are
//! found by their place in the tree, whatever namespace (or none, or a wrong one) the reporter used.
//!
//! Tolerated reporter quirks, each with a fixture under `sample-reports/quirks/`:
//! - UTF-8 BOM, UTF-16 with BOM, declared `windows-1252` / `ISO-8859-1` (see [`super::decode_xml`]);
//! - element names in another case than the schema's (`<Record>`), values in upper case (`Pass`,
//!   `SoftFail`): all lower-cased;
//! - whitespace, tabs and newlines around values: trimmed;
//! - empty optional elements (`<sp></sp>`, `<sp/>`): treated as absent;
//! - unknown or wrong namespaces (`http//dmarc.org/dmarc-xml/0.1`): elements matched by local name;
//! - a report with no `<record>`: stored with zero records;
//! - a `<record>` without `<count>` (or an empty one): kept with count 0, so its authentication results
//!   are not lost; a count that is present but not a number still rejects the report;
//! - missing `<org_name>`, policy `<domain>` or `<date_range>`: stored empty / unknown. Only the
//!   `<report_metadata>` and `<policy_published>` sections and a `<report_id>` are required;
//! - a `pct` that is not a number: dropped (it is advisory), the report kept;
//! - `::ffff:`-mapped IPv4 source addresses: stored as plain IPv4.

use std::borrow::Cow;
use std::net::IpAddr;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

use crate::model::{
    AggregateReport, DkimAuthResult, DkimResult, DmarcResult, PolicyOverride, Record, ShortStr,
    SpfAuthResult, SpfResult,
};

/// Why an XML payload could not be read as an aggregate report.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("XML not well-formed at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("not a DMARC aggregate report: root element is <{0}>")]
    NotAggregate(String),
    #[error("no XML element found")]
    Empty,
    #[error("XML ends before </feedback>")]
    Truncated,
    #[error("missing <{0}>")]
    Missing(&'static str),
    #[error("record {record}: invalid <{field}> {value:?}: expected a whole number")]
    InvalidRecordNumber {
        record: usize,
        field: &'static str,
        value: String,
    },
    #[error(
        "record {record}: <count> {value} is larger than any real report's (at most {MAX_COUNT})"
    )]
    CountTooLarge { record: usize, value: u64 },
    #[error("invalid <{field}> {value:?}: expected a whole number")]
    InvalidNumber { field: &'static str, value: String },
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Largest `<count>` accepted: no receiver sees 2^32 messages from one source in one record. The bound
/// keeps every sum the store and its queries make (over at most billions of records) inside `i64`.
pub const MAX_COUNT: u64 = u32::MAX as u64;

/// Deeper nesting than any report needs; bounds the tag stack on hostile input.
const MAX_DEPTH: usize = 64;

/// The elements we know, by local name. Everything else is `Other` and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Feedback,
    Version,
    ReportMetadata,
    OrgName,
    Email,
    ExtraContactInfo,
    ReportId,
    DateRange,
    Begin,
    End,
    Error,
    Generator,
    PolicyPublished,
    Domain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Fo,
    Testing,
    DiscoveryMethod,
    Record,
    Row,
    SourceIp,
    Count,
    PolicyEvaluated,
    Disposition,
    Dkim,
    Spf,
    Reason,
    Type,
    Comment,
    Identifiers,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    AuthResults,
    Selector,
    Result,
    HumanResult,
    Scope,
    Extensions,
    Other,
}

impl Tag {
    /// The tag of an element by its name, prefixed or not: by its local name. The name is
    /// matched whole first (no known name holds a `:`), so that the usual name, without a
    /// prefix, is not also scanned for one.
    /// Bytes rather than text: the name need not be found in the document as a `str` first.
    #[inline]
    fn named(name: &[u8]) -> Tag {
        match Tag::of(name) {
            Tag::Other => Tag::named_otherwise(name),
            tag => tag,
        }
    }

    /// [`Tag::named`] for a name that is not one of ours as it is written: a prefixed name, or
    /// (quirk: some reporters capitalise element names) one in another case; lower-cased only
    /// then, so that the common path does not allocate.
    #[cold]
    #[inline(never)]
    fn named_otherwise(name: &[u8]) -> Tag {
        let lower;
        let name = if name.iter().any(u8::is_ascii_uppercase) {
            lower = name.to_ascii_lowercase();
            &lower[..]
        } else {
            name
        };
        match Tag::of(name) {
            Tag::Other => match name.iter().position(|&b| b == b':') {
                Some(i) => Tag::of(&name[i + 1..]),
                None => Tag::Other,
            },
            tag => tag,
        }
    }

    /// The tag of a local name written as the schema has it: looked up by its [`words`] in
    /// [`BY_WORDS`] (a name longer than those words hold: [`Tag::of_long`]).
    #[inline]
    fn of(local_name: &[u8]) -> Tag {
        let n = local_name.len();
        if n > MAX_WORDS_LEN {
            return Tag::of_long(local_name);
        }
        let (w0, w1) = words(local_name);
        let known = &BY_WORDS[slot(n, w0, w1)];
        if known.words == (w0, w1) && usize::from(known.len) == n {
            known.tag
        } else {
            Tag::Other
        }
    }

    /// [`Tag::of`], by the names themselves ([`NAMES`], one by one): the few longer than the
    /// table's words hold.
    #[cold]
    const fn of_long(local_name: &[u8]) -> Tag {
        let mut i = 0;
        while i < NAMES.len() {
            let (name, tag) = NAMES[i];
            if name.len() == local_name.len() {
                let mut k = 0;
                while k < name.len() && name[k] == local_name[k] {
                    k += 1;
                }
                if k == name.len() {
                    return tag;
                }
            }
            i += 1;
        }
        Tag::Other
    }
}

/// The longest name [`words`] says all of (the overlapping halves of 16 bytes).
const MAX_WORDS_LEN: usize = 16;

/// A name of 1 to [`MAX_WORDS_LEN`] bytes as two words, little-endian, that say all of it for its
/// length: its first and last eight bytes (overlapping when shorter than 16); from 4 to 7 bytes,
/// its first and last four as one word; below 4, its first, middle and last byte. Read without
/// a branch on each byte, so that finding a tag is a hash, a load and a comparison (issue 21:
/// matching names byte by byte, behind a jump on the length and another on the first byte, took
/// about 30 instructions a start tag and most of the parser's mispredicted jumps).
const fn words(name: &[u8]) -> (u64, u64) {
    const fn le(name: &[u8], at: usize, len: usize) -> u64 {
        let mut word = 0;
        let mut i = len;
        while i > 0 {
            i -= 1;
            word = word << 8 | name[at + i] as u64;
        }
        word
    }
    let n = name.len();
    if n >= 8 {
        (le(name, 0, 8), le(name, n - 8, 8))
    } else if n >= 4 {
        (le(name, 0, 4) | le(name, n - 4, 4) << 32, 0)
    } else if n >= 1 {
        (
            le(name, 0, 1) | le(name, n / 2, 1) << 8 | le(name, n - 1, 1) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The slot of [`BY_WORDS`] of a name of `n` bytes and these [`words`] (a multiplier found to put
/// no two of the names in one slot; the table is made at compile time, and would not compile if
/// two shared one).
const fn slot(n: usize, w0: u64, w1: u64) -> usize {
    let h = w0 ^ w1.rotate_left(29) ^ (n as u64) << 56;
    (h.wrapping_mul(0xa544_b8fb_eee8_e6c1) >> (64 - 7)) as usize
}

/// A slot of [`BY_WORDS`]: the name's words and length, and its tag (`len` 0: empty).
#[derive(Clone, Copy)]
struct Known {
    words: (u64, u64),
    len: u8,
    tag: Tag,
}

/// Every element we know, by its name as the schema writes it.
const NAMES: [(&[u8], Tag); 44] = [
    (b"feedback", Tag::Feedback),
    (b"version", Tag::Version),
    (b"report_metadata", Tag::ReportMetadata),
    (b"org_name", Tag::OrgName),
    (b"email", Tag::Email),
    (b"extra_contact_info", Tag::ExtraContactInfo),
    (b"report_id", Tag::ReportId),
    (b"date_range", Tag::DateRange),
    (b"begin", Tag::Begin),
    (b"end", Tag::End),
    (b"error", Tag::Error),
    (b"generator", Tag::Generator),
    (b"policy_published", Tag::PolicyPublished),
    (b"domain", Tag::Domain),
    (b"adkim", Tag::Adkim),
    (b"aspf", Tag::Aspf),
    (b"p", Tag::P),
    (b"sp", Tag::Sp),
    (b"np", Tag::Np),
    (b"pct", Tag::Pct),
    (b"fo", Tag::Fo),
    (b"testing", Tag::Testing),
    (b"discovery_method", Tag::DiscoveryMethod),
    (b"record", Tag::Record),
    (b"row", Tag::Row),
    (b"source_ip", Tag::SourceIp),
    (b"count", Tag::Count),
    (b"policy_evaluated", Tag::PolicyEvaluated),
    (b"disposition", Tag::Disposition),
    (b"dkim", Tag::Dkim),
    (b"spf", Tag::Spf),
    (b"reason", Tag::Reason),
    (b"type", Tag::Type),
    (b"comment", Tag::Comment),
    (b"identifiers", Tag::Identifiers),
    (b"header_from", Tag::HeaderFrom),
    (b"envelope_from", Tag::EnvelopeFrom),
    (b"envelope_to", Tag::EnvelopeTo),
    (b"auth_results", Tag::AuthResults),
    (b"selector", Tag::Selector),
    (b"result", Tag::Result),
    (b"human_result", Tag::HumanResult),
    (b"scope", Tag::Scope),
    (b"extensions", Tag::Extensions),
];

/// Every name of [`NAMES`] of at most [`MAX_WORDS_LEN`] bytes, at its [`slot`].
static BY_WORDS: [Known; 128] = {
    let mut table = [Known {
        words: (0, 0),
        len: 0,
        tag: Tag::Other,
    }; 128];
    let mut i = 0;
    while i < NAMES.len() {
        let (name, tag) = NAMES[i];
        i += 1;
        if name.len() > MAX_WORDS_LEN {
            continue;
        }
        let (w0, w1) = words(name);
        let at = slot(name.len(), w0, w1);
        assert!(
            table[at].len == 0,
            "two names in one slot: another multiplier"
        );
        table[at] = Known {
            words: (w0, w1),
            len: name.len() as u8,
            tag,
        };
    }
    table
};

/// What an element is to the [`Builder`]: a value it keeps, an item it opens and closes, or
/// nothing. Found once, as the element starts, from its tag and its parent's (and, under
/// `<auth_results>` and `<policy_evaluated>`, its grandparent's), so that neither the start nor
/// the end looks at the stack again: an element is known by the last two or three names of its
/// path, whatever is above them (a stray wrapper does not hide a value), except `<version>` and
/// a record that is stored, which are children of the root only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Other,
    Version,
    Metadata,
    OrgName,
    Email,
    ExtraContactInfo,
    ReportId,
    Error,
    Generator,
    Begin,
    End,
    Policy,
    PolicyDomain,
    PolicyAdkim,
    PolicyAspf,
    PolicyP,
    PolicySp,
    PolicyNp,
    PolicyPct,
    PolicyFo,
    PolicyTesting,
    PolicyDiscoveryMethod,
    /// A `<record>` of the root: started afresh, and stored as it ends.
    Record,
    /// A `<record>` of a `<feedback>` below the root: started afresh, never stored.
    NestedRecord,
    SourceIp,
    Count,
    Disposition,
    EvaluatedDkim,
    EvaluatedSpf,
    /// `<reason>` of `<policy_evaluated>`.
    Reason,
    ReasonType,
    ReasonComment,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    /// `<dkim>` of `<auth_results>`.
    Dkim,
    DkimDomain,
    DkimSelector,
    DkimResult,
    DkimHumanResult,
    /// `<spf>` of `<auth_results>`.
    Spf,
    SpfDomain,
    SpfScope,
    SpfResult,
}

impl Place {
    /// Whether [`Builder::start`] has something to do as an element of this place starts.
    fn opens_item(self) -> bool {
        use Place::*;
        matches!(
            self,
            Record | NestedRecord | Reason | Dkim | Spf | Metadata | Policy
        )
    }

    /// The place of an element of `tag` that starts inside the elements `open` (the root's
    /// parent is nothing we know): by its parent's tag ([`BY_TAGS`]), else by its parent's place
    /// ([`BY_PLACES`]: under `<reason>`, `<dkim>` and `<spf>` of their places); `<version>` and a
    /// stored record only as children of the root. Two loads from tables made at compile time
    /// rather than two jumps on the tags (issue 21: each start tag's jumps were seldom foreseen).
    #[inline(always)]
    fn of(open: &[(Tag, Place)], tag: Tag) -> Place {
        let (parent_tag, parent_place) = open.last().copied().unwrap_or((Tag::Other, Place::Other));
        let depth = open.len() + 1;
        match BY_TAGS[parent_tag as usize][tag as usize] {
            Place::Other => BY_PLACES[parent_place as usize][tag as usize],
            Place::Version if depth != 2 => Place::Other,
            Place::Record if depth != 2 => Place::NestedRecord,
            place => place,
        }
    }

    /// What an element of `tag` is by its parent's tag alone ([`BY_TAGS`]; `Other`: by its
    /// parent's place, [`Place::by_place`]).
    const fn by_tag(parent: Tag, tag: Tag) -> Place {
        use Tag as T;
        match (parent, tag) {
            (T::Feedback, T::Version) => Place::Version,
            (T::Feedback, T::ReportMetadata) => Place::Metadata,
            (T::Feedback, T::PolicyPublished) => Place::Policy,
            (T::Feedback, T::Record) => Place::Record,
            (T::ReportMetadata, T::OrgName) => Place::OrgName,
            (T::ReportMetadata, T::Email) => Place::Email,
            (T::ReportMetadata, T::ExtraContactInfo) => Place::ExtraContactInfo,
            (T::ReportMetadata, T::ReportId) => Place::ReportId,
            (T::ReportMetadata, T::Error) => Place::Error,
            (T::ReportMetadata, T::Generator) => Place::Generator,
            (T::DateRange, T::Begin) => Place::Begin,
            (T::DateRange, T::End) => Place::End,
            (T::PolicyPublished, T::Domain) => Place::PolicyDomain,
            (T::PolicyPublished, T::Adkim) => Place::PolicyAdkim,
            (T::PolicyPublished, T::Aspf) => Place::PolicyAspf,
            (T::PolicyPublished, T::P) => Place::PolicyP,
            (T::PolicyPublished, T::Sp) => Place::PolicySp,
            (T::PolicyPublished, T::Np) => Place::PolicyNp,
            (T::PolicyPublished, T::Pct) => Place::PolicyPct,
            (T::PolicyPublished, T::Fo) => Place::PolicyFo,
            (T::PolicyPublished, T::Testing) => Place::PolicyTesting,
            (T::PolicyPublished, T::DiscoveryMethod) => Place::PolicyDiscoveryMethod,
            (T::Row, T::SourceIp) => Place::SourceIp,
            (T::Row, T::Count) => Place::Count,
            (T::PolicyEvaluated, T::Disposition) => Place::Disposition,
            (T::PolicyEvaluated, T::Dkim) => Place::EvaluatedDkim,
            (T::PolicyEvaluated, T::Spf) => Place::EvaluatedSpf,
            (T::PolicyEvaluated, T::Reason) => Place::Reason,
            (T::Identifiers, T::HeaderFrom) => Place::HeaderFrom,
            (T::Identifiers, T::EnvelopeFrom) => Place::EnvelopeFrom,
            (T::Identifiers, T::EnvelopeTo) => Place::EnvelopeTo,
            (T::AuthResults, T::Dkim) => Place::Dkim,
            (T::AuthResults, T::Spf) => Place::Spf,
            _ => Place::Other,
        }
    }

    /// What an element of `tag` is by its parent's place ([`BY_PLACES`]).
    const fn by_place(parent: Place, tag: Tag) -> Place {
        use Tag as T;
        match (parent, tag) {
            (Place::Reason, T::Type) => Place::ReasonType,
            (Place::Reason, T::Comment) => Place::ReasonComment,
            (Place::Dkim, T::Domain) => Place::DkimDomain,
            (Place::Dkim, T::Selector) => Place::DkimSelector,
            (Place::Dkim, T::Result) => Place::DkimResult,
            (Place::Dkim, T::HumanResult) => Place::DkimHumanResult,
            (Place::Spf, T::Domain) => Place::SpfDomain,
            (Place::Spf, T::Scope) => Place::SpfScope,
            (Place::Spf, T::Result) => Place::SpfResult,
            _ => Place::Other,
        }
    }
}

/// Every tag, for the tables of [`Place::of`]: those of [`NAMES`], in its order, then `Other`.
const TAGS: [Tag; NAMES.len() + 1] = {
    let mut tags = [Tag::Other; NAMES.len() + 1];
    let mut i = 0;
    while i < NAMES.len() {
        tags[i] = NAMES[i].1;
        i += 1;
    }
    tags
};

/// Every place, for [`BY_PLACES`].
const PLACES: [Place; 44] = [
    Place::Other,
    Place::Version,
    Place::Metadata,
    Place::OrgName,
    Place::Email,
    Place::ExtraContactInfo,
    Place::ReportId,
    Place::Error,
    Place::Generator,
    Place::Begin,
    Place::End,
    Place::Policy,
    Place::PolicyDomain,
    Place::PolicyAdkim,
    Place::PolicyAspf,
    Place::PolicyP,
    Place::PolicySp,
    Place::PolicyNp,
    Place::PolicyPct,
    Place::PolicyFo,
    Place::PolicyTesting,
    Place::PolicyDiscoveryMethod,
    Place::Record,
    Place::NestedRecord,
    Place::SourceIp,
    Place::Count,
    Place::Disposition,
    Place::EvaluatedDkim,
    Place::EvaluatedSpf,
    Place::Reason,
    Place::ReasonType,
    Place::ReasonComment,
    Place::HeaderFrom,
    Place::EnvelopeFrom,
    Place::EnvelopeTo,
    Place::Dkim,
    Place::DkimDomain,
    Place::DkimSelector,
    Place::DkimResult,
    Place::DkimHumanResult,
    Place::Spf,
    Place::SpfDomain,
    Place::SpfScope,
    Place::SpfResult,
];

// Every variant in its list, in order (a variant added to an enum and not to its list, or out of
// order, would be a table's index out of bounds at run time: here it does not compile). So every
// tag but `Other` is named in `NAMES`, once.
const _: () = {
    let mut i = 0;
    while i < TAGS.len() {
        assert!(TAGS[i] as usize == i, "NAMES names every tag in order");
        i += 1;
    }
    assert!(
        Tag::Other as usize == TAGS.len() - 1,
        "Other is the last tag"
    );
    let mut i = 0;
    while i < PLACES.len() {
        assert!(PLACES[i] as usize == i, "PLACES lists every place in order");
        i += 1;
    }
    assert!(
        Place::SpfResult as usize == PLACES.len() - 1,
        "SpfResult is the last place"
    );
};

/// The table of `rule` (a `const fn` of a parent's tag or place, and a tag) for every one of
/// `parents` and every tag, by their numbers.
macro_rules! places_by {
    ($parents:expr, $rule:path) => {{
        let mut table = [[Place::Other; TAGS.len()]; $parents.len()];
        let mut i = 0;
        while i < $parents.len() {
            let mut j = 0;
            while j < TAGS.len() {
                table[$parents[i] as usize][TAGS[j] as usize] = $rule($parents[i], TAGS[j]);
                j += 1;
            }
            i += 1;
        }
        table
    }};
}

/// [`Place::by_tag`] of every parent's tag and tag, by their numbers.
static BY_TAGS: [[Place; TAGS.len()]; TAGS.len()] = places_by!(TAGS, Place::by_tag);

/// [`Place::by_place`] of every parent's place and tag, by their numbers.
static BY_PLACES: [[Place; TAGS.len()]; PLACES.len()] = places_by!(PLACES, Place::by_place);

/// Values collected while walking; turned into an [`AggregateReport`] at the end.
#[derive(Default)]
struct Builder {
    report: AggregateReport,
    report_id: Option<String>,
    seen_metadata: bool,
    seen_policy: bool,
    record: Record,
    reason: PolicyOverride,
    dkim: DkimAuthResult,
    spf: SpfAuthResult,
    /// Where the first record started, in bytes.
    first_record_at: usize,
}

/// The text content of the element being read. Borrowed from the document while it is one piece
/// without references (the usual case: no copy at all); copied into a buffer, reused from element
/// to element, only when pieces (text around CDATA) must be joined or references resolved.
///
/// XML 1.0 line ends (`\r\n`, `\r`) in the document's text become `\n` (a character reference
/// such as `&#13;` stays what it says): when pieces are joined, and in the value of one piece.
/// A piece is looked at only when it is a value.
///
/// The text between elements, whitespace only, was half of a report's events: the reader skips
/// it (`trim_text_start`), so that it makes no event (issue 21: over 5,000 mixed reports, parsing
/// 7% faster, though the reader then looks at each of those bytes: an event is a call and a
/// branch on its kind that the processor seldom foresees). What the reader skipped is put back
/// where it could change a value ([`skipped`]): before a piece of text, and before a comment,
/// CDATA section or processing instruction, between which and a piece of text it would be
/// inside the value; so the value of every element is what it is without skipping (the
/// whitespace before a start tag is dropped as the element starts, and before an end tag
/// trimmed from the value).
struct Text<'a> {
    /// The document, which every piece is part of (for the place of an error).
    xml: &'a str,
    /// Text as it is in the document, a part of `xml`: not yet normalised, references not yet
    /// resolved.
    piece: &'a [u8],
    joined: bool,
    /// Normalised text with references resolved, when `joined`.
    buffer: String,
}

impl<'a> Text<'a> {
    fn clear(&mut self) {
        self.piece = b"";
        self.joined = false;
    }

    /// Text of the document, as it is there (bytes of `xml`).
    fn push(&mut self, text: &'a [u8]) -> Result<(), ParseError> {
        if !self.joined && self.piece.is_empty() {
            self.piece = text;
            Ok(())
        } else {
            self.join()?;
            let text = within(self.xml, text);
            resolve_into(&mut self.buffer, text, offset(self.xml, text))
        }
    }

    /// The whitespace the reader skipped from `at` (a pointer into `xml`: where it stood as it
    /// began the event that follows), as a piece of text.
    fn push_skipped(&mut self, at: *const u8) -> Result<(), ParseError> {
        let space = skipped(self.xml, at, &[]);
        if space.is_empty() {
            Ok(())
        } else {
            self.push(space)
        }
    }

    /// Text as it stands (CDATA), normalised.
    fn push_literal(&mut self, text: &str) -> Result<(), ParseError> {
        self.join()?;
        push_normalised(&mut self.buffer, text);
        Ok(())
    }

    fn join(&mut self) -> Result<(), ParseError> {
        if !self.joined {
            self.buffer.clear();
            let piece = within(self.xml, self.piece);
            resolve_into(&mut self.buffer, piece, offset(self.xml, piece))?;
            self.joined = true;
        }
        Ok(())
    }

    /// The content with surrounding whitespace (as [`str::trim`] has it) removed.
    fn value(&mut self) -> Result<Cow<'_, str>, ParseError> {
        if self.joined {
            return Ok(Cow::Borrowed(trim(&self.buffer)));
        }
        // An element of elements (half of them): no text at all, the reader skipped what was
        // between them.
        if self.piece.is_empty() {
            return Ok(Cow::Borrowed(""));
        }
        // Line ends are whitespace, and `&` is not: the trimmed value says whether the piece has
        // references or line ends inside, and most values are short and have neither. One pass
        // for both, without the set-up of a search.
        let value = trim(within(self.xml, self.piece));
        let (mut amp, mut cr) = (false, false);
        for &b in value.as_bytes() {
            amp |= b == b'&';
            cr |= b == b'\r';
        }
        if amp {
            // Trimmed once resolved: a reference may stand for whitespace.
            self.join()?;
            Ok(Cow::Borrowed(trim(&self.buffer)))
        } else if cr {
            let mut normalised = String::with_capacity(value.len());
            push_normalised(&mut normalised, value);
            Ok(Cow::Owned(normalised))
        } else {
            Ok(Cow::Borrowed(value))
        }
    }
}

/// Appends `text` with its XML 1.0 line ends (`\r\n`, `\r`) made `\n`.
fn push_normalised(buffer: &mut String, text: &str) {
    if text.as_bytes().contains(&b'\r') {
        buffer.push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
    } else {
        buffer.push_str(text);
    }
}

/// [`str::trim`], by ASCII first: `str::trim` only when what is left starts or ends with a byte
/// that may be other whitespace (vertical tab, or a character beyond ASCII).
fn trim(text: &str) -> &str {
    let ascii = text.trim_ascii();
    let other = |b: Option<&u8>| b.is_some_and(|&b| b == 0x0b || b >= 0x80);
    if other(ascii.as_bytes().first()) || other(ascii.as_bytes().last()) {
        text.trim()
    } else {
        ascii
    }
}

/// The part of an element name after the first `:` (its namespace prefix), as
/// `quick_xml::name::QName::local_name` has it.
fn local_name(name: &str) -> &str {
    match name.bytes().position(|b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Parses one aggregate report from XML already decoded to UTF-8 (see [`super::decode_xml`]).
pub fn parse_aggregate(xml: &str) -> Result<AggregateReport, ParseError> {
    let mut reader = Reader::from_str(xml);
    // Whitespace between elements makes no event ([`Text`]).
    reader.config_mut().trim_text_start = true;
    // Each open element's tag and place.
    let mut stack: Vec<(Tag, Place)> = Vec::with_capacity(8);
    let mut text = Text {
        xml,
        piece: b"",
        joined: false,
        buffer: String::new(),
    };
    let mut b = Builder::default();
    let mut root_seen = false;
    let not_well_formed = |reader: &Reader<&[u8]>, e: quick_xml::Error| ParseError::Xml {
        position: reader.error_position(),
        message: e.to_string(),
    };

    loop {
        // Where the reader stands: what it skips before the event begins here ([`Text`]).
        let at = reader.get_ref().as_ptr();
        match reader.read_event() {
            Err(e) => return Err(not_well_formed(&reader, e)),
            Ok(Event::Start(e)) => {
                let qname = e.name();
                let tag = Tag::named(qname.as_ref());
                if !root_seen {
                    root_seen = true;
                    check_root(tag, local_name(within(xml, qname.as_ref())))?;
                    b.report.namespace = namespace_of(&e);
                } else if tag == Tag::Extensions && stack.len() == 1 {
                    // RFC 9990 report-level extensions: kept verbatim, not interpreted.
                    let span = reader
                        .read_to_end(e.name())
                        .map_err(|err| not_well_formed(&reader, err))?;
                    let inner = xml
                        .get(span.start as usize..span.end as usize)
                        .unwrap_or_default()
                        .trim();
                    b.report.extensions = Some(inner.to_owned());
                    continue;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                let place = Place::of(&stack, tag);
                stack.push((tag, place));
                text.clear();
                if place.opens_item() {
                    b.start(place);
                }
                if place == Place::Record {
                    b.size_records(reader.buffer_position(), xml.len());
                }
            }
            Ok(Event::Empty(e)) => {
                let qname = e.name();
                let tag = Tag::named(qname.as_ref());
                if !root_seen {
                    check_root(tag, local_name(within(xml, qname.as_ref())))?;
                    return Err(ParseError::Missing("report_metadata"));
                }
                let place = Place::of(&stack, tag);
                b.start(place);
                b.end(place, "")?;
            }
            Ok(Event::End(_)) => {
                // Read (and its references checked) even where no value is kept.
                let value = text.value()?;
                match stack.pop() {
                    Some((_, Place::Other)) | None => {}
                    Some((_, place)) => b.end(place, &value)?,
                }
                text.clear();
                if stack.is_empty() {
                    // Anything after the root element (trailing whitespace, NULs, a mail footer) is
                    // ignored: the report is complete.
                    break;
                }
            }
            Ok(Event::Text(t)) => {
                // Always borrowed from `xml`: quick-xml reads a slice without copying.
                let raw = match t.into_inner() {
                    Cow::Borrowed(bytes) => bytes,
                    Cow::Owned(bytes) => {
                        text.push_literal(&String::from_utf8_lossy(&bytes))?;
                        continue;
                    }
                };
                text.push(skipped(xml, at, raw))?;
            }
            Ok(Event::CData(t)) => {
                text.push_skipped(at)?;
                text.push_literal(&String::from_utf8_lossy(&t))?;
            }
            Ok(Event::PI(_) | Event::Comment(_)) => text.push_skipped(at)?,
            Ok(Event::Eof) => {
                if !root_seen {
                    return Err(ParseError::Empty);
                }
                return Err(ParseError::Truncated);
            }
            Ok(Event::Decl(_) | Event::DocType(_)) => {}
        }
    }
    b.finish()
}

/// `piece` (bytes quick-xml borrowed from `xml`, or none) with the whitespace before it that the
/// reader skipped (`trim_text_start`) as it began the event at `at`, where it stood in `xml`: the
/// bytes from `at` to the end of `piece`, which are its own and that whitespace (with no piece:
/// the whitespace from `at`). `piece` as it is when it is not where `at` says.
fn skipped<'a>(xml: &'a str, at: *const u8, piece: &'a [u8]) -> &'a [u8] {
    let bytes = xml.as_bytes();
    let from = (at as usize).wrapping_sub(bytes.as_ptr() as usize);
    if piece.is_empty() {
        let rest = bytes.get(from..).unwrap_or_default();
        let space = rest.iter().take_while(|&&b| is_xml_space(b)).count();
        return &rest[..space];
    }
    let start = (piece.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
    match bytes.get(from..start.wrapping_add(piece.len())) {
        Some(whole) if from <= start && whole[..start - from].iter().all(|&b| is_xml_space(b)) => {
            whole
        }
        _ => piece,
    }
}

/// Whitespace as XML 1.0 has it (and as the reader skips it): space, tab, line feed, carriage return.
fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `part` (bytes quick-xml borrowed from `xml`) as the text it is in `xml`: found by its place,
/// so that it is not checked as UTF-8 again (`xml` is a `str`, and quick-xml cuts only at ASCII
/// delimiters, so the place is on character boundaries).
fn within<'a>(xml: &'a str, part: &'a [u8]) -> &'a str {
    let start = (part.as_ptr() as usize).wrapping_sub(xml.as_ptr() as usize);
    match xml.get(start..start.wrapping_add(part.len())) {
        Some(text) if text.as_bytes().as_ptr() == part.as_ptr() => text,
        // Not a part of `xml` (quick-xml copied it): checked, as it would be anyway.
        _ => std::str::from_utf8(part).unwrap_or_default(),
    }
}

/// The byte offset of `part`, a slice of `xml`, in it.
fn offset(xml: &str, part: &str) -> u64 {
    (part.as_ptr() as usize).saturating_sub(xml.as_ptr() as usize) as u64
}

/// Appends `raw`, text of the document starting at its byte `at`, to `buffer`: the text between
/// references normalised as the document's, each reference as the text it stands for (a
/// character reference, one of the five predefined entities), or as written when it is neither
/// (an undeclared entity is kept rather than failing the report). A `&` without its `;` is not
/// well-formed XML.
fn resolve_into(buffer: &mut String, raw: &str, at: u64) -> Result<(), ParseError> {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        push_normalised(buffer, &rest[..amp]);
        let after = &rest[amp + 1..];
        let name = match after.find([';', '&']) {
            Some(end) if after.as_bytes()[end] == b';' => &after[..end],
            _ => {
                return Err(ParseError::Xml {
                    position: at + offset(raw, rest) + amp as u64,
                    message: "ill-formed document: entity or character reference not closed: \
                              `;` not found before end of input"
                        .to_owned(),
                });
            }
        };
        match char_reference(name) {
            Some(c) => buffer.push(c),
            None => match resolve_predefined_entity(name) {
                Some(s) => buffer.push_str(s),
                None => {
                    buffer.push('&');
                    buffer.push_str(name);
                    buffer.push(';');
                }
            },
        }
        rest = &after[name.len() + 1..];
    }
    push_normalised(buffer, rest);
    Ok(())
}

/// The character a character reference (`#68`, `#x44`, without `&` and `;`) stands for; `None`
/// when `name` is not one, or names no character (NUL, a surrogate, beyond Unicode, a sign).
fn char_reference(name: &str) -> Option<char> {
    let number = name.strip_prefix('#')?;
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let code = u32::from_str_radix(digits, radix).ok()?;
    char::from_u32(code).filter(|&c| c != '\0')
}

fn check_root(tag: Tag, name: &str) -> Result<(), ParseError> {
    if tag == Tag::Feedback {
        Ok(())
    } else {
        Err(ParseError::NotAggregate(name.chars().take(64).collect()))
    }
}

/// The `xmlns` attribute's value, normalised as XML 1.0 has attribute values (each line end, tab
/// or newline a space) and trimmed.
fn namespace_of(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.as_ref() == b"xmlns")
            .then(|| {
                let raw = String::from_utf8_lossy(&a.value).replace("\r\n", " ");
                let raw = raw.replace(['\t', '\r', '\n'], " ");
                quick_xml::escape::unescape(&raw)
                    .ok()
                    .map(|v| v.trim().to_owned())
            })
            .flatten()
    })
}

impl Builder {
    /// Called as a record of `<feedback>` starts at `at` (a byte of the document, `len` bytes
    /// long): as the second starts, room is made for as many records as the rest of the document
    /// holds if they are the size of the first, so that the vector is not copied as it grows.
    /// Counted at 256 bytes a record at least (smaller than a real one), so that a document with a
    /// tiny first record and a large rest cannot make it reserve much more than its own size.
    fn size_records(&mut self, at: u64, len: usize) {
        let at = usize::try_from(at).unwrap_or(len);
        match self.report.records.len() {
            0 => self.first_record_at = at,
            1 => {
                let size = at.saturating_sub(self.first_record_at).max(256);
                self.report
                    .records
                    .reserve(len.saturating_sub(at) / size + 1);
            }
            _ => {}
        }
    }

    /// Called as an element starts: resets the item that it opens.
    fn start(&mut self, place: Place) {
        match place {
            Place::Record | Place::NestedRecord => self.record = crate::model::Record::default(),
            Place::Reason => self.reason = PolicyOverride::default(),
            Place::Dkim => self.dkim = DkimAuthResult::default(),
            Place::Spf => self.spf = SpfAuthResult::default(),
            Place::Metadata => self.seen_metadata = true,
            Place::Policy => self.seen_policy = true,
            _ => {}
        }
    }

    /// Called as an element ends, with its trimmed text content.
    fn end(&mut self, place: Place, text: &str) -> Result<(), ParseError> {
        let r = &mut self.report;
        match place {
            Place::Version => r.version = opt(text),
            Place::OrgName => r.metadata.org_name = text.to_owned(),
            Place::Email => r.metadata.email = opt(text),
            Place::ExtraContactInfo => r.metadata.extra_contact_info = opt(text),
            Place::ReportId => self.report_id = opt(text),
            Place::Error => {
                if let Some(t) = opt(text) {
                    r.metadata.errors.push(t);
                }
            }
            Place::Generator => r.metadata.generator = opt(text),
            Place::Begin => r.metadata.begin = timestamp("begin", text)?,
            Place::End => r.metadata.end = timestamp("end", text)?,

            Place::PolicyDomain => r.policy.domain = text.to_ascii_lowercase(),
            Place::PolicyAdkim => r.policy.adkim = lower(text),
            Place::PolicyAspf => r.policy.aspf = lower(text),
            Place::PolicyP => r.policy.p = lower(text),
            Place::PolicySp => r.policy.sp = lower(text),
            Place::PolicyNp => r.policy.np = lower(text),
            // Quirk: pct is advisory; one that is not a number (`100%`, empty) is dropped, not the report.
            Place::PolicyPct => r.policy.pct = text.trim_end_matches('%').parse().ok(),
            Place::PolicyFo => r.policy.fo = opt(text),
            Place::PolicyTesting => r.policy.testing = lower(text),
            Place::PolicyDiscoveryMethod => r.policy.discovery_method = lower(text),

            Place::SourceIp => self.record.source_ip = normalise_ip(text),
            Place::Count if !text.is_empty() => {
                let n = r.records.len() + 1;
                let count: u64 = text.parse().map_err(|_| ParseError::InvalidRecordNumber {
                    record: n,
                    field: "count",
                    value: text.chars().take(64).collect(),
                })?;
                if count > MAX_COUNT {
                    return Err(ParseError::CountTooLarge {
                        record: n,
                        value: count,
                    });
                }
                self.record.count = count;
            }
            Place::Disposition => {
                self.record.disposition = value(text, crate::model::Disposition::parse)
            }
            Place::EvaluatedDkim => self.record.dkim = value(text, DmarcResult::parse),
            Place::EvaluatedSpf => self.record.spf = value(text, DmarcResult::parse),
            Place::ReasonType => self.reason.kind = text.to_ascii_lowercase(),
            Place::ReasonComment => self.reason.comment = opt(text),
            Place::Reason => {
                push(&mut self.record.reasons, std::mem::take(&mut self.reason));
            }
            Place::HeaderFrom => self.record.header_from = lower_text(text),
            Place::EnvelopeFrom => self.record.envelope_from = lower_text(text),
            Place::EnvelopeTo => self.record.envelope_to = lower_text(text),

            Place::DkimDomain => self.dkim.domain = lowered(text),
            Place::DkimSelector => {
                self.dkim.selector = (!text.is_empty()).then(|| ShortStr::from(text))
            }
            Place::DkimResult => self.dkim.result = DkimResult::parse(text),
            Place::DkimHumanResult => self.dkim.human_result = opt(text),
            Place::Dkim => {
                (self.record.dkim_results).push(std::mem::take(&mut self.dkim));
            }
            Place::SpfDomain => self.spf.domain = lowered(text),
            Place::SpfScope => self.spf.scope = lower_text(text),
            Place::SpfResult => self.spf.result = SpfResult::parse(text),
            Place::Spf => {
                (self.record.spf_results).push(std::mem::take(&mut self.spf));
            }
            Place::Record => r.records.push(std::mem::take(&mut self.record)),
            Place::Count | Place::Other | Place::Metadata | Place::Policy | Place::NestedRecord => {
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<AggregateReport, ParseError> {
        let Builder {
            mut report,
            report_id,
            seen_metadata,
            seen_policy,
            ..
        } = self;
        if !seen_metadata {
            return Err(ParseError::Missing("report_metadata"));
        }
        if !seen_policy {
            return Err(ParseError::Missing("policy_published"));
        }
        report.metadata.report_id = report_id.ok_or(ParseError::Missing("report_id"))?;
        Ok(report)
    }
}

/// [`Vec::push`], the first item into a vector of its own size: a record that has a reason seldom
/// has two (and `push` would take the general path of growing a vector, and room for four).
fn push<T>(items: &mut Vec<T>, item: T) {
    if items.capacity() == 0 {
        *items = vec![item];
    } else {
        items.push(item);
    }
}

fn opt(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// An enumerated value; empty means absent.
fn value<T>(text: &str, parse: fn(&str) -> T) -> Option<T> {
    (!text.is_empty()).then(|| parse(text))
}

fn lower(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_ascii_lowercase())
}

/// A record's text in lower case, inline when short ([`ShortStr`]). Most are in lower case
/// already: looked at eight bytes at a time, and copied as they are.
fn lowered(text: &str) -> ShortStr {
    let mut t = ShortStr::from(text);
    if any_upper(text.as_bytes()) {
        t.make_ascii_lowercase();
    }
    t
}

/// Whether `bytes` has an ASCII capital letter.
fn any_upper(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    // Each byte's high bit set where it is `A`..=`Z`: its low seven bits are at least `A` and
    // not above `Z`, and it was ASCII (no carry crosses a byte: 0x7f + 0x3f < 0x100).
    let upper = |w: u64| {
        let low = w & (0x7f * ONES);
        let at_least_a = low + (0x80 - u64::from(b'A')) * ONES;
        let above_z = low + (0x80 - u64::from(b'Z') - 1) * ONES;
        at_least_a & !above_z & !w & (0x80 * ONES) != 0
    };
    let (words, rest) = bytes.as_chunks::<8>();
    words.iter().any(|w| upper(u64::from_le_bytes(*w))) || rest.iter().any(u8::is_ascii_uppercase)
}

/// [`lowered`]; empty means absent.
fn lower_text(text: &str) -> Option<ShortStr> {
    (!text.is_empty()).then(|| lowered(text))
}

/// Seconds since the epoch; empty means unknown. Quirk: a few reporters write `1700000000.0`; an
/// integral float is accepted.
fn timestamp(field: &'static str, text: &str) -> Result<Option<i64>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| ParseError::InvalidNumber {
            field,
            value: text.chars().take(64).collect(),
        })
}

/// Canonical text of an IP address; IPv4-mapped IPv6 becomes IPv4. Kept as sent when unparseable, so a
/// record is never lost over a malformed address.
pub fn normalise_ip(text: &str) -> ShortStr {
    use compact_str::ToCompactString;
    // The usual case: an IPv4 address written as `Ipv4Addr` writes it is kept as it is.
    if crate::model::canonical_v4(text).is_some() {
        return ShortStr::from(text);
    }
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_compact_string(),
            None => v6.to_compact_string(),
        },
        Ok(ip) => ip.to_compact_string(),
        Err(_) => ShortStr::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<feedback><report_metadata><org_name>x</org_name><report_id>1</report_id>
        <date_range><begin>10</begin><end>20</end></date_range></report_metadata>
        <policy_published><domain>Example.ORG</domain><p>None</p><sp></sp></policy_published>
        <record><row><source_ip> ::ffff:192.0.2.1 </source_ip><count>3</count>
        <policy_evaluated><disposition>none</disposition><dkim>Pass</dkim><spf>fail</spf>
        <reason><type>forwarded</type></reason></policy_evaluated></row>
        <identifiers><header_from>example.org</header_from></identifiers>
        <auth_results><dkim><domain>example.org</domain><result>pass</result></dkim>
        <spf><domain>a.example</domain><result>SoftFail</result></spf></auth_results></record>
        </feedback>"#;

    #[test]
    fn minimal_report() {
        let r = parse_aggregate(MINIMAL).unwrap();
        assert_eq!(r.policy.domain, "example.org");
        assert_eq!(r.policy.p.as_deref(), Some("none"));
        assert_eq!(r.policy.sp, None);
        assert_eq!(r.records.len(), 1);
        let rec = &r.records[0];
        assert_eq!(rec.source_ip, "192.0.2.1");
        assert_eq!(rec.count, 3);
        assert!(rec.dmarc_pass());
        assert_eq!(rec.reasons[0].kind, "forwarded");
        assert_eq!(rec.spf_results[0].result, SpfResult::SoftFail);
        assert_eq!(rec.dkim, Some(DmarcResult::Pass));
        assert_eq!(rec.disposition, Some(crate::model::Disposition::None));
    }

    #[test]
    fn values_outside_the_schema_are_kept_as_sent() {
        let xml = MINIMAL
            .replace("SoftFail", "HardFail")
            .replace("<disposition>none", "<disposition>Deliver")
            .replace("<result>pass</result>", "<result></result>");
        let r = parse_aggregate(&xml).unwrap();
        let rec = &r.records[0];
        assert_eq!(
            rec.spf_results[0].result,
            SpfResult::Other("hardfail".into())
        );
        assert_eq!(rec.dkim_results[0].result.as_str(), "");
        assert_eq!(
            rec.disposition.as_ref().map(|d| d.as_str()),
            Some("deliver")
        );
        // Serialised as the text, as before the enums.
        let json = serde_json::to_value(rec).unwrap();
        assert_eq!(json["spf_results"][0]["result"], "hardfail");
        assert_eq!(json["disposition"], "deliver");
        assert_eq!(json["dkim"], "pass");
    }

    #[test]
    fn text_in_pieces_line_ends_whitespace_and_prefixes() {
        // Text around references and CDATA is joined; CR LF inside becomes LF; a vertical tab and a
        // no-break space at the ends are trimmed as `str::trim` does; prefixes are not names.
        let xml = MINIMAL
            .replace(
                "<org_name>x</org_name>",
                "<org_name>\u{b} A&amp;B <![CDATA[C]]>&#x44;\r\nE\u{a0}</org_name>",
            )
            .replace("<record>", "<x:record>")
            .replace("</record>", "</x:record>")
            .replace("<count>3</count>", "<count>\r\n 3\r\n</count>");
        let r = parse_aggregate(&xml).unwrap();
        assert_eq!(r.metadata.org_name, "A&B CD\nE");
        // A character reference is what it says; line ends of the document become LF.
        let cr = MINIMAL.replace("<org_name>x<", "<org_name>a&#13;\r\nb\rc\r\n<");
        assert_eq!(parse_aggregate(&cr).unwrap().metadata.org_name, "a\r\nb\nc");
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.records[0].count, 3);
        assert_eq!(normalise_ip("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(normalise_ip("2001:DB8:0::1"), "2001:db8::1");
        assert_eq!(normalise_ip("192.0.2.01"), "192.0.2.01");
    }

    /// The whitespace the reader skips (`trim_text_start`) is put back where it is inside a
    /// value: between a piece of text and a comment, CDATA section or processing instruction, or
    /// between two of those; a value is what it is without skipping.
    #[test]
    fn whitespace_the_reader_skips_stays_inside_values() {
        let org = |org: &str| {
            let xml = MINIMAL.replace("<org_name>x<", &format!("<org_name>{org}<"));
            parse_aggregate(&xml).map(|r| r.metadata.org_name).unwrap()
        };
        assert_eq!(org("a<!--c--> <!--d-->b"), "a b");
        assert_eq!(org("a <!--c-->\t<?pi x?>\n b"), "a \t\n b");
        assert_eq!(org(" a <![CDATA[ b ]]> c "), "a  b  c");
        assert_eq!(org("\r\n <![CDATA[b]]>\r\n <![CDATA[c]]>\r\n"), "b\n c");
        assert_eq!(org("a&amp;<!--c-->\r\n  &#x42;"), "a&\n  B");
        assert_eq!(org("  <!--c-->  "), "");
        // Form feed is not XML whitespace: text, not skipped.
        assert_eq!(org("a<!--c-->\u{c} b"), "a\u{c} b");
        // Whitespace between elements is no value: the record is read as ever.
        let spaced = MINIMAL.replace("><", "> \r\n\t <");
        assert_eq!(parse_aggregate(&spaced), parse_aggregate(MINIMAL));
    }

    #[test]
    fn references_resolved_kept_or_refused() {
        let with = |org: &str| MINIMAL.replace("<org_name>x<", &format!("<org_name>{org}<"));
        let org = |org: &str| parse_aggregate(&with(org)).map(|r| r.metadata.org_name);
        assert_eq!(org("a&lt;b&#62;c&#x3C;&quot;").unwrap(), "a<b>c<\"");
        // Undeclared entities and references to no character are kept as written.
        assert_eq!(
            org("&nbsp;x&#0;&#xZZ;&#-1;").unwrap(),
            "&nbsp;x&#0;&#xZZ;&#-1;"
        );
        // A lone `&` is not well-formed: the error names its byte.
        let at = with("A & B").find(" & ").unwrap() as u64 + 1;
        assert!(
            matches!(org("A & B"), Err(ParseError::Xml { position, .. }) if position == at),
            "{:?}",
            org("A & B")
        );
        assert!(matches!(org("A &amp B"), Err(ParseError::Xml { .. })));
    }

    #[test]
    fn places_are_known_by_the_last_names_of_their_path() {
        // A stray wrapper above a value does not hide it, one between it and its parent does;
        // `<version>` and a stored record are children of the root only; `<dkim>` is a result
        // under `<auth_results>` and the aligned result under `<policy_evaluated>`, nothing else.
        let xml = MINIMAL
            .replace("<org_name>x</org_name>", "<w><org_name>y</org_name></w>")
            .replace(
                "<report_metadata>",
                "<report_metadata><w><report_metadata><email>e</email></report_metadata></w>",
            )
            .replace(
                "</feedback>",
                "<version>2</version><w><version>3</version>\
                 <feedback><record><row><count>9</count></row></record></feedback></w></feedback>",
            )
            .replace(
                "<identifiers>",
                "<identifiers><dkim><domain>d</domain></dkim>",
            );
        let r = parse_aggregate(&xml).unwrap();
        assert_eq!(r.metadata.org_name, "");
        assert_eq!(r.metadata.email.as_deref(), Some("e"));
        assert_eq!(r.version.as_deref(), Some("2"));
        assert_eq!(r.records.len(), 1);
        let rec = &r.records[0];
        assert_eq!(rec.count, 3);
        assert_eq!(rec.dkim, Some(DmarcResult::Pass));
        assert_eq!(rec.dkim_results.len(), 1);
        assert_eq!(rec.dkim_results[0].domain, "example.org");
    }

    /// The table finds what the names themselves say, for every name and for names near them
    /// (a byte changed, one more or fewer, other lengths).
    #[test]
    fn tag_of_is_what_the_names_say() {
        let mut tried = 0;
        for (name, tag) in NAMES {
            assert_eq!(Tag::of(name), tag);
            let mut near = vec![
                name.to_vec(),
                name[1..].to_vec(),
                name[..name.len() - 1].to_vec(),
            ];
            near.push([name, &b"s"[..]].concat());
            near.push([&b"x"[..], name].concat());
            for i in 0..name.len() {
                for b in [b'x', b'_', name[i] ^ 0x20, 0] {
                    let mut v = name.to_vec();
                    v[i] = b;
                    near.push(v);
                }
            }
            for v in near {
                assert_eq!(
                    Tag::of(&v),
                    Tag::of_long(&v),
                    "{:?}",
                    String::from_utf8_lossy(&v)
                );
                tried += 1;
            }
            assert_ne!(Tag::of(name), Tag::Other);
        }
        assert!(tried > 1000);
        assert_eq!(Tag::of(b""), Tag::Other);
        assert_eq!(Tag::of(b"extra_contact_info"), Tag::ExtraContactInfo);
        assert_eq!(Tag::of(b"extra_contact_infos"), Tag::Other);
    }

    #[test]
    fn any_upper_is_any_ascii_capital() {
        for b in 0..=255u8 {
            for at in 0..17 {
                let mut bytes = vec![b'a'; 17];
                bytes[at] = b;
                assert_eq!(any_upper(&bytes), b.is_ascii_uppercase(), "{b} at {at}");
                assert_eq!(
                    any_upper(&bytes[..at + 1]),
                    b.is_ascii_uppercase(),
                    "{b} at {at}"
                );
            }
        }
        assert_eq!(lowered("Example.ORG"), "example.org");
        assert_eq!(lowered("ÄB"), "Äb");
    }

    #[test]
    fn missing_count_is_zero() {
        let r = parse_aggregate(&MINIMAL.replace("<count>3</count>", "<count> </count>")).unwrap();
        assert_eq!(r.records[0].count, 0);
    }

    #[test]
    fn issue_2_count_beyond_u32_is_rejected_not_overflowed() {
        let huge = MINIMAL.replace("<count>3", "<count>18446744073709551615");
        assert_eq!(
            parse_aggregate(&huge),
            Err(ParseError::CountTooLarge {
                record: 1,
                value: u64::MAX
            })
        );
        let most = MINIMAL.replace("<count>3", "<count>4294967295");
        assert_eq!(parse_aggregate(&most).unwrap().records[0].count, MAX_COUNT);
    }

    #[test]
    fn not_a_number_count_is_named() {
        let bad = MINIMAL.replace("<count>3", "<count>not-a-number");
        let err = parse_aggregate(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record 1: invalid <count> \"not-a-number\": expected a whole number"
        );
    }

    #[test]
    fn mismatched_tag_gives_position() {
        let err = parse_aggregate("<feedback><a></b></feedback>").unwrap_err();
        assert!(matches!(err, ParseError::Xml { position: 13, .. }), "{err}");
    }

    #[test]
    fn truncated_and_foreign_roots() {
        assert_eq!(
            parse_aggregate("<feedback><policy_published/></feedback>"),
            Err(ParseError::Missing("report_metadata"))
        );
        assert_eq!(
            parse_aggregate("<feedback><report_metadata>"),
            Err(ParseError::Truncated)
        );
        assert_eq!(
            parse_aggregate("<html></html>"),
            Err(ParseError::NotAggregate("html".into()))
        );
        assert_eq!(parse_aggregate("  "), Err(ParseError::Empty));
    }
}
