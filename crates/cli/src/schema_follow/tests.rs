//! The raw schema source against a real registry: its store, served over HTTP on loopback.

use std::time::Duration;

use clickstream_registry::CompatibilityLevel;
use serde_json::{Value, json};

use super::*;

/// A registry served on loopback until dropped.
struct Registry {
    store: Arc<SchemaStore>,
    client: RegistryClient,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Registry {
    async fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SchemaStore::open(dir.path()).expect("store"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(clickstream_registry::serve(
            listener,
            Arc::clone(&store),
            async {
                let _ = stopped.await;
            },
        ));
        Registry {
            store,
            client: RegistryClient::new(&url).expect("client"),
            stop: Some(stop),
            _dir: dir,
        }
    }

    fn versions(&self) -> Vec<u32> {
        self.store
            .versions(&value_subject(RAW_TOPIC), Default::default())
            .expect("versions")
    }

    fn register(&self, schema: &str) -> u32 {
        self.store
            .register(&value_subject(RAW_TOPIC), schema)
            .expect("registered")
            .id
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The bundled raw schema plus an optional `event.price` (`["null","double"]`).
fn with_price() -> String {
    let mut schema: Value = serde_json::from_str(RAW_EVENT_SCHEMA).expect("json");
    schema["fields"][3]["type"]["fields"]
        .as_array_mut()
        .expect("event fields")
        .push(json!({"name": "price", "type": ["null", "double"], "default": null}));
    schema.to_string()
}

fn priced_event(price: Value) -> Value {
    json!({"id": 1, "type": "purchase", "event": {"user_agent": "ua", "ip": "10.0.0.1",
        "timestamp": "2024-01-01T00:00:00Z", "price": price}})
}

/// The schema id `source` frames an event with, and whether a string price is refused.
fn framing(source: &dyn ValidatorSource) -> (u32, bool) {
    let validator = source.current();
    let good = priced_event(json!(12.5));
    let bad = priced_event(json!("twelve"));
    let results = validator.validate_batch([&good, &bad]).expect("encodes");
    let payload = &results[0].as_ref().expect("valid").payload;
    let id = clickstream_event::wire::split(payload).expect("framed").0;
    (id, results[1].is_err())
}

const NEVER: Duration = Duration::ZERO;

#[tokio::test]
async fn a_version_registered_in_this_process_applies_to_the_next_request() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, Some(Arc::clone(&registry.store)), NEVER)
        .await
        .expect("starts");
    let v1 = raw.status().schema_id;
    assert_eq!(framing(raw.as_ref()), (v1, false), "v1 ignores the price");
    assert_eq!(
        registry.versions(),
        [1],
        "the bundled schema, registered once"
    );

    let v2 = registry.register(&with_price());
    assert_ne!(v1, v2);
    assert_eq!(framing(raw.as_ref()), (v2, true), "the very next request");
    let status = raw.status();
    assert_eq!((status.schema_id, status.version), (v2, 2));
    assert_eq!(status.problem, None);
    assert!(!raw.polls());
    assert!(
        raw.poller(&registry.client, async {}).is_none(),
        "nothing to poll"
    );
}

#[tokio::test]
async fn changes_elsewhere_in_the_store_keep_the_validator() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, Some(Arc::clone(&registry.store)), NEVER)
        .await
        .expect("starts");
    let before = raw.current();
    registry
        .store
        .register("other-value", r#""string""#)
        .expect("other subject");
    let after = raw.current();
    assert!(
        Arc::ptr_eq(&before, &after),
        "not rebuilt for another subject"
    );
}

#[tokio::test]
async fn a_latest_version_that_is_not_a_record_keeps_the_one_in_force() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, Some(Arc::clone(&registry.store)), NEVER)
        .await
        .expect("starts");
    let v1 = raw.status().schema_id;
    registry
        .store
        .set_level(Some(&value_subject(RAW_TOPIC)), CompatibilityLevel::None)
        .expect("level");
    let bad = registry.register(r#""string""#);

    assert_eq!(framing(raw.as_ref()).0, v1, "v1 stays in force");
    let status = raw.status();
    assert_eq!((status.schema_id, status.version), (v1, 1));
    let problem = status.problem.expect("the problem is shown");
    assert!(
        problem.contains(&format!("version 2 of {}", value_subject(RAW_TOPIC)))
            && problem.contains(&format!("schema id {bad}"))
            && problem.contains("not a record"),
        "{problem}"
    );

    // A usable version after it is followed again, and the problem is gone.
    let v3 = registry.register(&with_price());
    assert_eq!(framing(raw.as_ref()), (v3, true));
    assert_eq!(raw.status().problem, None);
}

