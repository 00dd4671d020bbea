//! When to tighten a domain's DMARC policy, or to back off: the policy ladder, the evidence window,
//! the blockers, and the exact record to publish. Pure: the evidence and senders come from the
//! caller.
//!
//! The default ladder means the same at receivers that implement RFC 9989 (DMARCbis, which ignore
//! `pct` and, for a policy with `t=y`, apply one level lower: its `t` tag) and at receivers still on
//! RFC 7489 (which ignore `t` and, with `pct=0`, apply one level lower to every message, §6.6.4):
//!
//! | rung | record                     | RFC 9989 receiver | RFC 7489 receiver |
//! |------|----------------------------|-------------------|-------------------|
//! | 0    | `p=none`                   | report only       | report only       |
//! | 1    | `p=quarantine; t=y; pct=0` | as `none`         | as `none`         |
//! | 2    | `p=quarantine`             | quarantine        | quarantine        |
//! | 3    | `p=reject; t=y; pct=0`     | quarantine        | quarantine        |
//! | 4    | `p=reject`                 | reject            | reject            |
//!
//! then `sp=` and `np=` for subdomains. Rung 1 enforces nothing, but mailing lists that see a
//! policy other than `none` start rewriting From, which shows in the next reports. The UK NCSC's
//! older percentage ladder (quarantine at pct 10, 25, 50, 100, then reject) is the opt-in
//! [`Ladder::Pct`]: RFC 9989 receivers enforce each of its records in full.

use serde::Serialize;

use super::check::StartingPoint;
use super::{Sender, min_opt, percent, registrable};
use crate::model::{Evidence, PolicyPublished, ReporterUnion, SenderClass, Timestamp};

/// The ladder of policies `advise` climbs; `[advice] ladder` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ladder {
    /// `none` → `quarantine; t=y; pct=0` → `quarantine` → `reject; t=y; pct=0` → `reject`: the same
    /// at RFC 9989 and RFC 7489 receivers.
    #[default]
    Testing,
    /// `none` → quarantine at pct 10, 25, 50, 100 → `reject` (pre-2026 NCSC guidance); RFC 9989
    /// receivers ignore `pct` and quarantine all failing mail from the first step.
    Pct,
}

impl std::str::FromStr for Ladder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "testing" => Ok(Ladder::Testing),
            "pct" => Ok(Ladder::Pct),
            other => Err(format!(
                "unknown ladder {other:?}: expected \"testing\" (the default) or \"pct\""
            )),
        }
    }
}

/// One rung: a policy and how receivers apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rung {
    p: &'static str,
    testing: bool,
    pct: u32,
    /// What it does, for the note that proposes it.
    does: &'static str,
}

const fn rung(p: &'static str, testing: bool, pct: u32, does: &'static str) -> Rung {
    Rung {
        p,
        testing,
        pct,
        does,
    }
}

const TESTING_LADDER: [Rung; 5] = [
    rung("none", false, 100, "receivers only report"),
    rung(
        "quarantine",
        true,
        0,
        "no receiver quarantines yet (RFC 9989 receivers apply one level lower for t=y, RFC 7489 \
         receivers for pct=0), but mailing lists start rewriting From: watch the next reports",
    ),
    rung(
        "quarantine",
        false,
        100,
        "every receiver quarantines mail that fails DMARC",
    ),
    rung(
        "reject",
        true,
        0,
        "every receiver still only quarantines (one level lower than reject, through t=y or pct=0)",
    ),
    rung(
        "reject",
        false,
        100,
        "every receiver rejects mail that fails DMARC",
    ),
];

const PCT_NOTE: &str = "RFC 7489 receivers quarantine this share of failing mail; RFC 9989 \
                        receivers ignore pct and quarantine all of it";

const PCT_LADDER: [Rung; 6] = [
    rung("none", false, 100, "receivers only report"),
    rung("quarantine", false, 10, PCT_NOTE),
    rung("quarantine", false, 25, PCT_NOTE),
    rung("quarantine", false, 50, PCT_NOTE),
    rung(
        "quarantine",
        false,
        100,
        "every receiver quarantines mail that fails DMARC",
    ),
    rung(
        "reject",
        false,
        100,
        "every receiver rejects mail that fails DMARC",
    ),
];

