//! The evidence behind `senders`, `advise`, notifications and the dashboard: aggregate records summed
//! by what they say about the sender ([`EvidenceKey`]). The server sums them (by the stored values
//! and by the day the report began), so only the sums cross the network; each sum's columns are
//! then turned into their key by [`StoredRecord::evidence_key`], the one conversion, and folded
//! and ordered as the SQLite store does.

use std::collections::HashMap;

use postgres::GenericClient;

use super::{PgError, count};
use crate::model::{DayCount, Evidence, EvidenceKey};
use crate::store::StoredRecord;

/// Records of reports ending on or after `since` and before `until` (of `domain`, when given), summed
/// by [`EvidenceKey`], sorted by it; with `by_day`, also how many messages of each evidence row came
/// in reports beginning on each day.
pub fn evidence_in(
    client: &mut impl GenericClient,
    domain: Option<&str>,
    since: Option<i64>,
    until: Option<i64>,
    by_day: bool,
) -> Result<(Vec<Evidence>, Vec<DayCount>), PgError> {
    // Conditions are spelled out only when given, so that the plan uses the (domain, date_end)
    // index when it can.
    let conditions = [
        if domain.is_some() {
            "r.domain = $1"
        } else {
            "$1::text IS NULL"
        },
        if since.is_some() {
            "r.date_end >= $2"
        } else {
            "$2::int8 IS NULL"
        },
        if until.is_some() {
            "r.date_end < $3"
        } else {
            "$3::int8 IS NULL"
        },
    ];
    // Grouped by the stored columns [`StoredRecord`] reads, in its order, and by day.
    let rows = client.query(
        &format!(
            "SELECT r.domain, c.source_ip, c.header_from, c.auth_dkim_domain, c.auth_dkim_result,
                c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf,
                c.disposition, c.forwarded,
                floor(r.date_begin / 86400.0)::int8 AS day,
                sum(c.count)::int8, min(r.date_begin), max(r.date_end),
                array_agg(DISTINCT r.org_name)
             FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
             WHERE {}
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13",
            conditions.join(" AND ")
        ),
        &[&domain, &since, &until],
    )?;
    // Each group's columns say what [`StoredRecord::evidence_key`] makes of them; different
    // columns can say the same (case), and are summed into one row, as in the SQLite store.
    let mut by_key: HashMap<EvidenceKey, usize> = HashMap::new();
    let mut out: Vec<Evidence> = Vec::new();
    let mut daily: HashMap<(usize, i64), u64> = HashMap::new();
    for r in &rows {
        let key = StoredRecord {
            domain: r.get(0),
            source_ip: r.get(1),
            header_from: r.get(2),
            auth_dkim_domain: r.get(3),
            auth_dkim_result: r.get(4),
            auth_spf_domain: r.get(5),
            auth_spf_result: r.get(6),
            envelope_from: r.get(7),
            dkim: r.get(8),
            spf: r.get(9),
            disposition: r.get(10),
            forwarded: r.get(11),
        }
        .evidence_key();
        let at = *by_key.entry(key).or_insert_with_key(|key| {
            out.push(Evidence {
                key: key.clone(),
                ..Evidence::default()
            });
            out.len() - 1
        });
        let e = &mut out[at];
        let day: Option<i64> = r.get(12);
        let messages = count(r.get(13));
        let begin: Option<i64> = r.get(14);
        let end: Option<i64> = r.get(15);
        let reporters: Vec<String> = r.get(16);
        e.messages = e.messages.saturating_add(messages);
        e.first = crate::analyse::min_opt(e.first, begin);
        e.last = e.last.max(end);
        e.reporters.extend(reporters);
        if let Some(day) = day {
            e.days.insert(day);
            if by_day {
                *daily.entry((at, day)).or_default() += messages;
            }
        }
    }
    // Sorted by key; the day counts follow their rows to their new places.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| out[a].key.cmp(&out[b].key));
    let mut place = vec![0; out.len()];
    for (new, &old) in order.iter().enumerate() {
        place[old] = new;
    }
    let mut slots: Vec<Option<Evidence>> = out.into_iter().map(Some).collect();
    let out: Vec<Evidence> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let mut days: Vec<DayCount> = daily
        .into_iter()
        .map(|((at, day), messages)| DayCount {
            evidence: place[at],
            day,
            messages,
        })
        .collect();
    days.sort_unstable_by_key(|d| (d.day, d.evidence));
    Ok((out, days))
}
