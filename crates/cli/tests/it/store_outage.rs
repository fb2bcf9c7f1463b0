//! The lake's object store hangs mid-run: nothing acknowledged is lost, and the pipeline
//! catches up by itself once the store answers again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backends::{Backend, LakeBackend, LogBackend};
use crate::common::{TestPipeline, json_body, seed_events};

/// Posts `n` copies of a seed event with ids from `first`, asserting they are accepted.
async fn post_batch(t: &TestPipeline, first: i64, n: i64) {
    let template = seed_events()[0].clone();
    let batch: Vec<Value> = (first..first + n)
        .map(|id| {
            let mut event = template.clone();
            event["id"] = json!(id);
            event
        })
        .collect();
    let response = t.collect(serde_json::to_vec(&batch).expect("json")).await;
    assert!(response.status().is_success(), "{}", response.status());
    let answer = json_body(response).await;
    assert_eq!(answer["valid_count"], json!(n), "{answer}");
}

/// The S3 server is frozen with SIGSTOP for 30 s while events keep arriving. Ingest keeps
/// acknowledging them (the log does not depend on the lake), the processor waits on the
/// store instead of dropping anything, and after SIGCONT the lake ends up with every
/// event exactly once, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_store_outage_loses_nothing_and_the_pipeline_catches_up() {
    let backend = Backend::new(LogBackend::Embedded, LakeBackend::s3());
    let LakeBackend::S3(store) = &backend.lake else {
        unreachable!("an S3 backend")
    };
    let t = TestPipeline::start_on(&backend).await;

    let mut next_id = 1;
    for _ in 0..5 {
        post_batch(&t, next_id, 50).await;
        next_id += 50;
    }
    t.wait_for_count("SELECT count(*) AS n FROM events", next_id - 1)
        .await;

    store.pause();
    for _ in 0..30 {
        post_batch(&t, next_id, 50).await;
        next_id += 50;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    store.resume();

    let total = next_id - 1;
    t.wait_for_count_within(
        "SELECT count(*) AS n FROM events",
        total,
        Duration::from_secs(180),
    )
    .await;
    let rows = t
        .sql("SELECT count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM events")
        .await;
    assert_eq!(rows[0]["d"], json!(total), "every event exactly once");
    assert_eq!(
        (rows[0]["lo"].clone(), rows[0]["hi"].clone()),
        (json!(1), json!(total))
    );
}
