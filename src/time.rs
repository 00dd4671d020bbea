//! Time, in one place: a moment is seconds since the Unix epoch (`i64`, UTC), as reports and the
//! database hold it. Here are the clock ([`now`]), the dates people write (`YYYY-MM-DD`, RFC 3339)
//! read into moments, and moments written as days and times. Every day is a UTC day of [`DAY`]
//! seconds; nothing here knows a local time zone. Only this module names `chrono`.

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Now, in seconds since the epoch (0 if the clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The day `t` falls on, counted from the epoch (day 0 is 1970-01-01).
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// `YYYY-MM-DD` as the start of that day (midnight UTC).
pub fn parse_day(text: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
}

/// An RFC 3339 moment (`2026-11-01T12:00:00Z`, any offset).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// A date as the CLI's `--since` / `--until` and the API's `since` / `until` take it:
/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, spaces around ignored.
pub fn parse_date(text: &str) -> Result<i64, DateError> {
    parse_day(text.trim())
        .or_else(|| parse_rfc3339(text.trim()))
        .ok_or_else(|| DateError {
            text: text.chars().take(80).collect(),
        })
}

/// A date that is neither `YYYY-MM-DD` nor RFC 3339. The caller puts the option's name before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: expected a date such as 2026-11-01 or 2026-11-01T12:00:00Z")]
pub struct DateError {
    text: String,
}

/// Where retention cuts: the first UTC midnight at or after `now` − `days` days. What ended before it
/// is older than `days` days and goes; what ended at or after it stays. Whole days, and never
/// more than `days` days kept (failure reports carry personal data: a retention is a maximum).
pub fn retention_cutoff(now: i64, days: u32) -> i64 {
    let at = now.saturating_sub(i64::from(days).saturating_mul(DAY));
    // The first midnight at or after `at`: `at` itself when it is one.
    day_of(at.saturating_add(DAY - 1)).saturating_mul(DAY)
}

/// The first moment of the UTC calendar month `t` falls in, and of the next month; `None` outside
/// the years 1970 to 9999 (PostgreSQL's month partitions cover those).
pub fn month_of(t: i64) -> Option<(i64, i64)> {
    use chrono::Datelike;
    if !(0..MONTHS_END).contains(&t) {
        return None;
    }
    let d = utc(t)?.date_naive();
    let start = chrono::NaiveDate::from_ymd_opt(d.year(), d.month(), 1)?;
    let next = start.checked_add_months(chrono::Months::new(1))?;
    let at = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    Some((at(start), at(next)))
}

/// The UTC calendar quarter holding `t` (January, April, July, October to the next): its first
/// moment and the first moment of the next, as [`month_of`]'s months.
pub fn quarter_of(t: i64) -> Option<(i64, i64)> {
    use chrono::Datelike;
    if !(0..MONTHS_END).contains(&t) {
        return None;
    }
    let d = utc(t)?.date_naive();
    let start = chrono::NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1)?;
    let next = start.checked_add_months(chrono::Months::new(3))?;
    let at = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    Some((at(start), at(next)))
}

/// 10000-01-01T00:00:00Z: where [`month_of`]'s months end.
pub const MONTHS_END: i64 = 253_402_300_800;

/// A month (its first moment, from [`month_of`]) as a name: `y2026m01`.
pub fn month_name(start: i64) -> Option<String> {
    utc(start).map(|t| t.format("y%Ym%m").to_string())
}

/// The month a name of [`month_name`] names: its first moment.
pub fn parse_month_name(name: &str) -> Option<i64> {
    let (year, month) = name.strip_prefix('y')?.split_once('m')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let d = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    Some(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
}

fn utc(t: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t, 0)
}

/// The day of `t`: `2026-11-01`. `None` beyond the calendar's range (±262,000 years).
pub fn format_day(t: i64) -> Option<String> {
    utc(t).map(|t| written(&t, Upto::Day))
}

/// The day of `t`, short, for a chart's axis: `Nov 01`.
pub fn format_short_day(t: i64) -> Option<String> {
    utc(t).map(|t| t.format("%b %d").to_string())
}

/// `t` to the minute: `2026-11-09 06:06`.
pub fn format_minute(t: i64) -> Option<String> {
    utc(t).map(|t| written(&t, Upto::Minute))
}

/// `t` in RFC 3339, UTC: `2026-11-01T00:00:00Z`.
pub fn format_rfc3339(t: i64) -> Option<String> {
    utc(t).map(|t| written(&t, Upto::Second))
}

/// How much of a time [`written`] writes.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Upto {
    Day,
    Minute,
    Second,
}

impl Upto {
    /// The form as `strftime` writes it.
    fn strftime(self) -> &'static str {
        match self {
            Upto::Day => "%Y-%m-%d",
            Upto::Minute => "%Y-%m-%d %H:%M",
            Upto::Second => "%Y-%m-%dT%H:%M:%SZ",
        }
    }
}

