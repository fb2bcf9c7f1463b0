//! Content negotiation on `Accept`, as Confluent's resources produce: the answer's type is
//! the one the client prefers among v1, default and plain JSON; 406 when it accepts none.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{RAW_EVENT, TestServer};

const V1: &str = "application/vnd.schemaregistry.v1+json";
const DEFAULT: &str = "application/vnd.schemaregistry+json";
const JSON: &str = "application/json";

/// GETs `path` with `accept` (no header when `None`); returns status, content type and body.
async fn get(server: &TestServer, path: &str, accept: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = server.http.get(format!("{}{path}", server.base));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("request reaches the server");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, content_type, body)
}

#[tokio::test]
async fn answers_in_the_type_the_client_prefers() {
    let server = TestServer::start().await;
    server.register_ok("s", RAW_EVENT).await;
    for (accept, expected) in [
        (None, V1),
        (Some(""), V1),
        (Some("*/*"), V1),
        (Some("application/*"), V1),
        (Some(V1), V1),
        (Some(DEFAULT), DEFAULT),
        (Some(JSON), JSON),
        (Some("Application/JSON; charset=utf-8"), JSON),
        // Confluent's clients send all three: the server's quality decides.
        (Some(&format!("{V1}, {DEFAULT}, {JSON}") as &str), V1),
        (Some(&format!("{JSON}, {DEFAULT}") as &str), DEFAULT),
        // The client's quality comes first...
        (Some(&format!("{V1};q=0.5, {JSON}") as &str), JSON),
        (Some("*/*;q=0.1, application/json"), JSON),
        // ...and the most specific range gives a type its quality.
        (Some(&format!("{V1};q=0, */*") as &str), DEFAULT),
        (Some("text/html, application/xhtml+xml, */*;q=0.8"), V1),
        (
            Some("text/html, not a media range, application/json;q=0.2"),
            JSON,
        ),
    ] {
        let (status, content_type, body) = get(&server, "/subjects", accept).await;
        assert_eq!(status, StatusCode::OK, "{accept:?}: {body}");
        assert_eq!(content_type, expected, "{accept:?}");
        assert_eq!(body, json!(["s"]), "{accept:?}");
    }
    // Errors and unescaped schemas are labelled the same way.
    let (status, content_type, _) = get(&server, "/subjects/nope/versions", Some(JSON)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, JSON)
    );
    let (status, content_type, _) = get(&server, "/schemas/ids/1/schema", Some(DEFAULT)).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, DEFAULT));
    server.stop().await;
}

#[tokio::test]
async fn refuses_with_406_what_it_cannot_produce() {
    let server = TestServer::start().await;
    server.register_ok("s", RAW_EVENT).await;
    for accept in [
        "text/html",
        "application/xml, text/*",
        "application/json;q=0",
        &format!("{V1};q=0, {DEFAULT};q=0, {JSON};q=0, text/plain") as &str,
        "*/*;q=0",
    ] {
        let (status, content_type, body) =
            get(&server, "/subjects/s/versions/1", Some(accept)).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(content_type, V1, "{accept}");
        assert_eq!(
            body,
            json!({ "error_code": 406, "message": "HTTP 406 Not Acceptable" }),
            "{accept}"
        );
    }
    // A POST is refused before anything is registered.
    let refused = server
        .http
        .post(format!("{}/subjects/t/versions", server.base))
        .header("accept", "text/html")
        .header("content-type", V1)
        .body(json!({ "schema": RAW_EVENT }).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(subjects, json!(["s"]));
    // An unknown path is 404 whatever is accepted, as routing comes first.
    let (status, _, body) = get(&server, "/no/such/route", Some("text/html")).await;
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    server.stop().await;
}
