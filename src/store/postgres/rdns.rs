//! The reverse DNS cache behind `--resolve`: each source IP looked up once a month at most, by
//! whichever process asks first.

use std::collections::HashMap;

use postgres::GenericClient;

use super::{PgError, text};

/// Cached reverse DNS names of `ips` looked up since `fresh_since`: `Some(None)` for a cached
/// "no name"; absent when not cached or stale.
pub fn rdns(
    client: &mut impl GenericClient,
    ips: &[String],
    fresh_since: i64,
) -> Result<HashMap<String, Option<String>>, PgError> {
    let ips: Vec<_> = ips.iter().map(|ip| text(ip)).collect();
    Ok(client
        .query(
            "SELECT ip, name FROM rdns_cache WHERE ip = ANY($1) AND looked_up_at >= $2",
            &[&ips, &fresh_since],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Caches reverse DNS answers; a newer answer replaces an older one.
pub fn set_rdns(
    client: &mut impl GenericClient,
    answers: &HashMap<String, Option<String>>,
    now: i64,
) -> Result<(), PgError> {
    if answers.is_empty() {
        return Ok(());
    }
    // In key order, so that two writers of overlapping answers lock rows in the same order.
    let mut sorted: Vec<_> = answers.iter().collect();
    sorted.sort_unstable();
    let ips: Vec<_> = sorted.iter().map(|(ip, _)| text(ip)).collect();
    let names: Vec<_> = sorted.iter().map(|(_, n)| n.as_deref().map(text)).collect();
    client.execute(
        "INSERT INTO rdns_cache (ip, name, looked_up_at)
         SELECT ip, name, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS a(ip, name, o)
         ORDER BY o
         ON CONFLICT (ip) DO UPDATE SET name = EXCLUDED.name, looked_up_at = EXCLUDED.looked_up_at
         WHERE rdns_cache.looked_up_at <= EXCLUDED.looked_up_at",
        &[&ips, &names, &now],
    )?;
    Ok(())
}