impl Ladder {
    fn rungs(self) -> &'static [Rung] {
        match self {
            Ladder::Testing => &TESTING_LADDER,
            Ladder::Pct => &PCT_LADDER,
        }
    }

    /// The rung a published policy stands on, judged by what the strictest kind of receiver does
    /// with it: `p=quarantine; pct=10` without `t=y` quarantines everything at RFC 9989 receivers.
    fn position(self, p: &str, testing: bool, pct: u32) -> usize {
        match (self, p) {
            (Ladder::Testing, "quarantine") => 2 - usize::from(testing),
            (Ladder::Testing, "reject") => 4 - usize::from(testing),
            (Ladder::Pct, "quarantine") if testing => 1,
            (Ladder::Pct, "quarantine") => PCT_LADDER
                .iter()
                .rposition(|r| r.p == "quarantine" && r.pct <= pct.max(10))
                .unwrap_or(1),
            (Ladder::Pct, "reject") if testing => 4,
            (Ladder::Pct, "reject") => 5,
            _ => 0,
        }
    }
}

impl Rung {
    /// Quarantines or rejects some mail at some kind of receiver.
    fn enforces(self) -> bool {
        strength(self.p) > 0 && !(self.testing && self.pct == 0 && self.p == "quarantine")
    }

    /// Its policy, without subdomain tags.
    fn policy(self) -> Policy {
        Policy {
            p: self.p.to_owned(),
            t: self.testing.then(|| "y".to_owned()),
            pct: self.pct,
            sp: None,
            np: None,
        }
    }

    /// The policy tags as they go into the record: `p=reject; t=y; pct=0`.
    fn tags(self) -> String {
        self.policy().record_tags()
    }
}

fn strength(p: &str) -> usize {
    match p {
        "reject" => 2,
        "quarantine" => 1,
        _ => 0,
    }
}

/// Thresholds of the advice; every one can be set in the config file's `[advice]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Days of reports the advice looks at, back from the latest report.
    pub window_days: u32,
    /// Fewer days with reports than this: keep collecting.
    pub min_days: u32,
    /// Fewer reporting organisations than this: keep collecting.
    pub min_reporters: u32,
    /// Fewer messages than this: keep collecting.
    pub min_messages: u64,
    /// A sender passing DMARC for at least this share (%) of its mail is aligned.
    pub aligned_pct: f64,
    /// A needs-fixing sender with at least this share (%) of the legitimate mail blocks the next step.
    pub blocking_pct: f64,
    /// Legitimate mail quarantined or rejected above this share (%): step back.
    pub backoff_pct: f64,
    /// Which ladder of policies to climb.
    pub ladder: Ladder,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window_days: 14,
            min_days: 7,
            min_reporters: 2,
            min_messages: 100,
            aligned_pct: 98.0,
            blocking_pct: 0.1,
            backoff_pct: 0.5,
            ladder: Ladder::Testing,
        }
    }
}

/// Where reports go, as published (the aggregate reports do not say): from the config file.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub rua: Option<String>,
    pub ruf: Option<String>,
}

/// A DMARC policy as its policy tags: what a domain publishes, or the step `advise` recommends.
/// Its `Display` is how every output writes a policy in one line (`p=reject t=y pct=0 sp=reject`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub p: String,
    /// RFC 9989 `t=`: `y` for a policy in testing (receivers apply one level lower), else null.
    pub t: Option<String>,
    /// RFC 7489 `pct`: 0 on the testing rungs (RFC 7489 receivers apply one level lower to all mail),
    /// else 100 unless the `pct` ladder is chosen.
    pub pct: u32,
    pub sp: Option<String>,
    /// RFC 9990: the policy for non-existent subdomains.
    pub np: Option<String>,
}

