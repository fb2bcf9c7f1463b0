//! Registration, lookup, versions and schemas by id, plus the error answers around them.

use apache_avro::Schema;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{RAW_EVENT, TestServer, assert_error, record};

fn canonical(text: &str) -> String {
    Schema::parse_str(text)
        .expect("schema parses")
        .canonical_form()
}

#[tokio::test]
async fn registers_schema_and_serves_it_by_id_and_version() {
    let server = TestServer::start().await;
    let id = server.register_ok("raw-value", RAW_EVENT).await;
    assert_eq!(id, 1);

    let (status, latest) = server.get("/subjects/raw-value/versions/latest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["subject"], "raw-value");
    assert_eq!(latest["id"], 1);
    assert_eq!(latest["version"], 1);
    assert!(
        latest.get("schemaType").is_none(),
        "AVRO is implied: {latest}"
    );
    let stored = latest["schema"].as_str().expect("schema text");
    assert_eq!(canonical(stored), canonical(RAW_EVENT));

    for path in [
        "/subjects/raw-value/versions/1",
        "/subjects/raw-value/versions/-1",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, latest, "{path}");
    }

    let (status, raw) = server.get("/subjects/raw-value/versions/1/schema").await;
    assert_eq!(status, StatusCode::OK);
    let stored_json: serde_json::Value = serde_json::from_str(stored).expect("stored is JSON");
    assert_eq!(raw, stored_json, "served unescaped, as stored");

    let (status, by_id) = server.get("/schemas/ids/1?subject=raw-value").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id, json!({ "schema": stored }));

    let (_, raw_by_id) = server.get("/schemas/ids/1/schema").await;
    assert_eq!(raw_by_id, raw);

    let (_, versions) = server.get("/subjects/raw-value/versions").await;
    assert_eq!(versions, json!([1]));
    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(subjects, json!(["raw-value"]));
    let (_, types) = server.get("/schemas/types").await;
    assert_eq!(types, json!(["AVRO"]));
    let (_, root) = server.get("/").await;
    assert_eq!(root, json!({}));
    server.stop().await;
}

#[tokio::test]
async fn same_schema_twice_returns_same_id_and_no_new_version() {
    let server = TestServer::start().await;
    let first = server.register_ok("s", RAW_EVENT).await;
    let second = server.register_ok("s", RAW_EVENT).await;
    // Reformatted text (whitespace, key order) is still the same schema.
    let compact: serde_json::Value = serde_json::from_str(RAW_EVENT).expect("json");
    let third = server.register_ok("s", &compact.to_string()).await;
    assert_eq!((first, second, third), (1, 1, 1));
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([1]));
    server.stop().await;
}