#[tokio::test]
async fn polling_swaps_when_the_latest_id_changes() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, None, Duration::from_secs(60))
        .await
        .expect("starts");
    assert!(raw.polls());
    let never = RawSchema::start(&registry.client, None, NEVER)
        .await
        .expect("starts");
    assert!(
        never.poller(&registry.client, async {}).is_none(),
        "0: never"
    );
    let v1 = raw.status().schema_id;
    raw.poll_once(&registry.client).await;
    assert_eq!(framing(raw.as_ref()).0, v1, "nothing new");

    let v2 = registry.register(&with_price());
    assert_eq!(framing(raw.as_ref()).0, v1, "not before the next poll");
    raw.poll_once(&registry.client).await;
    assert_eq!(framing(raw.as_ref()), (v2, true));
    assert_eq!(raw.status().version, 2);

    // Deleting v2 makes v1 the latest again: following goes back too.
    registry
        .store
        .delete_version(&value_subject(RAW_TOPIC), VersionSpec::Number(2), false)
        .expect("soft delete");
    raw.poll_once(&registry.client).await;
    assert_eq!(framing(raw.as_ref()), (v1, false));
}

#[tokio::test]
async fn polling_a_registry_that_is_gone_keeps_the_schema_without_a_problem() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, None, Duration::from_secs(60))
        .await
        .expect("starts");
    let v1 = raw.status().schema_id;
    // Nothing listens on port 1: connections are refused.
    let gone = RegistryClient::new("http://127.0.0.1:1").expect("client");
    raw.poll_once(&gone).await;
    let status = raw.status();
    assert_eq!(status.schema_id, v1);
    assert_eq!(
        status.problem, None,
        "an outage is readiness' registry check, not a bad version"
    );
}

#[tokio::test]
async fn the_poller_stops_when_told() {
    let registry = Registry::start().await;
    let raw = RawSchema::start(&registry.client, None, Duration::from_millis(10))
        .await
        .expect("starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let poller = raw
        .poller(&registry.client, async {
            let _ = stopped.await;
        })
        .expect("a registry elsewhere is polled");
    let poller = tokio::spawn(poller);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .expect("stops")
        .expect("joins")
        .expect("ends well");
}

#[tokio::test]
async fn start_takes_the_existing_latest_version_without_registering_the_bundled_one() {
    let registry = Registry::start().await;
    // Only the priced schema: registering the bundled one would add version 2.
    let priced = registry.register(&with_price());
    let raw = RawSchema::start(&registry.client, Some(Arc::clone(&registry.store)), NEVER)
        .await
        .expect("starts");
    assert_eq!(registry.versions(), [1]);
    assert_eq!(framing(raw.as_ref()), (priced, true));
}

#[tokio::test]
async fn two_starters_on_an_empty_subject_end_with_the_same_id() {
    let registry = Registry::start().await;
    let (a, b) = tokio::join!(
        RawSchema::start(&registry.client, None, NEVER),
        RawSchema::start(&registry.client, None, NEVER),
    );
    let (a, b) = (a.expect("a starts"), b.expect("b starts"));
    assert_eq!(a.status().schema_id, b.status().schema_id);
    assert_eq!(registry.versions(), [1]);
}

#[tokio::test]
async fn start_fails_when_the_latest_version_cannot_be_used() {
    let registry = Registry::start().await;
    registry
        .store
        .set_level(Some(&value_subject(RAW_TOPIC)), CompatibilityLevel::None)
        .expect("level");
    registry.register(RAW_EVENT_SCHEMA);
    registry.register(r#""string""#);
    let err = RawSchema::start(&registry.client, None, NEVER)
        .await
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("version 2 of") && text.contains("not a record"),
        "{text}"
    );
}
