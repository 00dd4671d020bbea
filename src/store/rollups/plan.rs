//! Days, thirds of months, months and quarters: the day a report is rolled up under
//! ([`day_of`]), the month row holding a day ([`month_span`]), the third rows of a month
//! ([`thirds`]), the quarter row holding a month ([`quarter_span`]), and which rows answer a
//! window ([`Plan`]).

/// The day stored for a report without an end: below every real day.
pub(in crate::store) const NO_DAY: i64 = i64::MIN;

/// Seconds in a day.
pub(in crate::store) const DAY: i64 = 86_400;

/// The UTC day of a moment, [`NO_DAY`] without one.
pub(super) fn day_of(t: Option<i64>) -> i64 {
    t.map_or(NO_DAY, |t| t.div_euclid(DAY))
}

/// The days `[start, end)` the month row holding `day` sums: its UTC calendar month, or the day
/// alone outside the years [`crate::time::month_of`] knows; `None` for [`NO_DAY`] (day rows only).
pub(super) fn month_span(day: i64) -> Option<(i64, i64)> {
    if day == NO_DAY {
        return None;
    }
    match day.checked_mul(DAY).and_then(crate::time::month_of) {
        Some((start, end)) => Some((start / DAY, end / DAY)),
        None => Some((day, day.saturating_add(1))),
    }
}

/// Days a third of a month holds (the last third: the rest of the month).
const THIRD: i64 = 10;

/// The thirds `[start, end)` of the month row `[start, end)` ([`month_span`]): days 1-10, 11-20
/// and 21 to its end, each summed into a row of its own with the month's; none for a month that
/// is a day alone.
pub(super) fn thirds(start: i64, end: i64) -> Vec<(i64, i64)> {
    if end - start <= 2 * THIRD {
        return Vec::new();
    }
    vec![
        (start, start + THIRD),
        (start + THIRD, start + 2 * THIRD),
        (start + 2 * THIRD, end),
    ]
}

/// The days `[start, end)` of the calendar quarter holding the month that begins on `month`
/// (its quarter row sums its month rows); `None` where months are days of their own.
pub(in crate::store) fn quarter_span(month: i64) -> Option<(i64, i64)> {
    let (start, end) = month.checked_mul(DAY).and_then(crate::time::quarter_of)?;
    Some((start / DAY, end / DAY))
}

/// The lock key of `day`'s month: its first day, or the day itself where it has no month row.
pub(in crate::store) fn month_key(day: i64) -> i64 {
    month_span(day).map_or(day, |(start, _)| start)
}

/// The days a window's reports most likely began on (kept as bits by the reader; any other
/// day is listed): from a month before the day of its start to the day after its end, or after
/// `today` for a window without one; `None` for a window without a start.
pub(super) fn likely_begins(
    since: Option<i64>,
    until: Option<i64>,
    today: i64,
) -> Option<(i64, i64)> {
    let from = since?.div_euclid(DAY).checked_sub(31)?;
    let to = until.map_or(today, |u| u.div_euclid(DAY)).checked_add(2)?;
    Some((from, to))
}

/// Which rows answer a window `[since, until)` of report ends: the whole days `[from, to)` it
/// covers (the months wholly inside from month rows, the other days from day rows), and the
/// partial days at its edges, from the records.
#[derive(Debug, PartialEq)]
pub(super) struct Plan {
    /// Days `[from, to)` read from day rows (one or two ranges).
    pub(super) days: Vec<(i64, i64)>,
    /// Months wholly in `[months.0, months.1)`, read from month rows.
    pub(super) months: (i64, i64),
    /// Moments `[a, b)` of report ends read from the records.
    pub(super) edges: Vec<(i64, i64)>,
}

impl Plan {
    /// `None` when the window holds no whole day (the records answer it alone).
    pub(super) fn of(since: Option<i64>, until: Option<i64>) -> Option<Plan> {
        // The first whole day, and the day after the last.
        let from = since.map(|s| s.div_euclid(DAY) + i64::from(s.rem_euclid(DAY) != 0));
        let to = until.map(|u| u.div_euclid(DAY));
        if let (Some(a), Some(b)) = (from, to)
            && a >= b
        {
            return None;
        }
        let mut edges = Vec::new();
        if let (Some(s), Some(a)) = (since, from)
            && s < a.checked_mul(DAY)?
        {
            edges.push((s, a * DAY));
        }
        if let (Some(u), Some(b)) = (until, to)
            && b.checked_mul(DAY)? < u
        {
            edges.push((b * DAY, u));
        }
        // A report without an end is in a window only when it has neither bound.
        let lower = from.unwrap_or(if until.is_some() { NO_DAY + 1 } else { NO_DAY });
        let upper = to.unwrap_or(i64::MAX);
        let start = match from {
            None => NO_DAY + 1,
            Some(a) => month_span(a).map_or(a, |(s, e)| if s == a { s } else { e }),
        };
        let end = match to {
            None => i64::MAX,
            Some(b) => month_span(b).map_or(b, |(s, _)| s),
        };
        let (months, days) = if start < end {
            (
                (start, end),
                vec![(lower, start.min(upper)), (end.max(lower), upper)],
            )
        } else {
            ((upper, upper), vec![(lower, upper)])
        };
        let days = days.into_iter().filter(|(a, b)| a < b).collect();
        Some(Plan {
            days,
            months,
            edges,
        })
    }
}
