//! Command-line quantities: rates (`5000/s`, `300/min`, `2k/s`) and durations (`60s`).

use std::time::Duration;

/// Parses a rate in events per second: `5000/s`, `5000`, `2.5k/s`, `300/min`, `1M/h`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, per) = match text.split_once('/') {
        Some((number, per)) => (number.trim(), per.trim()),
        None => (text, "s"),
    };
    let seconds = match per {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("unknown rate unit /{other}: use /s, /min or /h")),
    };
    let (digits, multiplier) = match number.chars().last() {
        Some('k' | 'K') => (&number[..number.len() - 1], 1e3),
        Some('M') => (&number[..number.len() - 1], 1e6),
        _ => (number, 1.0),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a rate like 5000/s"))?;
    let rate = value * multiplier / seconds;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("{text:?}: the rate must be above zero"));
    }
    Ok(rate)
}

/// Parses a duration: `60s`, `2m`, `1h 30m`, `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration like 60s: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_their_units() {
        assert_eq!(parse_rate("5000/s"), Ok(5000.0));
        assert_eq!(parse_rate("5000"), Ok(5000.0));
        assert_eq!(parse_rate("2.5k/s"), Ok(2500.0));
        assert_eq!(parse_rate("300/min"), Ok(5.0));
        assert_eq!(parse_rate("3.6k/h"), Ok(1.0));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10/day").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
    }
}
