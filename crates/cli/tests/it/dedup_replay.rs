//! A batch whose `duplicates` commit landed but whose `events` commit did not (a crash
//! between the two) is read again after the restart. Its records must be decided as the
//! first run decided them, whatever the duplicate state says now, or an event lands in
//! both tables or in neither.

use clickstream_event::RAW_TOPIC;
use clickstream_lake::{AppTxn, DuplicateRow, DuplicatesBuilder, TableKind, txn_app_id};
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, read_topic};

fn event(id: i64) -> Value {
    json!({"id": id, "type": "page_view", "event": {
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "ip": "81.2.69.142", "customer_id": 4242,
        "timestamp": "2024-05-01T10:00:00Z", "page": "https://xcc-webshop.com/"}})
}

async fn post(t: &TestPipeline, events: &[Value]) {
    let answer = json_body(t.collect(serde_json::to_vec(events).expect("json")).await).await;
    assert_eq!(answer["valid_count"], json!(events.len()), "{answer}");
}

async fn offsets(t: &TestPipeline, table: &str) -> Vec<i64> {
    t.sql(&format!(
        "SELECT source_offset FROM {table} ORDER BY source_offset"
    ))
    .await
    .iter()
    .map(|r| r["source_offset"].as_i64().expect("offset"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_keeps_the_duplicate_decisions_already_committed() {
    // Event 1 lands normally.
    let t = TestPipeline::start().await;
    post(&t, &[event(1)]).await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 1)
        .await;

    // Event 1 again and event 2 reach the log while no processor runs.
    let t = t
        .restart_with(|config| config.processor.enabled = false)
        .await;
    post(&t, &[event(1), event(2)]).await;
    let records = read_topic(t.log().as_ref(), RAW_TOPIC).await;
    assert_eq!(records.len(), 3);
    let partition = records[0].partition;
    assert!(
        records.iter().all(|r| r.partition == partition),
        "one customer, one partition"
    );
    let repeat = records[1].offset as i64;

    // What a run that crashed between its `duplicates` and `events` commits leaves: the
    // repeat in `duplicates`, with the partition's position after the batch.
    let mut duplicates = t
        .lake()
        .table(TableKind::Duplicates)
        .await
        .expect("duplicates table");
    let mut rows = DuplicatesBuilder::new();
    rows.push(&DuplicateRow {
        id: 1,
        event_type: "page_view",
        customer_id: Some(4242),
        timestamp: "2024-05-01T10:00:00Z",
        correlation_id: "replay-test",
        schema_id: 1,
        first_seen_ms: records[0].timestamp_ms,
        log_timestamp_ms: records[1].timestamp_ms,
        detected_at_ms: records[1].timestamp_ms,
        source_partition: partition as i32,
        source_offset: repeat,
    });
    let group = t.config.processor.group.clone();
    duplicates
        .append(
            vec![rows.finish()],
            &[AppTxn::new(
                txn_app_id(&group, RAW_TOPIC, partition),
                records[2].offset as i64 + 1,
            )],
        )
        .await
        .expect("the crashed run's duplicates commit");

    // The restart decides differently now (duplicate detection switched off), yet each
    // record lands in exactly one table: the repeat stays a duplicate.
    let t = t
        .restart_with(|config| {
            config.processor.enabled = true;
            config.enrich.duplicates.enabled = false;
        })
        .await;
    t.wait_for_count("SELECT count(*) AS n FROM events", 2)
        .await;
    assert_eq!(offsets(&t, "duplicates").await, vec![repeat]);
    let landed = offsets(&t, "events").await;
    assert_eq!(
        landed,
        vec![records[0].offset as i64, records[2].offset as i64]
    );
}
