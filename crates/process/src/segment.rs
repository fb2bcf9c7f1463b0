//! The Segment stream's records: what the processor reads out of a call normalized by
//! ingest (`crates/segment`), which already carries Segment's warehouse names and the
//! clock-skew-corrected `timestamp`.
//!
//! The paths are those of the bundled Segment schema; a later version of the subject may
//! add fields (they become columns like the raw stream's), not move these.

use apache_avro::types::Value;
use clickstream_enrich::{CallFields, Campaign, SessionInput, VisitorId};
use clickstream_event::{CORRELATION_ID_HEADER, SOURCE_HEADER};
use clickstream_lake::{IdentityRow, SegmentDuplicateRow, SegmentEventRow};
use clickstream_log::LogRecord;

use crate::Processor;
use crate::decode::Decoded;
use crate::exactly_once::{Positions, Table};
use crate::metrics::Handles;
use crate::records::header_text;
use crate::roles::{string_at, value_at};

/// Whose calls a session groups: the anonymous id first (the browser library sends it
/// on every call, before and after a login, so a visit stays one session across it),
/// then the user id (server-side calls), then IP and user agent.
pub(crate) fn visitor_ids<'v>(
    anonymous_id: Option<&'v str>,
    user_id: Option<&'v str>,
) -> [VisitorId<'v>; 2] {
    [VisitorId::Device(anonymous_id), VisitorId::User(user_id)]
}

impl Processor {
    /// A Segment call for `segment_events`, with the identity link it carries for
    /// `identities` (rule 3: only where `identities` does not hold the offset yet).
    pub(crate) fn push_call(
        &mut self,
        record: &LogRecord,
        positions: &Positions,
        decoded: &Decoded<'_>,
        call: &SegmentCall<'_>,
        now_ms: i64,
    ) {
        let correlation_id = header_text(record, CORRELATION_ID_HEADER).unwrap_or_default();
        let source = header_text(record, SOURCE_HEADER);
        let ids = visitor_ids(call.anonymous_id, call.user_id);
        let enriched = self.enrichment.enrich_call(&CallFields {
            user_agent: call.user_agent,
            ip: call.ip,
            visitor_ids: &ids,
            page: call.page_url,
            referrer: call.referrer,
            campaign: call.campaign.as_ref(),
        });
        // Privacy replaces the address before it is stored anywhere.
        let ip = match &enriched.protected {
            Some(p) => Some(p.ip.as_str()).filter(|ip| !ip.is_empty()),
            None => call.ip,
        };
        let session = self.enrichment.sessions_enabled().then(|| SessionInput {
            visitor: enriched.visitor,
            time_us: call.timestamp_ms.saturating_mul(1000),
            event_id: clickstream_enrich::IdDigest::of(call.message_id).as_i64(),
        });
        let offset = record.offset as i64;
        let identity = call
            .identity_link()
            .filter(|_| positions.lands(Table::Identities, offset))
            .map(|link| {
                let row = IdentityRow {
                    anonymous_id: link.anonymous_id,
                    user_id: link.user_id,
                    previous_id: link.previous_id,
                    link: call.call_type,
                    message_id: call.message_id,
                    timestamp_ms: call.timestamp_ms,
                    correlation_id: &correlation_id,
                    source_partition: record.partition as i32,
                    source_offset: offset,
                    ingested_at_ms: now_ms,
                };
                (record.partition, row)
            });
        self.pending.push_call(
            &SegmentEventRow {
                message_id: call.message_id,
                call_type: call.call_type,
                user_agent: call.user_agent,
                ip,
                timestamp_ms: call.timestamp_ms,
                correlation_id: &correlation_id,
                source: source.as_deref(),
                schema_id: decoded.schema_id as i32,
                log_timestamp_ms: record.timestamp_ms,
                source_partition: record.partition as i32,
                source_offset: offset,
                ingested_at_ms: now_ms,
                enrichment: crate::enrichment::columns(&enriched),
                user: decoded.user_columns(),
            },
            session,
            identity,
        );
    }