impl Policy {
    /// The policy as reports show it (`domains`): no `t`, `pct` 100 when not given.
    pub fn reported(p: Option<&str>, sp: Option<&str>, pct: Option<u32>) -> Option<Policy> {
        Some(Policy {
            p: p?.to_owned(),
            t: None,
            pct: pct.unwrap_or(100),
            sp: sp.map(str::to_owned),
            np: None,
        })
    }

    /// The tags that say something, in a record's order: `p`, `t`, `pct` (unless 100, the
    /// default), `sp` and `np` (where given).
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = vec![("p", self.p.clone())];
        if let Some(t) = &self.t {
            tags.push(("t", t.clone()));
        }
        if self.pct != 100 {
            tags.push(("pct", self.pct.to_string()));
        }
        for (tag, value) in [("sp", &self.sp), ("np", &self.np)] {
            if let Some(v) = value {
                tags.push((tag, v.clone()));
            }
        }
        tags
    }

    /// The tags as they go into a record: `p=reject; t=y; pct=0`.
    pub fn record_tags(&self) -> String {
        let tags: Vec<String> = self
            .tags()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tags.join("; ")
    }
}

/// One line, as every output shows a policy: `p=quarantine t=y pct=0 sp=reject`. `np` is left
/// out: it follows `sp` in what `advise` recommends, and the record shows it.
impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tags: Vec<String> = self
            .tags()
            .iter()
            .filter(|(k, _)| *k != "np")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&tags.join(" "))
    }
}

/// The policy published, as the latest report saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentPolicy {
    /// `p`, `t` (`y` when the policy is published in testing, else null), `pct`, `sp`, `np`.
    #[serde(flatten)]
    pub policy: Policy,
    /// RFC 9990 `t=`: `y` while testing.
    pub testing: Option<String>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
    /// Whether this is the record DNS publishes (else the policy the latest reports saw).
    pub from_dns: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocker {
    pub sender: String,
    pub messages: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceWindow {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub days: u64,
    pub reporters: u64,
    pub messages: u64,
}

/// What `advise` says to do with a domain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Action {
    /// Publish the next, stricter record.
    #[serde(rename = "step up")]
    StepUp,
    /// Legitimate senders fail alignment: fix them before tightening.
    #[serde(rename = "hold")]
    Hold,
    /// Too few days, reporters or messages to judge a step.
    #[serde(rename = "keep collecting")]
    KeepCollecting,
    /// Legitimate mail is being quarantined or rejected: step back.
    #[serde(rename = "back off")]
    BackOff,
    /// The strictest policy is published, subdomains included.
    #[serde(rename = "at target")]
    AtTarget,
}

impl Action {
    /// As JSON, CSV and every output write it: `step up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::StepUp => "step up",
            Action::Hold => "hold",
            Action::KeepCollecting => "keep collecting",
            Action::BackOff => "back off",
            Action::AtTarget => "at target",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do next with one domain's policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    pub domain: String,
    pub current: CurrentPolicy,
    pub action: Action,
    pub ready: bool,
    pub recommended: Policy,
    pub evidence: EvidenceWindow,
    /// Share of legitimate mail (aligned, needs-fixing and forwarded senders) passing DMARC or
    /// forwarded; 0 when there is none.
    pub legitimate_pass_pct: f64,
    /// Messages of the legitimate senders in the window.
    pub legitimate_messages: u64,
    pub blockers: Vec<Blocker>,
    /// The DMARC TXT record to publish at `_dmarc.<domain>` for the recommended step.
    pub record: String,
    /// Why, and warnings, most important first.
    pub notes: Vec<String>,
}

/// The legitimate mail of `senders` (aligned, needs-fixing and forwarded ones): its messages, and
/// the share of them (%) passing DMARC or forwarded; 0 when there is none.
pub fn legitimate_mail<'a>(senders: impl IntoIterator<Item = &'a Sender>) -> (u64, f64) {
    let (mut messages, mut ok) = (0, 0);
    for s in senders {
        let s = &s.summary;
        match s.class {
            SenderClass::Unauthorised => continue,
            SenderClass::Forwarded => ok += s.messages,
            _ => ok += s.dmarc_pass,
        }
        messages += s.messages;
    }
    (messages, percent(ok, messages))
}

