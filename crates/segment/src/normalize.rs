//! One Segment call to the JSON the Segment schema validates: Segment's warehouse names
//! (snake_case), ids as strings, timestamps in milliseconds with the client's clock
//! corrected, `properties`, `traits`, `integrations` and the context beyond its typed
//! fields kept as JSON text, and every top-level field without a column kept in `extra`.
//!
//! What Segment requires of a call is checked here, with the reason naming the field as
//! the library sent it: a type, an id (`userId` or `anonymousId`), a track call's `event`,
//! a group call's `groupId`, an alias call's `previousId` and `userId`, and the types of the
//! fields that have columns. The context is the library's: its typed fields are taken when
//! they are strings, and nothing in it rejects a call.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

/// The kinds of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    /// An action the user took.
    Track,
    /// A page view.
    Page,
    /// A screen view (mobile).
    Screen,
    /// Who the user is.
    Identify,
    /// Which group (account) the user belongs to.
    Group,
    /// One identity merged into another.
    Alias,
}

impl CallType {
    /// The type named `name` (`"track"`, ...).
    pub fn parse(name: &str) -> Option<CallType> {
        Some(match name {
            "track" => CallType::Track,
            "page" => CallType::Page,
            "screen" => CallType::Screen,
            "identify" => CallType::Identify,
            "group" => CallType::Group,
            "alias" => CallType::Alias,
            _ => return None,
        })
    }

    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            CallType::Track => "track",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Identify => "identify",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }
}

/// What ingest knows of a request beside its body.
#[derive(Debug, Clone)]
pub struct Received {
    /// When the request arrived.
    pub at: DateTime<Utc>,
    /// The client's address, for calls whose context carries none.
    pub ip: Option<String>,
}

/// Why a call is refused; the text names the field as the library sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Top-level fields with a column (or, for `writeKey`, deliberately kept nowhere: it is a
/// credential).
const KNOWN: &[&str] = &[
    "type",
    "messageId",
    "event",
    "name",
    "category",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "integrations",
    "writeKey",
];

/// `message` as the Segment schema's JSON. `path_type` is the type the request's path
/// names (`/v1/track`, `/v1/t`), used when the message has none; `envelope_sent_at` is the
/// batch's `sentAt`, used when the message has none.
pub fn normalize(
    message: &Map<String, Value>,
    path_type: Option<CallType>,
    envelope_sent_at: Option<&Value>,
    received: &Received,
) -> Result<Value, Rejected> {
    let call = call_type(message, path_type)?;
    let user_id = id(message, "userId")?;
    let anonymous_id = id(message, "anonymousId")?;
    let previous_id = id(message, "previousId")?;
    let group_id = id(message, "groupId")?;
    check_required(
        call,
        message,
        &user_id,
        &anonymous_id,
        &previous_id,
        &group_id,
    )?;
    let message_id = id(message, "messageId")?
        .unwrap_or_else(|| format!("clickstream-{}", uuid::Uuid::new_v4()));
    let times = Times::of(message, envelope_sent_at, received)?;
    let (context, context_json) = context(message.get("context"), received)?;
    Ok(json!({
        "message_id": message_id,
        "type": call.name(),
        "event": text(message, "event")?,
        "name": text(message, "name")?,
        "category": text(message, "category")?,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": previous_id,
        "group_id": group_id,
        "timestamp": times.corrected,
        "original_timestamp": times.original,
        "sent_at": times.sent,
        "received_at": received.at.timestamp_millis(),
        "properties": object_text(message, "properties")?,
        "traits": object_text(message, "traits")?,
        "context": with_json(context, context_json),
        "integrations": object_text(message, "integrations")?,
        "extra": extra(message),
    }))
}

fn call_type(
    message: &Map<String, Value>,
    path_type: Option<CallType>,
) -> Result<CallType, Rejected> {
    match present(message, "type") {
        Some(Value::String(name)) => CallType::parse(name).ok_or_else(|| {
            Rejected(format!(
                "field 'type': {name:?} is not a call type (track, page, screen, identify, group, alias)"
            ))
        }),
        Some(other) => Err(Rejected(format!(
            "field 'type': expected a string, found {}",
            kind(other)
        ))),
        None => path_type.ok_or_else(|| {
            Rejected("field 'type': missing (a batch's calls each name their type)".into())
        }),
    }
}

/// What each type of call needs besides its type.
fn check_required(
    call: CallType,
    message: &Map<String, Value>,
    user_id: &Option<String>,
    anonymous_id: &Option<String>,
    previous_id: &Option<String>,
    group_id: &Option<String>,
) -> Result<(), Rejected> {
    match call {
        CallType::Alias => {
            if previous_id.is_none() {
                return Err(Rejected(
                    "field 'previousId': an alias call needs it".into(),
                ));
            }
            if user_id.is_none() {
                return Err(Rejected("field 'userId': an alias call needs it".into()));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(Rejected(
                "fields 'userId' and 'anonymousId': a call needs one of them".into(),
            ));
        }
        CallType::Track => match present(message, "event") {
            Some(Value::String(name)) if !name.is_empty() => {}
            _ => {
                return Err(Rejected(
                    "field 'event': a track call needs the event's name (a string)".into(),
                ));
            }
        },
        CallType::Group if group_id.is_none() => {
            return Err(Rejected("field 'groupId': a group call needs it".into()));
        }
        _ => {}
    }
    Ok(())
}

/// The field, unless absent or `null` (libraries send explicit nulls for what was not given).
fn present<'m>(message: &'m Map<String, Value>, field: &str) -> Option<&'m Value> {
    message.get(field).filter(|v| !v.is_null())
}

