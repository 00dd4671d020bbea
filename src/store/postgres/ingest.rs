//! Storing reports: aggregate reports in batches (one upsert for the batch's reports, then their
//! records, their lists packed in them, by binary COPY), failure reports and SMTP TLS reports.
//!
//! Idempotency and "the more complete copy wins" are the upsert's: a report is inserted unless
//! its (domain, org_name, report_id) is stored; when it is, the stored row is replaced only where
//! the new copy has more records, or as many and more messages, compared by the database under
//! the row's lock. A concurrent writer of the same report waits for that lock and compares with
//! what was committed, so the result does not depend on which writer came first, and ties keep
//! the copy stored first. The batch's reports are upserted in key order, so two writers take
//! their row locks in the same order.

use std::borrow::Cow;
use std::collections::HashMap;

use postgres::GenericClient;
use postgres::types::ToSql;

use super::{PgError, json, opt_text, text};
use crate::model::{AggregateReport, FailureReport, Located, TlsReport};
use crate::store::{Inserted, lists, sat};

const UPSERT_REPORTS: &str = "
INSERT INTO reports AS r (domain, org_name, report_id, date_begin, date_end, record_count,
    message_count, pass_count, pct, ingested_at, email, extra_contact_info, errors, generator,
    version, namespace, adkim, aspf, p, sp, np, fo, testing, discovery_method, extensions, origin,
    location)
SELECT domain, org_name, report_id, date_begin, date_end, record_count, message_count, pass_count,
    pct, $27, email, extra_contact_info, errors, generator, version, namespace, adkim, aspf, p, sp,
    np, fo, testing, discovery_method, extensions, origin, location
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[],
    $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
    $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],
    $22::text[], $23::text[], $24::text[], $25::text[], $26::text[])
    WITH ORDINALITY AS n(domain, org_name, report_id, date_begin, date_end, record_count,
        message_count, pass_count, pct, email, extra_contact_info, errors, generator, version,
        namespace, adkim, aspf, p, sp, np, fo, testing, discovery_method, extensions, origin,
        location, ord)
ORDER BY ord
ON CONFLICT (domain, org_name, report_id) DO UPDATE SET
    date_begin = EXCLUDED.date_begin, date_end = EXCLUDED.date_end,
    record_count = EXCLUDED.record_count, message_count = EXCLUDED.message_count,
    pass_count = EXCLUDED.pass_count, pct = EXCLUDED.pct, ingested_at = EXCLUDED.ingested_at,
    email = EXCLUDED.email, extra_contact_info = EXCLUDED.extra_contact_info,
    errors = EXCLUDED.errors, generator = EXCLUDED.generator, version = EXCLUDED.version,
    namespace = EXCLUDED.namespace, adkim = EXCLUDED.adkim, aspf = EXCLUDED.aspf, p = EXCLUDED.p,
    sp = EXCLUDED.sp, np = EXCLUDED.np, fo = EXCLUDED.fo, testing = EXCLUDED.testing,
    discovery_method = EXCLUDED.discovery_method, extensions = EXCLUDED.extensions,
    origin = EXCLUDED.origin, location = EXCLUDED.location
-- The more complete copy wins: `store::Completeness`, in the same order.
-- (an unknown date before every known one).
WHERE (EXCLUDED.record_count, EXCLUDED.message_count, EXCLUDED.pass_count,
        coalesce(EXCLUDED.date_end, -9223372036854775808),
        coalesce(EXCLUDED.date_begin, -9223372036854775808))
    > (r.record_count, r.message_count, r.pass_count, coalesce(r.date_end, -9223372036854775808),
        coalesce(r.date_begin, -9223372036854775808))
RETURNING r.id, r.domain, r.org_name, r.report_id, r.xmax = 0";

/// Stores one report; see [`insert_reports`].
pub fn insert_report(
    client: &mut impl GenericClient,
    origin: &str,
    report: &Located<AggregateReport>,
    now: i64,
) -> Result<Inserted, PgError> {
    Ok(insert_reports(client, &[(origin, report)], now)?
        .pop()
        .unwrap_or(Inserted::Duplicate))
}

