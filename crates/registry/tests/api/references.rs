//! Schema references: a shared `acme.Context` record registered once under `context-value`
//! and used by several event subjects through Confluent's `references` field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error};

pub const CONTEXT: &str = r#"{"type":"record","name":"Context","namespace":"acme","fields":[
  {"name":"user_agent","type":"string"},
  {"name":"ip","type":"string"}]}"#;
/// `CONTEXT` without `user_agent`: backward compatible with it (a reader ignores the extra
/// field), not forward (an old reader needs it).
const CONTEXT_WITHOUT_USER_AGENT: &str = r#"{"type":"record","name":"Context","namespace":"acme",
  "fields":[{"name":"ip","type":"string"}]}"#;
/// `CONTEXT` with a `locale` that has a default: compatible both ways.
const CONTEXT_WITH_LOCALE: &str = r#"{"type":"record","name":"Context","namespace":"acme","fields":[
  {"name":"user_agent","type":"string"},
  {"name":"ip","type":"string"},
  {"name":"locale","type":"string","default":""}]}"#;
pub const PAGE_VIEW: &str = r#"{"type":"record","name":"PageView","namespace":"acme","fields":[
  {"name":"url","type":"string"},
  {"name":"context","type":"acme.Context"}]}"#;
const PURCHASE: &str = r#"{"type":"record","name":"Purchase","namespace":"acme","fields":[
  {"name":"product","type":"long"},
  {"name":"context","type":"Context"}]}"#;
/// `PAGE_VIEW` with `CONTEXT` written out in place: the same schema once resolved.
const PAGE_VIEW_INLINED: &str = r#"{"type":"record","name":"PageView","namespace":"acme","fields":[
  {"name":"url","type":"string"},
  {"name":"context","type":{"type":"record","name":"Context","fields":[
    {"name":"user_agent","type":"string"},
    {"name":"ip","type":"string"}]}}]}"#;

/// Confluent's reference JSON to version `version` of `context-value`.
pub fn context_ref(version: i64) -> Value {
    json!([{ "name": "acme.Context", "subject": "context-value", "version": version }])
}

/// `POST /subjects/{subject}/versions` with references.
pub async fn register_with(
    server: &TestServer,
    subject: &str,
    schema: &str,
    references: Value,
) -> (StatusCode, Value) {
    server
        .post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema, "references": references }),
        )
        .await
}

/// Registers with references and expects success; returns the id.
pub async fn register_with_ok(
    server: &TestServer,
    subject: &str,
    schema: &str,
    references: Value,
) -> u64 {
    let (status, body) = register_with(server, subject, schema, references).await;
    assert_eq!(status, StatusCode::OK, "{subject}: {body}");
    body["id"].as_u64().expect("id")
}

