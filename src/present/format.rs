//! Cells for people: counts with thousands separated, shares as percentages with one decimal, days
//! and moments in UTC, a report's period. JSON and CSV keep the raw values; only tables use these.

use crate::model::Timestamp;

/// A count with thousands separated: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a percentage with one decimal: `97.3%`; never `100.0%` unless all, never
/// `0.0%` unless none; empty when there is no whole.
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return String::new();
    }
    percent(part as f64 * 100.0 / whole as f64)
}

/// A percentage (0–100) with one decimal: `97.3%`, with the same care at both ends as [`share`].
pub fn percent(p: f64) -> String {
    if p >= 100.0 {
        "100%".into()
    } else if p > 99.9 {
        "99.9%".into()
    } else if p <= 0.0 {
        "0%".into()
    } else if p < 0.1 {
        "<0.1%".into()
    } else {
        format!("{p:.1}%")
    }
}

/// A moment, to the minute: `2026-11-09 06:06`.
pub fn moment(t: Option<Timestamp>) -> String {
    t.and_then(|t| crate::time::format_minute(t.0))
        .unwrap_or_default()
}

/// The day a moment falls on: `2026-11-01`.
pub fn day(t: Option<Timestamp>) -> String {
    t.and_then(|t| crate::time::format_day(t.0))
        .unwrap_or_default()
}

/// The last day a period ending at `t` covers: a period ending exactly at midnight (as many
/// reporters write it) ends on the day before.
pub fn last_day(t: Option<Timestamp>) -> String {
    match t {
        Some(t) if t.0.rem_euclid(86_400) == 0 => day(Some(Timestamp(t.0 - 1))),
        t => day(t),
    }
}

/// A report's period: `2026-11-01` for one whole day, `2026-11-01..2026-11-07` for whole days;
/// otherwise its start to the minute and its length: `2012-05-17 16:00 +24h`, `… +3d`.
pub fn period(begin: Option<Timestamp>, end: Option<Timestamp>) -> String {
    let whole = |t: Option<Timestamp>, end: bool| {
        t.is_some_and(|t| {
            let s = t.0.rem_euclid(86_400);
            s == 0 || (end && s == 86_399)
        })
    };
    match (begin, end) {
        (None, None) => String::new(),
        (Some(_), Some(_)) if whole(begin, false) && whole(end, true) => {
            let (from, to) = (day(begin), last_day(end));
            if from == to {
                from
            } else {
                format!("{from}..{to}")
            }
        }
        (Some(b), Some(e)) => {
            // To the nearest hour: reporters end periods at :59:59 as often as at :00:00.
            let hours = (e.0 - b.0 + 1800).div_euclid(3600);
            let length = if hours < 48 {
                format!("+{hours}h")
            } else {
                format!("+{}d", (hours + 12) / 24)
            };
            format!("{} {length}", moment(begin))
        }
        _ => format!("{}..{}", moment(begin), moment(end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_for_people() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(share(973, 1000), "97.3%");
        assert_eq!(share(9999, 10000), "99.9%");
        assert_eq!(share(1, 10000), "<0.1%");
        assert_eq!(
            (share(5, 5), share(0, 5), share(0, 0)),
            ("100%".into(), "0%".into(), String::new())
        );
        let day0 = Some(Timestamp(1_793_491_200)); // 2026-11-01T00:00:00Z
        let t = |s: i64| Some(Timestamp(1_793_491_200 + s));
        assert_eq!(period(day0, t(86_399)), "2026-11-01");
        assert_eq!(period(day0, t(86_400)), "2026-11-01");
        assert_eq!(period(day0, t(7 * 86_400)), "2026-11-01..2026-11-07");
        assert_eq!(period(t(3600), t(7200)), "2026-11-01 01:00 +1h");
        assert_eq!(
            period(t(16 * 3600), t(40 * 3600 - 1)),
            "2026-11-01 16:00 +24h"
        );
        assert_eq!(period(t(3600), t(3 * 86_400)), "2026-11-01 01:00 +3d");
        assert_eq!(period(None, None), "");
        assert_eq!(moment(t(6 * 3600 + 6 * 60 + 59)), "2026-11-01 06:06");
    }
}
