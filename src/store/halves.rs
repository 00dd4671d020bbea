//! A large domain's `sources` read in two halves of its reports at once, on two connections, and
//! joined: the rule of when (written once for both backends) and the join.

use super::FastMap;
use crate::model::SourceSummary;

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

/// Source groups as a half reads them: each group's key → its place in the rows, and the rows.
pub(super) type Groups = (FastMap<Vec<u8>, usize>, Vec<SourceSummary>);

/// The second half's groups added to the first's: a group both read is summed into the first's
/// row, the others appended.
pub(super) fn join(first: Groups, second: Groups) -> Groups {
    let (mut index, mut out) = first;
    let (index2, out2) = second;
    let mut rows: Vec<Option<SourceSummary>> = out2.into_iter().map(Some).collect();
    for (key, at) in index2 {
        let Some(row) = rows.get_mut(at).and_then(Option::take) else {
            continue;
        };
        match index.get(&key) {
            Some(&mine) => out[mine].absorb(&row),
            None => {
                index.insert(key, out.len());
                out.push(row);
            }
        }
    }
    (index, out)
}
