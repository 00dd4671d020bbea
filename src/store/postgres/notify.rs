//! What notifications need from the database: the conditions last notified (`notify_state`), the
//! outbox of notices not yet delivered (`notify_outbox`), and when each reporter sent its reports.
//!
//! Two `notify` runs at once (on two machines) must not both queue an event: [`record_notices`]
//! holds a transaction-level advisory lock from reading the state to committing the new one, so
//! the second waits, then decides from the first's state (SQLite's `BEGIN IMMEDIATE`).

use std::collections::BTreeSet;

use postgres::GenericClient;

use super::{PgError, text};
use crate::store::{Notified, Pending, ReportSpan};

/// The advisory lock key that serialises notification runs ("dmarcwn" + 1).
const NOTIFY_LOCK: i64 = 0x646d_6172_6377_6e01;

/// The conditions last notified.
pub fn notified(client: &mut impl GenericClient) -> Result<Vec<Notified>, PgError> {
    Ok(client
        .query(
            "SELECT kind, domain, subject, fingerprint, notified_at FROM notify_state
             ORDER BY kind, domain, subject",
            &[],
        )?
        .iter()
        .map(|r| Notified {
            kind: r.get(0),
            domain: r.get(1),
            subject: r.get(2),
            fingerprint: r.get(3),
            notified_at: r.get(4),
        })
        .collect())
}

/// Waits for, and holds until the transaction ends, the right to decide what is notified: two
/// runs (on two machines) decide one after the other, the second from the first's state.
pub fn lock_notify(client: &mut impl GenericClient) -> Result<(), PgError> {
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&NOTIFY_LOCK])?;
    Ok(())
}

/// Replaces the conditions last notified with `state` (those not in it are forgotten).
pub fn set_notified(client: &mut impl GenericClient, state: &[Notified]) -> Result<(), PgError> {
    client.execute("DELETE FROM notify_state", &[])?;
    if state.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Notified) -> &str| state.iter().map(|n| text(f(n))).collect::<Vec<_>>();
    let at: Vec<i64> = state.iter().map(|n| n.notified_at).collect();
    client.execute(
        "INSERT INTO notify_state (kind, domain, subject, fingerprint, notified_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])",
        &[
            &col(|n| &n.kind),
            &col(|n| &n.domain),
            &col(|n| &n.subject),
            &col(|n| &n.fingerprint),
            &at,
        ],
    )?;
    Ok(())
}

/// Queues notices — `(channel, event JSON)` — in the outbox, with ids in the order given, so that
/// they are delivered in that order.
pub fn queue_notices(
    client: &mut impl GenericClient,
    notices: &[(String, String)],
    now: i64,
) -> Result<(), PgError> {
    if notices.is_empty() {
        return Ok(());
    }
    let channels: Vec<_> = notices.iter().map(|(c, _)| text(c)).collect();
    let events: Vec<_> = notices.iter().map(|(_, e)| text(e)).collect();
    client.execute(
        "INSERT INTO notify_outbox (channel, event, created_at)
         SELECT c, e, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(c, e, o)
         ORDER BY o",
        &[&channels, &events, &now],
    )?;
    Ok(())
}

/// In one transaction, alone ([`lock_notify`]): `decide` is given the conditions last notified
/// and returns the new set (those not in it are forgotten) and the notices — `(channel, event
/// JSON)` — to queue. Both are written or neither.
pub fn record_notices<E: From<PgError>>(
    client: &mut impl GenericClient,
    now: i64,
    decide: impl FnOnce(&[Notified]) -> Result<(Vec<Notified>, Vec<(String, String)>), E>,
) -> Result<(), E> {
    let mut tx = client.transaction().map_err(PgError::from)?;
    lock_notify(&mut tx)?;
    let (state, notices) = decide(&notified(&mut tx)?)?;
    set_notified(&mut tx, &state)?;
    queue_notices(&mut tx, &notices, now)?;
    tx.commit().map_err(PgError::from)?;
    Ok(())
}

