//! Kept rejects: inputs that failed in whole or in part, with their bytes (BYTEA) and why, for
//! `reprocess`. Keeping the same bytes again is an upsert on their key.

use postgres::GenericClient;

use super::{PgError, text};
use crate::store::{KeptInput, RejectedInput, reject_key};

/// Keeps a failed input and why it failed. Keeping the same bytes again only updates `last_seen`,
/// the attempt count, the origin and the reasons. One transaction.
pub fn keep_reject(
    client: &mut impl GenericClient,
    input: &RejectedInput<'_>,
    now: i64,
) -> Result<(), PgError> {
    let key = text(&reject_key(input)).into_owned();
    let mut tx = client.transaction()?;
    tx.execute(
        "INSERT INTO reject_inputs (key, origin, data, size, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (key) DO UPDATE SET last_seen = EXCLUDED.last_seen,
            attempts = reject_inputs.attempts + 1, origin = EXCLUDED.origin",
        &[
            &key,
            &text(input.origin),
            &input.data,
            &input.data.map(|d| d.len() as i64),
            &now,
        ],
    )?;
    tx.execute("DELETE FROM rejects WHERE input = $1", &[&key])?;
    if !input.failures.is_empty() {
        let locations: Vec<_> = input.failures.iter().map(|f| text(&f.location)).collect();
        let reasons: Vec<_> = input
            .failures
            .iter()
            .map(|f| text(&f.item.reason))
            .collect();
        tx.execute(
            "INSERT INTO rejects (input, location, reason)
             SELECT $1, l, r FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(l, r, o)
             ORDER BY o",
            &[&key, &locations, &reasons],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Keeps several failed inputs ([`keep_reject`]), in the order of their keys, so that two
/// writers keeping the same inputs lock their rows in one order.
pub fn keep_rejects(
    client: &mut impl GenericClient,
    inputs: &[RejectedInput<'_>],
    now: i64,
) -> Result<(), PgError> {
    let mut sorted: Vec<(String, &RejectedInput<'_>)> =
        inputs.iter().map(|i| (reject_key(i), i)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, input) in sorted {
        keep_reject(client, input, now)?;
    }
    Ok(())
}

/// Keys of all kept inputs, oldest first.
pub fn kept_keys(client: &mut impl GenericClient) -> Result<Vec<String>, PgError> {
    Ok(client
        .query(
            "SELECT key FROM reject_inputs ORDER BY first_seen, key",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub fn kept_input(
    client: &mut impl GenericClient,
    key: &str,
) -> Result<Option<KeptInput>, PgError> {
    Ok(client
        .query_opt(
            "SELECT key, origin, data FROM reject_inputs WHERE key = $1",
            &[&key],
        )?
        .map(|r| KeptInput {
            key: r.get(0),
            origin: r.get(1),
            data: r.get(2),
        }))
}

/// Forgets a kept input (it was reprocessed successfully, or re-kept under a new key).
pub fn forget_reject(client: &mut impl GenericClient, key: &str) -> Result<(), PgError> {
    client.execute("DELETE FROM reject_inputs WHERE key = $1", &[&key])?;
    Ok(())
}
