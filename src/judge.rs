//! Judging each policy domain over a window of its stored reports for the web outputs: its latest
//! published policy, its evidence (read through `store`, with per-day counts for the charts), its
//! senders (`analyse::senders`) and the advice (`crate::advise_domain`, as `advise` gives it). The
//! same window and the same functions as the CLI's `senders` and `advise`, so every output shows
//! the same judgement.

use crate::analyse::{self, Advice, Names, Sender};
use crate::config::Judgement;
use crate::model::{DayCount, Evidence, PolicyPublished};
use crate::store::{Store, StoreError};

/// Which reports a judgement looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Only this policy domain.
    pub domain: Option<String>,
    /// Days back from each domain's latest report; `None` for all. Ignored when `since` is set.
    pub days: Option<u32>,
    /// Reports ending at or after this time.
    pub since: Option<i64>,
    /// Reports beginning before this time.
    pub until: Option<i64>,
    /// Also count each evidence row's messages per day ([`Judged::daily`]).
    pub by_day: bool,
}

/// One domain, judged.
#[derive(Debug)]
pub struct Judged {
    /// The policy of its latest report.
    pub policy: PolicyPublished,
    /// The end of its latest report.
    pub last: Option<i64>,
    pub evidence: Vec<Evidence>,
    /// Per day, messages of each evidence row (only with [`Scope::by_day`]).
    pub daily: Vec<DayCount>,
    pub senders: Vec<Sender>,
}

impl Judged {
    /// The advice for this domain, as `advise` gives it.
    pub fn advice(&self, judgement: &Judgement) -> Advice {
        crate::advise_domain(&self.policy, &self.evidence, &self.senders, judgement)
    }
}

/// Domain by domain (so memory holds one domain's evidence at a time): calls `visit` with the
/// domain judged. `names` gives the reverse DNS names to identify senders by (see
/// [`analyse::Names`]).
pub fn each_domain<E: From<StoreError>>(
    store: &Store,
    scope: &Scope,
    judgement: &Judgement,
    mut names: impl FnMut(&[Evidence]) -> Result<Names, E>,
    mut visit: impl FnMut(Judged),
) -> Result<(), E> {
    for (policy, last) in store.latest_policies(scope.domain.as_deref())? {
        let since = scope
            .since
            .or_else(|| crate::window_start(last, scope.days));
        let (evidence, daily) =
            store.evidence_in(Some(&policy.domain), since, scope.until, scope.by_day)?;
        let names = names(&evidence)?;
        let senders = analyse::senders(
            &evidence,
            &judgement.knowledge,
            &judgement.thresholds,
            &names,
        );
        visit(Judged {
            policy,
            last,
            evidence,
            daily,
            senders,
        });
    }
    Ok(())
}
