//! Events a buggy or outdated client would send: each breaks the raw schema in one way
//! the seed's sample shows or a real tracker gets wrong, so the server must reject it.

use rand::Rng;
use serde_json::{Value, json};

use crate::object::{Field, Object};

/// The ways an event is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Corruption {
    /// `"id": "367858"`: a JavaScript client that stringifies ids.
    IdAsString,
    /// `"customer_id": "1404"`: the same for the customer.
    CustomerIdAsString,
    /// `user-agent` and `customer-id` instead of the schema's names (in the seed).
    HyphenatedKeys,
    /// No `timestamp`.
    MissingTimestamp,
    /// No `event` object at all (`{"id": 999003, "invalid": "data"}` in the seed).
    NoEventObject,
    /// `"type": null`.
    NullType,
    /// `"product": "3221"`.
    ProductAsString,
    /// No `ip` (a proxy that strips it).
    MissingIp,
}

const ALL: [Corruption; 8] = [
    Corruption::IdAsString,
    Corruption::CustomerIdAsString,
    Corruption::HyphenatedKeys,
    Corruption::MissingTimestamp,
    Corruption::NoEventObject,
    Corruption::NullType,
    Corruption::ProductAsString,
    Corruption::MissingIp,
];

/// Breaks `event` (built by the session model) in one randomly chosen way.
pub(crate) fn corrupt(rng: &mut impl Rng, event: &mut Object) -> Corruption {
    let corruption = ALL[rng.random_range(0..ALL.len())];
    let id = match event.get("id") {
        Some(Field::Value(Value::Number(n))) => n.as_i64().unwrap_or(0),
        _ => 0,
    };
    match corruption {
        Corruption::IdAsString => event.set("id", json!(id.to_string())),
        Corruption::NullType => event.set("type", Value::Null),
        Corruption::NoEventObject => {
            event.remove("event");
            event.set("invalid", json!("data"));
        }
        Corruption::CustomerIdAsString
        | Corruption::HyphenatedKeys
        | Corruption::MissingTimestamp
        | Corruption::ProductAsString
        | Corruption::MissingIp => {
            let Some(details) = event.object_mut("event") else {
                event.set("id", json!(id.to_string()));
                return Corruption::IdAsString;
            };
            match corruption {
                Corruption::CustomerIdAsString => {
                    let customer = match details.get("customer_id") {
                        Some(Field::Value(Value::Number(n))) => n.to_string(),
                        _ => "guest".to_string(),
                    };
                    details.set("customer_id", json!(customer));
                }
                Corruption::HyphenatedKeys => {
                    details.rename("user_agent", "user-agent");
                    details.rename("customer_id", "customer-id");
                }
                Corruption::MissingTimestamp => {
                    details.remove("timestamp");
                }
                Corruption::ProductAsString => {
                    let product = match details.get("product") {
                        Some(Field::Value(Value::Number(n))) => n.to_string(),
                        _ => "n/a".to_string(),
                    };
                    details.set("product", json!(product));
                }
                _ => {
                    details.remove("ip");
                }
            }
        }
    }
    corruption
}
