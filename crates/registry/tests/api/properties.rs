//! Properties on primitive types (`{"type":"string","foo":"bar"}`) are part of a schema, as
//! with Confluent; schemas without them keep the identity they always had.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_error, assert_identity_unchanged, record};

const PLAIN: &str = r#""string""#;
const WITH_PROPERTIES: &str = r#"{"type":"string","logicalType":"x","foo":"bar"}"#;
/// What the registry stores and serves for `WITH_PROPERTIES`: the type, then sorted keys.
const STORED: &str = r#"{"type":"string","foo":"bar","logicalType":"x"}"#;

#[tokio::test]
async fn properties_on_primitives_make_another_schema_and_are_served_back() {
    let server = TestServer::start().await;
    let plain = server.register_ok("plain", PLAIN).await;
    let with = server.register_ok("with", WITH_PROPERTIES).await;
    assert_ne!(plain, with, "not the same schema");

    let (status, by_id) = server.get(&format!("/schemas/ids/{with}")).await;
    assert_eq!(
        (status, by_id),
        (StatusCode::OK, json!({ "schema": STORED }))
    );
    let (_, raw) = server.get(&format!("/schemas/ids/{with}/schema")).await;
    assert_eq!(
        raw,
        json!({"type": "string", "logicalType": "x", "foo": "bar"})
    );
    let (_, version) = server.get("/subjects/with/versions/1").await;
    assert_eq!(version["schema"], STORED);
    let (_, plain_text) = server.get(&format!("/schemas/ids/{plain}")).await;
    assert_eq!(plain_text, json!({ "schema": "\"string\"" }));

    // Key order and whitespace do not matter, and the served text is the same schema.
    let reordered = r#"{ "foo": "bar", "type": "string", "logicalType": "x" }"#;
    assert_eq!(server.register_ok("with", reordered).await, with);
    assert_eq!(server.register_ok("with", STORED).await, with);
    let (_, versions) = server.get("/subjects/with/versions").await;
    assert_eq!(versions, json!([1]));
    // Looking the plain schema up under the subject with properties finds nothing.
    assert_error(
        &server
            .post("/subjects/with", json!({ "schema": PLAIN }))
            .await,
        404,
        40403,
    );
    server.stop().await;
}

#[tokio::test]
async fn properties_inside_records_are_kept_and_survive_a_restart() {
    let server = TestServer::start().await;
    let bare = record(
        "R",
        &[r#"{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}"#],
    );
    let tagged = record(
        "R",
        &[
            r#"{"name":"at","type":["null",{"type":"long","logicalType":"timestamp-millis","unit":"ms"}],"default":null}"#,
        ],
    );
    let bare_id = server.register_ok("bare", &bare).await;
    let tagged_id = server.register_ok("tagged", &tagged).await;
    assert_ne!(bare_id, tagged_id);
    let (_, stored) = server.get(&format!("/schemas/ids/{tagged_id}")).await;
    let stored = stored["schema"].as_str().expect("text").to_owned();
    assert!(
        stored.contains(r#"{"type":"long","logicalType":"timestamp-millis","unit":"ms"}"#),
        "{stored}"
    );

    let server = TestServer::start_in(server.stop().await).await;
    let (_, again) = server.get(&format!("/schemas/ids/{tagged_id}")).await;
    assert_eq!(
        again["schema"],
        stored.as_str(),
        "replayed from the journal"
    );
    assert_eq!(server.register_ok("tagged", &tagged).await, tagged_id);
    assert_eq!(server.register_ok("bare", &bare).await, bare_id);
    server.stop().await;
}

/// The hard rule of keeping properties: a schema without them normalises exactly as before,
/// so stored journals replay to the same ids and registering again finds them. Checked on
/// the bundled schemas and on every schema literal of the registry's tests (a literal that
/// is a single record field is checked inside a record); `TestServer::send` also checks
/// every schema the tests send.
#[test]
fn normalised_text_is_unchanged_for_schemas_without_primitive_properties() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bundled = 0;
    for path in files(&crate_dir.join("../event/schemas"), "avsc") {
        let text = std::fs::read_to_string(&path).expect("read bundled schema");
        assert!(assert_identity_unchanged(&text), "{}", path.display());
        bundled += 1;
    }
    assert!(bundled >= 2, "bundled schemas found: {bundled}");

    let mut checked = 0;
    let sources = files(&crate_dir.join("src"), "rs")
        .into_iter()
        .chain(files(&crate_dir.join("tests"), "rs"));
    for path in sources {
        let source = std::fs::read_to_string(&path).expect("read source");
        for literal in raw_string_literals(&source) {
            let as_field = serde_json::from_str::<Value>(literal)
                .ok()
                .filter(|v| v.get("name").is_some() && v.get("type").is_some())
                .map(|_| record("Wrapper", &[literal]));
            let schema = as_field.as_deref().unwrap_or(literal);
            if assert_identity_unchanged(schema) {
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "schema literals checked: {checked}");
}

/// Files with `extension` under `dir`, recursively, sorted.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            found.extend(files(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The contents of the `r#"..."#` literals in Rust source.
fn raw_string_literals(source: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("r#\"") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("\"#") else {
            break;
        };
        found.push(&after[..end]);
        rest = &after[end + 2..];
    }
    found
}
