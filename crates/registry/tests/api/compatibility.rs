//! Every compatibility level, enforced on registration and answered by `/compatibility`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, assert_error, record};

const A: &str = r#"{"name":"a","type":"long"}"#;
const B: &str = r#"{"name":"b","type":"string"}"#;
const B_DEFAULT: &str = r#"{"name":"b","type":"string","default":""}"#;

fn v(fields: &[&str]) -> String {
    record("R", fields)
}

/// Registers `schemas` in order under `subject` with `level`, expecting success.
async fn history(server: &TestServer, subject: &str, level: &str, schemas: &[String]) {
    server.set_level(subject, "NONE").await;
    for schema in schemas {
        server.register_ok(subject, schema).await;
    }
    server.set_level(subject, level).await;
}

#[tokio::test]
async fn backward_refuses_a_new_field_without_default_and_names_it() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(&[A])).await;
    let answer = server.register("s", &v(&[A, B])).await;
    assert_error(&answer, 409, 409);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(message.contains("'b'"), "{message}");
    assert!(message.contains("default"), "{message}");
    assert!(message.contains("BACKWARD"), "{message}");
    // With a default the same change is fine.
    assert_eq!(server.register_ok("s", &v(&[A, B_DEFAULT])).await, 2);
    // Removing a field is fine backward (the new reader ignores it).
    assert_eq!(server.register_ok("s", &v(&[B_DEFAULT])).await, 3);
    server.stop().await;
}