#[tokio::test]
async fn same_schema_under_another_subject_reuses_the_id_at_version_one() {
    let server = TestServer::start().await;
    let v1 = record("R", &[r#"{"name":"a","type":"long"}"#]);
    let v2 = record(
        "R",
        &[
            r#"{"name":"a","type":"long"}"#,
            r#"{"name":"b","type":"long","default":0}"#,
        ],
    );
    assert_eq!(server.register_ok("one", &v1).await, 1);
    assert_eq!(server.register_ok("one", &v2).await, 2);
    assert_eq!(server.register_ok("two", &v2).await, 2, "id is global");

    let (_, two) = server.get("/subjects/two/versions/latest").await;
    assert_eq!(
        (two["id"].as_u64(), two["version"].as_u64()),
        (Some(2), Some(1))
    );

    let (_, usages) = server.get("/schemas/ids/2/versions").await;
    assert_eq!(
        usages,
        json!([{"subject": "one", "version": 2}, {"subject": "two", "version": 1}])
    );
    let (_, subjects) = server.get("/schemas/ids/2/subjects").await;
    assert_eq!(subjects, json!(["one", "two"]));
    let (_, all) = server.get("/subjects").await;
    assert_eq!(all, json!(["one", "two"]));
    server.stop().await;
}

#[tokio::test]
async fn adding_a_default_is_a_new_schema_version() {
    let server = TestServer::start().await;
    let plain = record("R", &[r#"{"name":"a","type":"long"}"#]);
    let with_default = record("R", &[r#"{"name":"a","type":"long","default":5}"#]);
    assert_eq!(server.register_ok("s", &plain).await, 1);
    assert_eq!(server.register_ok("s", &with_default).await, 2);
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([1, 2]));
    server.stop().await;
}

#[tokio::test]
async fn lookup_finds_the_version_holding_a_schema() {
    let server = TestServer::start().await;
    server.register_ok("s", RAW_EVENT).await;
    let (status, found) = server
        .post("/subjects/s", json!({ "schema": RAW_EVENT }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            found["subject"].as_str(),
            found["id"].as_u64(),
            found["version"].as_u64()
        ),
        (Some("s"), Some(1), Some(1))
    );
    assert!(found["schema"].is_string());

    let other = record("Other", &[r#"{"name":"x","type":"int"}"#]);
    assert_error(
        &server.post("/subjects/s", json!({ "schema": other })).await,
        404,
        40403,
    );
    assert_error(
        &server
            .post("/subjects/nope", json!({ "schema": RAW_EVENT }))
            .await,
        404,
        40401,
    );
    // Confluent's Python client sends Python booleans in this query string.
    let (status, _) = server
        .post(
            "/subjects/s?normalize=False&deleted=False",
            json!({ "schema": RAW_EVENT, "schemaType": "AVRO", "references": [] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn invalid_schemas_are_rejected_with_42201() {
    let server = TestServer::start().await;
    for schema in [
        r#"{"type":"recrd","name":"R","fields":[]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":"x"}]}"#,
        "not json",
        "",
    ] {
        let answer = server.register("s", schema).await;
        assert_error(&answer, 422, 42201);
    }
    let unsupported = server
        .post(
            "/subjects/s/versions",
            json!({ "schema": "{}", "schemaType": "PROTOBUF" }),
        )
        .await;
    assert_error(&unsupported, 422, 42201);
    let unknown_reference = server
        .post(
            "/subjects/s/versions",
            json!({ "schema": RAW_EVENT, "references": [{"name": "x", "subject": "y", "version": 1}] }),
        )
        .await;
    assert_error(&unknown_reference, 422, 42201);
    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(subjects, json!([]), "nothing registered");
    server.stop().await;
}

#[tokio::test]
async fn unknown_subject_version_and_id_answer_confluent_codes() {
    let server = TestServer::start().await;
    server.register_ok("s", RAW_EVENT).await;
    assert_error(&server.get("/subjects/nope/versions").await, 404, 40401);
    assert_error(
        &server.get("/subjects/nope/versions/latest").await,
        404,
        40401,
    );
    assert_error(&server.get("/subjects/s/versions/2").await, 404, 40402);
    assert_error(&server.get("/subjects/s/versions/0").await, 422, 42202);
    assert_error(&server.get("/subjects/s/versions/abc").await, 422, 42202);
    assert_error(&server.get("/schemas/ids/42").await, 404, 40403);
    assert_error(&server.get("/schemas/ids/42/versions").await, 404, 40403);
    server.stop().await;
}

/// The texts of Confluent's `Errors.java` (and its exception classes), word for word.
#[tokio::test]
async fn errors_carry_confluent_texts() {
    let server = TestServer::start().await;
    server.register_ok("s", RAW_EVENT).await;
    let other = record("Other", &[r#"{"name":"x","type":"int"}"#]);
    for (answer, code, text) in [
        (
            server.get("/subjects/nope/versions").await,
            40401,
            "Subject 'nope' not found.",
        ),
        (
            server.get("/subjects/s/versions/2").await,
            40402,
            "Version 2 not found.",
        ),
        (
            server.get("/schemas/ids/42").await,
            40403,
            "Schema 42 not found",
        ),
        (
            server.post("/subjects/s", json!({ "schema": other })).await,
            40403,
            "Schema not found",
        ),
        (
            server.get("/subjects/s/versions/abc").await,
            42202,
            "The specified version 'abc' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"",
        ),
        (
            server
                .put("/config", json!({ "compatibility": "SIDEWAYS" }))
                .await,
            42203,
            "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive",
        ),
        (
            server.get("/config/s").await,
            40408,
            "Subject 's' does not have subject-level compatibility configured",
        ),
        (
            server.delete("/subjects/s?permanent=true").await,
            40405,
            "Subject 's' was not deleted first before being permanently deleted",
        ),
        (
            server.delete("/subjects/s/versions/1?permanent=true").await,
            40407,
            "Subject 's' Version 1 was not deleted first before being permanently deleted",
        ),
    ] {
        assert_error(&answer, answer.0.as_u16(), code);
        assert_eq!(answer.1["message"], text, "{}", answer.1);
    }
    server.delete("/subjects/s").await;
    for (answer, code, text) in [
        (
            server.delete("/subjects/s").await,
            40404,
            "Subject 's' was soft deleted.Set permanent=true to delete permanently",
        ),
        (
            server.delete("/subjects/s/versions/1").await,
            40406,
            "Subject 's' Version 1 was soft deleted.Set permanent=true to delete permanently",
        ),
    ] {
        assert_error(&answer, 404, code);
        assert_eq!(answer.1["message"], text, "{}", answer.1);
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = TestServer::start().await;
    assert_error(&server.get("/no/such/route").await, 404, 404);
    assert_error(&server.get("/schemas/ids/abc").await, 404, 404);
    assert_error(
        &server.send(reqwest::Method::PATCH, "/subjects", None).await,
        405,
        405,
    );
    assert_error(&server.delete("/schemas/types").await, 405, 405);

    let url = format!("{}/subjects/s/versions", server.base);
    let bad_json = server
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    let wrong_type = server
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body(serde_json::json!({ "schema": RAW_EVENT }).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = wrong_type.json().await.expect("json error body");
    assert_eq!(body["error_code"], 415);

    for content_type in [
        "application/vnd.schemaregistry+json",
        "application/json; charset=utf-8",
    ] {
        let ok = server
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(serde_json::json!({ "schema": RAW_EVENT }).to_string())
            .send()
            .await
            .expect("send");
        assert_eq!(ok.status(), StatusCode::OK, "{content_type}");
    }
    server.stop().await;
}

/// `GET /schemas` as Confluent's `SchemasResource.getSchemas`: every version of the subjects
/// with a prefix, by subject then version, with `deleted`, `latestOnly`, `offset`, `limit`.
#[tokio::test]
async fn schema_search_lists_versions_by_prefix_like_confluent() {
    let server = TestServer::start().await;
    let v1 = record("R", &[r#"{"name":"a","type":"long"}"#]);
    let v2 = record(
        "R",
        &[
            r#"{"name":"a","type":"long"}"#,
            r#"{"name":"b","type":"long","default":0}"#,
        ],
    );
    server.register_ok("app-b", &v1).await;
    server.register_ok("app-a", &v1).await;
    server.register_ok("app-a", &v2).await;
    server.register_ok("other", RAW_EVENT).await;
    let mut entries = Vec::new();
    for path in [
        "/subjects/app-a/versions/1",
        "/subjects/app-a/versions/2",
        "/subjects/app-b/versions/1",
        "/subjects/other/versions/1",
    ] {
        let (status, entry) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        entries.push(entry);
    }
    let [a1, a2, b1, other] = <[serde_json::Value; 4]>::try_from(entries).expect("four");
    assert_eq!(
        a2,
        json!({ "subject": "app-a", "version": 2, "id": 2, "schema": a2["schema"] })
    );

    for (path, expected) in [
        ("/schemas", json!([a1, a2, b1, other])),
        ("/schemas?subjectPrefix=app-", json!([a1, a2, b1])),
        (
            "/schemas?subjectPrefix=app-&latestOnly=true",
            json!([a2, b1]),
        ),
        ("/schemas?offset=1&limit=2", json!([a2, b1])),
        ("/schemas?limit=0", json!([a1, a2, b1, other])),
        ("/schemas?subjectPrefix=nothing", json!([])),
        ("/schemas?ruleType=DOMAIN", json!([])),
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!((status, answer), (StatusCode::OK, expected), "{path}");
    }

    let (status, _) = server.delete("/subjects/app-a/versions/2").await;
    assert_eq!(status, StatusCode::OK);
    for (path, expected) in [
        ("/schemas?subjectPrefix=app-a", json!([a1])),
        ("/schemas?subjectPrefix=app-a&deleted=true", json!([a1, a2])),
        ("/schemas?subjectPrefix=app-a&latestOnly=true", json!([a1])),
        (
            "/schemas?subjectPrefix=app-a&latestOnly=true&deleted=true",
            json!([a2]),
        ),
    ] {
        let (status, answer) = server.get(path).await;
        assert_eq!((status, answer), (StatusCode::OK, expected), "{path}");
    }
    assert_error(&server.get("/schemas?latestOnly=maybe").await, 400, 400);
    server.stop().await;
}
