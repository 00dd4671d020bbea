//! A large domain's `sources` read in two halves of its reports at once, on two connections, and
//! joined ([`super::source_groups::SourceGroups::join`]): the rule of when.

/// Domains of more records than this in the window are read in two halves at once (tests lower it
/// with `DMARC_WARDEN_SPLIT_RECORDS`, to compare the halves with the whole).
const SPLIT_RECORDS: i64 = 200_000;

/// [`SPLIT_RECORDS`], or what `DMARC_WARDEN_SPLIT_RECORDS` says.
pub(super) fn split_records() -> i64 {
    std::env::var("DMARC_WARDEN_SPLIT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SPLIT_RECORDS)
}