/// Advice for one domain: `start` is its current policy and record (from DNS, else the reports, see
/// [`check::starting_point`](super::check::starting_point)), `policy` the latest reports' policy,
/// `senders` and `evidence` its mail within the window.
pub fn advise(
    start: &StartingPoint,
    policy: &PolicyPublished,
    senders: &[Sender],
    evidence: &[Evidence],
    published: &Published,
    th: &Thresholds,
) -> Advice {
    let domain = policy.domain.clone();
    let p = start.p.clone();
    let tag = |t: &str| start.record.get(t).map(|v| v.trim().to_ascii_lowercase());
    // The reports' pct stands in only where the record did not come from DNS.
    let pct = match tag("pct") {
        Some(v) => v.parse::<u32>().unwrap_or(100),
        None if !start.from_dns => policy.pct.unwrap_or(100),
        None => 100,
    }
    .min(100);
    let testing = start.t.as_deref() == Some("y");
    let current = CurrentPolicy {
        policy: Policy {
            p: p.clone(),
            t: testing.then(|| "y".to_owned()),
            pct,
            sp: start.sp.clone(),
            np: start.np.clone(),
        },
        testing: start.t.clone(),
        adkim: tag("adkim").or_else(|| policy.adkim.clone()),
        aspf: tag("aspf").or_else(|| policy.aspf.clone()),
        from_dns: start.from_dns,
    };
    // Counted, not kept: a hashed set of the rows' days (a year's rows name a million days,
    // which a sorted set took a search and an insertion each), and the reporters' names.
    type Counted<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
    let mut days: Counted<i64> = Counted::default();
    let mut reporters = ReporterUnion::default();
    let (mut from, mut to) = (None, None);
    for e in evidence.iter().filter(|e| e.key.domain == domain) {
        days.extend(e.days.iter().copied());
        reporters.add(&e.reporters);
        from = min_opt(from, e.first);
        to = to.max(e.last);
    }
    let mine: Vec<&Sender> = senders
        .iter()
        .filter(|s| s.summary.domain == domain)
        .collect();
    let messages: u64 = mine.iter().map(|s| s.summary.messages).sum();
    let window = EvidenceWindow {
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        days: days.len() as u64,
        reporters: reporters.names().len() as u64,
        messages,
    };
    let legit: Vec<&Sender> = mine
        .iter()
        .copied()
        .filter(|s| s.summary.class != SenderClass::Unauthorised)
        .collect();
    let (legit_messages, legitimate_pass_pct) = legitimate_mail(mine.iter().copied());
    let mut notes = Vec::new();
    let rungs = th.ladder.rungs();
    let top = rungs.len() - 1;
    let here = th.ladder.position(&p, testing, pct);
    let mut action = Action::StepUp;
    let mut next = here;
    let mut blockers = Vec::new();

    // A tightening that hurts comes first: every legitimate sender (forwarders aside) whose mail
    // receivers quarantined or rejected, most hurt first.
    let mut hurt_senders: Vec<&Sender> = legit
        .iter()
        .copied()
        .filter(|s| s.summary.class != SenderClass::Forwarded && s.enforced > 0)
        .collect();
    hurt_senders.sort_by_key(|s| std::cmp::Reverse(s.enforced));
    let hurt: u64 = hurt_senders.iter().map(|s| s.enforced).sum();
    let backing_off = here > 0 && percent(hurt, legit_messages.max(1)) > th.backoff_pct;
    if backing_off {
        action = Action::BackOff;
        // The highest rung below that enforces nothing at either kind of receiver.
        next = (0..here).rev().find(|&i| !rungs[i].enforces()).unwrap_or(0);
        blockers = hurt_senders
            .iter()
            .map(|s| Blocker {
                sender: s.summary.sender.clone(),
                messages: s.enforced,
                reason: format!(
                    "{} of its {} messages quarantined or rejected; {}",
                    s.enforced, s.summary.messages, s.summary.reason
                ),
            })
            .collect();
        notes.push(format!(
            "legitimate mail is being quarantined or rejected: {hurt} messages ({}% of legitimate \
             mail) from {} sender(s); step back to {}, which {}, until they are fixed",
            percent(hurt, legit_messages),
            blockers.len(),
            rungs[next].tags(),
            rungs[next].does
        ));
        let spoof_stopped: u64 = mine
            .iter()
            .filter(|s| s.summary.class == SenderClass::Unauthorised)
            .map(|s| s.enforced)
            .sum();
        notes.push(if spoof_stopped > 0 {
            format!(
                "what stepping back costs: {spoof_stopped} unauthorised messages that receivers \
                 quarantined or rejected in the window would be delivered under the new record"
            )
        } else {
            "what stepping back costs: receivers stopped no unauthorised mail in the window".into()
        });
        notes.push(format!(
            "before stepping up again: fix the {} blocker(s) above, then collect {} days of reports \
             in which their mail passes; advise then proposes {} again",
            blockers.len(),
            th.min_days,
            rungs[here].tags()
        ));
    } else {
        let mut missing = Vec::new();
        if window.days < u64::from(th.min_days) {
            missing.push(format!(
                "{} more days of reports (have {}, need {})",
                u64::from(th.min_days) - window.days,
                window.days,
                th.min_days
            ));
        }
        if window.reporters < u64::from(th.min_reporters) {
            missing.push(format!(
                "reports from {} more reporting organisations (have {})",
                u64::from(th.min_reporters) - window.reporters,
                window.reporters
            ));
        }
        if messages < th.min_messages {
            missing.push(format!(
                "{} more messages (have {messages}, need {})",
                th.min_messages - messages,
                th.min_messages
            ));
        }
        for s in legit
            .iter()
            .filter(|s| s.summary.class == SenderClass::NeedsFixing)
        {
            if percent(s.summary.messages, legit_messages) >= th.blocking_pct {
                blockers.push(Blocker {
                    sender: s.summary.sender.clone(),
                    messages: s.summary.messages,
                    reason: s.summary.reason.clone(),
                });
            }
        }
        // At the target (subdomains included) there is nothing left to collect evidence for: a
        // short window only gets a note, and backing off above still watches for hurt mail.
        let at_target = here == top
            && start
                .sp
                .as_deref()
                .is_some_and(|sp| strength(sp) >= strength(rungs[top].p));
        if !missing.is_empty() && at_target {
            notes.push(format!(
                "at the target ({}), so a short window does not matter (a step would need {}); \
                 advise still says back off if legitimate mail is quarantined or rejected",
                rungs[top].tags(),
                missing.join(", ")
            ));
        }
        if !missing.is_empty() && !at_target {
            action = Action::KeepCollecting;
            notes.push(format!("keep collecting: need {}", missing.join(", ")));
        } else if !blockers.is_empty() {
            action = Action::Hold;
            notes.push(format!(
                "{} legitimate sender(s) fail alignment; fix them before tightening",
                blockers.len()
            ));
        } else if here < top {
            next = here + 1;
            notes.push(format!(
                "{legitimate_pass_pct}% of legitimate mail passes DMARC or is forwarded; \
                 unauthorised mail: {} messages; next: {}: {}",
                messages - legit_messages,
                rungs[next].tags(),
                rungs[next].does
            ));
        } else {
            action = Action::AtTarget;
        }
    }
    let forwarded_hurt: u64 = legit
        .iter()
        .filter(|s| s.summary.class == SenderClass::Forwarded)
        .map(|s| s.enforced)
        .sum();
    if forwarded_hurt > 0 {
        notes.push(format!(
            "{forwarded_hurt} forwarded or mailing-list messages were quarantined or rejected: \
             indirect mail that breaks SPF and DKIM; lists that rewrite From, and receivers that \
             honour ARC, avoid it"
        ));
    }
    let target = rungs[next];
    // Subdomains: protect them as the domain once the domain is enforced, unless mail from
    // subdomains still fails. Backing off, sp= steps back with p=.
    let subdomain_failing: u64 = legit
        .iter()
        .filter(|s| s.summary.class == SenderClass::NeedsFixing)
        .map(|s| s.subdomain)
        .sum();
    let mut sp = start.sp.clone();
    if backing_off {
        if sp
            .as_deref()
            .is_some_and(|cur| strength(cur) > strength(target.p))
        {
            sp = Some(target.p.to_owned());
        }
    } else if strength(target.p) > 0 {
        if subdomain_failing > 0 {
            notes.push(format!(
                "{subdomain_failing} messages from subdomains fail alignment: sp= stays as published \
                 until they are fixed"
            ));
        } else if sp
            .as_deref()
            .is_none_or(|cur| strength(cur) < strength(target.p))
        {
            sp = Some(target.p.to_owned());
            if action == Action::AtTarget {
                action = Action::StepUp;
                notes.push(format!("protect subdomains too: sp={}", target.p));
            }
        }
    }
    let ready = action == Action::StepUp;
    // Non-existent subdomains send no legitimate mail: with a step up they get the policy the
    // subdomains get.
    let np = match &sp {
        Some(sp) if ready && strength(sp) > 0 => Some(sp.clone()),
        _ => start.np.clone(),
    };
    if (1..100).contains(&pct) && p != "none" && !testing {
        notes.push(format!(
            "the published pct={pct} is not honoured by RFC 9989 receivers: they apply p={p} to all \
             failing mail; to test a policy, publish t=y instead"
        ));
    } else if pct == 0 && strength(&p) > 0 && !testing {
        notes.push(format!(
            "the published pct=0 without t=y means one level below p={p} only at RFC 7489 receivers; \
             RFC 9989 receivers apply p={p} in full: add t=y so both kinds agree"
        ));
    }
    if th.ladder == Ladder::Pct && target.pct < 100 && strength(target.p) > 0 {
        notes.push(format!(
            "[advice] ladder = \"pct\": RFC 9989 receivers ignore pct={} and enforce p={} on all \
             failing mail; the default ladder uses t=y and pct=0 instead",
            target.pct, target.p
        ));
    }
    let recommended = Policy {
        p: target.p.to_owned(),
        t: target.testing.then(|| "y".to_owned()),
        pct: target.pct,
        sp,
        np,
    };
    let record = recommended_record(start, &recommended, published, &domain, &mut notes);
    notes.extend(start.notes.iter().cloned());
    Advice {
        domain,
        current,
        action,
        ready,
        recommended,
        evidence: window,
        legitimate_pass_pct,
        legitimate_messages: legit_messages,
        blockers,
        record,
        notes,
    }
}