    /// A call whose message id was seen within the dedup window (a library's retry):
    /// kept in `segment_duplicates`, not in `segment_events` or `identities`.
    pub(crate) fn push_duplicate_call(
        &mut self,
        record: &LogRecord,
        decoded: &Decoded<'_>,
        call: &SegmentCall<'_>,
        first_seen_ms: i64,
        now_ms: i64,
    ) {
        let correlation_id = header_text(record, CORRELATION_ID_HEADER).unwrap_or_default();
        Handles::get().duplicates.increment(1);
        self.pending.push_duplicate_call(
            record.partition,
            &SegmentDuplicateRow {
                message_id: call.message_id,
                call_type: call.call_type,
                user_id: call.user_id,
                anonymous_id: call.anonymous_id,
                timestamp_ms: call.timestamp_ms,
                correlation_id: &correlation_id,
                schema_id: decoded.schema_id as i32,
                first_seen_ms,
                log_timestamp_ms: record.timestamp_ms,
                detected_at_ms: now_ms,
                source_partition: record.partition as i32,
                source_offset: record.offset as i64,
            },
        );
    }
}

/// The fields of a Segment call the processor needs, borrowed from its decoded value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentCall<'v> {
    /// `messageId`: the dedup key.
    pub message_id: &'v str,
    /// `track`, `page`, `screen`, `identify`, `group` or `alias`.
    pub call_type: &'v str,
    pub user_id: Option<&'v str>,
    pub anonymous_id: Option<&'v str>,
    /// `alias`' former id.
    pub previous_id: Option<&'v str>,
    /// When the call happened, corrected for the client's clock (milliseconds).
    pub timestamp_ms: i64,
    /// `context.userAgent`: absent from most server-side calls.
    pub user_agent: Option<&'v str>,
    /// `context.ip`: the client's, or the request's address ingest filled in.
    pub ip: Option<&'v str>,
    /// `context.page.url`.
    pub page_url: Option<&'v str>,
    /// `context.page.referrer`.
    pub referrer: Option<&'v str>,
    /// `context.campaign`, which wins over the page URL's `utm_*` parameters.
    pub campaign: Option<Campaign>,
}

impl<'v> SegmentCall<'v> {
    /// Reads a decoded call. A missing `messageId`, `type` or `timestamp` (which ingest
    /// always fills) is the reason the record is a dead letter.
    pub fn from_value(value: &'v Value) -> Result<Self, String> {
        let required = |path: &str| format!("field '{path}' is missing or null");
        Ok(SegmentCall {
            message_id: string_at(value, "message_id")?.ok_or_else(|| required("message_id"))?,
            call_type: string_at(value, "type")?.ok_or_else(|| required("type"))?,
            user_id: string_at(value, "user_id")?,
            anonymous_id: string_at(value, "anonymous_id")?,
            previous_id: string_at(value, "previous_id")?,
            timestamp_ms: millis_at(value, "timestamp")?.ok_or_else(|| required("timestamp"))?,
            user_agent: string_at(value, "context.user_agent")?,
            ip: string_at(value, "context.ip")?,
            page_url: string_at(value, "context.page.url")?,
            referrer: string_at(value, "context.page.referrer")?,
            campaign: campaign_at(value)?,
        })
    }

    /// The identity link the call makes, if any: `identify` links its anonymous id to its
    /// user id, `alias` links `previousId` to `userId` (Segment's two calls for saying who
    /// a visitor is). Other calls carrying both ids (the browser library sends both on
    /// every call after a login) link nothing new: one row per link made, not per call.
    pub fn identity_link(&self) -> Option<IdentityLink<'v>> {
        let user_id = self.user_id.filter(|id| !id.is_empty())?;
        match self.call_type {
            "alias" => {
                let previous = self.previous_id.filter(|id| !id.is_empty())?;
                Some(IdentityLink {
                    user_id,
                    anonymous_id: None,
                    previous_id: Some(previous),
                })
            }
            "identify" => {
                let anonymous = self.anonymous_id.filter(|id| !id.is_empty())?;
                Some(IdentityLink {
                    user_id,
                    anonymous_id: Some(anonymous),
                    previous_id: None,
                })
            }
            _ => None,
        }
    }
}

/// Two ids of one person, as one call links them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdentityLink<'v> {
    pub user_id: &'v str,
    pub anonymous_id: Option<&'v str>,
    pub previous_id: Option<&'v str>,
}

/// A timestamp-millis (or -micros) field, in milliseconds.
fn millis_at(value: &Value, path: &str) -> Result<Option<i64>, String> {
    match value_at(value, path) {
        None => Ok(None),
        Some(Value::TimestampMillis(ms) | Value::Long(ms)) => Ok(Some(*ms)),
        Some(Value::TimestampMicros(us)) => Ok(Some(us.div_euclid(1000))),
        Some(other) => Err(format!(
            "field '{path}' is {other:?}, expected a timestamp-millis"
        )),
    }
}