/// Stores reports with all their records, each unless its (domain, org_name, report_id) is stored
/// already with as many records and messages (see the module's doc). Returns what became of each,
/// in order. The same report twice in `reports` counts as if they came one after the other. All or
/// nothing: the batch is one transaction (a savepoint inside the caller's).
pub fn insert_reports(
    client: &mut impl GenericClient,
    reports: &[(&str, &Located<AggregateReport>)],
    now: i64,
) -> Result<Vec<Inserted>, PgError> {
    insert_reports_noting(client, reports, now, &mut Vec::new())
}

/// [`insert_reports`], noting in `replaced` the (domain, end) each replaced copy's records were
/// stored under (the records' `report_end`, and no end, as a copy without one is stored under
/// when it was stored): the rollups' days to sum again.
pub fn insert_reports_noting(
    client: &mut impl GenericClient,
    reports: &[(&str, &Located<AggregateReport>)],
    now: i64,
    replaced: &mut Vec<(String, Option<i64>)>,
) -> Result<Vec<Inserted>, PgError> {
    let mut out = vec![Inserted::Duplicate; reports.len()];
    if reports.is_empty() {
        return Ok(out);
    }
    let keys: Vec<Key> = reports.iter().map(|(_, r)| Key::of(&r.item)).collect();
    let mut tx = client.transaction()?;
    // The month partitions the records go to (super::prune), before anything is locked here.
    super::prune::ensure_months(
        &mut tx,
        reports
            .iter()
            .map(|(_, r)| report_end(&r.item, now))
            .chain(super::prune::upcoming(now)),
    )?;
    // One upsert may not touch a row twice: a key repeated in the batch waits for the next round.
    let mut pending: Vec<usize> = (0..reports.len()).collect();
    while !pending.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (mut round, later): (Vec<usize>, Vec<usize>) =
            pending.into_iter().partition(|&i| seen.insert(&keys[i]));
        round.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        upsert_round(&mut tx, reports, &keys, &round, now, &mut out, replaced)?;
        pending = later;
    }
    replaced.sort_unstable();
    replaced.dedup();
    tx.commit()?;
    Ok(out)
}

/// The records' partition key, `report_end`: the end of the report's period, else when it is
/// stored (`reports.ingested_at`).
fn report_end(r: &AggregateReport, now: i64) -> i64 {
    r.metadata.end.unwrap_or(now)
}

/// A report's identity, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    domain: String,
    org_name: String,
    report_id: String,
}

impl Key {
    fn of(r: &AggregateReport) -> Key {
        Key {
            domain: text(&r.policy.domain).into_owned(),
            org_name: text(&r.metadata.org_name).into_owned(),
            report_id: text(&r.metadata.report_id).into_owned(),
        }
    }
}

