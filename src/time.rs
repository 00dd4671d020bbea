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

fn utc(t: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t, 0)
}

/// The day of `t`: `2026-11-01`. `None` beyond the calendar's range (±262,000 years).
pub fn format_day(t: i64) -> Option<String> {
    utc(t).map(|t| t.format("%Y-%m-%d").to_string())
}

/// The day of `t`, short, for a chart's axis: `Nov 01`.
pub fn format_short_day(t: i64) -> Option<String> {
    utc(t).map(|t| t.format("%b %d").to_string())
}

/// `t` to the minute: `2026-11-09 06:06`.
pub fn format_minute(t: i64) -> Option<String> {
    utc(t).map(|t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// `t` in RFC 3339, UTC: `2026-11-01T00:00:00Z`.
pub fn format_rfc3339(t: i64) -> Option<String> {
    utc(t).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
