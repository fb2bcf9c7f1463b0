//! A site's own, wider events: the seed's raw schema evolved with seventeen optional fields
//! inside `event` (30 fields in all), covering what real sites add (prices and currencies,
//! cart lines, experiment variants, consent, app versions) and every kind of Avro type the
//! pipeline maps: primitives, an enum, a record, arrays, a map and the logical types.
//!
//! `clickstream bench ingest --shape wide` registers this version under the raw subject
//! (a compatible version: every new field is optional with a null default) and sends events
//! that fill it, so the benchmark measures validation, encoding, decoding and the lake with
//! a schema that is data, not the one the binary was built with.

use rand::Rng;
use serde_json::{Value, json};

use crate::Object;

/// The subject of the raw topic's values (the seed's name).
pub const RAW_SUBJECT: &str = "acme.clickstream.raw.events-value";

/// The fields the wide version adds inside `event`, in order.
fn added_fields() -> Vec<Value> {
    let optional =
        |name: &str, ty: Value| json!({"name": name, "type": ["null", ty], "default": null});
    vec![
        optional("price", json!("double")),
        optional(
            "currency",
            json!({"type": "enum", "name": "Currency", "symbols": ["EUR", "USD", "GBP", "CHF"]}),
        ),
        optional("quantity", json!("int")),
        optional(
            "cart",
            json!({"type": "array", "items": {"type": "record", "name": "CartLine", "fields": [
                {"name": "sku", "type": "string"},
                {"name": "quantity", "type": "int"},
                {"name": "unit_price", "type": "double"}
            ]}}),
        ),
        optional("experiments", json!({"type": "map", "values": "string"})),
        optional(
            "variant",
            json!({"type": "record", "name": "Variant", "fields": [
                {"name": "name", "type": "string"},
                {"name": "bucket", "type": "int"}
            ]}),
        ),
        optional("app_version", json!("string")),
        optional("consent", json!("boolean")),
        optional(
            "sent_at",
            json!({"type": "long", "logicalType": "timestamp-millis"}),
        ),
        optional(
            "amount",
            json!({"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}),
        ),
        optional(
            "request_uuid",
            json!({"type": "string", "logicalType": "uuid"}),
        ),
        optional("discount", json!("float")),
        optional("coupon", json!("string")),
        optional("screen_width", json!("int")),
        optional("screen_height", json!("int")),
        optional("tags", json!({"type": "array", "items": "string"})),
        optional("birth_date", json!({"type": "int", "logicalType": "date"})),
    ]
}

/// Why the wide version could not be made or registered.
#[derive(Debug, thiserror::Error)]
pub enum WideError {
    /// The registry's latest raw schema has no record field `event` to widen.
    #[error("the raw subject's latest schema has no record field 'event': {0}")]
    NoEventRecord(String),
    /// The registry answered something else than the schema or id asked for.
    #[error("schema registry at {url}: {reason}")]
    Registry {
        /// The request's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// `schema` (a raw event schema as JSON text) with the wide fields appended to the `event`
/// record; fields it already has are left as they are, so widening twice changes nothing.
pub fn widen_schema(schema: &str) -> Result<String, WideError> {
    let bad = || WideError::NoEventRecord(schema.chars().take(200).collect());
    let mut root: Value = serde_json::from_str(schema).map_err(|_| bad())?;
    let event_fields = root
        .get_mut("fields")
        .and_then(Value::as_array_mut)
        .and_then(|fields| fields.iter_mut().find(|f| f["name"] == "event"))
        .and_then(|event| event.get_mut("type"))
        .and_then(|ty| ty.get_mut("fields"))
        .and_then(Value::as_array_mut)
        .ok_or_else(bad)?;
    for field in added_fields() {
        if !event_fields.iter().any(|f| f["name"] == field["name"]) {
            event_fields.push(field);
        }
    }
    Ok(root.to_string())
}

/// Registers the wide version of the raw subject's latest schema at `registry` (a base
/// URL) and returns its id (the existing id when it is registered already).
pub async fn register_wide(registry: &str) -> Result<u32, WideError> {
    let client = reqwest::Client::new();
    let base = registry.trim_end_matches('/');
    let latest_url = format!("{base}/subjects/{RAW_SUBJECT}/versions/latest");
    let latest: Value = get_json(client.get(&latest_url), &latest_url).await?;
    let schema = latest["schema"]
        .as_str()
        .ok_or_else(|| WideError::Registry {
            url: latest_url.clone(),
            reason: format!("no schema in {latest}"),
        })?;
    let url = format!("{base}/subjects/{RAW_SUBJECT}/versions");
    let body = json!({"schema": widen_schema(schema)?});
    let request = client
        .post(&url)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.to_string());
    let answer = get_json(request, &url).await?;
    answer["id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| WideError::Registry {
            url,
            reason: format!("no id in {answer}"),
        })
}

async fn get_json(request: reqwest::RequestBuilder, url: &str) -> Result<Value, WideError> {
    let failed = |reason: String| WideError::Registry {
        url: url.to_string(),
        reason,
    };
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        return Err(failed(format!("{status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| failed(format!("{e}: {text}")))
}

/// Fills the wide fields of `event` (the generated event's `event` object) with values
/// that conform to [`widen_schema`]'s fields, a few of them null as optional fields are.
pub fn fill_wide_fields(event: &mut Object, rng: &mut impl Rng) {
    const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];
    let cents: u32 = rng.random_range(100..100_000);
    let lines: usize = rng.random_range(0..4);
    let cart: Vec<Value> = (0..lines)
        .map(|i| {
            json!({"sku": format!("SKU-{:05}", rng.random_range(0..50_000u32) + i as u32),
                   "quantity": rng.random_range(1..5), "unit_price": f64::from(rng.random_range(99..9_999u32)) / 100.0})
        })
        .collect();
    let fields = [
        ("price", json!(f64::from(cents) / 100.0)),
        (
            "currency",
            json!(CURRENCIES[rng.random_range(0..CURRENCIES.len())]),
        ),
        ("quantity", json!(rng.random_range(1..10))),
        ("cart", json!(cart)),
        (
            "experiments",
            json!({"checkout": if rng.random_bool(0.5) { "A" } else { "B" }, "search": "control"}),
        ),
        (
            "variant",
            json!({"name": "new-header", "bucket": rng.random_range(0..100)}),
        ),
        (
            "app_version",
            json!(format!(
                "4.{}.{}",
                rng.random_range(0..20),
                rng.random_range(0..10)
            )),
        ),
        ("consent", json!(rng.random_bool(0.8))),
        (
            "sent_at",
            json!(1_733_400_000_000_i64 + rng.random_range(0..86_400_000_i64)),
        ),
        (
            "amount",
            json!(format!("{}.{:02}", cents / 100, cents % 100)),
        ),
        (
            "request_uuid",
            json!(uuid::Uuid::from_u128(rng.random()).to_string()),
        ),
        (
            "discount",
            json!(f64::from(rng.random_range(0..50u32)) / 100.0),
        ),
        (
            "coupon",
            if rng.random_bool(0.2) {
                json!("WINTER10")
            } else {
                Value::Null
            },
        ),
        (
            "screen_width",
            json!([360, 768, 1280, 1920][rng.random_range(0..4)]),
        ),
        (
            "screen_height",
            json!([640, 1024, 800, 1080][rng.random_range(0..4)]),
        ),
        (
            "tags",
            json!(["promo", "newsletter"][..rng.random_range(0..3)]),
        ),
        (
            "birth_date",
            json!(format!(
                "19{}-0{}-1{}",
                rng.random_range(50..99),
                rng.random_range(1..10),
                rng.random_range(0..10)
            )),
        ),
    ];
    for (name, value) in fields {
        event.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use clickstream_event::EventValidator;
    use clickstream_event::schemas::RAW_EVENT_SCHEMA;
    use rand::SeedableRng;

    use super::*;
    use crate::{Traffic, TrafficConfig};

    fn count_fields(schema: &Value) -> usize {
        schema["fields"].as_array().map_or(0, |fields| {
            fields
                .iter()
                .map(|f| {
                    1 + if f["type"]["type"] == "record" {
                        count_fields(&f["type"])
                    } else {
                        0
                    }
                })
                .sum()
        })
    }

    #[test]
    fn the_wide_version_has_thirty_fields_and_widening_twice_changes_nothing() {
        let wide = widen_schema(RAW_EVENT_SCHEMA).expect("widen");
        let parsed: Value = serde_json::from_str(&wide).expect("json");
        // 4 top-level + 9 seed fields in event + 17 added = 30 (fields of the added records
        // `CartLine` and `Variant` are not counted: they sit inside a union).
        assert_eq!(count_fields(&parsed), 30);
        assert_eq!(widen_schema(&wide).expect("again"), wide);
    }

    #[test]
    fn a_schema_without_an_event_record_is_refused() {
        assert!(matches!(
            widen_schema(r#"{"type":"string"}"#),
            Err(WideError::NoEventRecord(_))
        ));
    }

    #[test]
    fn filled_events_are_valid_under_the_wide_version() {
        let wide =
            Schema::parse_str(&widen_schema(RAW_EVENT_SCHEMA).expect("widen")).expect("avro");
        let validator = EventValidator::new(wide, 2).expect("validator");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let events: Vec<Value> = Traffic::new(TrafficConfig::default())
            .filter(|generated| generated.valid)
            .take(500)
            .map(|mut generated| {
                let event = generated.event.object_mut("event").expect("event object");
                fill_wide_fields(event, &mut rng);
                generated.event.to_value()
            })
            .collect();
        for (event, checked) in events
            .iter()
            .zip(validator.validate_batch(&events).expect("encoder"))
        {
            assert!(checked.is_ok(), "{event}: {checked:?}");
        }
    }
}
