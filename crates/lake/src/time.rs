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
    // The seed's shape, and most trackers': read directly, as the formats below would
    // (they parse their format string on every call, a tenth of the processor's time).
    if let Some(time) = naive_iso(text) {
        return Some(time.and_utc());
    }
    by_formats(text)
}

/// [`parse_event_time`] without its fast path, for a trimmed text.
fn by_formats(text: &str) -> Option<DateTime<Utc>> {
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

/// `YYYY-MM-DDTHH:MM:SS` with an optional fraction of 1 to 9 digits and no offset, in
/// range (no leap second): exactly what `NAIVE_FORMATS[0]` reads from such a text, and no
/// offset format reads it. `None` for anything else, which the formats then try.
fn naive_iso(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let value = number(20..b.len())?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if second > 59 {
        return None;
    }
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    date.and_hms_nano_opt(hour, minute, second, nanos)
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

    #[test]
    fn the_fast_path_reads_what_the_formats_read() {
        let mut taken = 0;
        for (y, mo, d) in [
            ("2022", "05", "25"),
            ("0000", "01", "01"),
            ("9999", "12", "31"),
            ("2024", "02", "29"),
            ("2023", "02", "29"),
            ("2022", "13", "01"),
            ("2022", "00", "10"),
            ("2022", "1a", "10"),
        ] {
            for (h, mi, sec) in [
                ("05", "41", "33"),
                ("00", "00", "00"),
                ("23", "59", "59"),
                ("24", "00", "00"),
                ("12", "60", "00"),
                ("12", "00", "60"),
                ("1:", "00", "00"),
            ] {
                for fraction in [
                    "",
                    ".",
                    ".6",
                    ".648681",
                    ".123456789",
                    ".1234567891",
                    ".12a",
                    "Z",
                    "+02:00",
                    ".5-01:30",
                    " ",
                ] {
                    for sep in ["T", " "] {
                        let text = format!("{y}-{mo}-{d}{sep}{h}:{mi}:{sec}{fraction}");
                        if let Some(fast) = naive_iso(&text) {
                            taken += 1;
                            assert_eq!(Some(fast.and_utc()), by_formats(&text), "{text}");
                        }
                    }
                }
            }
        }
        // 4 valid dates × 3 valid times × 4 fractions (none, 1, 6 and 9 digits), with `T`.
        assert_eq!(taken, 48, "texts the fast path took");
    }

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
