//! JSON → Avro for the logical types: decimals, dates, times, timestamps and durations.
//!
//! Avro's own JSON encoding writes them as their underlying type (numbers; a decimal as a
//! string of bytes). Events are written by people and their tracking code, so the forms a
//! client developer sends are taken too: a decimal as a JSON number or a decimal string
//! (`12.34`, `"12.34"`), a date as `"2024-05-01"`, a timestamp as an RFC 3339 string.
//! Nothing is rounded or clamped: a decimal with more fraction digits than its scale or more
//! digits than its precision, a time outside the day, an integer out of range: each is
//! refused (`None`), and the caller names the field.

use apache_avro::schema::{DecimalSchema, InnerDecimalSchema};
use apache_avro::types::Value as Avro;
use apache_avro::{BigDecimal, Days, Decimal, Duration, Millis, Months};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use num_bigint::BigInt;
use serde_json::Value as Json;

/// Milliseconds in a day: the range of `time-millis`.
const DAY_MILLIS: i64 = 86_400_000;

/// The precision of a timestamp's long.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unit {
    Millis,
    Micros,
    Nanos,
}

/// A `decimal` of `schema`'s precision and scale, from a number or a decimal string.
pub(super) fn decimal(schema: &DecimalSchema, json: &Json) -> Option<Avro> {
    let text = decimal_text(json)?;
    let (negative, digits) = unscaled(&text, schema.scale)?;
    if digits != "0" && digits.len() > schema.precision {
        return None;
    }
    let signed = if negative {
        format!("-{digits}")
    } else {
        digits
    };
    let value = BigInt::parse_bytes(signed.as_bytes(), 10)?;
    let bytes = value.to_signed_bytes_be();
    // A precision the schema's fixed cannot hold (nothing checks it at registration): the
    // value is refused here rather than failing the encoder and the whole batch.
    if let InnerDecimalSchema::Fixed(fixed) = &schema.inner
        && bytes.len() > fixed.size
    {
        return None;
    }
    Some(Avro::Decimal(Decimal::from(bytes)))
}

/// A `big-decimal` (precision and scale carried by the value), from a number or a string.
pub(super) fn big_decimal(json: &Json) -> Option<Avro> {
    let text = decimal_text(json)?;
    // Our numeral syntax first: BigDecimal's own parser would also take forms like "+.e1".
    numeral(&text)?;
    text.parse::<BigDecimal>().ok().map(Avro::BigDecimal)
}

/// A `date`: days since 1970-01-01, as an integer or a `"YYYY-MM-DD"` string.
pub(super) fn date(json: &Json) -> Option<Avro> {
    let days = match json {
        Json::String(s) => {
            let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            date.signed_duration_since(epoch).num_days()
        }
        other => other.as_i64()?,
    };
    Some(Avro::Date(i32::try_from(days).ok()?))
}

/// A `time-millis` or `time-micros`: time of day as an integer in range.
pub(super) fn time(unit: Unit, json: &Json) -> Option<Avro> {
    let value = json.as_i64()?;
    match unit {
        Unit::Millis if (0..DAY_MILLIS).contains(&value) => {
            Some(Avro::TimeMillis(i32::try_from(value).ok()?))
        }
        Unit::Micros if (0..DAY_MILLIS * 1000).contains(&value) => Some(Avro::TimeMicros(value)),
        _ => None,
    }
}

/// A timestamp's long in `unit`, from an integer or a string: RFC 3339 with an offset for
/// an instant (`local == false`), without one for a local timestamp.
pub(super) fn timestamp(unit: Unit, local: bool, json: &Json) -> Option<i64> {
    let Json::String(s) = json else {
        return json.as_i64();
    };
    let utc = if local {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc()
    } else {
        DateTime::parse_from_rfc3339(s).ok()?.to_utc()
    };
    match unit {
        Unit::Millis => Some(utc.timestamp_millis()),
        Unit::Micros => Some(utc.timestamp_micros()),
        Unit::Nanos => utc.timestamp_nanos_opt(),
    }
}