/// `t` as `strftime` writes `upto`'s form, digit by digit: listings write two times per row for
/// hundreds of thousands of rows, and interpreting the format string each time cost a sixth of
/// `reports --format json`. Years outside 0–9999, which `strftime` writes with a sign, go through
/// `strftime`.
fn written(t: &chrono::DateTime<chrono::Utc>, upto: Upto) -> String {
    use chrono::{Datelike, Timelike};
    let fallback = upto.strftime();
    let Ok(year) = u32::try_from(t.year()) else {
        return t.format(fallback).to_string();
    };
    if year > 9999 {
        return t.format(fallback).to_string();
    }
    let mut out = String::with_capacity(20);
    let two = |out: &mut String, sep: char, n: u32| {
        out.push(sep);
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    for d in [year / 1000, year / 100 % 10, year / 10 % 10, year % 10] {
        out.push(char::from(b'0' + d as u8));
    }
    two(&mut out, '-', t.month());
    two(&mut out, '-', t.day());
    if upto >= Upto::Minute {
        let sep = if upto == Upto::Second { 'T' } else { ' ' };
        two(&mut out, sep, t.hour());
        two(&mut out, ':', t.minute());
    }
    if upto == Upto::Second {
        two(&mut out, ':', t.second());
        out.push('Z');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written forms are `strftime`'s, across the calendar.
    #[test]
    fn written_as_strftime_writes() {
        let mut t = -62_167_219_200 - 86_400 * 400; // before year 0
        while t < 253_402_300_800 + 86_400 * 400 {
            let c = utc(t).unwrap();
            assert_eq!(format_day(t).unwrap(), c.format("%Y-%m-%d").to_string());
            assert_eq!(
                format_minute(t).unwrap(),
                c.format("%Y-%m-%d %H:%M").to_string()
            );
            assert_eq!(
                format_rfc3339(t).unwrap(),
                c.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
            t += 86_400 * 97 + 3_671;
        }
    }

    /// A quarter is three of `month_of`'s months, from January, April, July or October.
    #[test]
    fn quarters_are_three_months() {
        let day = |s: &str| parse_day(s).unwrap();
        for (t, start, end) in [
            ("2026-01-01", "2026-01-01", "2026-04-01"),
            ("2026-03-31", "2026-01-01", "2026-04-01"),
            ("2026-05-17", "2026-04-01", "2026-07-01"),
            ("2026-09-30", "2026-07-01", "2026-10-01"),
            ("2026-12-31", "2026-10-01", "2027-01-01"),
            ("1970-01-01", "1970-01-01", "1970-04-01"),
        ] {
            assert_eq!(
                quarter_of(day(t) + 3_600),
                Some((day(start), day(end))),
                "{t}"
            );
        }
        assert_eq!(quarter_of(-1), None);
        assert_eq!(quarter_of(MONTHS_END), None);
    }

    #[test]
    fn dates_in_and_out() {
        assert_eq!(parse_day("2026-11-01"), Some(1_793_491_200));
        assert_eq!(parse_date(" 2026-11-01 "), Ok(1_793_491_200));
        assert_eq!(parse_day("2026-11-31"), None);
        assert_eq!(parse_date("2026-11-01T01:00:00+01:00"), Ok(1_793_491_200));
        assert_eq!(
            parse_date("yesterday").unwrap_err().to_string(),
            "\"yesterday\": expected a date such as 2026-11-01 or 2026-11-01T12:00:00Z"
        );
        let t = 1_793_491_200 + 6 * 3600 + 6 * 60 + 59;
        assert_eq!(format_day(t).as_deref(), Some("2026-11-01"));
        assert_eq!(format_short_day(t).as_deref(), Some("Nov 01"));
        assert_eq!(format_minute(t).as_deref(), Some("2026-11-01 06:06"));
        assert_eq!(format_rfc3339(t).as_deref(), Some("2026-11-01T06:06:59Z"));
        assert_eq!(format_day(i64::MAX), None);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(DAY), 1);
        assert!(now() > 1_700_000_000);
    }

    #[test]
    fn the_retention_cutoff_is_the_first_midnight_at_or_after_n_days_ago() {
        let midnight = parse_day("2026-11-01").unwrap();
        // Noon: 180 days back is noon on 2026-05-05; the next midnight is 2026-05-06.
        assert_eq!(
            format_day(retention_cutoff(midnight + 12 * 3600, 180)).as_deref(),
            Some("2026-05-06")
        );
        // At midnight exactly, that midnight.
        assert_eq!(
            retention_cutoff(midnight, 180),
            parse_day("2026-05-05").unwrap()
        );
        // One second past midnight: the next one.
        assert_eq!(
            retention_cutoff(midnight + 1, 1),
            parse_day("2026-11-01").unwrap()
        );
        // Nothing older than N days survives: the cutoff is never before now − N days.
        for t in [midnight - 1, midnight, midnight + 1, midnight + DAY - 1] {
            for days in [0, 1, 7, 180, 365] {
                let cut = retention_cutoff(t, days);
                assert!(cut >= t - i64::from(days) * DAY, "{t} {days}");
                assert!(cut < t - i64::from(days) * DAY + DAY, "{t} {days}");
                assert_eq!(cut % DAY, 0);
            }
        }
        // 0 days: everything that ended before the next midnight goes.
        assert_eq!(retention_cutoff(midnight + 1, 0), midnight + DAY);
        assert_eq!(retention_cutoff(i64::MIN, u32::MAX) % DAY, 0);
    }

    #[test]
    fn months() {
        let t = parse_date("2026-12-31T23:59:59Z").unwrap();
        let (start, next) = month_of(t).unwrap();
        assert_eq!(start, parse_day("2026-12-01").unwrap());
        assert_eq!(next, parse_day("2027-01-01").unwrap());
        assert_eq!(month_of(next).unwrap().0, next);
        assert_eq!(month_name(start).as_deref(), Some("y2026m12"));
        assert_eq!(parse_month_name("y2026m12"), Some(start));
        assert_eq!(parse_month_name("y2026m13"), None);
        assert_eq!(parse_month_name("before"), None);
        assert_eq!(month_of(0).unwrap().0, 0);
        assert_eq!(month_of(-1), None);
        assert_eq!(month_of(MONTHS_END), None);
        assert_eq!(month_of(MONTHS_END - 1).unwrap().1, MONTHS_END);
    }
}