/// The record to publish: the policy tags of `rec` in their usual order (`v`, `p`, `t`, `pct`, `sp`,
/// `np`), then every other tag the domain publishes (`adkim`, `rua`, `ruf`, `fo`…) as published.
/// Where reports go is never guessed when DNS answered: a record without `rua=` gets a note.
fn recommended_record(
    start: &StartingPoint,
    rec: &Policy,
    published: &Published,
    domain: &str,
    notes: &mut Vec<String>,
) -> String {
    let mut tags: Vec<(String, String)> = vec![("v".into(), "DMARC1".into())];
    tags.extend(rec.tags().into_iter().map(|(k, v)| (k.to_owned(), v)));
    const POLICY: [&str; 6] = ["v", "p", "t", "pct", "sp", "np"];
    tags.extend(
        start
            .record
            .tags
            .tags
            .iter()
            .filter(|(k, _)| !POLICY.contains(&k.to_ascii_lowercase().as_str()))
            .cloned(),
    );
    let has =
        |tags: &[(String, String)], t: &str| tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(t));
    if !has(&tags, "rua") {
        match (&published.rua, start.from_dns) {
            (Some(rua), _) => tags.push(("rua".into(), rua.clone())),
            (None, true) => notes.push(format!(
                "the record published for {domain} has no rua=: receivers send no aggregate \
                 reports; add rua=mailto:<your DMARC mailbox>"
            )),
            (None, false) => {
                let rua = format!("mailto:dmarc@{domain}");
                notes.push(format!(
                    "rua= assumed to be {rua}: no record was read from DNS; set rua (and ruf) for \
                     {domain} in the config's [[domain]] table"
                ));
                tags.push(("rua".into(), rua));
            }
        }
    }
    if !has(&tags, "ruf")
        && let Some(ruf) = &published.ruf
    {
        tags.push(("ruf".into(), ruf.clone()));
    }
    for (k, uri) in &tags {
        if !(k.eq_ignore_ascii_case("rua") || k.eq_ignore_ascii_case("ruf")) {
            continue;
        }
        for uri in uri.split(',') {
            if let Some(addr) = uri.trim().strip_prefix("mailto:") {
                let host = addr.rsplit('@').next().unwrap_or_default();
                let host = host.split('!').next().unwrap_or(host);
                if !host.is_empty() && registrable(host) != registrable(domain) {
                    let note = format!(
                        "reports go to {host}: it must publish TXT \"v=DMARC1\" at \
                         {domain}._report._dmarc.{host} (external reporting authorisation)"
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
            }
        }
    }
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_positions() {
        let t = Ladder::Testing;
        assert_eq!(t.position("none", false, 100), 0);
        assert_eq!(t.position("quarantine", true, 0), 1);
        assert_eq!(t.position("quarantine", true, 100), 1);
        // RFC 9989 receivers ignore pct: quarantine with pct=10 quarantines everything there.
        assert_eq!(t.position("quarantine", false, 10), 2);
        assert_eq!(t.position("quarantine", false, 100), 2);
        assert_eq!(t.position("reject", true, 0), 3);
        assert_eq!(t.position("reject", false, 100), 4);
        assert_eq!(t.position("bogus", false, 100), 0);
        let p = Ladder::Pct;
        assert_eq!(p.position("quarantine", false, 10), 1);
        assert_eq!(p.position("quarantine", false, 30), 2);
        assert_eq!(p.position("quarantine", false, 100), 4);
        assert_eq!(p.position("reject", false, 100), 5);
    }

    /// The one way a policy is written: `pct` unless it is 100 (the default; a reporter's
    /// out-of-range value is shown, not hidden), `sp` whenever given (an explicit `sp=reject` is
    /// not the same record as none, and advise treats them apart), `np` only in the record.
    #[test]
    fn one_line_for_a_policy() {
        let p = Policy {
            p: "quarantine".into(),
            t: Some("y".into()),
            pct: 0,
            sp: Some("reject".into()),
            np: Some("reject".into()),
        };
        assert_eq!(p.to_string(), "p=quarantine t=y pct=0 sp=reject");
        assert_eq!(
            p.record_tags(),
            "p=quarantine; t=y; pct=0; sp=reject; np=reject"
        );
        let reported = |p, sp, pct| Policy::reported(p, sp, pct).map(|p| p.to_string());
        assert_eq!(
            reported(Some("reject"), Some("reject"), Some(150)).as_deref(),
            Some("p=reject pct=150 sp=reject")
        );
        assert_eq!(
            reported(Some("none"), None, Some(100)).as_deref(),
            Some("p=none")
        );
        assert_eq!(reported(None, Some("reject"), None), None);
        assert_eq!(TESTING_LADDER[1].tags(), "p=quarantine; t=y; pct=0");
    }

    #[test]
    fn the_default_ladder_never_publishes_a_partial_pct() {
        for r in TESTING_LADDER {
            assert!(r.pct == 0 || r.pct == 100, "{r:?}");
            assert_eq!(r.testing, r.pct == 0, "{r:?}");
        }
        let enforcing: Vec<bool> = TESTING_LADDER.iter().map(|r| r.enforces()).collect();
        assert_eq!(enforcing, [false, false, true, true, true]);
        assert_eq!(TESTING_LADDER[3].tags(), "p=reject; t=y; pct=0");
    }
}
