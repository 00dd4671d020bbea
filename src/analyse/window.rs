//! The evidence window: which reports a judgement covers. One meaning everywhere (`senders`,
//! `advise`, `notify`, `digest`, `check`'s hints, the web, TLS notices): the `days` days ending with
//! the latest report, that is exactly `days` daily reports.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The start of the window of `days` days ending at `last` (the end of the latest report), for
/// reports ending at or after it: exactly `days` daily reports, not the one that ended `days` days
/// before `last`. `None` (everything) when either is unknown.
pub fn window_start(last: Option<i64>, days: Option<u32>) -> Option<i64> {
    Some(last? - i64::from(days?) * DAY + 1)
}

/// The start of the window of `days` days just before the one starting at `since` (which ends
/// before `since`): the window a judgement is compared with.
pub fn window_before(since: Option<i64>, days: u32) -> Option<i64> {
    window_start(since.map(|s| s - 1), Some(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Daily reports: day `d` begins at `d * DAY` and ends a second before the next.
    fn end(d: i64) -> i64 {
        (d + 1) * DAY - 1
    }

    #[test]
    fn a_window_of_n_days_holds_exactly_n_daily_reports() {
        let since = window_start(Some(end(20)), Some(7)).unwrap();
        let inside: Vec<i64> = (0..=20).filter(|d| end(*d) >= since).collect();
        assert_eq!(inside, [14, 15, 16, 17, 18, 19, 20]);
        // The boundary: the report that ended exactly 7 days before the latest is out.
        assert!(end(13) < since && end(13) == end(20) - 7 * DAY);
        assert_eq!(since, end(13) + 1);
    }

    #[test]
    fn the_window_before_is_the_n_days_before() {
        let since = window_start(Some(end(20)), Some(7));
        let before = window_before(since, 7).unwrap();
        let inside: Vec<i64> = (0..=20)
            .filter(|d| end(*d) >= before && Some(end(*d)) < since)
            .collect();
        assert_eq!(inside, [7, 8, 9, 10, 11, 12, 13]);
    }

    #[test]
    fn unknown_means_everything() {
        assert_eq!(window_start(None, Some(7)), None);
        assert_eq!(window_start(Some(end(3)), None), None);
        assert_eq!(window_before(None, 7), None);
    }
}