/// Upserts the reports at `round` (distinct keys, in key order), then writes the records of those
/// that were stored.
fn upsert_round(
    tx: &mut postgres::Transaction<'_>,
    reports: &[(&str, &Located<AggregateReport>)],
    keys: &[Key],
    round: &[usize],
    now: i64,
    out: &mut [Inserted],
    ends: &mut Vec<(String, Option<i64>)>,
) -> Result<(), PgError> {
    let mut c = Columns::default();
    for &i in round {
        let (origin, located) = reports[i];
        let (r, m, p) = (&located.item, &located.item.metadata, &located.item.policy);
        let errors =
            (!m.errors.is_empty()).then(|| serde_json::to_string(&m.errors).unwrap_or_default());
        c.domain.push(keys[i].domain.as_str());
        c.org_name.push(keys[i].org_name.as_str());
        c.report_id.push(keys[i].report_id.as_str());
        c.date_begin.push(m.begin);
        c.date_end.push(m.end);
        c.record_count.push(Some(r.records.len() as i64));
        c.message_count.push(Some(sat(r.message_count())));
        c.pass_count.push(Some(sat(r.pass_count())));
        c.pct.push(p.pct.map(i64::from));
        c.texts[0].push(opt_text(&m.email));
        c.texts[1].push(opt_text(&m.extra_contact_info));
        c.texts[2].push(errors.map(|e| Cow::Owned(text(&e).into_owned())));
        c.texts[3].push(opt_text(&m.generator));
        c.texts[4].push(opt_text(&r.version));
        c.texts[5].push(opt_text(&r.namespace));
        c.texts[6].push(opt_text(&p.adkim));
        c.texts[7].push(opt_text(&p.aspf));
        c.texts[8].push(opt_text(&p.p));
        c.texts[9].push(opt_text(&p.sp));
        c.texts[10].push(opt_text(&p.np));
        c.texts[11].push(opt_text(&p.fo));
        c.texts[12].push(opt_text(&p.testing));
        c.texts[13].push(opt_text(&p.discovery_method));
        c.texts[14].push(opt_text(&r.extensions));
        c.texts[15].push(Some(text(origin)));
        c.texts[16].push(Some(text(&located.location)));
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &c.domain,
        &c.org_name,
        &c.report_id,
        &c.date_begin,
        &c.date_end,
        &c.record_count,
        &c.message_count,
        &c.pass_count,
        &c.pct,
    ];
    params.extend(c.texts.iter().map(|t| t as &(dyn ToSql + Sync)));
    params.push(&now);
    let rows = tx.query(UPSERT_REPORTS, &params)?;

    // Which report each returned row is, and whether it replaced a stored copy.
    let at: HashMap<&Key, usize> = round.iter().map(|&i| (&keys[i], i)).collect();
    let mut stored: Vec<(usize, i64)> = Vec::with_capacity(rows.len());
    let mut replaced: Vec<(usize, i64)> = Vec::new();
    for row in &rows {
        let key = Key {
            domain: row.get(1),
            org_name: row.get(2),
            report_id: row.get(3),
        };
        let Some(&i) = at.get(&key) else { continue };
        let id: i64 = row.get(0);
        if !row.get::<_, bool>(4) {
            replaced.push((i, id));
        }
        stored.push((i, id));
    }
    // The replaced copies' records go; how many there were is what the new copy adds to.
    let mut before: HashMap<i64, usize> = HashMap::new();
    if !replaced.is_empty() {
        let domains: Vec<&str> = replaced
            .iter()
            .map(|&(i, _)| keys[i].domain.as_str())
            .collect();
        let ids: Vec<i64> = replaced.iter().map(|&(_, id)| id).collect();
        for row in tx.query(
            "DELETE FROM records c USING unnest($1::text[], $2::int8[]) AS d(domain, report)
             WHERE c.domain = d.domain AND c.report = d.report
             RETURNING c.report, c.domain, c.report_end",
            &[&domains, &ids],
        )? {
            *before.entry(row.get(0)).or_default() += 1;
            let domain: String = row.get(1);
            ends.push((domain.clone(), Some(row.get(2))));
            ends.push((domain, None));
        }
    }
    for &(i, id) in &stored {
        let records = reports[i].1.item.records.len();
        out[i] = match replaced.iter().any(|&(_, r)| r == id) {
            true => Inserted::Replaced {
                records: records.saturating_sub(before.get(&id).copied().unwrap_or(0)),
            },
            false => Inserted::New { records },
        };
    }
    stored.sort_unstable_by_key(|&(i, _)| i);
    copy_records(tx, reports, keys, &stored, now)
}

/// The upsert's columns, as arrays.
#[derive(Default)]
struct Columns<'a> {
    domain: Vec<&'a str>,
    org_name: Vec<&'a str>,
    report_id: Vec<&'a str>,
    date_begin: Vec<Option<i64>>,
    date_end: Vec<Option<i64>>,
    record_count: Vec<Option<i64>>,
    message_count: Vec<Option<i64>>,
    pass_count: Vec<Option<i64>>,
    pct: Vec<Option<i64>>,
    /// email … location, in the upsert's order.
    texts: [Vec<Option<Cow<'a, str>>>; 17],
}

