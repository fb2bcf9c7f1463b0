//! Events of the seed's shape, varied enough that keys spread over partitions.

use rand::Rng;
use serde_json::{Value, json};

const TYPES: &[&str] = &[
    "page_view",
    "search",
    "visit_personal_recommendation",
    "add_to_cart",
    "placed_order",
    "click",
    "view",
    "purchase",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/// One valid event with id `id`: a type, a user agent, an IPv4 address, a customer (or
/// none, for anonymous visitors), a timestamp and the fields its type usually carries.
pub fn synthetic_event(rng: &mut impl Rng, id: i64) -> Value {
    let kind = TYPES[rng.random_range(0..TYPES.len())];
    let customer = (rng.random_range(0..10) > 1).then(|| rng.random_range(1..50_000i64));
    let ip = format!(
        "{}.{}.{}.{}",
        rng.random_range(1..224),
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    );
    let timestamp = format!(
        "2024-05-{:02}T{:02}:{:02}:{:02}.{:06}",
        rng.random_range(1..29),
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
        rng.random_range(0..1_000_000)
    );
    let product = rng.random_range(1..5000i64);
    let mut event = json!({
        "user_agent": USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
        "ip": ip,
        "customer_id": customer,
        "timestamp": timestamp,
    });
    match kind {
        "search" => {
            event["query"] = json!("running shoes");
            event["page"] = json!("https://xcc-webshop.com/search");
        }
        "visit_personal_recommendation" => {
            event["product"] = json!(product);
            event["position"] = json!(rng.random_range(1..10));
        }
        "add_to_cart" | "view" | "purchase" => {
            event["product"] = json!(product);
            event["page"] = json!(format!("https://xcc-webshop.com/product/{product}"));
        }
        _ => {
            event["page"] = json!("https://xcc-webshop.com/");
            event["referrer"] = json!("https://www.google.com/search?q=shoes");
        }
    }
    json!({"id": id, "type": kind, "event": event})
}