/// A `duration`: `{"months": m, "days": d, "millis": ms}`, each an unsigned 32-bit integer
/// (a missing part is 0; another key is an error).
pub(super) fn duration(json: &Json) -> Option<Avro> {
    let Json::Object(parts) = json else {
        return None;
    };
    if parts
        .keys()
        .any(|k| !matches!(k.as_str(), "months" | "days" | "millis"))
    {
        return None;
    }
    let part = |name: &str| match parts.get(name) {
        None => Some(0),
        Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()),
    };
    Some(Avro::Duration(Duration::new(
        Months::new(part("months")?),
        Days::new(part("days")?),
        Millis::new(part("millis")?),
    )))
}

fn decimal_text(json: &Json) -> Option<String> {
    match json {
        Json::Number(n) => Some(n.to_string()),
        Json::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A decimal numeral (`-12.5`, `1e3`, `.5`): its sign, its digits and the power of ten
/// they are multiplied by.
fn numeral(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let power = exponent.checked_sub(i64::try_from(frac.len()).ok()?)?;
    Some((negative, format!("{int}{frac}"), power))
}

/// The unscaled integer of the decimal numeral `text` at `scale` (its digits, without
/// leading zeros, and the sign); `None` when `text` is not a numeral or holds non-zero
/// digits beyond `scale`.
fn unscaled(text: &str, scale: usize) -> Option<(bool, String)> {
    let (negative, mut digits, power) = numeral(text)?;
    // The unscaled value is digits × 10^(power + scale).
    let shift = power.checked_add(i64::try_from(scale).ok()?)?;
    if shift >= 0 {
        // More zeros than any precision allows: the caller's precision check refuses it.
        let zeros = usize::try_from(shift).ok()?.min(1024);
        digits.extend(std::iter::repeat_n('0', zeros));
    } else {
        let cut = usize::try_from(shift.unsigned_abs())
            .ok()?
            .min(digits.len());
        let (keep, dropped) = digits.split_at(digits.len() - cut);
        if dropped.bytes().any(|b| b != b'0') {
            return None;
        }
        digits = keep.to_owned();
    }
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    Some((negative && digits != "0", digits.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_numerals_scale_exactly_or_not_at_all() {
        for (text, scale, want) in [
            ("12.34", 2, Some((false, "1234"))),
            ("12.3", 2, Some((false, "1230"))),
            ("-0.5", 1, Some((true, "5"))),
            ("-0", 2, Some((false, "0"))),
            ("12.340", 2, Some((false, "1234"))),
            ("1e3", 2, Some((false, "100000"))),
            ("1.5E-1", 2, Some((false, "15"))),
            ("0012", 0, Some((false, "12"))),
            ("12.345", 2, None),
            ("1.", 0, Some((false, "1"))),
            (".5", 1, Some((false, "5"))),
            ("", 0, None),
            (".", 0, None),
            ("1,5", 1, None),
            ("NaN", 0, None),
            ("+1", 0, None),
            ("1e", 0, None),
        ] {
            let got = unscaled(text, scale);
            let want = want.map(|(n, d)| (n, d.to_owned()));
            assert_eq!(got, want, "{text:?} at scale {scale}");
        }
    }

    #[test]
    fn timestamps_from_numbers_or_rfc3339() {
        let at = Json::String("2024-05-01T12:00:00.5+02:00".into());
        assert_eq!(timestamp(Unit::Millis, false, &at), Some(1_714_557_600_500));
        assert_eq!(
            timestamp(Unit::Micros, false, &at),
            Some(1_714_557_600_500_000)
        );
        assert_eq!(timestamp(Unit::Millis, false, &Json::from(7)), Some(7));
        // A local timestamp has no offset; an instant must have one.
        let local = Json::String("2024-05-01T10:00:00.5".into());
        assert_eq!(
            timestamp(Unit::Millis, true, &local),
            Some(1_714_557_600_500)
        );
        assert_eq!(timestamp(Unit::Millis, false, &local), None);
    }
}