#[tokio::test]
async fn a_shared_context_is_referenced_by_two_event_subjects() {
    let server = TestServer::start().await;
    let context = server.register_ok("context-value", CONTEXT).await;
    let page_view = register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;
    let purchase = register_with_ok(&server, "purchase-value", PURCHASE, context_ref(1)).await;
    assert_eq!(
        [context, page_view, purchase].len(),
        [context, page_view, purchase]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
    );

    // The stored text names Context; the references say where it comes from.
    let (status, by_id) = server.get(&format!("/schemas/ids/{page_view}")).await;
    assert_eq!(status, StatusCode::OK);
    let text = by_id["schema"].as_str().expect("schema text");
    assert!(!text.contains("user_agent"), "{text}");
    assert!(text.contains(r#""type":"acme.Context""#), "{text}");
    assert_eq!(by_id["references"], context_ref(1));
    let (_, plain) = server.get(&format!("/schemas/ids/{context}")).await;
    assert!(plain.get("references").is_none(), "no empty key: {plain}");

    for path in [
        "/subjects/page-view-value/versions/1",
        "/subjects/page-view-value/versions/latest",
    ] {
        let (_, version) = server.get(path).await;
        assert_eq!(version["id"], page_view, "{path}");
        assert_eq!(version["references"], context_ref(1), "{path}");
    }
    let (_, listed) = server.get("/schemas?subjectPrefix=purchase").await;
    assert_eq!(listed[0]["references"], context_ref(1), "{listed}");

    for path in [
        "/subjects/context-value/versions/1/referencedby",
        "/subjects/context-value/versions/latest/referencedby",
    ] {
        let (status, ids) = server.get(path).await;
        assert_eq!(
            (status, ids),
            (StatusCode::OK, json!([page_view, purchase]))
        );
    }
    let (_, page) = server
        .get("/subjects/context-value/versions/1/referencedby?offset=1&limit=1")
        .await;
    assert_eq!(page, json!([purchase]));
    let (_, none) = server
        .get("/subjects/page-view-value/versions/1/referencedby")
        .await;
    assert_eq!(none, json!([]));

    // Registering again, or looking up, with the same references finds the version.
    assert_eq!(
        register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await,
        page_view
    );
    let (_, versions) = server.get("/subjects/page-view-value/versions").await;
    assert_eq!(versions, json!([1]));
    let (status, found) = server
        .post(
            "/subjects/page-view-value",
            json!({ "schema": PAGE_VIEW, "references": context_ref(1) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        (&found["id"], &found["version"], &found["references"]),
        (&json!(page_view), &json!(1), &context_ref(1))
    );
    // `-1` is the latest version, and is answered as its number.
    assert_eq!(
        register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(-1)).await,
        page_view
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_references_are_refused_with_confluents_text() {
    let server = TestServer::start().await;
    let missing = register_with(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;
    assert_error(&missing, 422, 42201);
    let message = missing.1["message"].as_str().expect("message");
    assert!(
        message.contains(r#"No schema reference found for subject "context-value" and version 1"#),
        "{message}"
    );

    server.register_ok("context-value", CONTEXT).await;
    let wrong_version = register_with(&server, "page-view-value", PAGE_VIEW, context_ref(2)).await;
    assert_error(&wrong_version, 422, 42201);
    assert!(
        wrong_version.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("and version 2")),
        "{}",
        wrong_version.1
    );
    for references in [
        json!([]),
        context_ref(0),
        json!([{ "name": "acme.Context", "subject": "context-value" }]),
        json!([{ "name": "acme.Context", "version": 1 }]),
    ] {
        let answer = register_with(&server, "page-view-value", PAGE_VIEW, references.clone()).await;
        assert_error(&answer, 422, 42201);
    }
    // New schemas may not reference a soft-deleted version.
    server
        .register_ok("context-value", CONTEXT_WITH_LOCALE)
        .await;
    server.delete("/subjects/context-value/versions/2").await;
    let deleted = register_with(&server, "page-view-value", PAGE_VIEW, context_ref(2)).await;
    assert_error(&deleted, 422, 42201);
    let (_, subjects) = server.get("/subjects").await;
    assert_eq!(
        subjects,
        json!(["context-value"]),
        "nothing else registered"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_referenced_version_is_not_deleted_while_referenced() {
    let server = TestServer::start().await;
    server.register_ok("context-value", CONTEXT).await;
    let page_view = register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;

    let refused = server.delete("/subjects/context-value/versions/1").await;
    assert_error(&refused, 422, 42206);
    assert_eq!(
        refused.1["message"],
        "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=context-value,version=1}."
    );
    assert_error(&server.delete("/subjects/context-value").await, 422, 42206);

    // A soft-deleted referrer no longer counts for a soft delete, but does for a permanent one.
    let (status, _) = server.delete("/subjects/page-view-value/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    let (_, live) = server
        .get("/subjects/context-value/versions/1/referencedby")
        .await;
    assert_eq!(live, json!([]));
    let (_, all) = server
        .get("/subjects/context-value/versions/1/referencedby?deleted=true")
        .await;
    assert_eq!(all, json!([page_view]));
    let (status, _) = server.delete("/subjects/context-value/versions/1").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "soft delete once only soft-deleted referrers remain"
    );
    let permanent = server
        .delete("/subjects/context-value/versions/1?permanent=true")
        .await;
    assert_error(&permanent, 422, 42206);
    let (status, _) = server
        .delete("/subjects/page-view-value/versions/1?permanent=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, deleted) = server
        .delete("/subjects/context-value/versions/1?permanent=true")
        .await;
    assert_eq!((status, deleted), (StatusCode::OK, json!(1)));
    server.stop().await;
}

#[tokio::test]
async fn a_subject_whose_versions_reference_each_other_can_be_deleted() {
    let server = TestServer::start().await;
    server.register_ok("shared-value", CONTEXT).await;
    server.set_level("shared-value", "NONE").await;
    let references = json!([{ "name": "acme.Context", "subject": "shared-value", "version": 1 }]);
    register_with_ok(&server, "shared-value", PAGE_VIEW, references).await;
    let (status, versions) = server.delete("/subjects/shared-value").await;
    assert_eq!((status, versions), (StatusCode::OK, json!([1, 2])));
    let (status, versions) = server.delete("/subjects/shared-value?permanent=true").await;
    assert_eq!((status, versions), (StatusCode::OK, json!([1, 2])));
    server.stop().await;
}

#[tokio::test]
async fn compatibility_is_checked_on_the_resolved_schemas() {
    let server = TestServer::start().await;
    server.register_ok("context-value", CONTEXT).await;
    register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;
    server.set_level("page-view-value", "FORWARD").await;

    // Context's new version is checked against Context's versions only (BACKWARD): as with
    // Confluent, the subjects referencing version 1 are not checked, and keep version 1.
    let (status, body) = server
        .register("context-value", CONTEXT_WITHOUT_USER_AGENT)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page_view) = server
        .get("/subjects/page-view-value/versions/latest")
        .await;
    assert_eq!(page_view["references"], context_ref(1));

    // Moving page-view to Context version 2 drops `user_agent`, which version 1 of
    // page-view needs to read new data: refused under FORWARD, although the text is equal.
    let (status, check) = server
        .post(
            "/compatibility/subjects/page-view-value/versions/latest?verbose=true",
            json!({ "schema": PAGE_VIEW, "references": context_ref(2) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["is_compatible"], false, "{check}");
    assert!(
        check["messages"].to_string().contains("user_agent"),
        "{check}"
    );
    let refused = register_with(&server, "page-view-value", PAGE_VIEW, context_ref(2)).await;
    assert_error(&refused, 409, 409);
    assert!(
        refused.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("context.user_agent")),
        "{}",
        refused.1
    );
    let (_, check) = server
        .post(
            "/compatibility/subjects/page-view-value/versions",
            json!({ "schema": PAGE_VIEW, "references": context_ref(1) }),
        )
        .await;
    assert_eq!(check, json!({ "is_compatible": true }));

    // Under BACKWARD, the same move is fine: the new reader ignores `user_agent`.
    register_with_ok(&server, "purchase-value", PURCHASE, context_ref(1)).await;
    register_with_ok(&server, "purchase-value", PURCHASE, context_ref(2)).await;
    let (_, versions) = server.get("/subjects/purchase-value/versions").await;
    assert_eq!(versions, json!([1, 2]));
    server.stop().await;
}

#[tokio::test]
async fn the_references_are_part_of_the_schemas_identity() {
    let server = TestServer::start().await;
    server.register_ok("context-value", CONTEXT).await;
    server
        .register_ok("context-value", CONTEXT_WITH_LOCALE)
        .await;
    let first = register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;
    let second = register_with_ok(&server, "other-value", PAGE_VIEW, context_ref(2)).await;
    assert_ne!(first, second, "same text, other references: another schema");
    assert_eq!(
        register_with_ok(&server, "copy-value", PAGE_VIEW, context_ref(1)).await,
        first,
        "same text and references: the same id"
    );

    // The same schema with Context written out finds the version that references it, as
    // Confluent's lookup and registration do, without a new version.
    assert_eq!(
        server
            .register_ok("page-view-value", PAGE_VIEW_INLINED)
            .await,
        first
    );
    let (_, versions) = server.get("/subjects/page-view-value/versions").await;
    assert_eq!(versions, json!([1]));
    let (status, found) = server
        .post(
            "/subjects/page-view-value",
            json!({ "schema": PAGE_VIEW_INLINED }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        (&found["id"], &found["version"]),
        (&json!(first), &json!(1))
    );
    // It does not match a version with other references (Context 2 has `locale`).
    assert_error(
        &server
            .post(
                "/subjects/other-value",
                json!({ "schema": PAGE_VIEW_INLINED }),
            )
            .await,
        404,
        40403,
    );
    // Elsewhere it is a schema of its own, without references.
    let inlined = server.register_ok("inlined-value", PAGE_VIEW_INLINED).await;
    assert!(![first, second].contains(&inlined));
    let (_, by_id) = server.get(&format!("/schemas/ids/{inlined}")).await;
    assert!(by_id.get("references").is_none(), "{by_id}");
    server.stop().await;
}

#[tokio::test]
async fn references_survive_a_restart() {
    let server = TestServer::start().await;
    let context = server.register_ok("context-value", CONTEXT).await;
    let page_view = register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await;
    let (_, before) = server.get("/subjects/page-view-value/versions/1").await;

    let dir = server.stop().await;
    let journal =
        std::fs::read_to_string(dir.path().join("registry/journal.jsonl")).expect("journal");
    assert_eq!(
        journal.matches("\"references\"").count(),
        1,
        "only the referencing schema's line has the key: {journal}"
    );

    let server = TestServer::start_in(dir).await;
    let (_, after) = server.get("/subjects/page-view-value/versions/1").await;
    assert_eq!(after, before);
    let (_, ids) = server
        .get("/subjects/context-value/versions/1/referencedby")
        .await;
    assert_eq!(ids, json!([page_view]));
    assert_eq!(server.register_ok("context-value", CONTEXT).await, context);
    assert_eq!(
        register_with_ok(&server, "page-view-value", PAGE_VIEW, context_ref(1)).await,
        page_view
    );
    assert_error(
        &server.delete("/subjects/context-value/versions/1").await,
        422,
        42206,
    );
    server.stop().await;
}

/// `acme.Geo`, referenced by `GEO_CONTEXT`, so that a schema using that Context depends on
/// Geo transitively.
const GEO: &str = r#"{"type":"record","name":"Geo","namespace":"acme","fields":[
  {"name":"country","type":"string"}]}"#;
const GEO_CONTEXT: &str = r#"{"type":"record","name":"Context","namespace":"acme","fields":[
  {"name":"ip","type":"string"},
  {"name":"geo","type":"acme.Geo"}]}"#;
/// Uses Context (which brings Geo) and Geo itself, after Context.
const VISIT: &str = r#"{"type":"record","name":"Visit","namespace":"acme","fields":[
  {"name":"url","type":"string"},
  {"name":"context","type":"acme.Context"},
  {"name":"home","type":["null","acme.Geo"],"default":null}]}"#;
/// `VISIT` as one self-contained schema.
const VISIT_INLINED: &str = r#"{"type":"record","name":"Visit","namespace":"acme","fields":[
  {"name":"url","type":"string"},
  {"name":"context","type":{"type":"record","name":"Context","fields":[
    {"name":"ip","type":"string"},
    {"name":"geo","type":{"type":"record","name":"Geo","fields":[
      {"name":"country","type":"string"}]}}]}},
  {"name":"home","type":["null","Geo"],"default":null}]}"#;

#[tokio::test]
async fn the_client_returns_a_complete_schema_that_encodes_and_decodes() {
    use apache_avro::Schema;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::types::Value as Avro;
    use apache_avro::writer::datum::GenericDatumWriter;
    use clickstream_registry::SchemaReference;

    let server = TestServer::start().await;
    let client = server.client();
    let reference = |name: &str, subject: &str| SchemaReference {
        name: name.to_owned(),
        subject: subject.to_owned(),
        version: 1,
    };
    client.register("geo-value", GEO).await.expect("geo");
    client
        .register_with_references(
            "context-value",
            GEO_CONTEXT,
            &[reference("acme.Geo", "geo-value")],
        )
        .await
        .expect("context");
    let id = client
        .register_with_references(
            "visit-value",
            VISIT,
            &[reference("acme.Context", "context-value")],
        )
        .await
        .expect("visit");

    let schema = client.schema_by_id(id).await.expect("fetched by id");
    // Complete: its own text parses alone, and it is the inlined schema.
    let text = serde_json::to_string(&*schema).expect("serialises");
    let alone = Schema::parse_str(&text).expect("stands alone");
    assert_eq!(
        serde_json::to_string(&alone).ok().as_deref(),
        Some(text.as_str()),
        "the complete schema is what its text parses to, Refs and all"
    );
    let inlined = Schema::parse_str(VISIT_INLINED).expect("inlined parses");
    assert_eq!(alone.canonical_form(), inlined.canonical_form());
    assert_eq!(schema.canonical_form(), inlined.canonical_form());

    let geo = |country: &str| {
        Avro::Record(vec![(
            "country".to_owned(),
            Avro::String(country.to_owned()),
        )])
    };
    let value = Avro::Record(vec![
        ("url".to_owned(), Avro::String("/p/1".to_owned())),
        (
            "context".to_owned(),
            Avro::Record(vec![
                ("ip".to_owned(), Avro::String("10.0.0.1".to_owned())),
                ("geo".to_owned(), geo("DE")),
            ]),
        ),
        ("home".to_owned(), Avro::Union(1, Box::new(geo("FR")))),
    ]);
    let bytes = GenericDatumWriter::builder(&schema)
        .build()
        .expect("writer")
        .write_value_to_vec(value.clone())
        .expect("encodes");
    for reader_schema in [&*schema, &inlined] {
        let decoded = GenericDatumReader::builder(reader_schema)
            .build()
            .expect("reader")
            .read_value(&mut bytes.as_slice())
            .expect("decodes");
        assert_eq!(decoded, value);
    }

    // Soft-deleted referenced versions still resolve, as data written with them may remain.
    server.delete("/subjects/visit-value/versions/1").await;
    let (status, _) = server.delete("/subjects/context-value/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    let fresh = server.client();
    let again = fresh
        .schema_by_id(id)
        .await
        .expect("resolved with deleted versions");
    assert_eq!(again.canonical_form(), inlined.canonical_form());
    server.stop().await;
}