/// `context.campaign`, when it names anything.
fn campaign_at(value: &Value) -> Result<Option<Campaign>, String> {
    let field = |name: &str| {
        string_at(value, format!("context.campaign.{name}").as_str())
            .map(|text| text.filter(|t| !t.is_empty()).map(str::to_owned))
    };
    let campaign = Campaign {
        source: field("source")?,
        medium: field("medium")?,
        name: field("name")?,
        term: field("term")?,
        content: field("content")?,
        ..Campaign::default()
    };
    Ok((campaign != Campaign::default()).then_some(campaign))
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use serde_json::json;

    use super::*;

    const SCHEMA: &str = include_str!("../../segment/schemas/acme.clickstream.segment.events.avsc");

    /// A call as ingest writes it, decoded the way the processor decodes records.
    fn decoded(call: serde_json::Value) -> Value {
        let schema = Schema::parse_str(SCHEMA).expect("the bundled schema");
        let validator = clickstream_event::EventValidator::for_events(schema.clone(), 1)
            .expect("a record schema");
        let value = validator.to_avro(&call).expect("a valid call");
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .expect("writer")
            .write_value_to_vec(value)
            .expect("encoded");
        apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .expect("reader")
            .read_value(&mut bytes.as_slice())
            .expect("decoded")
    }

    fn call(extra: serde_json::Value) -> serde_json::Value {
        let mut call = json!({
            "message_id": "m-1", "type": "identify", "user_id": "u-7", "anonymous_id": "a-3",
            "timestamp": 1_764_000_000_123_i64, "received_at": 1_764_000_000_500_i64,
            "context": {"ip": "203.0.113.9", "user_agent": "Mozilla/5.0",
                        "page": {"url": "https://shop.example/?utm_source=news", "referrer": "https://www.google.com/"},
                        "campaign": {"source": "mail", "name": "winter"}}
        });
        if let (Some(call), Some(extra)) = (call.as_object_mut(), extra.as_object()) {
            call.extend(extra.clone());
        }
        call
    }

    #[test]
    fn reads_what_enrichment_and_identities_need() {
        let value = decoded(call(json!({})));
        let parsed = SegmentCall::from_value(&value).expect("a call");
        assert_eq!(parsed.message_id, "m-1");
        assert_eq!(parsed.timestamp_ms, 1_764_000_000_123);
        assert_eq!(parsed.ip, Some("203.0.113.9"));
        assert_eq!(parsed.user_agent, Some("Mozilla/5.0"));
        assert_eq!(parsed.referrer, Some("https://www.google.com/"));
        let campaign = parsed.campaign.clone().expect("a campaign");
        assert_eq!(campaign.source.as_deref(), Some("mail"));
        assert_eq!(campaign.name.as_deref(), Some("winter"));
        assert_eq!(campaign.medium, None);
        assert_eq!(
            parsed.identity_link(),
            Some(IdentityLink {
                user_id: "u-7",
                anonymous_id: Some("a-3"),
                previous_id: None
            })
        );
    }

    #[test]
    fn alias_links_the_previous_id_and_lone_ids_link_nothing() {
        let value = decoded(call(json!({"type": "alias", "previous_id": "old"})));
        let parsed = SegmentCall::from_value(&value).expect("a call");
        assert_eq!(
            parsed.identity_link(),
            Some(IdentityLink {
                user_id: "u-7",
                anonymous_id: None,
                previous_id: Some("old")
            })
        );
        let value = decoded(call(json!({"type": "track", "user_id": null})));
        let parsed = SegmentCall::from_value(&value).expect("a call");
        assert_eq!(parsed.identity_link(), None);
        let value = decoded(call(json!({"type": "track"})));
        let parsed = SegmentCall::from_value(&value).expect("a call");
        assert_eq!(
            parsed.identity_link(),
            None,
            "a track with both ids links nothing"
        );
    }

    #[test]
    fn server_side_calls_have_no_user_agent_or_campaign() {
        let value = decoded(call(
            json!({"context": {"library": {"name": "analytics-python"}}}),
        ));
        let parsed = SegmentCall::from_value(&value).expect("a call");
        assert_eq!((parsed.user_agent, parsed.ip), (None, None));
        assert_eq!(parsed.campaign, None);
    }
}
