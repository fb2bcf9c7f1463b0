//! In-process checks of the router (tower `oneshot`): the body limit from the config.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clickstream_registry::{RegistryServerConfig, SchemaStore, router_with_config};
use tower::ServiceExt;

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SchemaStore::open(dir.path()).expect("open"));
    let config = RegistryServerConfig {
        max_body_bytes: 256,
        ..RegistryServerConfig::default()
    };
    let app = router_with_config(store, &config, &clickstream_edge::AdminAuth::open());
    let padding = " ".repeat(300);
    let request = Request::post("/subjects/s/versions")
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Body::from(format!(
            r#"{{"schema": "\"string\""{padding}}}"#
        )))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["error_code"], 413);

    let request = Request::post("/subjects/s/versions")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"schema": "\"string\""}"#))
        .expect("request");
    let response = app.oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}
