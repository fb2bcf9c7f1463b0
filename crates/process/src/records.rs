//! Turning a poll's records into rows, latest-topic records and unique-user candidates.

use std::borrow::Cow;

use clickstream_enrich::{EventFields, SessionInput};
use clickstream_event::{CORRELATION_ID_HEADER, ERROR_MESSAGE_HEADER, SOURCE_HEADER};
use clickstream_lake::{DeadLetterRow, DuplicateRow, EventRow, InvalidEventRow};
use clickstream_log::{LogRecord, TopicPartition};

use crate::decode::{Decoded, Parsed, RawEvent, Undecodable};
use crate::exactly_once::{self, Feed, Positions, RawRecord, Route, Table};
use crate::metrics::Handles;
use crate::unique_users::day_of;
use crate::{ProcessError, Processor};

impl Processor {
    /// Handles one poll's worth of records. Records already in the lake (below a table's
    /// committed version) are skipped for that table.
    pub(crate) async fn process_records(
        &mut self,
        records: Vec<LogRecord>,
    ) -> Result<(), ProcessError> {
        tracing::debug!(records = records.len(), "records read");
        let now_ms = chrono::Utc::now().timestamp_millis();
        // One key, refilled per record: a lookup allocates nothing.
        let mut tp = TopicPartition::new(String::new(), 0);
        for record in &records {
            tp.topic.clear();
            tp.topic.push_str(&record.topic);
            tp.partition = record.partition;
            let positions = self.positions.get(&tp).copied().unwrap_or_default();
            let offset = record.offset as i64;
            match self.stream.feed_of(&record.topic) {
                Some(Feed::Raw) => {
                    // Only a record that was handled counts as consumed: at shutdown during a
                    // registry outage the rest of the poll is left for the next start.
                    let Some(decoded) = self.decode_with_retry(&record.value).await? else {
                        return Ok(());
                    };
                    self.pending
                        .consumed_raw(record.partition, record.offset, record_size(record));
                    self.route_raw(record, &positions, &decoded, now_ms)?;
                    self.send_full_events_slice().await?;
                }
                Some(Feed::Invalid) => {
                    self.pending.consumed_invalid(
                        record.partition,
                        record.offset,
                        record_size(record),
                    );
                    if positions.lands(Table::Invalid, offset) {
                        self.push_invalid(record);
                    }
                }
                None => tracing::warn!(
                    topic = record.topic,
                    "record from an unexpected topic ignored"
                ),
            }
        }
        if let Some(compiled) = self.enrichment.user_agent_patterns_compiled() {
            Handles::get()
                .user_agent_patterns_compiled
                .set(compiled as f64);
        }
        Ok(())
    }

    /// Sends a decoded raw record where [`exactly_once::route_raw`] says.
    fn route_raw(
        &mut self,
        record: &LogRecord,
        positions: &Positions,
        decoded: &Result<Decoded<'_>, Undecodable>,
        now_ms: i64,
    ) -> Result<(), ProcessError> {
        let outcome = match decoded {
            Ok(decoded) => decoded
                .parsed(self.stream)
                .map(|parsed| (decoded, parsed))
                .map_err(|reason| Undecodable {
                    reason,
                    schema_id: Some(decoded.schema_id),
                }),
            Err(undecodable) => Err(undecodable.clone()),
        };
        let offset = record.offset as i64;
        let kind = match &outcome {
            Ok(_) => RawRecord::Event,
            Err(_) => RawRecord::Undecodable,
        };
        let key = outcome.as_ref().ok().map(|(_, parsed)| parsed.dedup_key());
        let mut first_seen_ms = None;
        let replayed = self.replayed_duplicates.get(&record.partition);
        let enrichment = &mut self.enrichment;
        let route = exactly_once::route_raw(
            positions,
            offset,
            kind,
            || replayed.is_some_and(|offsets| offsets.contains(&offset)),
            || {
                first_seen_ms =
                    key.and_then(|key| enrichment.duplicate_of(key, record.timestamp_ms));
                first_seen_ms.is_some()
            },
        );
        match (route, outcome) {
            (Route::Event, Ok((decoded, Parsed::Event(event)))) => {
                self.push_event(record, decoded, &event, now_ms)
            }
            (Route::Event, Ok((decoded, Parsed::Call(call)))) => {
                self.push_call(record, positions, decoded, &call, now_ms)
            }
            (Route::Duplicate, Ok((decoded, parsed))) => {
                let first_seen_ms = first_seen_ms.unwrap_or(record.timestamp_ms);
                match parsed {
                    Parsed::Event(event) => {
                        self.push_duplicate(record, decoded, &event, first_seen_ms, now_ms)
                    }
                    Parsed::Call(call) => {
                        self.push_duplicate_call(record, decoded, &call, first_seen_ms, now_ms)
                    }
                }
            }
            (Route::DeadLetter, Err(undecodable)) => {
                self.push_dead_letter(record, &undecodable, now_ms)
            }
            (Route::Skip, _) => {}
            (route, _) => {
                return Err(ProcessError::Internal(format!(
                    "raw record {}/{offset} routed to {route:?} against its kind",
                    record.partition
                )));
            }
        }
        Ok(())
    }

