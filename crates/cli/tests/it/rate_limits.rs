//! Rate limits and load bounds over real sockets: a client address over its rate gets 429
//! with `Retry-After` while another address is served, and gets the events its rate
//! allows within 10 %; `X-Forwarded-For` counts only from a trusted proxy; a batch larger
//! than the bucket is 413; past the bound on requests in flight, 503 at once.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestPipeline, json_body, seed_events};
use crate::eventually::{check, eventually};

/// What an answer to `/collect` says: status, `Retry-After`, body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

/// A batch of `n` copies of the seed's first (valid) event.
fn batch(n: usize) -> Value {
    Value::Array(vec![seed_events()[0].clone(); n])
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches loopback).
fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().expect("an address");
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .expect("client")
}

async fn post(http: &reqwest::Client, url: &str, body: &Value, forwarded: Option<&str>) -> Answer {
    let mut request = http.post(url).json(body);
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse().expect("whole seconds"));
    Answer {
        status,
        retry_after,
        body: json_body(response).await,
    }
}

fn assert_throttled(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 429, "{what}: {}", answer.body);
    assert!(
        answer.retry_after.is_some_and(|s| s >= 1),
        "{what}: Retry-After"
    );
    let message = answer.body["message"].as_str().expect("a reason");
    assert!(message.starts_with("rate limit: "), "{what}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_rate_gets_429_and_what_the_rate_allows_while_another_is_served() {
    const RATE: u32 = 200;
    const BURST: u32 = 100;
    const BATCH: usize = 10;
    let t = TestPipeline::start_with(|c| {
        c.limits.ip_events_per_sec = RATE;
        c.limits.ip_burst = BURST;
    })
    .await;
    let url = t.url("/collect");
    let (greedy, modest) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let body = batch(BATCH);
    let (mut accepted, mut throttled, mut modest_served) = (0u64, 0u64, 0u64);
    let mut modest_next = Instant::now();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let answer = post(&greedy, &url, &body, None).await;
        match answer.status {
            200 => accepted += answer.body["valid_count"].as_u64().expect("count"),
            _ => {
                assert_throttled(&answer, "the greedy client");
                throttled += 1;
            }
        }
        // Another address, at a quarter of the rate, is served all along.
        if Instant::now() >= modest_next {
            let answer = post(&modest, &url, &batch(5), None).await;
            assert_eq!(answer.status, 200, "the modest client: {}", answer.body);
            modest_served += 1;
            modest_next += Duration::from_millis(100);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = f64::from(BURST) + f64::from(RATE) * elapsed;
    assert!(throttled > 0, "the greedy client was never throttled");
    assert!(
        modest_served >= 20,
        "the modest client sent {modest_served} batches"
    );
    let off = (accepted as f64 - allowed).abs() / allowed;
    assert!(
        off <= 0.10,
        "{accepted} events accepted in {elapsed:.2} s, the rate allows {allowed:.0} ({:.1} % off)",
        off * 100.0
    );
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let t = TestPipeline::start_with(|c| {
        c.limits.ip_events_per_sec = 1;
        c.limits.ip_burst = 10;
        c.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let url = t.url("/collect");
    let (proxy, stranger) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let ten = batch(10);
    // Behind the proxy: each forwarded address has its own bucket.
    let first = post(&proxy, &url, &ten, Some("203.0.113.7")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_throttled(
        &post(&proxy, &url, &ten, Some("203.0.113.7")).await,
        "the same client behind the proxy",
    );
    let other = post(&proxy, &url, &ten, Some("203.0.113.8")).await;
    assert_eq!(
        other.status, 200,
        "another client behind the proxy: {}",
        other.body
    );
    // From an untrusted peer the header is ignored: a new address each time does not help.
    let first = post(&stranger, &url, &ten, Some("198.51.100.1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_throttled(
        &post(&stranger, &url, &ten, Some("198.51.100.2")).await,
        "an untrusted peer forging the header",
    );
    // The overview counts the refusals.
    eventually(
        "the overview counts them",
        Duration::from_secs(10),
        || async {
            let overview = json_body(
                t.http
                    .get(t.ui_url("/api/ui/overview"))
                    .send()
                    .await
                    .expect("ui"),
            )
            .await;
            let totals = &overview["latest"]["totals"];
            check(
                totals["throttled_requests"] == 2 && totals["shed_requests"] == 0,
                || totals.to_string(),
            )
        },
    )
    .await;
}

#[tokio::test]
async fn a_batch_larger_than_the_bucket_is_413_with_a_reason() {
    let t = TestPipeline::start_with(|c| {
        c.limits.ip_events_per_sec = 100;
        c.limits.ip_burst = 20;
    })
    .await;
    let answer = post(&t.http, &t.url("/collect"), &batch(21), None).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.retry_after, None);
    let message = answer.body["message"].as_str().expect("a reason");
    assert!(
        message.contains("21 events") && message.contains("(20)"),
        "{message}"
    );
    let fits = post(&t.http, &t.url("/collect"), &batch(20), None).await;
    assert_eq!(fits.status, 200, "{}", fits.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_requests_in_flight_bound_ingest_answers_503_at_once() {
    let t = TestPipeline::start_with(|c| c.limits.max_requests_in_flight = 2).await;
    let url = t.url("/collect");
    // Two requests whose bodies never finish hold both places.
    let mut senders = Vec::new();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        tx.send(Ok(b"[".to_vec())).await.expect("first chunk");
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let request = t
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream));
        stalled.push(tokio::spawn(request.send()));
        senders.push(tx);
    }
    eventually(
        "two requests in flight",
        Duration::from_secs(10),
        || async {
            let text = t.http.get(t.url("/metrics")).send().await.expect("metrics");
            let text = text.text().await.expect("text");
            let in_flight = text
                .lines()
                .find_map(|l| l.strip_prefix("clickstream_ingest_requests_in_flight "))
                .unwrap_or("0");
            check(in_flight == "2", || format!("{in_flight} in flight"))
        },
    )
    .await;
    let started = Instant::now();
    let shed = post(&t.http, &url, &batch(1), None).await;
    assert_eq!(shed.status, 503, "{}", shed.body);
    assert_eq!(shed.retry_after, Some(1));
    let message = shed.body["message"].as_str().expect("a reason");
    assert!(
        message.starts_with("overloaded: more than 2 requests"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once, not queued"
    );
    // The stalled bodies end: their requests are answered and their places freed.
    let event = serde_json::to_vec(&seed_events()[0]).expect("json");
    for tx in senders {
        tx.send(Ok([event.as_slice(), b"]"].concat()))
            .await
            .expect("rest");
    }
    for request in stalled {
        let response = request.await.expect("task").expect("answered");
        assert_eq!(response.status(), 200);
    }
    let after = post(&t.http, &url, &batch(1), None).await;
    assert_eq!(after.status, 200, "{}", after.body);
}
