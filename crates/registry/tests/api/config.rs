//! Global and subject compatibility levels under `/config`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error, record};

#[tokio::test]
async fn global_level_defaults_to_backward_and_can_be_changed_and_reset() {
    let server = TestServer::start().await;
    let (status, level) = server.get("/config").await;
    assert_eq!(
        (status, level),
        (StatusCode::OK, json!({ "compatibilityLevel": "BACKWARD" }))
    );
    let (status, answer) = server
        .put("/config", json!({ "compatibility": "full" }))
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({ "compatibility": "FULL" }))
    );
    let (_, level) = server.get("/config").await;
    assert_eq!(level, json!({ "compatibilityLevel": "FULL" }));
    let (status, previous) = server.delete("/config").await;
    assert_eq!(
        (status, previous),
        (StatusCode::OK, json!({ "compatibilityLevel": "FULL" }))
    );
    let (_, level) = server.get("/config").await;
    assert_eq!(level, json!({ "compatibilityLevel": "BACKWARD" }));
    server.stop().await;
}

#[tokio::test]
async fn subject_level_is_40408_until_set_unless_defaulting_to_global() {
    let server = TestServer::start().await;
    server
        .register_ok("s", &record("R", &[r#"{"name":"a","type":"long"}"#]))
        .await;
    assert_error(&server.get("/config/s").await, 404, 40408);
    let (_, level) = server.get("/config/s?defaultToGlobal=true").await;
    assert_eq!(level, json!({ "compatibilityLevel": "BACKWARD" }));

    let (_, answer) = server
        .put("/config/s", json!({ "compatibility": "NONE" }))
        .await;
    assert_eq!(answer, json!({ "compatibility": "NONE" }));
    let (_, level) = server.get("/config/s").await;
    assert_eq!(level, json!({ "compatibilityLevel": "NONE" }));
    // The subject level wins over the global one: an incompatible change goes through.
    server
        .register_ok("s", &record("R", &[r#"{"name":"a","type":"string"}"#]))
        .await;

    let (_, previous) = server.delete("/config/s").await;
    assert_eq!(previous, json!({ "compatibilityLevel": "NONE" }));
    assert_error(&server.get("/config/s").await, 404, 40408);
    assert_error(&server.delete("/config/s").await, 404, 40408);
    assert_error(&server.delete("/config/unknown").await, 404, 40401);
    server.stop().await;
}

#[tokio::test]
async fn invalid_levels_are_rejected_with_42203() {
    let server = TestServer::start().await;
    assert_error(
        &server
            .put("/config", json!({ "compatibility": "SIDEWAYS" }))
            .await,
        422,
        42203,
    );
    assert_error(&server.put("/config/s", json!({})).await, 422, 42203);
    let (_, level) = server.get("/config").await;
    assert_eq!(level, json!({ "compatibilityLevel": "BACKWARD" }));
    server.stop().await;
}

#[tokio::test]
async fn subject_mode_is_40409_unless_defaulting_to_global() {
    let server = TestServer::start().await;
    server
        .register_ok("s", &record("R", &[r#"{"name":"a","type":"long"}"#]))
        .await;
    let (status, global) = server.get("/mode").await;
    assert_eq!(
        (status, global),
        (StatusCode::OK, json!({ "mode": "READWRITE" }))
    );
    for subject in ["s", "unknown"] {
        let answer = server.get(&format!("/mode/{subject}")).await;
        assert_error(&answer, 404, 40409);
        assert_eq!(
            answer.1["message"],
            format!("Subject '{subject}' does not have subject-level mode configured")
        );
        assert_error(
            &server
                .get(&format!("/mode/{subject}?defaultToGlobal=false"))
                .await,
            404,
            40409,
        );
        let (status, mode) = server
            .get(&format!("/mode/{subject}?defaultToGlobal=true"))
            .await;
        assert_eq!(
            (status, mode),
            (StatusCode::OK, json!({ "mode": "READWRITE" })),
            "{subject}"
        );
    }
    server.stop().await;
}