#[tokio::test]
async fn backward_refuses_an_incompatible_type_change() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(&[A])).await;
    let answer = server
        .register("s", &v(&[r#"{"name":"a","type":"int"}"#]))
        .await;
    assert_error(&answer, 409, 409);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'a'") && message.contains("long") && message.contains("int"),
        "{message}"
    );
    // int -> long is a promotion Avro resolves: fine the other way round.
    let server2 = TestServer::start().await;
    server2
        .register_ok("s", &v(&[r#"{"name":"a","type":"int"}"#]))
        .await;
    server2.register_ok("s", &v(&[A])).await;
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn backward_refuses_dropping_an_enum_symbol() {
    let server = TestServer::start().await;
    let two = v(&[r#"{"name":"k","type":{"type":"enum","name":"K","symbols":["X","Y"]}}"#]);
    let one = v(&[r#"{"name":"k","type":{"type":"enum","name":"K","symbols":["X"]}}"#]);
    server.register_ok("s", &two).await;
    let answer = server.register("s", &one).await;
    assert_error(&answer, 409, 409);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'k'") && message.contains("partially"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn forward_refuses_removing_a_field_the_old_schema_needs() {
    let server = TestServer::start().await;
    server.set_level("s", "FORWARD").await;
    server.register_ok("s", &v(&[A, B])).await;
    let answer = server.register("s", &v(&[A])).await;
    assert_error(&answer, 409, 409);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'b'") && message.contains("FORWARD"),
        "{message}"
    );
    // Adding a field without default is fine forward (the old reader ignores it).
    assert_eq!(
        server
            .register_ok("s", &v(&[A, B, r#"{"name":"c","type":"long"}"#]))
            .await,
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn full_needs_both_directions() {
    let server = TestServer::start().await;
    server.set_level("s", "FULL").await;
    server.register_ok("s", &v(&[A])).await;
    assert_error(&server.register("s", &v(&[A, B])).await, 409, 409);
    assert_eq!(server.register_ok("s", &v(&[A, B_DEFAULT])).await, 2);
    // Removing `a` (no default in the latest) breaks forward.
    assert_error(&server.register("s", &v(&[B_DEFAULT])).await, 409, 409);
    server.stop().await;
}

#[tokio::test]
async fn transitive_levels_check_every_live_version_while_plain_levels_check_the_latest() {
    let server = TestServer::start().await;
    // v1 {a}; v2 {a, b=""}; candidate {a, b}: reads v2 data but not v1 data.
    let backward = [v(&[A]), v(&[A, B_DEFAULT])];
    let candidate = v(&[A, B]);
    history(&server, "bw", "BACKWARD", &backward).await;
    history(&server, "bwt", "BACKWARD_TRANSITIVE", &backward).await;
    assert_eq!(server.register_ok("bw", &candidate).await, 3);
    let answer = server.register("bwt", &candidate).await;
    assert_error(&answer, 409, 409);
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 1"),
        "{}",
        answer.1
    );

    // v1 {a, b}; v2 {a, b=""}; candidate {a}: v2 can read it, v1 cannot.
    let forward = [v(&[A, B]), v(&[A, B_DEFAULT])];
    let candidate = v(&[A]);
    history(&server, "fw", "FORWARD", &forward).await;
    history(&server, "fwt", "FORWARD_TRANSITIVE", &forward).await;
    server.register_ok("fw", &candidate).await;
    assert_error(&server.register("fwt", &candidate).await, 409, 409);

    // v1 {a}; v2 {a, b=""}; candidate {a, b}: fully compatible with v2, not backward with v1.
    let full = [v(&[A]), v(&[A, B_DEFAULT])];
    let candidate = v(&[A, B]);
    history(&server, "fu", "FULL", &full).await;
    history(&server, "fut", "FULL_TRANSITIVE", &full).await;
    server.register_ok("fu", &candidate).await;
    assert_error(&server.register("fut", &candidate).await, 409, 409);
    server.stop().await;
}

#[tokio::test]
async fn none_accepts_anything() {
    let server = TestServer::start().await;
    server.set_level("s", "NONE").await;
    server.register_ok("s", &v(&[A])).await;
    server
        .register_ok("s", &v(&[r#"{"name":"a","type":"string"}"#]))
        .await;
    server.register_ok("s", r#""string""#).await;
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([1, 2, 3]));
    server.stop().await;
}

#[tokio::test]
async fn soft_deleted_versions_are_not_checked() {
    let server = TestServer::start().await;
    history(
        &server,
        "s",
        "BACKWARD_TRANSITIVE",
        &[v(&[A]), v(&[B_DEFAULT])],
    )
    .await;
    let candidate = v(&[B]);
    assert_error(&server.register("s", &candidate).await, 409, 409);
    let (status, _) = server.delete("/subjects/s/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    server.register_ok("s", &candidate).await;
    server.stop().await;
}

#[tokio::test]
async fn compatibility_endpoint_answers_without_registering() {
    let server = TestServer::start().await;
    server.register_ok("s", &v(&[A])).await;
    let good = json!({ "schema": v(&[A, B_DEFAULT]) });
    let bad = json!({ "schema": v(&[A, B]) });

    let (status, answer) = server
        .post("/compatibility/subjects/s/versions/latest", good.clone())
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({ "is_compatible": true }))
    );
    let (_, answer) = server
        .post("/compatibility/subjects/s/versions/1", bad.clone())
        .await;
    assert_eq!(answer, json!({ "is_compatible": false }));
    let (_, answer) = server
        .post(
            "/compatibility/subjects/s/versions/latest?verbose=true",
            bad.clone(),
        )
        .await;
    assert_eq!(answer["is_compatible"], false);
    let messages = answer["messages"].as_array().expect("messages");
    assert!(
        messages[0].as_str().unwrap_or_default().contains("'b'"),
        "{answer}"
    );
    let (_, answer) = server
        .post("/compatibility/subjects/s/versions?verbose=True", good)
        .await;
    assert_eq!(answer, json!({ "is_compatible": true, "messages": [] }));

    // Without versions there is nothing to be incompatible with, `latest` included (as
    // Confluent's CompatibilityResource: a missing latest version compares with nothing)...
    for path in [
        "/compatibility/subjects/new/versions",
        "/compatibility/subjects/new/versions/latest",
    ] {
        let (status, answer) = server.post(path, bad.clone()).await;
        assert_eq!(
            (status, answer),
            (StatusCode::OK, json!({ "is_compatible": true })),
            "{path}"
        );
    }
    // ...but a numbered version must exist, in a subject that does not too: 40402.
    for path in [
        "/compatibility/subjects/s/versions/7",
        "/compatibility/subjects/new/versions/7",
    ] {
        let answer = server.post(path, bad.clone()).await;
        assert_error(&answer, 404, 40402);
        assert_eq!(answer.1["message"], "Version 7 not found.", "{path}");
    }
    assert_error(
        &server
            .post(
                "/compatibility/subjects/s/versions/latest",
                json!({ "schema": "{" }),
            )
            .await,
        422,
        42201,
    );
    let (_, versions) = server.get("/subjects/s/versions").await;
    assert_eq!(versions, json!([1]), "nothing registered by checks");
    server.stop().await;
}
