//! What `clickstream up` sets up before serving: topics, schemas, which registry.

use std::sync::Arc;

use clickstream_event::{RAW_TOPIC, UNIQUE_USERS_TOPIC};
use clickstream_registry::{RegistryClient, SchemaStore};

use crate::common::{TestPipeline, seed_events};

#[tokio::test]
async fn topics_come_from_the_csv_and_default_to_six_partitions() {
    let csv_dir = tempfile::tempdir().expect("tempdir");
    let csv = csv_dir.path().join("topics.csv");
    // The seed's file: the last line has no newline.
    std::fs::write(
        &csv,
        "acme.clickstream.raw.events,6,1\nacme.clickstream.unique.users,1,1",
    )
    .expect("write csv");
    let t = TestPipeline::start_with(|c| c.topics.partitions_csv = Some(csv.clone())).await;
    let log = t.log();
    assert_eq!(log.partition_count(RAW_TOPIC).await.expect("raw"), 6);
    assert_eq!(
        log.partition_count(UNIQUE_USERS_TOPIC).await.expect("uu"),
        1
    );
    assert_eq!(
        log.partition_count("acme.clickstream.invalid.events")
            .await
            .expect("invalid"),
        6
    );
}

#[tokio::test]
async fn an_external_registry_is_used_instead_of_serving_one() {
    // A registry in its own server, standing in for a remote one: the same Confluent API.
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SchemaStore::open(registry_dir.path()).expect("store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(clickstream_registry::serve(listener, store, async {
        let _ = stopped.await;
    }));

    let external = url.clone();
    let t = TestPipeline::start_with(move |c| c.registry.url = Some(external.into())).await;
    assert!(
        t.pipeline.registry_addr().is_none(),
        "no registry of our own"
    );
    assert_eq!(t.pipeline.registry_url(), url);

    let client = RegistryClient::new(&url).expect("client");
    let raw = client
        .latest("acme.clickstream.raw.events-value")
        .await
        .expect("raw schema registered in the external registry");
    assert!(
        client
            .latest("acme.clickstream.latest.events-value")
            .await
            .is_ok(),
        "latest schema registered too"
    );

    // Events are encoded with the external registry's id.
    let answer = t
        .collect(serde_json::to_vec(&seed_events()).expect("json"))
        .await;
    assert_eq!(answer.status(), 200);
    let records = crate::common::read_topic(t.log().as_ref(), RAW_TOPIC).await;
    let id = u32::from_be_bytes(records[0].value[1..5].try_into().expect("4 bytes"));
    assert_eq!(id, raw.id);

    let _ = stop.send(());
    server.await.expect("join").expect("server");
}

/// A registry bound to one address (not loopback's 127.0.0.1, not any-address) is reached
/// there by the rest of the process; it used to be asked at 127.0.0.1 and start-up failed.
#[tokio::test]
async fn the_own_registry_is_reached_where_it_listens() {
    let t = TestPipeline::start_with(|c| c.registry.host = "127.0.0.2".into()).await;
    let addr = t.pipeline.registry_addr().expect("served here");
    assert_eq!(addr.ip().to_string(), "127.0.0.2");
    assert!(
        t.pipeline.registry_url().contains("127.0.0.2"),
        "{}",
        t.pipeline.registry_url()
    );
    let response = t
        .collect(serde_json::to_vec(&crate::common::seed_events()[..2]).expect("json"))
        .await;
    assert_eq!(response.status(), 200);
}

/// The registry is the contract: a raw subject that already has versions is used as it is.
/// Started on a registry whose raw subject holds only a priced schema, the pipeline does
/// not add the bundled schema as a version and validates with the priced one; registered
/// as v2 while running, it is still in force after a restart.
#[tokio::test]
async fn an_existing_raw_subject_is_used_at_start_without_registering_the_bundled_schema() {
    use crate::schema_follow::{priced_event, register, schema_with_price, wire_id};
    use serde_json::json;

    let dir = tempfile::tempdir().expect("tempdir");
    let subject = clickstream_event::value_subject(RAW_TOPIC);
    let priced_id = {
        let store = SchemaStore::open(&dir.path().join("registry")).expect("store");
        store
            .register(&subject, &schema_with_price())
            .expect("registered")
            .id
    };
    let t = TestPipeline::start_in(dir.path(), |_| {}).await;
    let client = RegistryClient::new(t.pipeline.registry_url()).expect("client");
    assert_eq!(
        client.versions(&subject).await.expect("versions"),
        [1],
        "the bundled schema is not registered into an existing subject"
    );
    let sent = json!([
        priced_event(1, json!(12.5)),
        priced_event(2, json!("twelve"))
    ]);
    let answer = crate::common::json_body(t.collect(sent.to_string()).await).await;
    assert_eq!(
        (
            answer["valid_count"].clone(),
            answer["invalid_count"].clone()
        ),
        (json!(1), json!(1)),
        "{answer}"
    );
    let raw = crate::common::read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert_eq!(wire_id(&raw[0]), priced_id);
    // The processor reads the priced version too; landed, it has also finished starting,
    // so the restart below stops a running processor.
    t.wait_for_count("SELECT count(*) AS n FROM events", 1)
        .await;

    // The bundled schema as v2 (BACKWARD allows dropping the price), then a restart: v2
    // is the latest, so v2 is in force.
    let bundled = clickstream_event::schemas::RAW_EVENT_SCHEMA;
    let v2 = register(&t.http, t.pipeline.registry_url(), &subject, bundled).await;
    let t = t.restart().await;
    let client = RegistryClient::new(t.pipeline.registry_url()).expect("client");
    assert_eq!(client.versions(&subject).await.expect("versions"), [1, 2]);
    let sent = json!([priced_event(3, json!("no price in v2"))]);
    let answer = crate::common::json_body(t.collect(sent.to_string()).await).await;
    assert_eq!(answer["valid_count"], 1, "{answer}");
    let raw = crate::common::read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert!(
        raw.iter().any(|r| wire_id(r) == v2),
        "a record framed with v2"
    );
}
