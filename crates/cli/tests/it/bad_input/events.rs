//! Events over the per-event size limit: each becomes an invalid event, its batch accepted.

use serde_json::{Value, json};

use super::{Case, Expect, case};
use crate::common::seed_events;

/// A valid seed event whose JSON text is exactly `size` bytes (padding its user agent).
fn event_of_size(size: usize) -> Value {
    let mut event = seed_events()[0].clone();
    event["event"]["user_agent"] = json!("");
    let bare = serde_json::to_vec(&event).expect("json").len();
    event["event"]["user_agent"] = json!("u".repeat(size - bare));
    assert_eq!(serde_json::to_vec(&event).expect("json").len(), size);
    event
}

fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(events).expect("json")
}

/// Batches with events over `max_event_bytes`, and the counts each must get.
pub fn cases(max_event_bytes: usize) -> Vec<Case> {
    use Expect::*;
    let over = max_event_bytes + 1;
    let good = seed_events()[0].clone();
    let big = event_of_size(max_event_bytes + 20_000);
    let huge_string = json!("s".repeat(over));
    let nested = json!({"id": 1, "x": vec![vec![1; 10]; over / 20]});
    let accents = json!({"id": 1, "type": "é".repeat(over / 2)});
    vec![
        case(
            "one event one byte over the limit",
            batch(&[event_of_size(over)]),
            AllInvalid(1),
        ),
        case(
            "one event exactly at the limit",
            batch(&[event_of_size(max_event_bytes)]),
            Counts {
                valid: 1,
                invalid: 0,
            },
        ),
        case(
            "an oversized event among valid ones",
            batch(&[good.clone(), big.clone(), good.clone()]),
            Counts {
                valid: 2,
                invalid: 1,
            },
        ),
        case(
            "two oversized events",
            batch(&[big.clone(), big.clone()]),
            AllInvalid(2),
        ),
        case(
            "an oversized single object",
            serde_json::to_vec(&big).expect("json"),
            AllInvalid(1),
        ),
        case(
            "an oversized string as an event",
            batch(&[huge_string]),
            AllInvalid(1),
        ),
        case(
            "an oversized event of nested arrays",
            batch(&[nested]),
            AllInvalid(1),
        ),
        case(
            "an oversized event of two-byte characters",
            batch(&[accents]),
            AllInvalid(1),
        ),
        case(
            "an oversized event that is also invalid",
            batch(&[json!({"id": "x".repeat(over)})]),
            AllInvalid(1),
        ),
    ]
}
