//! A domain's mail day by day, as `senders` classified it: messages per sender class and those
//! passing DMARC, and the trend of the pass rate. What the web's charts and overview draw; pure.

use super::{Sender, percent};
use crate::model::{DayCount, Evidence, SenderClass};

/// One day's (or, once drawn, several days') mail of a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayVolume {
    /// Days since the epoch (the first day, for several).
    pub day: i64,
    /// Messages by the class of their sender, in [`SenderClass::ALL`] order.
    pub by_class: [u64; 4],
    /// Messages passing DMARC.
    pub pass: u64,
}

impl DayVolume {
    pub fn messages(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// Share passing DMARC (%); `None` without mail.
    pub fn pass_pct(&self) -> Option<f64> {
        let m = self.messages();
        (m > 0).then(|| percent(self.pass, m))
    }
}

/// The days of `daily` (messages of each evidence row per day) in order, each row counted under
/// the class of the sender `senders` judged it part of.
pub fn daily_volume(
    evidence: &[Evidence],
    daily: &[DayCount],
    senders: &[Sender],
) -> Vec<DayVolume> {
    let mut class: Vec<Option<SenderClass>> = vec![None; evidence.len()];
    for s in senders {
        for &row in &s.evidence {
            if let Some(c) = class.get_mut(row) {
                *c = Some(s.summary.class);
            }
        }
    }
    let mut days: std::collections::BTreeMap<i64, DayVolume> = std::collections::BTreeMap::new();
    for d in daily {
        let (Some(e), Some(Some(c))) = (evidence.get(d.evidence), class.get(d.evidence)) else {
            continue;
        };
        let day = days.entry(d.day).or_insert(DayVolume {
            day: d.day,
            ..DayVolume::default()
        });
        day.by_class[c.index()] += d.messages;
        if e.key.dmarc_pass() {
            day.pass += d.messages;
        }
    }
    days.into_values().collect()
}

/// The pass rate of the later half of the days with mail minus that of the earlier half, in
/// percentage points (one decimal); `None` with fewer than two such days.
pub fn trend(days: &[DayVolume]) -> Option<f64> {
    let with_mail: Vec<&DayVolume> = days.iter().filter(|d| d.messages() > 0).collect();
    if with_mail.len() < 2 {
        return None;
    }
    let (a, b) = with_mail.split_at(with_mail.len() / 2);
    let rate = |half: &[&DayVolume]| {
        let m: u64 = half.iter().map(|d| d.messages()).sum();
        let p: u64 = half.iter().map(|d| d.pass).sum();
        percent(p, m)
    };
    Some(((rate(b) - rate(a)) * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(day: i64, messages: u64, pass: u64) -> DayVolume {
        DayVolume {
            day,
            by_class: [messages, 0, 0, 0],
            pass,
        }
    }

    #[test]
    fn the_trend_compares_the_later_half_of_the_days_with_mail() {
        assert_eq!(trend(&[day(1, 10, 5)]), None);
        let days = [day(1, 10, 5), day(2, 0, 0), day(3, 10, 10), day(4, 10, 10)];
        // Halves of the days with mail: [1] at 50%, [3, 4] at 100%.
        assert_eq!(trend(&days), Some(50.0));
    }
}
