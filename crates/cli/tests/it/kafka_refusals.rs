//! Kafka refusing rather than failing (librdkafka's mock cluster): a permanent error gets
//! a prompt, non-503 answer that says what is wrong, and the processor stops on one instead
//! of retrying for ever; a transient error still gets 503 with `Retry-After`; a fatally
//! failed idempotent producer is replaced.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, json_body, seed_events};
use crate::eventually::{check, eventually};

/// Longer than any answer these tests call prompt.
const DELIVERY_TIMEOUT_MS: u64 = 10_000;

/// Ingest alone on a mock cluster: no processor, so ingest's are the only produce
/// requests and an injected error meets one of them.
async fn ingest_on_kafka() -> (Backend, TestPipeline) {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
        config.kafka.delivery_timeout_ms = DELIVERY_TIMEOUT_MS;
    })
    .await;
    (backend, t)
}

fn cluster(
    backend: &Backend,
) -> &rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    match &backend.log {
        LogBackend::Kafka(cluster) => cluster,
        LogBackend::Embedded => unreachable!("a Kafka backend"),
    }
}

/// A batch of `n` seed events with ids from `first`.
fn batch(first: i64, n: i64) -> Vec<u8> {
    let template = seed_events()[0].clone();
    let events: Vec<Value> = (first..first + n)
        .map(|id| {
            let mut event = template.clone();
            event["id"] = json!(id);
            event
        })
        .collect();
    serde_json::to_vec(&events).expect("json")
}

/// POSTs a batch; the status, the time the answer took and the JSON body.
async fn post(t: &TestPipeline, first: i64) -> (u16, Duration, Option<String>, Value) {
    let started = Instant::now();
    let response = t.collect(batch(first, 20)).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    (status, elapsed, retry_after, json_body(response).await)
}

/// Asserts the answer is a prompt JSON error with `status`, no `Retry-After`, and a
/// message containing `reason`.
fn assert_refused(answer: &(u16, Duration, Option<String>, Value), status: u16, reason: &str) {
    let (got, elapsed, retry_after, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert!(
        *elapsed < Duration::from_millis(DELIVERY_TIMEOUT_MS / 2),
        "answered after {elapsed:?}: retried instead of refusing"
    );
    assert_eq!(*retry_after, None, "a refusal is not to be retried: {body}");
    assert_eq!(body["status"], "error", "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains(reason), "{message:?} lacks {reason:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_authorization_failure_answers_500_with_the_reason_then_recovers() {
    let (backend, t) = ingest_on_kafka().await;
    assert_eq!(post(&t, 1).await.0, 200);

    cluster(&backend).request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let refused = post(&t, 100).await;
    assert_refused(&refused, 500, "topic authorization failed");
    cluster(&backend).clear_request_errors(RDKafkaApiKey::Produce);

    let (status, _, _, body) = post(&t, 200).await;
    assert_eq!(
        status, 200,
        "the ACL is back, the next request passes: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_message_too_large_answers_413_then_recovers() {
    let (backend, t) = ingest_on_kafka().await;
    assert_eq!(post(&t, 1).await.0, 200);

    cluster(&backend).request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let refused = post(&t, 100).await;
    assert_refused(&refused, 413, "message size too large");
    cluster(&backend).clear_request_errors(RDKafkaApiKey::Produce);

    let (status, _, _, body) = post(&t, 200).await;
    assert_eq!(status, 200, "{body}");
}

/// A transient refusal that outlasts the delivery timeout is still an outage: 503 with
/// `Retry-After`, then 200 once the brokers accept again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_not_enough_replicas_still_answers_503_with_retry_after() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let t = TestPipeline::start_with(|config| {
        backend.configure(config);
        config.processor.enabled = false;
        config.kafka.delivery_timeout_ms = 2_000;
    })
    .await;
    assert_eq!(post(&t, 1).await.0, 200);

    cluster(&backend).request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 500],
    );
    let (status, _, retry_after, body) = post(&t, 100).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert_eq!(body["status"], "error");
    cluster(&backend).clear_request_errors(RDKafkaApiKey::Produce);

    eventually("ingest recovers", Duration::from_secs(30), || async {
        let (status, _, _, body) = post(&t, 200).await;
        if status != 200 {
            assert_eq!(status, 503, "{body}");
        }
        check(status == 200, || format!("{status}: {body}"))
    })
    .await;
}

