//! What `judge` reads: each domain's latest policy, and the aggregate records summed by what they say
//! about the sender ([`EvidenceKey`]), optionally by day.

use super::listings::key_bytes;
use super::records_of::JOIN;
use super::{Db, REPORT_DOMAINS};
use crate::model::{DayCount, Evidence, EvidenceKey, IpEvidence, PolicyPublished};
use crate::store::of_keys::OfKeys;
use crate::store::{Detail, FastMap as HashMap, StoreError, StoredRecord};

impl Db {
    pub fn latest_policies(
        &self,
        domain: Option<&str>,
    ) -> Result<Vec<(PolicyPublished, Option<i64>)>, StoreError> {
        // One lookup per domain (not per report) on the (domain, date_end) index.
        let mut stmt = self.conn.prepare(&format!(
            "{REPORT_DOMAINS}
             SELECT r.domain, r.adkim, r.aspf, r.p, r.sp, r.np, r.pct, r.fo, r.testing,
                r.discovery_method, r.date_end
             FROM report_domains d
             JOIN reports r ON r.id = (SELECT id FROM reports r2 INDEXED BY reports_domain_end
                                      WHERE r2.domain = d.domain
                                      ORDER BY date_end DESC, date_begin DESC, org_name,
                                         report_id LIMIT 1)
             WHERE d.domain IS NOT NULL AND (?1 IS NULL OR d.domain = ?1)
             ORDER BY d.domain"
        ))?;
        let rows = stmt.query_map([domain], |r| {
            Ok((
                PolicyPublished {
                    domain: r.get(0)?,
                    adkim: r.get(1)?,
                    aspf: r.get(2)?,
                    p: r.get(3)?,
                    sp: r.get(4)?,
                    np: r.get(5)?,
                    pct: r.get(6)?,
                    fo: r.get(7)?,
                    testing: r.get(8)?,
                    discovery_method: r.get(9)?,
                },
                r.get(10)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The evidence of the reports asked for: from the rollups when they answer the window
    /// (whole UTC days; rows summed over source IPs, [`Evidence::ips`]), else from the records
    /// ([`Db::evidence_per_ip`]).
    pub fn evidence_in(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        if !super::rollups::from_records()
            && let Some(rolled) = self.evidence_rolled(domain, since, until, detail)?
        {
            return Ok(rolled);
        }
        self.evidence_per_ip(domain, since, until, detail)
    }

    /// Every record of the reports asked for, with its report; rows whose stored columns are equal
    /// are summed at once, and each new one is turned into its [`EvidenceKey`] by
    /// [`StoredRecord::evidence_key`] (different columns can say the same: they are summed too).
    pub fn evidence_per_ip(
        &self,
        domain: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
        detail: Detail,
    ) -> Result<(Vec<Evidence>, Vec<DayCount>), StoreError> {
        /// The columns [`StoredRecord`] is read from: the domain, then [`STORED_COLUMNS`].
        const KEY_COLUMNS: usize = 1 + STORED_COUNT;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.domain, {STORED_COLUMNS}, r.org_name, r.date_begin, r.date_end, c.count
             FROM reports r {JOIN}
             WHERE {}",
            window_conditions(domain.is_some(), since.is_some(), until.is_some())
        ))?;
        let mut rows = stmt.query((domain, since, until))?;
        // Rows are summed by their key columns. The lookup key is those columns' bytes in a reused
        // buffer, so a row like one seen before allocates nothing.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::default();
        let mut by_key: HashMap<EvidenceKey, usize> = HashMap::default();
        let mut sums = crate::store::RecordSums::new(detail);
        let mut buf = Vec::new();
        while let Some(r) = rows.next()? {
            buf.clear();
            for i in 0..KEY_COLUMNS {
                key_bytes(&mut buf, r.get_ref(i)?);
            }
            let at = match index.get(buf.as_slice()) {
                Some(at) => *at,
                None => {
                    let domain = text(r, 0)?.unwrap_or_default();
                    let key = stored_record(r, 1, domain)?.evidence_key();
                    let at = *by_key
                        .entry(key)
                        .or_insert_with_key(|key| sums.push(key.clone()));
                    index.insert(buf.clone(), at);
                    at
                }
            };
            let reporter = r.get_ref(12)?.as_str().unwrap_or_default();
            sums.add(at, reporter, r.get(13)?, r.get(14)?, r.get(15)?);
        }
        Ok(sums.finish())
    }

    /// The mail of `domain`'s reports ending in `[since, until)` under `keys`, per source IP and
    /// key ([`crate::store::Store::evidence_of_keys`]): from the rollups when the window holds a
    /// whole day, in one snapshot (`rollups::of_keys_rolled`), else from the records.
    pub fn evidence_of_keys(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError> {
        if !super::rollups::from_records()
            && let Some(rolled) = self.of_keys_rolled(domain, since, until, keys)?
        {
            return Ok(rolled);
        }
        self.of_keys_from_records(domain, since, until, keys)
    }

    /// The records of `domain`'s reports ending in `[since, until)` whose key without the source
    /// IP (an [`EvidenceKey`] whose `source_ip` is empty) is one of `keys`, summed per source IP
    /// and key. The other records are passed over by their stored columns' bytes (each distinct
    /// columns turned into a key once), so that a sender's page builds nothing for the rest of
    /// the domain's mail.
    pub(super) fn of_keys_from_records(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
        keys: &[EvidenceKey],
    ) -> Result<Vec<IpEvidence>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {STORED_COLUMNS}, r.org_name, c.count
             FROM reports r {JOIN}
             WHERE {}",
            window_conditions(true, since.is_some(), until.is_some())
        ))?;
        let mut rows = stmt.query((domain, since, until))?;
        let mut fold = OfKeys::new(keys);
        let mut buf = Vec::new();
        while let Some(r) = rows.next()? {
            buf.clear();
            for i in 1..STORED_COUNT {
                key_bytes(&mut buf, r.get_ref(i)?);
            }
            let Some(key) = fold.kind(&buf, || stored_record(r, 0, domain))? else {
                continue;
            };
            fold.add(
                text(r, 0)?.unwrap_or_default(),
                key,
                text(r, STORED_COUNT)?.unwrap_or_default(),
                r.get(STORED_COUNT + 1)?,
            );
        }
        Ok(fold.finish())
    }
}

/// The conditions on a report `r` of `?1` (a domain), ending in `[?2, ?3)`: each spelled out only
/// when given (`?1 IS NULL OR …` would keep SQLite from the (domain, date_end) index and scan
/// every record). CROSS JOIN keeps reports first.
fn window_conditions(domain: bool, since: bool, until: bool) -> String {
    [
        if domain {
            "r.domain = ?1"
        } else {
            "?1 IS NULL"
        },
        if since {
            "r.date_end >= ?2"
        } else {
            "?2 IS NULL"
        },
        if until {
            "r.date_end < ?3"
        } else {
            "?3 IS NULL"
        },
    ]
    .join(" AND ")
}

/// A record's columns [`StoredRecord`] is read from, in its order (after the domain, which is the
/// report's): every query that turns records into evidence selects them so.
pub(super) const STORED_COLUMNS: &str = "c.source_ip, c.header_from, c.auth_dkim_domain, \
     c.auth_dkim_result, c.auth_spf_domain, c.auth_spf_result, c.envelope_from, c.dkim, c.spf, \
     c.disposition, c.forwarded";

/// How many columns [`STORED_COLUMNS`] names.
pub(super) const STORED_COUNT: usize = 11;

/// Column `i` of `r` as text; `None` for NULL (or anything that is not text).
pub(super) fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i).map(|v| v.as_str_or_null().ok().flatten())
}

/// The [`StoredRecord`] of a record of `domain` whose [`STORED_COLUMNS`] start at column `at`.
pub(super) fn stored_record<'r>(
    r: &'r rusqlite::Row<'_>,
    at: usize,
    domain: &'r str,
) -> rusqlite::Result<StoredRecord<'r>> {
    Ok(StoredRecord {
        domain,
        source_ip: text(r, at)?.unwrap_or_default(),
        header_from: text(r, at + 1)?,
        auth_dkim_domain: text(r, at + 2)?,
        auth_dkim_result: text(r, at + 3)?,
        auth_spf_domain: text(r, at + 4)?,
        auth_spf_result: text(r, at + 5)?,
        envelope_from: text(r, at + 6)?,
        dkim: text(r, at + 7)?,
        spf: text(r, at + 8)?,
        disposition: text(r, at + 9)?,
        forwarded: r.get(at + 10)?,
    })
}
