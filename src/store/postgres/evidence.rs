//! The evidence behind `senders`, `advise`, notifications and the dashboard: aggregate records summed
//! by what they say about the sender ([`EvidenceKey`]). The server sums them (by the stored values
//! and by the day the report began), so only the sums cross the network; the rows are then folded
//! and ordered as the SQLite store does.

use std::collections::HashMap;

use postgres::GenericClient;

use super::{PgError, count};
use crate::model::{DayCount, Evidence, EvidenceKey};

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
    let rows = client.query(
        &format!(
            "SELECT r.domain, c.source_ip, coalesce(c.header_from, ''),
                coalesce(c.auth_dkim_domain, ''), coalesce(c.auth_dkim_result, ''),
                coalesce(c.auth_spf_domain, c.envelope_from, ''), coalesce(c.auth_spf_result, ''),
                coalesce(c.dkim = 'pass', false), coalesce(c.spf = 'pass', false),
                coalesce(c.disposition, 'none'), c.forwarded,
                floor(r.date_begin / 86400.0)::int8 AS day,
                sum(c.count)::int8, min(r.date_begin), max(r.date_end),
                array_agg(DISTINCT r.org_name)
             FROM reports r JOIN records c ON c.domain = r.domain AND c.report = r.id
             WHERE {}
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
             ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12",
            conditions.join(" AND ")
        ),
        &[&domain, &since, &until],
    )?;
    // Rows are folded by their stored values (the first 11 columns); the key lower-cases some of
    // them, so two rows may share a key and stay apart, as in the SQLite store.
    type Raw = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        bool,
        bool,
        String,
        bool,
    );
    let mut index: HashMap<Raw, usize> = HashMap::new();
    let mut out: Vec<Evidence> = Vec::new();
    let mut daily: HashMap<(usize, i64), u64> = HashMap::new();
    for r in &rows {
        let raw: Raw = (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
            r.get(10),
        );
        let at = match index.get(&raw) {
            Some(&at) => at,
            None => {
                let key = EvidenceKey {
                    domain: raw.0.clone(),
                    source_ip: raw.1.clone(),
                    header_from: raw.2.to_ascii_lowercase(),
                    dkim_domain: raw.3.to_ascii_lowercase(),
                    dkim_result: raw.4.clone(),
                    spf_domain: raw.5.to_ascii_lowercase(),
                    spf_result: raw.6.clone(),
                    dkim_aligned: raw.7,
                    spf_aligned: raw.8,
                    disposition: raw.9.clone(),
                    forwarded: raw.10,
                };
                out.push(Evidence {
                    key,
                    ..Evidence::default()
                });
                index.insert(raw, out.len() - 1);
                out.len() - 1
            }
        };
        let e = &mut out[at];
        let day: Option<i64> = r.get(11);
        let messages = count(r.get(12));
        let begin: Option<i64> = r.get(13);
        let end: Option<i64> = r.get(14);
        let reporters: Vec<String> = r.get(15);
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