    fn push_invalid(&mut self, record: &LogRecord) {
        let raw_json = String::from_utf8_lossy(&record.value);
        let reason = header_text(record, ERROR_MESSAGE_HEADER);
        let correlation_id = header_text(record, CORRELATION_ID_HEADER);
        let source = header_text(record, SOURCE_HEADER);
        self.pending.push_invalid(&InvalidEventRow {
            raw_json: &raw_json,
            reason: reason.as_deref().unwrap_or("no reason recorded"),
            correlation_id: correlation_id.as_deref(),
            source: source.as_deref(),
            received_at_ms: record.timestamp_ms,
            source_partition: record.partition as i32,
            source_offset: record.offset as i64,
        });
    }

    /// Decodes, waiting out registry outages with backoff. `None` when shutdown was
    /// requested meanwhile, or the batch was dropped (a commit in flight did not land).
    async fn decode_with_retry<'r>(
        &mut self,
        bytes: &'r [u8],
    ) -> Result<Option<Result<Decoded<'r>, Undecodable>>, ProcessError> {
        let mut backoff = std::time::Duration::from_millis(200);
        loop {
            // A schema seen for the first time is planned against `events`' columns as
            // the batch in flight leaves them.
            if self.schemas.needs_loading(bytes)
                && self.committer().await?.1 == crate::flush::Settled::Restarted
            {
                return Ok(None);
            }
            let events = self.home.as_ref().map(|c| &c.tables.events);
            match self.schemas.decode(bytes, events).await {
                Ok(decoded) => {
                    if backoff > std::time::Duration::from_millis(200) {
                        self.health.waiting_on(None);
                    }
                    return Ok(Some(decoded));
                }
                Err(e) if e.is_transient() => {
                    if *self.stop.borrow() {
                        return Ok(None);
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "schema registry unavailable; waiting");
                    self.health
                        .waiting_on(Some(format!("the schema registry: {e}")));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn push_event(
        &mut self,
        record: &LogRecord,
        decoded: &Decoded<'_>,
        event: &RawEvent<'_>,
        now_ms: i64,
    ) {
        let schema_id = decoded.schema_id;
        let header_id = header_text(record, CORRELATION_ID_HEADER);
        let correlation_id = header_id
            .as_deref()
            .or(event.package_id)
            .unwrap_or_default();
        let latest = match decoded.latest_id {
            Some(latest_id) => {
                Some(
                    self.latest_bytes
                        .record(record, latest_id, decoded.schema_id, correlation_id),
                )
            }
            // The writer schema has no latest schema (refused by the latest subject),
            // warned about when the schema was loaded.
            None => {
                Handles::get().latest_skipped.increment(1);
                None
            }
        };
        let source = header_text(record, SOURCE_HEADER);
        let enriched = self.enrichment.enrich(&EventFields {
            user_agent: event.user_agent,
            ip: event.ip,
            customer_id: event.customer_id,
            page: event.page,
            referrer: event.referrer,
        });
        // Privacy replaces the identifying fields before they are stored anywhere derived.
        let (ip, customer_id) = match &enriched.protected {
            Some(p) => (p.ip.as_str(), p.customer_id),
            None => (event.ip, event.customer_id),
        };
        let session = self.enrichment.sessions_enabled().then(|| SessionInput {
            visitor: enriched.visitor,
            time_us: clickstream_lake::parse_event_time(&event.timestamp)
                .map_or(record.timestamp_ms.saturating_mul(1000), |t| {
                    t.timestamp_micros()
                }),
            event_id: event.id,
        });
        self.pending.push_event(
            &EventRow {
                id: event.id,
                event_type: event.event_type,
                package_id: event.package_id,
                user_agent: event.user_agent,
                ip,
                customer_id,
                timestamp: &event.timestamp,
                page: event.page,
                query: event.query,
                product: event.product,
                referrer: event.referrer,
                position: event.position,
                correlation_id,
                source: source.as_deref(),
                schema_id: schema_id as i32,
                log_timestamp_ms: record.timestamp_ms,
                source_partition: record.partition as i32,
                source_offset: record.offset as i64,
                ingested_at_ms: now_ms,
                enrichment: crate::enrichment::columns(&enriched),
                user: decoded.user_columns(),
            },
            session,
            latest,
        );
        if let Some(customer) = customer_id {
            self.pending
                .push_new_user(day_of(&event.timestamp), customer);
        }
    }

    /// An event whose id was seen within the dedup window: kept in `duplicates`, not in
    /// `events`, the latest topic or unique users.
    fn push_duplicate(
        &mut self,
        record: &LogRecord,
        decoded: &Decoded<'_>,
        event: &RawEvent<'_>,
        first_seen_ms: i64,
        now_ms: i64,
    ) {
        let header_id = header_text(record, CORRELATION_ID_HEADER);
        let correlation_id = header_id
            .as_deref()
            .or(event.package_id)
            .unwrap_or_default();
        // The same privacy as the first copy's in `events`.
        let customer_id = self
            .enrichment
            .stored_customer_id(event.ip, event.customer_id);
        Handles::get().duplicates.increment(1);
        self.pending.push_duplicate(
            record.partition,
            &DuplicateRow {
                id: event.id,
                event_type: event.event_type,
                customer_id,
                timestamp: &event.timestamp,
                correlation_id,
                schema_id: decoded.schema_id as i32,
                first_seen_ms,
                log_timestamp_ms: record.timestamp_ms,
                detected_at_ms: now_ms,
                source_partition: record.partition as i32,
                source_offset: record.offset as i64,
            },
        );
    }

    fn push_dead_letter(&mut self, record: &LogRecord, undecodable: &Undecodable, now_ms: i64) {
        tracing::debug!(
            partition = record.partition, offset = record.offset, reason = %undecodable.reason,
            "raw record cannot be decoded; kept in dead_letters"
        );
        let correlation_id = header_text(record, CORRELATION_ID_HEADER);
        self.pending.push_dead_letter(
            record.partition,
            &DeadLetterRow {
                reason: &undecodable.reason,
                source_topic: &record.topic,
                source_partition: record.partition as i32,
                source_offset: record.offset as i64,
                raw: &record.value,
                correlation_id: correlation_id.as_deref(),
                schema_id: undecodable.schema_id.map(|id| id as i32),
                received_at_ms: record.timestamp_ms,
                failed_at_ms: now_ms,
            },
        );
    }
}

/// A header's value as text (borrowed unless it is not UTF-8).
pub(crate) fn header_text<'r>(record: &'r LogRecord, name: &str) -> Option<Cow<'r, str>> {
    record.header(name).map(String::from_utf8_lossy)
}

/// What a record weighs against `lake.flush_max_bytes`: its key and value.
pub(crate) fn record_size(record: &LogRecord) -> usize {
    record.key.as_ref().map_or(0, |k| k.len()) + record.value.len()
}