/// Notices waiting in the outbox, oldest first; all channels when `channel` is `None`.
pub fn pending_notices(
    client: &mut impl GenericClient,
    channel: Option<&str>,
) -> Result<Vec<Pending>, PgError> {
    Ok(client
        .query(
            "SELECT id, channel, event, attempts FROM notify_outbox
             WHERE ($1::text IS NULL OR channel = $1) ORDER BY id",
            &[&channel],
        )?
        .iter()
        .map(|r| Pending {
            id: r.get(0),
            channel: r.get(1),
            event: r.get(2),
            attempts: r.get(3),
        })
        .collect())
}

/// Moves queued notices to other channels: each `(id, channels)` is replaced by a copy for each
/// of `channels` (none: it stays where it is). One transaction.
pub fn requeue_notices(
    client: &mut impl GenericClient,
    moves: &[(i64, Vec<String>)],
) -> Result<(), PgError> {
    let mut tx = client.transaction()?;
    for (id, channels) in moves.iter().filter(|(_, c)| !c.is_empty()) {
        tx.execute(
            "INSERT INTO notify_outbox (channel, event, created_at, attempts, last_error)
             SELECT c.channel, o.event, o.created_at, o.attempts, o.last_error
             FROM notify_outbox o, unnest($2::text[]) WITH ORDINALITY AS c(channel, n)
             WHERE o.id = $1 ORDER BY c.n",
            &[id, channels],
        )?;
        tx.execute("DELETE FROM notify_outbox WHERE id = $1", &[id])?;
    }
    tx.commit()?;
    Ok(())
}

/// The channel took these notices: they leave the outbox.
pub fn notices_delivered(client: &mut impl GenericClient, ids: &[i64]) -> Result<(), PgError> {
    client.execute("DELETE FROM notify_outbox WHERE id = ANY($1)", &[&ids])?;
    Ok(())
}

/// The channel did not take these notices: they stay, with the attempt counted.
pub fn notices_failed(
    client: &mut impl GenericClient,
    ids: &[i64],
    error: &str,
) -> Result<(), PgError> {
    client.execute(
        "UPDATE notify_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1)",
        &[&ids, &super::text(error)],
    )?;
    Ok(())
}

/// Every aggregate report ending on or after `since`: who sent it, for which domain, when.
pub fn report_spans(
    client: &mut impl GenericClient,
    since: i64,
) -> Result<Vec<ReportSpan>, PgError> {
    Ok(client
        .query(
            "SELECT domain, org_name, date_begin, date_end FROM reports
             WHERE date_end >= $1 AND date_begin IS NOT NULL
             ORDER BY domain, org_name, date_begin, date_end, report_id",
            &[&since],
        )?
        .iter()
        .map(|r| ReportSpan {
            domain: r.get(0),
            org_name: r.get(1),
            begin: r.get(2),
            end: r.get(3),
        })
        .collect())
}

/// The source IPs of `domain`'s aggregate reports ending on or after `since` and before `until`.
pub fn source_ips_between(
    client: &mut impl GenericClient,
    domain: &str,
    since: i64,
    until: i64,
) -> Result<BTreeSet<String>, PgError> {
    Ok(client
        .query(
            "SELECT DISTINCT c.source_ip FROM reports r
             JOIN records c ON c.domain = r.domain AND c.report = r.id
                AND c.report_end = r.date_end
             WHERE r.domain = $1 AND r.date_end >= $2 AND r.date_end < $3
                AND c.report_end >= $2 AND c.report_end < $3",
            &[&domain, &since, &until],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The end of the latest aggregate report and of the latest SMTP TLS report.
pub fn latest_ends(client: &mut impl GenericClient) -> Result<(Option<i64>, Option<i64>), PgError> {
    let r = client.query_one(
        "SELECT (SELECT max(date_end) FROM reports), (SELECT max(date_end) FROM tls_reports)",
        &[],
    )?;
    Ok((r.get(0), r.get(1)))
}