/// An id: a string, or a number taken as its text (Segment takes numeric ids).
fn id(message: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejected> {
    match present(message, field) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(Rejected(format!(
            "field '{field}': expected a string or a number, found {}",
            kind(other)
        ))),
    }
}

/// A string field, or null.
fn text(message: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejected> {
    match present(message, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Rejected(format!(
            "field '{field}': expected a string, found {}",
            kind(other)
        ))),
    }
}

/// An object field as JSON text, or null.
fn object_text(message: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejected> {
    match present(message, field) {
        None => Ok(None),
        Some(object @ Value::Object(_)) => Ok(Some(object.to_string())),
        Some(other) => Err(Rejected(format!(
            "field '{field}': expected an object, found {}",
            kind(other)
        ))),
    }
}

/// A call's times, in milliseconds since the epoch.
struct Times {
    original: Option<i64>,
    sent: Option<i64>,
    corrected: i64,
}

impl Times {
    /// Segment's clock-skew correction: `received_at - (sent_at - timestamp)` when the
    /// client sent both, so a client whose clock is off still places its calls right;
    /// else the client's timestamp; else when the call was received.
    fn of(
        message: &Map<String, Value>,
        envelope_sent_at: Option<&Value>,
        received: &Received,
    ) -> Result<Times, Rejected> {
        let original = match present(message, "timestamp") {
            Some(value) => Some(instant("timestamp", value)?),
            None => present(message, "originalTimestamp")
                .map(|value| instant("originalTimestamp", value))
                .transpose()?,
        };
        let sent = match present(message, "sentAt") {
            Some(value) => Some(instant("sentAt", value)?),
            None => envelope_sent_at
                .filter(|v| !v.is_null())
                .map(|value| instant("sentAt", value))
                .transpose()?,
        };
        let received_ms = received.at.timestamp_millis();
        let corrected = match (original, sent) {
            (Some(original), Some(sent)) => {
                received_ms.saturating_sub(sent.saturating_sub(original))
            }
            (Some(original), None) => original,
            (None, _) => received_ms,
        };
        Ok(Times {
            original,
            sent,
            corrected,
        })
    }
}

/// An ISO 8601 time: with an offset (`Z`, `+02:00`), or without one, taken as UTC.
fn instant(field: &str, value: &Value) -> Result<i64, Rejected> {
    let bad = || {
        Rejected(format!(
            "field '{field}': expected an ISO 8601 time (2024-05-01T12:00:00.000Z), found {}",
            describe(value)
        ))
    };
    let Value::String(text) = value else {
        return Err(bad());
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|at| at.and_utc().timestamp_millis())
        .map_err(|_| bad())
}

/// The typed fields of the context, and the rest of it (all but `ip`) as JSON text.
fn context(
    context: Option<&Value>,
    received: &Received,
) -> Result<(Map<String, Value>, Option<String>), Rejected> {
    let empty = Map::new();
    let fields = match context {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(Rejected(format!(
                "field 'context': expected an object, found {}",
                kind(other)
            )));
        }
    };
    let mut typed = Map::new();
    let ip = scalar(fields.get("ip")).or_else(|| received.ip.clone());
    typed.insert("ip".into(), json!(ip));
    typed.insert("user_agent".into(), json!(scalar(fields.get("userAgent"))));
    typed.insert("locale".into(), json!(scalar(fields.get("locale"))));
    typed.insert("timezone".into(), json!(scalar(fields.get("timezone"))));
    typed.insert(
        "page".into(),
        part(
            fields.get("page"),
            &[
                ("url", "url"),
                ("path", "path"),
                ("referrer", "referrer"),
                ("title", "title"),
                ("search", "search"),
            ],
        ),
    );
    typed.insert(
        "campaign".into(),
        part(
            fields.get("campaign"),
            &[
                ("name", "name"),
                ("source", "source"),
                ("medium", "medium"),
                ("term", "term"),
                ("content", "content"),
            ],
        ),
    );
    typed.insert(
        "library".into(),
        part(
            fields.get("library"),
            &[("name", "name"), ("version", "version")],
        ),
    );
    let mut rest = fields.clone();
    rest.remove("ip");
    let json = (!rest.is_empty()).then(|| Value::Object(rest).to_string());
    Ok((typed, json))
}

fn with_json(mut context: Map<String, Value>, json: Option<String>) -> Value {
    context.insert("json".into(), json!(json));
    Value::Object(context)
}

/// A part of the context (`page`, `campaign`, `library`) with the string fields `names`
/// (column, sent as), or null when the context has no such object.
fn part(value: Option<&Value>, names: &[(&str, &str)]) -> Value {
    let Some(Value::Object(fields)) = value else {
        return Value::Null;
    };
    let picked: Map<String, Value> = names
        .iter()
        .map(|(column, sent)| ((*column).to_string(), json!(scalar(fields.get(*sent)))))
        .collect();
    Value::Object(picked)
}

/// A string, or a number or boolean as its text; anything else (kept in the JSON) is none.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The top-level fields without a column, as a JSON object's text (none when there are none).
fn extra(message: &Map<String, Value>) -> Option<String> {
    let rest: Map<String, Value> = message
        .iter()
        .filter(|(key, _)| !KNOWN.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!rest.is_empty()).then(|| Value::Object(rest).to_string())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value for a reason: strings quoted, containers by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests;
