//! Soft and permanent deletes of subjects and versions, with Confluent's two-step rule.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error, record};

fn v(n: usize) -> String {
    let fields: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"name":"f{i}","type":"long","default":0}}"#))
        .collect();
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    record("R", &refs)
}

#[tokio::test]
async fn soft_deleted_subject_is_hidden_but_its_ids_still_resolve() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(1)).await;
    server.register_ok("s", &v(2)).await;
    let (status, deleted) = server.delete("/subjects/s").await;
    assert_eq!((status, deleted), (StatusCode::OK, json!([1, 2])));

    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(subjects, json!([]));
    let (_, with_deleted) = server.get("/subjects?deleted=true").await;
    assert_eq!(with_deleted, json!(["s"]));
    let (_, deleted_only) = server.get("/subjects?deleted_only=true").await;
    assert_eq!(deleted_only, json!(["s"]));
    assert_error(&server.get("/subjects/s/versions").await, 404, 40401);
    assert_error(&server.get("/subjects/s/versions/latest").await, 404, 40401);
    let (_, versions) = server.get("/subjects/s/versions?deleted=true").await;
    assert_eq!(versions, json!([1, 2]));
    let (status, old) = server.get("/subjects/s/versions/1?deleted=true").await;
    assert_eq!((status, old["id"].as_u64()), (StatusCode::OK, Some(1)));
    let (status, _) = server.get("/schemas/ids/2").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "consumers can still decode old data"
    );
    let (status, _) = server
        .post("/subjects/s?deleted=true", json!({ "schema": v(1) }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &server.post("/subjects/s", json!({ "schema": v(1) })).await,
        404,
        40401,
    );

    assert_error(&server.delete("/subjects/s").await, 404, 40404);
    server.stop().await;
}

#[tokio::test]
async fn permanent_subject_delete_needs_a_soft_delete_first() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(1)).await;
    server.set_level("s", "FULL").await;
    assert_error(
        &server.delete("/subjects/s?permanent=true").await,
        404,
        40405,
    );
    server.delete("/subjects/s").await;
    let (status, deleted) = server.delete("/subjects/s?permanent=true").await;
    assert_eq!((status, deleted), (StatusCode::OK, json!([1])));
    let (_, subjects) = server.get("/subjects?deleted=true").await;
    assert_eq!(subjects, json!([]));
    assert_error(
        &server.delete("/subjects/s?permanent=true").await,
        404,
        40401,
    );
    assert_error(&server.get("/config/s").await, 404, 40408);
    assert_error(&server.delete("/subjects/never").await, 404, 40401);

    // After a hard delete numbering restarts, and the schema keeps its id.
    assert_eq!(server.register_ok("s", &v(1)).await, 1);
    let (_, latest) = server.get("/subjects/s/versions/latest").await;
    assert_eq!(latest["version"], 1);
    server.stop().await;
}

#[tokio::test]
async fn reregistering_after_a_soft_delete_continues_the_version_numbers() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(1)).await;
    server.register_ok("s", &v(2)).await;
    server.delete("/subjects/s").await;
    assert_eq!(server.register_ok("s", &v(1)).await, 1, "same id");
    let (_, latest) = server.get("/subjects/s/versions/latest").await;
    assert_eq!(
        (latest["version"].as_u64(), latest["id"].as_u64()),
        (Some(3), Some(1))
    );
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([3]));
    let (_, all) = server.get("/subjects/s/versions?deleted=true").await;
    assert_eq!(all, json!([1, 2, 3]));
    server.stop().await;
}

#[tokio::test]
async fn version_delete_is_soft_then_permanent() {
    let server = TestServer::start().await;
    for n in 1..=3 {
        server.register_ok("s", &v(n)).await;
    }
    assert_error(
        &server.delete("/subjects/s/versions/2?permanent=true").await,
        404,
        40407,
    );
    let (status, deleted) = server.delete("/subjects/s/versions/2").await;
    assert_eq!((status, deleted), (StatusCode::OK, json!(2)));
    assert_error(&server.delete("/subjects/s/versions/2").await, 404, 40406);
    assert_error(&server.get("/subjects/s/versions/2").await, 404, 40402);
    let (_, deleted) = server.delete("/subjects/s/versions/2?permanent=true").await;
    assert_eq!(deleted, json!(2));
    assert_error(
        &server.get("/subjects/s/versions/2?deleted=true").await,
        404,
        40402,
    );

    let (_, deleted) = server.delete("/subjects/s/versions/latest").await;
    assert_eq!(deleted, json!(3));
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([1]));
    assert_error(&server.delete("/subjects/s/versions/9").await, 404, 40402);
    assert_error(&server.delete("/subjects/s/versions/x").await, 422, 42202);
    assert_error(
        &server.delete("/subjects/none/versions/1").await,
        404,
        40401,
    );
    // The id of a soft-deleted version is not listed as in use.
    let (_, usages) = server.get("/schemas/ids/3/versions").await;
    assert_eq!(usages, json!([]));
    let (_, usages) = server.get("/schemas/ids/3/versions?deleted=true").await;
    assert_eq!(usages, json!([{"subject": "s", "version": 3}]));
    server.stop().await;
}