/// Writes the records of the stored reports, each with its lists packed into its `auth` column
/// ([`crate::store::lists`]), by one binary COPY.
/// The rows are encoded here ([`CopyRows`]) and sent in large writes: the driver's row writer
/// costs a round through its runtime per row, which was most of the client's time.
fn copy_records(
    tx: &mut postgres::Transaction<'_>,
    reports: &[(&str, &Located<AggregateReport>)],
    keys: &[Key],
    stored: &[(usize, i64)],
    now: i64,
) -> Result<(), PgError> {
    let records = stored.iter().flat_map(|&(i, id)| {
        let domain = keys[i].domain.as_str();
        let end = report_end(&reports[i].1.item, now);
        reports[i]
            .1
            .item
            .records
            .iter()
            .enumerate()
            .map(move |(n, rec)| (domain, id, n as i32, rec, end))
    });
    let mut rows = CopyRows::default();
    let mut auth = String::new();
    for (domain, id, n, rec, end) in records {
        let (d, s) = (rec.deciding_dkim(), rec.deciding_spf());
        rows.row(18);
        rows.text(Some(domain));
        rows.int8(id);
        rows.int4(n);
        rows.int8(sat(rec.count));
        rows.bool(rec.forwarded());
        rows.text(Some(&rec.source_ip));
        rows.text(rec.disposition.as_ref().map(|v| v.as_str()));
        rows.text(rec.dkim.as_ref().map(|v| v.as_str()));
        rows.text(rec.spf.as_ref().map(|v| v.as_str()));
        rows.text(rec.header_from.as_deref());
        rows.text(rec.envelope_from.as_deref());
        rows.text(rec.envelope_to.as_deref());
        rows.text(d.map(|d| d.domain.as_str()));
        rows.text(d.map(|d| d.result.as_str()));
        rows.text(s.map(|s| s.domain.as_str()));
        rows.text(s.map(|s| s.result.as_str()));
        auth.clear();
        lists::pack(rec, &mut auth);
        rows.text(Some(&auth));
        rows.int8(end);
    }
    rows.send(
        tx,
        "records (domain, report, n, count, forwarded, source_ip, disposition, dkim, spf, \
         header_from, envelope_from, envelope_to, auth_dkim_domain, auth_dkim_result, \
         auth_spf_domain, auth_spf_result, auth, report_end)",
    )
}

/// Rows in PostgreSQL's binary `COPY` format: a header, then per row its number of fields and
/// each field as its length (-1 for NULL) and bytes (text as UTF-8, integers big-endian).
#[derive(Default)]
struct CopyRows {
    buf: Vec<u8>,
    rows: usize,
}

impl CopyRows {
    /// Bytes handed to the driver at a time.
    const CHUNK: usize = 1 << 20;

