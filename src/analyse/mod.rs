//! Judgements over stored data: who sends as a domain (`senders`, classified), when it is safe to
//! tighten its DMARC policy (`advice`), which reports a judgement covers (`window`) and its mail day
//! by day (`volume`). Pure functions over model types, no I/O: the evidence comes from `store`,
//! what the user declared and the map of known services from `config`.

mod advice;
pub mod check;
mod senders;
mod volume;
mod window;

pub use advice::{
    Action, Advice, Blocker, CurrentPolicy, EvidenceWindow, Ladder, Policy, Published, Thresholds,
    advise, legitimate_mail,
};
pub use senders::{
    DeclaredSender, Knowledge, Names, Sender, Service, Split, senders, stand_in,
    unauthenticated_sources,
};
pub use volume::{DayVolume, daily_volume, trend};
pub use window::{window_before, window_start};

/// `part` as a percentage of `whole`, rounded to one decimal; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

/// The registrable domain (Public Suffix List): `mail.example.co.uk` → `example.co.uk`. Names the list
/// does not know are returned lower-cased as they are.
pub fn registrable(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&name).map_or(name.clone(), str::to_owned)
}

/// The earlier of two times, either of which may be unknown.
pub fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(2, 3), 66.7);
        assert_eq!(percent(5, 5), 100.0);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registrable("Bounces.SendGrid.NET."), "sendgrid.net");
    }
}
