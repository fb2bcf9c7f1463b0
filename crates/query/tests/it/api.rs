//! `POST /api/sql` in-process (`tower::ServiceExt::oneshot`) and over a real socket.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clickstream_query::{MAX_BODY_BYTES, QueryEngine, QueryResponse, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::fixture;

async fn app() -> (fixture::FixtureLake, axum::Router) {
    let fixture = fixture::build().await;
    let engine = QueryEngine::new(fixture.lake.clone())
        .await
        .expect("engine");
    (fixture, router(engine))
}

fn post(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::builder().method("POST").uri("/api/sql");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).expect("request")
}

fn sql(statement: &str) -> Request<Body> {
    post(
        Some("application/json"),
        json!({ "sql": statement }).to_string(),
    )
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).expect("JSON body");
    (status, body)
}

#[tokio::test]
async fn answers_a_query_with_columns_and_typed_rows() {
    let (_fixture, app) = app().await;
    let (status, body) = send(
        &app,
        sql(
            "SELECT id, type, customer_id, event_time, event_date, event_time_valid \
             FROM events WHERE id IN (5, 9, 32) ORDER BY id",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: QueryResponse = serde_json::from_value(body.clone()).expect("shape");
    let names: Vec<&str> = response.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "type",
            "customer_id",
            "event_time",
            "event_date",
            "event_time_valid"
        ]
    );
    assert_eq!(response.columns[0].data_type, "Int64");
    assert_eq!(response.row_count, 3);
    assert!(response.elapsed_ms >= 0.0);
    assert_eq!(
        body["rows"],
        json!([
            {"id": 5, "type": "page_view", "customer_id": 1002,
             "event_time": "2024-03-01T10:00:00Z", "event_date": "2024-03-01",
             "event_time_valid": true},
            {"id": 9, "type": "page_view", "customer_id": null,
             "event_time": "2024-03-01T11:00:00Z", "event_date": "2024-03-01",
             "event_time_valid": true},
            {"id": 32, "type": "page_view", "customer_id": 1004,
             "event_time": null, "event_date": null, "event_time_valid": false},
        ])
    );
}

#[tokio::test]
async fn answers_400_for_invalid_and_rejected_sql() {
    let (_fixture, app) = app().await;
    for statement in [
        "SELECT nope FROM events",
        "SELEC 1",
        "DROP TABLE events",
        "COPY events TO '/tmp/x.csv'",
    ] {
        let (status, body) = send(&app, sql(statement)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{statement}: {body}");
        assert_eq!(body["status"], "error");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, body) = send(&app, sql("COPY events TO '/tmp/x.csv'")).await;
    assert_eq!(
        body["message"],
        "only read-only queries are allowed: COPY writes files"
    );
}

#[tokio::test]
async fn answers_400_for_a_body_that_is_not_a_sql_request() {
    let (_fixture, app) = app().await;
    for body in [
        "not json",
        "[]",
        r#"{"query": "SELECT 1"}"#,
        r#"{"sql": 1}"#,
    ] {
        let (status, reply) = send(&app, post(Some("application/json"), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["status"], "error");
    }
}

#[tokio::test]
async fn answers_415_without_a_json_content_type() {
    let (_fixture, app) = app().await;
    let body = json!({"sql": "SELECT 1"}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, reply) = send(&app, post(content_type, body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(reply["status"], "error");
    }
    let (status, _) = send(&app, post(Some("application/json; charset=utf-8"), body)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn answers_413_for_a_body_over_64_kib() {
    let (_fixture, app) = app().await;
    let padding = " ".repeat(MAX_BODY_BYTES);
    let body = json!({ "sql": format!("SELECT 1{padding}") }).to_string();
    let (status, reply) = send(&app, post(Some("application/json"), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply["status"], "error");
}

#[tokio::test]
async fn takes_a_gzip_statement_and_refuses_an_unknown_coding_with_415() {
    let (_fixture, app) = app().await;
    let json = json!({ "sql": "SELECT 1 AS one" }).to_string();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, json.as_bytes()).expect("gzip");
    let coded = |encoding: &str, body: Vec<u8>| {
        let mut request = post(Some("application/json"), body);
        let value = encoding.parse().expect("header");
        request
            .headers_mut()
            .insert(header::CONTENT_ENCODING, value);
        request
    };
    let body = gzip.finish().expect("gzip");
    let (status, reply) = send(&app, coded("gzip", body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["rows"], json!([{"one": 1}]));
    let (status, reply) = send(&app, coded("compress", json.into_bytes())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply["message"]
            .as_str()
            .expect("reason")
            .contains("compress")
    );
}

#[tokio::test]
async fn answers_405_for_other_methods() {
    let (_fixture, app) = app().await;
    let request = Request::builder()
        .method("GET")
        .uri("/api/sql")
        .body(Body::empty())
        .expect("request");
    let (status, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["status"], "error");
}

#[tokio::test]
async fn serves_queries_over_a_real_socket() {
    let (_fixture, app) = app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{address}/api/sql"))
        .json(&json!({"sql": "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC, type LIMIT 2"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["rows"],
        json!([{"type": "page_view", "n": 14}, {"type": "add_to_cart", "n": 5}])
    );
    assert_eq!(body["row_count"], 2);
    server.abort();
}

#[tokio::test]
async fn answers_400_naming_the_limit_for_statements_nested_too_deeply() {
    let (_fixture, app) = app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{address}/api/sql");
    let client = reqwest::Client::new();

    let or_chain = (0..3_000)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    for statement in [
        format!("SELECT {}", vec!["1"; 2_000].join("+")),
        format!("SELECT * FROM events WHERE {or_chain}"),
        format!("SELECT {}1{}", "(".repeat(3_000), ")".repeat(3_000)),
        crate::limits::nested_scalar_subqueries(100),
    ] {
        let response = client
            .post(&url)
            .json(&json!({ "sql": statement }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "error");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.starts_with("statement too complex: ") && message.contains("exceeds the limit"),
            "{message}"
        );
    }
    let response = client
        .post(&url)
        .json(&json!({"sql": "SELECT count(*) AS n FROM events"}))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["rows"], json!([{"n": 32}]));
    server.abort();
}