    fn row(&mut self, fields: i16) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
            self.buf.extend_from_slice(&0i32.to_be_bytes()); // flags
            self.buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        }
        self.rows += 1;
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// Text as PostgreSQL can store it ([`text`]: a NUL becomes U+FFFD).
    fn text(&mut self, value: Option<&str>) {
        match value {
            Some(t) => self.field(text(t).as_bytes()),
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn int8(&mut self, n: i64) {
        self.field(&n.to_be_bytes());
    }

    fn int4(&mut self, n: i32) {
        self.field(&n.to_be_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.field(&[u8::from(b)]);
    }

    /// `COPY into FROM STDIN (FORMAT binary)` with these rows; nothing when there are none.
    fn send(mut self, tx: &mut postgres::Transaction<'_>, into: &str) -> Result<(), PgError> {
        use std::io::Write;
        if self.rows == 0 {
            return Ok(());
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
        let mut writer = tx.copy_in(&format!("COPY {into} FROM STDIN (FORMAT binary)"))?;
        for chunk in self.buf.chunks(Self::CHUNK) {
            if let Err(e) = writer.write_all(chunk) {
                // The driver's own error (the server's, or the connection's) is inside.
                let text = e.to_string();
                return Err(
                    match e
                        .into_inner()
                        .map(|inner| inner.downcast::<postgres::Error>())
                    {
                        Some(Ok(pg)) => PgError::from(*pg),
                        _ => PgError::Copy { reason: text },
                    },
                );
            }
        }
        writer.finish()?;
        Ok(())
    }
}

/// Stores failure reports ([`insert_failure`]) in the order of their keys, so that two writers
/// lock in one order; returns what became of each, in the order given.
pub fn insert_failures(
    client: &mut impl GenericClient,
    reports: &[(&str, &Located<FailureReport>)],
    now: i64,
) -> Result<Vec<Inserted>, PgError> {
    let mut order: Vec<usize> = (0..reports.len()).collect();
    order.sort_by(|&a, &b| reports[a].1.item.key.cmp(&reports[b].1.item.key));
    let mut out = vec![Inserted::Duplicate; reports.len()];
    for i in order {
        out[i] = insert_failure(client, reports[i].0, reports[i].1, now)?;
    }
    Ok(out)
}

/// Stores SMTP TLS reports ([`insert_tls`]) in the order of their keys (organisation, report
/// id); returns what became of each, in the order given.
pub fn insert_tls_reports(
    client: &mut impl GenericClient,
    reports: &[(&str, &Located<TlsReport>)],
    now: i64,
) -> Result<Vec<Inserted>, PgError> {
    let key = |i: usize| (&reports[i].1.item.org_name, &reports[i].1.item.report_id);
    let mut order: Vec<usize> = (0..reports.len()).collect();
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    let mut out = vec![Inserted::Duplicate; reports.len()];
    for i in order {
        out[i] = insert_tls(client, reports[i].0, reports[i].1, now)?;
    }
    Ok(out)
}

/// Stores one failure report unless one with the same key is stored.
pub fn insert_failure(
    client: &mut impl GenericClient,
    origin: &str,
    report: &Located<FailureReport>,
    now: i64,
) -> Result<Inserted, PgError> {
    let r = &report.item;
    let o = r.original.as_ref();
    let o_text =
        |f: fn(&crate::model::OriginalMessage) -> &Option<String>| o.and_then(|o| opt_text(f(o)));
    let inserted = client.execute(
        "INSERT INTO failure_reports (key, feedback_type, reporter, report_id, user_agent,
            version, auth_failure, arrival_date, arrival_date_text, source_ip,
            reported_domain, reported_domains, reported_uris, original_mail_from,
            original_rcpt_to, authentication_results, dkim_domain, dkim_identity,
            dkim_selector, spf_dns, delivery_result, identity_alignment, incidents,
            other_fields, original_from, original_to, original_subject, original_date,
            original_message_id, original_auth_headers, original_body, origin, location,
            ingested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
            $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31,
            $32, $33, $34)
         ON CONFLICT (key) DO NOTHING",
        &[
            &text(&r.key),
            &text(&r.feedback_type),
            &opt_text(&r.reporter),
            &opt_text(&r.report_id),
            &opt_text(&r.user_agent),
            &opt_text(&r.version),
            &opt_text(&r.auth_failure),
            &r.arrival_date,
            &opt_text(&r.arrival_date_text),
            &opt_text(&r.source_ip),
            &r.reported_domains.first().map(|d| text(d)),
            &text(&json(&r.reported_domains)),
            &text(&json(&r.reported_uris)),
            &opt_text(&r.original_mail_from),
            &text(&json(&r.original_rcpt_to)),
            &text(&json(&r.authentication_results)),
            &opt_text(&r.dkim_domain),
            &opt_text(&r.dkim_identity),
            &opt_text(&r.dkim_selector),
            &opt_text(&r.spf_dns),
            &opt_text(&r.delivery_result),
            &opt_text(&r.identity_alignment),
            &r.incidents.map(sat),
            &text(&json(&r.other_fields)),
            &o_text(|o| &o.from),
            &o_text(|o| &o.to),
            &o_text(|o| &o.subject),
            &o_text(|o| &o.date),
            &o_text(|o| &o.message_id),
            &o.map(|o| text(&json(&o.auth_headers)).into_owned()),
            &o_text(|o| &o.body),
            &text(origin),
            &text(&report.location),
            &now,
        ],
    )?;
    Ok(if inserted == 0 {
        Inserted::Duplicate
    } else {
        Inserted::New { records: 0 }
    })
}

/// Stores one SMTP TLS report, its policies and failure details, unless (organisation, report
/// id) is stored.
pub fn insert_tls(
    client: &mut impl GenericClient,
    origin: &str,
    report: &Located<TlsReport>,
    now: i64,
) -> Result<Inserted, PgError> {
    let r = &report.item;
    let mut tx = client.transaction()?;
    let Some(row) = tx.query_opt(
        "INSERT INTO tls_reports (org_name, report_id, contact_info, date_begin, date_end,
            origin, location, ingested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (org_name, report_id) DO NOTHING RETURNING id",
        &[
            &text(&r.org_name),
            &text(&r.report_id),
            &opt_text(&r.contact_info),
            &r.begin,
            &r.end,
            &text(origin),
            &text(&report.location),
            &now,
        ],
    )?
    else {
        return Ok(Inserted::Duplicate);
    };
    let id: i64 = row.get(0);
    let mut p = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut f = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for (n, policy) in r.policies.iter().enumerate() {
        p.0.push(n as i32);
        p.1.push(text(&policy.policy_type));
        p.2.push(text(&policy.policy_domain));
        p.3.push(text(&json(&policy.policy_strings)).into_owned());
        p.4.push(text(&json(&policy.mx_hosts)).into_owned());
        p.5.push(sat(policy.successful_sessions));
        p.6.push(sat(policy.failed_sessions));
        for (m, x) in policy.failures.iter().enumerate() {
            f.0.push(n as i32);
            f.1.push(m as i32);
            f.2.push(text(&x.result_type));
            f.3.push(opt_text(&x.sending_mta_ip));
            f.4.push(opt_text(&x.receiving_mx_hostname));
            f.5.push(opt_text(&x.receiving_mx_helo));
            f.6.push(opt_text(&x.receiving_ip));
            f.7.push(sat(x.failed_sessions));
            f.8.push(opt_text(&x.additional_information));
            f.9.push(opt_text(&x.failure_reason_code));
        }
    }
    if !p.0.is_empty() {
        tx.execute(
            "INSERT INTO tls_policies (report, n, policy_type, policy_domain, policy_strings,
                mx_hosts, successful, failed)
             SELECT $1, * FROM unnest($2::int4[], $3::text[], $4::text[], $5::text[],
                $6::text[], $7::int8[], $8::int8[])",
            &[&id, &p.0, &p.1, &p.2, &p.3, &p.4, &p.5, &p.6],
        )?;
    }
    if !f.0.is_empty() {
        tx.execute(
            "INSERT INTO tls_failures (report, policy, n, result_type, sending_mta_ip,
                receiving_mx_hostname, receiving_mx_helo, receiving_ip, failed_sessions,
                additional_information, failure_reason_code)
             SELECT $1, * FROM unnest($2::int4[], $3::int4[], $4::text[], $5::text[],
                $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[], $11::text[])",
            &[
                &id, &f.0, &f.1, &f.2, &f.3, &f.4, &f.5, &f.6, &f.7, &f.8, &f.9,
            ],
        )?;
    }
    tx.commit()?;
    Ok(Inserted::New {
        records: r.policies.len(),
    })
}
