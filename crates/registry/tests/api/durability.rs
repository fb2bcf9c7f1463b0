//! State survives restarts; one store per directory; concurrent registrations stay consistent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use clickstream_registry::{RegistryError, SchemaStore, Visibility};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{RAW_EVENT, TestServer, record};

#[tokio::test]
async fn ids_versions_deletes_and_levels_survive_a_restart() {
    let server = TestServer::start().await;
    let other = record("Other", &[r#"{"name":"x","type":"int"}"#]);
    let raw_id = server.register_ok("raw-value", RAW_EVENT).await;
    let other_id = server.register_ok("other", &other).await;
    server.register_ok("copy", RAW_EVENT).await;
    server.set_level("other", "FULL_TRANSITIVE").await;
    server
        .put("/config", json!({ "compatibility": "FORWARD" }))
        .await;
    server.delete("/subjects/copy").await;
    let (_, before) = server.get("/subjects/raw-value/versions/1").await;

    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;

    let (status, after) = server.get("/subjects/raw-value/versions/1").await;
    assert_eq!((status, &after), (StatusCode::OK, &before));
    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(subjects, json!(["other", "raw-value"]));
    let (_, deleted) = server.get("/subjects?deleted=true").await;
    assert_eq!(deleted, json!(["copy", "other", "raw-value"]));
    let (_, level) = server.get("/config/other").await;
    assert_eq!(level, json!({ "compatibilityLevel": "FULL_TRANSITIVE" }));
    let (_, level) = server.get("/config").await;
    assert_eq!(level, json!({ "compatibilityLevel": "FORWARD" }));
    // Same ids after the restart, and new ids continue after the old ones.
    assert_eq!(server.register_ok("raw-value", RAW_EVENT).await, raw_id);
    assert_eq!(server.register_ok("other", &other).await, other_id);
    let third = record("Third", &[r#"{"name":"y","type":"int"}"#]);
    assert_eq!(server.register_ok("third", &third).await, 3);
    // The soft-deleted subject continues its numbering.
    server.register_ok("copy", RAW_EVENT).await;
    let (_, copy) = server.get("/subjects/copy/versions/latest").await;
    assert_eq!(copy["version"], 2);
    server.stop().await;
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SchemaStore::open(dir.path()).expect("first open");
    let second = SchemaStore::open(dir.path());
    assert!(
        matches!(second, Err(RegistryError::StoreLocked(_))),
        "{second:?}"
    );
    drop(first);
    SchemaStore::open(dir.path()).expect("open after the first closed");
}

#[test]
fn store_api_survives_reopen_without_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SchemaStore::open(dir.path()).expect("open");
        let first = store.register("s", RAW_EVENT).expect("register");
        assert!(first.created);
        let again = store.register("s", RAW_EVENT).expect("register again");
        assert_eq!((again.id, again.version, again.created), (1, 1, false));
        store
            .delete_version("s", clickstream_registry::VersionSpec::Latest, false)
            .expect("soft delete");
    }
    let store = SchemaStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store
            .versions("s", Visibility::IncludeDeleted)
            .expect("versions"),
        vec![1]
    );
    assert!(store.versions("s", Visibility::Live).is_err());
    assert_eq!(
        store.schema(1).expect("schema").canonical_form(),
        apache_avro::Schema::parse_str(RAW_EVENT)
            .expect("parse")
            .canonical_form()
    );
}

#[tokio::test]
async fn concurrent_registrations_get_one_id_per_schema_and_distinct_versions() {
    let server = Arc::new(TestServer::start().await);
    // NONE so that every schema may follow every other in any order.
    server.set_level("sub0", "NONE").await;
    server.set_level("sub1", "NONE").await;
    let schemas: Vec<String> = (0..4)
        .map(|i| record("R", &[&format!(r#"{{"name":"f{i}","type":"long"}}"#)]))
        .collect();
    let mut tasks = Vec::new();
    for round in 0..3 {
        for (i, schema) in schemas.iter().enumerate() {
            let server = Arc::clone(&server);
            let schema = schema.clone();
            let subject = format!("sub{}", (i + round) % 2);
            tasks.push(tokio::spawn(async move {
                let (status, body) = server.register(&subject, &schema).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                (schema, body["id"].as_u64().expect("id"))
            }));
        }
    }
    let mut ids: HashMap<String, HashSet<u64>> = HashMap::new();
    for task in tasks {
        let (schema, id) = task.await.expect("task");
        ids.entry(schema).or_default().insert(id);
    }
    for (schema, set) in &ids {
        assert_eq!(set.len(), 1, "one id for {schema}: {set:?}");
    }
    let all: HashSet<u64> = ids.values().flatten().copied().collect();
    assert_eq!(
        all.len(),
        schemas.len(),
        "distinct schemas get distinct ids"
    );
    for subject in ["sub0", "sub1"] {
        let (_, versions) = server.get(&format!("/subjects/{subject}/versions")).await;
        // Each subject saw every schema (i + round covers both parities), once each.
        assert_eq!(versions, json!([1, 2, 3, 4]), "{subject}");
    }
    let server = Arc::try_unwrap(server).unwrap_or_else(|_| panic!("tasks are done"));
    server.stop().await;
}
