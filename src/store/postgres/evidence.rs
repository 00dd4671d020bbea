//! The evidence behind `senders`, `advise`, notifications and the dashboard read from the
//! records (the rollups answer whole days: `rollups.rs`): aggregate records summed
//! by what they say about the sender ([`EvidenceKey`]). The server sums them (by the stored values
//! and by the day the report began), so only the sums cross the network; each sum's columns are
//! then turned into their key by [`StoredRecord::evidence_key`], the one conversion, and folded
//! and ordered as the SQLite store does.

use std::collections::{BTreeSet, HashMap};

use postgres::{Client, GenericClient};

use super::{
    NO_WORKERS, PgError, SUM_BY_HASH, UntilBy, count, put_columns, snapshot, stored_record,
    sum_of_counts, window_conditions,
};
use crate::model::{DayCount, Evidence, EvidenceKey, IpEvidence};
use crate::store::Detail;
use crate::store::of_keys::OfKeys;

/// Records of reports ending on or after `since` and before `until` (of `domain`, when given), summed
/// by [`EvidenceKey`], sorted by it; with [`Detail::Daily`], also how many messages of each
/// evidence row came in reports beginning on each day.
pub fn evidence_per_ip(
    client: &mut impl GenericClient,
    domain: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
    detail: Detail,
) -> Result<(Vec<Evidence>, Vec<DayCount>), PgError> {
    let conditions = window_conditions(
        domain.is_some(),
        since.is_some(),
        until.is_some(),
        UntilBy::End,
    );
    // Every record with its report, as the SQLite store reads them: grouping them on the server
    // (by these columns and the day) saved nothing, as a day's records rarely repeat, and cost a
    // sort.
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut by_key: HashMap<EvidenceKey, usize> = HashMap::new();
    let mut sums = crate::store::RecordSums::new(detail);
    let mut buf = Vec::new();
    // A batch at a time (`each_row`): a year of a large domain held as rows at once was millions.
    super::each_row(
        client,
        &format!(
            "SELECT r.domain, c.source_ip, c.header_from, c.auth_dkim_domain, c.auth_dkim_result,
                c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf,
                c.disposition, c.forwarded, r.org_name, r.date_begin, r.date_end, c.count
             FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
                AND c.report_end = coalesce(r.date_end, r.ingested_at)
             WHERE {conditions}"
        ),
        &[&domain, &since, &until],
        // Rows are summed by their stored columns ([`StoredRecord`]'s), looked up by those
        // columns' bytes in a reused buffer; each new set is turned into its key by
        // [`StoredRecord::evidence_key`] (different columns can say the same: they are summed
        // too).
        |r| {
            buf.clear();
            put_columns(&mut buf, r, 0..11);
            buf.push(u8::from(r.get::<_, bool>(11)));
            let at = match index.get(buf.as_slice()) {
                Some(&at) => at,
                None => {
                    let key = stored_record(r, r.get(0), 1).evidence_key();
                    let at = *by_key
                        .entry(key)
                        .or_insert_with_key(|key| sums.push(key.clone()));
                    index.insert(buf.clone(), at);
                    at
                }
            };
            let reporter: &str = r.get(12);
            sums.add(at, reporter, r.get(13), r.get(14), count(r.get(15)));
            Ok(())
        },
    )?;
    Ok(sums.finish())
}

/// The records of `domain`'s reports ending in `[since, until)` whose key without the source IP
/// is one of `keys`, summed per source IP and key (a sender's page). The server sends only the
/// records that may be of those keys: a superset chosen by the keys' DKIM and SPF domains and
/// whether they were forwarded (the columns compared as [`StoredRecord::evidence_key`] reads
/// them: `lower` on these `COLLATE "C"` columns changes ASCII letters only, as
/// `to_ascii_lowercase` does), streamed; each distinct set of columns is then turned into its
/// key by [`StoredRecord::evidence_key`], the one conversion, and kept only where that key is
/// asked for.
///
/// The server sums the records it sends per source IP, columns and reporter (a year of a large
/// domain's own sender: 563k records, 32k sums), joining each record to its report by a hash of
/// the window's reports (a few thousand; left to itself the planner, misjudging how many records
/// the key's conditions keep, looked each one up by the index) and summing in a hash table
/// rather than sorting them all: the settings below say so, for this transaction only. Without
/// parallel workers (the web reads a window's two halves at once).
pub fn evidence_of_keys(
    client: &mut Client,
    domain: &str,
    since: Option<i64>,
    until: Option<i64>,
    keys: &[EvidenceKey],
) -> Result<Vec<IpEvidence>, PgError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = snapshot(client)?;
    let out = of_keys_in(&mut tx, domain, since, until, keys)?;
    tx.commit()?;
    Ok(out)
}

/// [`evidence_of_keys`] in the transaction `tx` (its settings are for the rest of it).
pub(super) fn of_keys_in(
    tx: &mut impl GenericClient,
    domain: &str,
    since: Option<i64>,
    until: Option<i64>,
    keys: &[EvidenceKey],
) -> Result<Vec<IpEvidence>, PgError> {
    let set = |f: fn(&EvidenceKey) -> &str| -> Vec<&str> {
        let s: BTreeSet<&str> = keys.iter().map(f).collect();
        s.into_iter().collect()
    };
    let dkim = set(|k| k.dkim_domain.as_str());
    let spf = set(|k| k.spf_domain.as_str());
    let forwarded: Vec<bool> = keys
        .iter()
        .map(|k| k.forwarded)
        .collect::<BTreeSet<bool>>()
        .into_iter()
        .collect();
    tx.batch_execute(NO_WORKERS)?;
    tx.batch_execute(SUM_BY_HASH)?;
    // The window as every read of records with their reports spells it.
    let conditions = window_conditions(true, since.is_some(), until.is_some(), UntilBy::End);
    let params: [&(dyn postgres::types::ToSql + Sync); 6] =
        [&domain, &since, &until, &dkim, &spf, &forwarded];
    let mut fold = OfKeys::new(keys);
    let mut buf = Vec::new();
    super::each_row(
        tx,
        &format!(
            "SELECT c.source_ip, c.header_from, c.auth_dkim_domain, c.auth_dkim_result,
                c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf,
                c.disposition, c.forwarded, r.org_name,
                sum(GREATEST(c.count, 0))::text
             FROM records c JOIN reports r ON r.domain = c.domain AND r.id = c.report
                AND c.report_end = coalesce(r.date_end, r.ingested_at)
             WHERE {conditions}
                AND coalesce(lower(c.auth_dkim_domain), '') = ANY($4)
                AND coalesce(lower(coalesce(c.auth_spf_domain, c.envelope_from)), '') = ANY($5)
                AND c.forwarded = ANY($6)
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"
        ),
        &params,
        |r| {
            buf.clear();
            put_columns(&mut buf, r, 1..10);
            buf.push(u8::from(r.get::<_, bool>(10)));
            let kind = fold.kind(&buf, || Ok::<_, PgError>(stored_record(r, domain, 0)))?;
            if let Some(key) = kind {
                fold.add(r.get(0), key, r.get(11), sum_of_counts(r.get(12)));
            }
            Ok(())
        },
    )?;
    Ok(fold.finish())
}
