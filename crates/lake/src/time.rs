//! Event time parsing: the event's `timestamp` string to a UTC instant.
//!
//! Clients send RFC 3339 timestamps (`2022-05-25T05:41:33.648681Z`, `...+02:00`) but also
//! naive ones (`2022-05-25T05:41:33.648681`, with a space instead of `T`, or a date alone),
//! which the original system treated as UTC. Anything else is kept as text and flagged.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Formats with an explicit offset (`%z` accepts `+02:00`, `+0200`, `+02`).
const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M%z",
];

/// Naive formats, taken as UTC.
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parses an event's `timestamp` string: RFC 3339 with `Z` or an offset (converted to UTC),
/// naive ISO-8601 date-times with `T` or a space (taken as UTC), or a date alone (midnight
/// UTC). Returns `None` for anything else.
pub fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.len() < 10 || !text.is_char_boundary(10) {
        return None;
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    // `Z` in a non-RFC 3339 shape (for example without seconds): treat as +00:00.
    let offset_text;
    let text_with_offset = match text.strip_suffix(['Z', 'z']) {
        Some(rest) => {
            offset_text = format!("{rest}+00:00");
            offset_text.as_str()
        }
        None => text,
    };
    for format in OFFSET_FORMATS {
        if let Ok(time) = DateTime::parse_from_str(text_with_offset, format) {
            return Some(time.with_timezone(&Utc));
        }
    }
    for format in NAIVE_FORMATS {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}

/// Days since the Unix epoch of an instant's UTC date (Arrow `Date32`).
pub(crate) fn date32(time: DateTime<Utc>) -> i32 {
    let days = time
        .date_naive()
        .signed_duration_since(NaiveDate::default())
        .num_days();
    // chrono's date range (±262,000 years) fits in i32 days.
    i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX })
}

/// Days since the Unix epoch of the UTC date of `millis` since the epoch.
pub(crate) fn date32_from_millis(millis: i64) -> i32 {
    match DateTime::from_timestamp_millis(millis) {
        Some(time) => date32(time),
        // Out of chrono's range: fall back to integer division, still monotonic.
        None => i32::try_from(millis.div_euclid(86_400_000)).unwrap_or(i32::MAX),
    }
}

/// Microseconds since the epoch from milliseconds, saturating.
pub(crate) fn micros_from_millis(millis: i64) -> i64 {
    millis.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
            + chrono::Duration::microseconds(i64::from(micros))
    }

    #[test]
    fn parses_naive_timestamp_as_utc() {
        assert_eq!(
            parse_event_time("2022-05-25T05:41:33.648681"),
            Some(utc(2022, 5, 25, 5, 41, 33, 648_681))
        );
        assert_eq!(
            parse_event_time("2022-05-25T05:41:33"),
            Some(utc(2022, 5, 25, 5, 41, 33, 0))
        );
    }

    #[test]
    fn parses_zulu_timestamp() {
        assert_eq!(
            parse_event_time("2022-05-25T05:41:33.648681Z"),
            Some(utc(2022, 5, 25, 5, 41, 33, 648_681))
        );
        assert_eq!(
            parse_event_time("2022-05-25T05:41Z"),
            Some(utc(2022, 5, 25, 5, 41, 0, 0))
        );
    }

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(
            parse_event_time("2022-05-25T01:30:00+02:00"),
            Some(utc(2022, 5, 24, 23, 30, 0, 0))
        );
        assert_eq!(
            parse_event_time("2022-05-25T01:30:00.5-0130"),
            Some(utc(2022, 5, 25, 3, 0, 0, 500_000))
        );
    }

    #[test]
    fn accepts_space_separator() {
        assert_eq!(
            parse_event_time("2022-05-25 05:41:33.648681"),
            Some(utc(2022, 5, 25, 5, 41, 33, 648_681))
        );
        assert_eq!(
            parse_event_time("2022-05-25 05:41:33+00:00"),
            Some(utc(2022, 5, 25, 5, 41, 33, 0))
        );
    }

    #[test]
    fn takes_date_only_as_midnight_utc() {
        assert_eq!(
            parse_event_time("2022-05-25"),
            Some(utc(2022, 5, 25, 0, 0, 0, 0))
        );
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "yesterday",
            "2022-13-01",
            "2022-05-25T25:00:00",
            "25/05/2022",
            "2022-05-2é",
            "1653457293",
        ] {
            assert_eq!(parse_event_time(text), None, "{text:?}");
        }
    }

    #[test]
    fn computes_utc_dates() {
        assert_eq!(date32(utc(1970, 1, 1, 23, 59, 59, 0)), 0);
        assert_eq!(date32(utc(1969, 12, 31, 0, 0, 0, 0)), -1);
        assert_eq!(date32(utc(2022, 5, 25, 5, 0, 0, 0)), 19_137);
        assert_eq!(date32_from_millis(86_400_000), 1);
        assert_eq!(date32_from_millis(-1), -1);
    }
}
