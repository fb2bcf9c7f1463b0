//! A real registry server on 127.0.0.1:0 over a temporary store, and small HTTP helpers.

use std::sync::Arc;

use clickstream_registry::{
    ParsedSchema, RESPONSE_CONTENT_TYPE, RegistryClient, SchemaStore, serve,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; `stop` shuts it down gracefully and hands back its directory.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    dir: TempDir,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts a server over a fresh temporary store.
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir")).await
    }

    /// Starts a server over the store in `dir` (reopened if it holds one).
    pub async fn start_in(dir: TempDir) -> Self {
        let store = Arc::new(SchemaStore::open(&dir.path().join("registry")).expect("open store"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, store, async {
            let _ = stop.await;
        }));
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            dir,
            shutdown,
            task,
        }
    }

    /// Stops the server, waits until it released the store, and returns the directory.
    pub async fn stop(self) -> TempDir {
        let _ = self.shutdown.send(());
        self.task
            .await
            .expect("server task joins")
            .expect("server exits cleanly");
        self.dir
    }

    /// A client for this server.
    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(&self.base).expect("client")
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Sends a request the way Confluent clients do and decodes the JSON answer, checking
    /// the response content type on the way. A schema in the body is checked against
    /// [`assert_identity_unchanged`] first, so every schema the tests send is.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            if let Some(schema) = body["schema"].as_str() {
                assert_identity_unchanged(schema);
            }
            request = request
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(content_type, RESPONSE_CONTENT_TYPE, "{path}");
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, value)
    }

    /// Registers `schema` under `subject`; returns the status and body.
    pub async fn register(&self, subject: &str, schema: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema }),
        )
        .await
    }

    /// Registers and expects success; returns the id.
    pub async fn register_ok(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_u64().expect("id")
    }

    /// Sets a subject's compatibility level.
    pub async fn set_level(&self, subject: &str, level: &str) {
        let (status, body) = self
            .put(
                &format!("/config/{subject}"),
                json!({ "compatibility": level }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Asserts a Confluent error answer.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: u16, error_code: i64) {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    assert_eq!(
        answer.1["error_code"].as_i64(),
        Some(error_code),
        "{}",
        answer.1
    );
    assert!(answer.1["message"].is_string(), "{}", answer.1);
}

/// Asserts that `schema`, unless it carries properties on primitive types, normalises to
/// apache-avro's serialisation byte for byte, as it did before such properties were kept:
/// stored journals hold that text, and a schema registered again must find its old id.
/// Returns whether the schema was checked (it parses and has no such properties).
#[track_caller]
pub fn assert_identity_unchanged(schema: &str) -> bool {
    let Ok(parsed) = ParsedSchema::parse(schema) else {
        return false;
    };
    let json: Value = serde_json::from_str(schema).expect("a parsed schema is JSON");
    if has_primitive_properties(&json) {
        return false;
    }
    let before = apache_avro::Schema::parse_str(schema).expect("apache-avro parses it");
    let before = serde_json::to_string(&before).expect("serialises");
    assert_eq!(
        parsed.normalized, before,
        "normalised text changed for {schema}"
    );
    true
}

/// Whether a primitive type in `schema` is an object with keys other than `type` and a
/// logical type apache-avro knows (with a decimal's precision and scale).
fn has_primitive_properties(schema: &Value) -> bool {
    const PRIMITIVES: [&str; 8] = [
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    ];
    const LOGICAL: [&str; 13] = [
        "decimal",
        "big-decimal",
        "uuid",
        "date",
        "time-millis",
        "time-micros",
        "timestamp-millis",
        "timestamp-micros",
        "timestamp-nanos",
        "local-timestamp-millis",
        "local-timestamp-micros",
        "local-timestamp-nanos",
        "duration",
    ];
    match schema {
        Value::Array(branches) => branches.iter().any(has_primitive_properties),
        Value::Object(map) => match map.get("type") {
            Some(Value::String(kind)) if PRIMITIVES.contains(&kind.as_str()) => {
                map.iter().any(|(key, value)| match key.as_str() {
                    "type" | "precision" | "scale" => false,
                    "logicalType" => !value.as_str().is_some_and(|l| LOGICAL.contains(&l)),
                    _ => true,
                })
            }
            Some(Value::String(_)) => {
                let fields = map.get("fields").and_then(Value::as_array);
                fields.is_some_and(|fields| {
                    fields
                        .iter()
                        .any(|f| f.get("type").is_some_and(has_primitive_properties))
                }) || ["items", "values"]
                    .iter()
                    .any(|key| map.get(*key).is_some_and(has_primitive_properties))
            }
            Some(inner) => has_primitive_properties(inner),
            None => false,
        },
        _ => false,
    }
}

/// A record schema named `name` with the given field JSON objects.
pub fn record(name: &str, fields: &[&str]) -> String {
    format!(
        r#"{{"type":"record","name":"{name}","namespace":"test","fields":[{}]}}"#,
        fields.join(",")
    )
}

/// The raw clickstream event schema, as in shared/seed/schemas.
pub const RAW_EVENT: &str = r#"{
  "type": "record", "name": "ClickstreamEvent", "namespace": "acme.clickstream",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "type", "type": "string"},
    {"name": "package_id", "type": ["null", "string"], "default": null},
    {"name": "event", "type": {"type": "record", "name": "EventDetails", "fields": [
      {"name": "user_agent", "type": "string"},
      {"name": "ip", "type": "string"},
      {"name": "customer_id", "type": ["null", "long"], "default": null},
      {"name": "timestamp", "type": "string"},
      {"name": "page", "type": ["null", "string"], "default": null},
      {"name": "query", "type": ["null", "string"], "default": null},
      {"name": "product", "type": ["null", "long"], "default": null},
      {"name": "referrer", "type": ["null", "string"], "default": null},
      {"name": "position", "type": ["null", "long"], "default": null}
    ]}}
  ]
}"#;
