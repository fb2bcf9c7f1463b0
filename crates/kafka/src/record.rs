//! Conversions between librdkafka messages and the log's records.

use bytes::Bytes;
use clickstream_log::{Header, LogRecord};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedHeaders};

/// A fetched message as a [`LogRecord`] (payload, key and headers copied).
pub fn to_log_record<M: Message>(message: &M) -> LogRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| Header::read(h.key, Bytes::copy_from_slice(h.value.unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    LogRecord {
        topic: message.topic().to_string(),
        partition: message.partition().max(0) as u32,
        offset: message.offset().max(0) as u64,
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
        key: message.key().map(Bytes::copy_from_slice),
        value: message
            .payload()
            .map(Bytes::copy_from_slice)
            .unwrap_or_default(),
        headers,
    }
}

/// Kafka headers for a record's headers.
pub fn to_kafka_headers(headers: &[Header]) -> OwnedHeaders {
    headers
        .iter()
        .fold(OwnedHeaders::new_with_capacity(headers.len()), |all, h| {
            all.insert(rdkafka::message::Header {
                key: &h.key,
                value: Some(h.value.as_ref()),
            })
        })
}