/// A sequence desynchronisation makes librdkafka declare the idempotent producer fatally
/// failed. The request is answered 503 (its records may not be written) and the producer
/// is replaced, so the client's retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_fatal_producer_error_answers_503_and_the_producer_is_replaced() {
    let (backend, t) = ingest_on_kafka().await;
    assert_eq!(post(&t, 1).await.0, 200);

    cluster(&backend).request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let (status, _, retry_after, body) = post(&t, 100).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    cluster(&backend).clear_request_errors(RDKafkaApiKey::Produce);

    let (status, _, _, body) = post(&t, 200).await;
    assert_eq!(status, 200, "the new producer takes the retry: {body}");
}

/// A replacement producer whose producer id the cluster refuses (idempotent writes need
/// the cluster ACL) is fatal for a reason only the operator can fix: 500 with the reason,
/// never 503, until the cluster accepts again; then a later replacement succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_refused_producer_id_answers_500_until_the_acl_is_fixed() {
    let (backend, t) = ingest_on_kafka().await;
    assert_eq!(post(&t, 1).await.0, 200);

    // The next producer id request is the replacement's.
    cluster(&backend).request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
    );
    cluster(&backend).request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    assert_eq!(post(&t, 100).await.0, 503);
    cluster(&backend).clear_request_errors(RDKafkaApiKey::Produce);

    let refused = post(&t, 200).await;
    assert_refused(&refused, 500, "cluster authorization failed");
    cluster(&backend).clear_request_errors(RDKafkaApiKey::InitProducerId);

    let next = std::sync::atomic::AtomicI64::new(300);
    eventually(
        "a new producer after the fix",
        Duration::from_secs(20),
        || async {
            let first = next.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
            let answer = post(&t, first).await;
            if answer.0 != 200 {
                assert_refused(&answer, 500, "cluster authorization failed");
            }
            check(answer.0 == 200, || format!("{}: {}", answer.0, answer.3))
        },
    )
    .await;
}

/// The processor meets a permanent error while reading: `clickstream process` exits
/// non-zero and says why, rather than retrying for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_authorization_failure_on_fetch_stops_the_processor() {
    let (backend, t) = ingest_on_kafka().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut processor = tokio::process::Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("process")
        .envs(backend.env())
        .env("SCHEMA_REGISTRY_URL", t.pipeline.registry_url())
        .env("CLICKSTREAM_LAKE__URL", t.lake().root().to_string())
        .env("CLICKSTREAM_LAKE__FLUSH_INTERVAL_MS", "200")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clickstream process");
    assert_eq!(post(&t, 1).await.0, 200);
    // Once the processor has landed the batch, it is fetching.
    t.wait_for_count_within(
        "SELECT count(*) AS n FROM events",
        20,
        Duration::from_secs(60),
    )
    .await;

    cluster(&backend).request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 3],
    );
    let status = tokio::time::timeout(Duration::from_secs(30), processor.wait())
        .await
        .expect("the processor stops instead of retrying")
        .expect("exit status");
    assert!(!status.success(), "{status}");
    let mut stderr = String::new();
    processor
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("read stderr");
    assert!(
        stderr.contains("topic authorization failed"),
        "the exit names the cause:\n{stderr}"
    );
}

/// A topic the cluster will not describe to us: start-up fails at once naming the
/// refusal, rather than waiting for the topic to appear and then calling it unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_topic_refused_at_start_up_fails_with_the_reason() {
    let backend = Backend::new(LogBackend::kafka(), LakeBackend::File);
    let specs = clickstream::topics::topic_specs(None, 6).expect("default topics");
    cluster(&backend)
        .topic_error(
            &specs[0].name,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .expect("topic error set");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::common::test_config(dir.path());
    backend.configure(&mut config);
    let started = Instant::now();
    let Err(error) = clickstream::Pipeline::start(config).await else {
        panic!("started although the topic is refused");
    };
    let message = format!("{error:#}");
    assert!(message.contains("topic authorization failed"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after {:?}: waited as for a topic still propagating",
        started.elapsed()
    );
}
