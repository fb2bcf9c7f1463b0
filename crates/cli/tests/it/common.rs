//! Shared test plumbing: a pipeline on free ports in a temp dir, HTTP helpers, log readers.

use std::path::Path;
use std::time::Duration;

use clickstream::{Config, Pipeline};
use clickstream_log::{EventLog, LogRecord, TopicPartition};
use serde_json::Value;

/// A pipeline on ports chosen by the OS, with its data in a temp dir removed on drop.
pub struct TestPipeline {
    pub pipeline: Pipeline,
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    /// The data dir, removed on drop, when the pipeline made its own.
    pub _dir: Option<tempfile::TempDir>,
}

impl TestPipeline {
    pub async fn start() -> TestPipeline {
        Self::start_with(|_| {}).await
    }

    /// A pipeline on these backends.
    pub async fn start_on(backend: &crate::backends::Backend) -> TestPipeline {
        Self::start_with(|config| backend.configure(config)).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestPipeline {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = Self::start_in(dir.path(), adjust).await;
        t._dir = Some(dir);
        t
    }

    /// A pipeline with its data in `dir`, which the caller owns.
    pub async fn start_in(dir: &Path, adjust: impl FnOnce(&mut Config)) -> TestPipeline {
        let mut config = test_config(dir);
        adjust(&mut config);
        let pipeline = Pipeline::start(config.clone())
            .await
            .expect("pipeline starts");
        let base = format!(
            "http://127.0.0.1:{}",
            pipeline.ingest_addr().expect("ingest runs").port()
        );
        TestPipeline {
            pipeline,
            base,
            http: reqwest::Client::new(),
            config,
            _dir: None,
        }
    }

    /// Stops the pipeline cleanly and starts it again on the same data.
    pub async fn restart(self) -> TestPipeline {
        self.restart_with(|_| {}).await
    }

    /// Stops the pipeline cleanly and starts it again on the same data with `adjust`ed
    /// settings.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> TestPipeline {
        let TestPipeline {
            pipeline,
            http,
            mut config,
            _dir,
            ..
        } = self;
        adjust(&mut config);
        pipeline.shutdown().await.expect("clean shutdown");
        let pipeline = Pipeline::start(config.clone())
            .await
            .expect("pipeline restarts");
        let base = format!(
            "http://127.0.0.1:{}",
            pipeline.ingest_addr().expect("ingest runs").port()
        );
        TestPipeline {
            pipeline,
            base,
            http,
            config,
            _dir,
        }
    }

    /// Runs a query through the pipeline's SQL engine, rows as JSON objects.
    pub async fn sql(&self, query: &str) -> Vec<serde_json::Map<String, Value>> {
        self.pipeline
            .query()
            .expect("the SQL engine runs")
            .sql(query)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .to_json_rows()
            .expect("json rows")
    }

    /// Polls `query` (which returns one row with column `n`) until it reaches `expected`.
    pub async fn wait_for_count(&self, query: &str, expected: i64) {
        self.wait_for_count_within(query, expected, Duration::from_secs(30))
            .await;
    }

    /// [`Self::wait_for_count`] with a deadline of `within`.
    pub async fn wait_for_count_within(&self, query: &str, expected: i64, within: Duration) {
        let what = format!("{query} reaches {expected}");
        crate::eventually::eventually(&what, within, || async move {
            let rows = self.sql(query).await;
            let n = rows
                .first()
                .and_then(|r| r.get("n"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            assert!(
                n <= expected,
                "{query}: {n} rows, more than the {expected} expected"
            );
            crate::eventually::check(n == expected, || format!("still {n}"))
        })
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A URL on the web UI's port.
    pub fn ui_url(&self, path: &str) -> String {
        let addr = self.pipeline.ui_addr().expect("the UI is enabled");
        format!("http://127.0.0.1:{}{}", addr.port(), path)
    }

    /// POSTs `body` to `/collect` as JSON.
    pub async fn collect(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url("/collect"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub fn log(&self) -> std::sync::Arc<dyn EventLog> {
        self.pipeline.log().expect("the log is open")
    }

    /// The pipeline's lake.
    pub fn lake(&self) -> &clickstream_lake::Lake {
        self.pipeline.lake().expect("the lake is open")
    }
}

/// Embedded defaults, rooted in `dir`, on loopback ports picked by the OS.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.log.dir = dir.join("log");
    config.ingest.host = "127.0.0.1".into();
    config.ingest.port = 0;
    config.registry.host = "127.0.0.1".into();
    config.registry.port = 0;
    config.ui.host = "127.0.0.1".into();
    config.ui.port = 0;
    config.rest_proxy.host = "127.0.0.1".into();
    config.rest_proxy.port = 0;
    // The tests check every event by reading whole tables through `/api/sql`; the result
    // limits themselves are tested in the query crate.
    config.query = config.query.without_result_limits();
    config
}

/// Every record of a topic, partition by partition.
pub async fn read_topic(log: &dyn EventLog, topic: &str) -> Vec<LogRecord> {
    let partitions = log.partition_count(topic).await.expect("topic exists");
    let mut records = Vec::new();
    for p in 0..partitions {
        let tp = TopicPartition::new(topic, p);
        let offsets = log.offsets(&tp).await.expect("offsets");
        let mut next = offsets.start;
        while next < offsets.end {
            let batch = log
                .read(&tp, next, 10_000, Duration::ZERO)
                .await
                .expect("read");
            assert!(!batch.is_empty(), "no progress reading {tp} at {next}");
            next = batch.last().map(|r| r.offset + 1).unwrap_or(next);
            records.extend(batch);
        }
    }
    records
}

/// The JSON lines of the seed's sample file that parse (the file has one line that is
/// not JSON, which a client could never send as part of an array).
pub fn seed_events() -> Vec<Value> {
    include_str!("../../../event/tests/data/seed_events.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The response body as JSON, asserting it is JSON.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"))
}

/// The nullable and required fields of `event` in the raw schema.
pub const EVENT_DETAIL_FIELDS: [&str; 9] = [
    "user_agent",
    "ip",
    "customer_id",
    "timestamp",
    "page",
    "query",
    "product",
    "referrer",
    "position",
];

/// Decodes a Confluent-framed record with the schema the registry serves for its id,
/// fetched through the registry's REST API (as any consumer would) and kept in `schemas`.
pub async fn decode_via_registry(
    t: &TestPipeline,
    schemas: &mut std::collections::HashMap<u32, apache_avro::Schema>,
    framed: &[u8],
) -> apache_avro::types::Value {
    assert_eq!(framed[0], 0, "magic byte");
    let id = u32::from_be_bytes(framed[1..5].try_into().expect("4 bytes"));
    #[allow(clippy::map_entry)] // the value is fetched with an await in between
    if !schemas.contains_key(&id) {
        let url = format!("{}/schemas/ids/{id}", t.pipeline.registry_url());
        let answer: Value = t
            .http
            .get(url)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let text = answer["schema"].as_str().expect("schema");
        schemas.insert(id, apache_avro::Schema::parse_str(text).expect("parses"));
    }
    apache_avro::reader::datum::GenericDatumReader::builder(&schemas[&id])
        .build()
        .expect("reader")
        .read_value(&mut &framed[5..])
        .expect("decodes")
}
