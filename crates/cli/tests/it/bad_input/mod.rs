//! Malformed requests: each gets a clear status and a JSON reason, and the server keeps
//! serving. None may answer 5xx. The cases: broken JSON and wrong content types
//! (`json`), compressed bodies that do not decode or break a cap (`compressed`), events
//! over the per-event limit (`events`).

pub mod compressed;
mod events;
mod json;

use crate::common::{TestPipeline, json_body, seed_events};

/// The body limit of the pipeline the cases run against.
const LIMIT: usize = 256 * 1024;

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// A request error with this status and a JSON `message`.
    Error(u16),
    /// Accepted, with every event of the batch routed to the invalid topic.
    AllInvalid(u64),
    /// Accepted with these counts of valid and invalid events.
    Counts { valid: u64, invalid: u64 },
}

pub struct Case {
    pub name: String,
    pub body: Vec<u8>,
    pub content_type: Option<&'static str>,
    /// One `Content-Encoding` header line each.
    pub encodings: Vec<Vec<u8>>,
    pub expect: Expect,
    /// Text the error's `message` must contain.
    pub reason: Option<String>,
}

/// A JSON POST of `body`.
pub fn case(name: &str, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.to_string(),
        body: body.into(),
        content_type: Some("application/json"),
        encodings: Vec::new(),
        expect,
        reason: None,
    }
}

/// A JSON POST of `body` with `Content-Encoding: encoding`.
pub fn coded(name: &str, encoding: &str, body: Vec<u8>, expect: Expect) -> Case {
    Case {
        encodings: vec![encoding.as_bytes().to_vec()],
        ..case(name, body, expect)
    }
}

impl Case {
    /// The error's message must contain `text`.
    pub fn saying(self, text: impl Into<String>) -> Case {
        Case {
            reason: Some(text.into()),
            ..self
        }
    }
}

async fn send(t: &TestPipeline, case: &Case) -> (u16, serde_json::Value) {
    let mut request = t.http.post(t.url("/collect")).body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    for encoding in &case.encodings {
        let value = reqwest::header::HeaderValue::from_bytes(encoding).expect("header value");
        request = request.header("content-encoding", value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: no answer: {e}", case.name));
    let status = response.status().as_u16();
    (status, json_body(response).await)
}

/// Whether the answer is what `case` expects; why not when it is not.
fn check(case: &Case, status: u16, body: &serde_json::Value) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{}: {what}: {status} {body}", case.name));
    match case.expect {
        Expect::Error(expected) => {
            let message = body["message"].as_str().unwrap_or_default();
            if status != expected || body["status"] != "error" || message.is_empty() {
                return fail(&format!("expected {expected} with a reason"));
            }
            match &case.reason {
                Some(reason) if !message.contains(reason.as_str()) => {
                    fail(&format!("the reason does not say {reason:?}"))
                }
                _ => Ok(()),
            }
        }
        Expect::AllInvalid(n) => {
            match status == 200 && body["processed_count"] == n && body["invalid_count"] == n {
                true => Ok(()),
                false => fail(&format!("expected {n} events, all invalid")),
            }
        }
        Expect::Counts { valid, invalid } => {
            match status == 200 && body["valid_count"] == valid && body["invalid_count"] == invalid
            {
                true => Ok(()),
                false => fail(&format!("expected {valid} valid and {invalid} invalid")),
            }
        }
    }
}

#[tokio::test]
async fn every_malformed_request_gets_a_json_reason_and_the_server_survives() {
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = LIMIT).await;
    let mut cases = json::cases(LIMIT);
    cases.extend(compressed::cases(LIMIT).await);
    cases.extend(events::cases(t.config.ingest.max_event_bytes));
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    eprintln!("{} kinds of malformed request", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(names.insert(&case.name), "two cases named {}", case.name);
        let (status, body) = send(&t, case).await;
        failures.extend(check(case, status, &body).err());
        let ping = t.http.get(t.url("/ping")).send().await;
        let ping = ping.unwrap_or_else(|e| panic!("after {}: no answer to /ping: {e}", case.name));
        assert_eq!(ping.status(), 200, "after {}", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Still accepting good events.
    let good = t
        .collect(serde_json::to_vec(&seed_events()).expect("json"))
        .await;
    assert_eq!(json_body(good).await["valid_count"], 12);
}

#[tokio::test]
async fn chunked_body_beyond_the_limit_is_413() {
    let t = TestPipeline::start_with(|c| c.ingest.max_body_bytes = 4096).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = t.collect(body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(json_body(response).await["status"], "error");
}
