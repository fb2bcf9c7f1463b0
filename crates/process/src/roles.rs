//! Field roles: where in a site's schema the processor finds what the seed's columns and
//! the enrichers need (user agent, IP, timestamp, customer id, page URL, referrer), as
//! dotted Avro paths. The defaults are the seed's fields, so seed events are read exactly
//! as before; a site whose schema keeps them elsewhere says where (`[processor.fields]`).

use std::borrow::Cow;

use apache_avro::Schema;
use apache_avro::types::Value;
use clickstream_lake::avro::{Names, Scope, collect_names};
use serde::{Deserialize, Serialize};

/// Dotted Avro paths of the fields with a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldRoles {
    /// The event id (a long): column `id`, duplicates. Required.
    pub id: String,
    /// The event type (a string): column `type`. Required.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The user agent (a string): column `user_agent`, browser, OS, device and bot
    /// detection, sessions. Required.
    pub user_agent: String,
    /// The client IP (a string): column `ip`, geo, sessions, privacy. Required.
    pub ip: String,
    /// When the event happened: a string (RFC 3339 or the seed's formats) or a
    /// timestamp-millis/-micros; columns `timestamp`, `event_time`, `event_date`,
    /// sessions, unique users. Required.
    pub timestamp: String,
    /// The customer (a long): column `customer_id`, unique users, privacy. Optional.
    pub customer_id: String,
    /// The page URL (a string): column `page`, campaign parameters. Optional.
    pub page: String,
    /// The referrer URL (a string): column `referrer`, referrer classification. Optional.
    pub referrer: String,
}

impl Default for FieldRoles {
    fn default() -> Self {
        Self {
            id: "id".into(),
            event_type: "type".into(),
            user_agent: "event.user_agent".into(),
            ip: "event.ip".into(),
            timestamp: "event.timestamp".into(),
            customer_id: "event.customer_id".into(),
            page: "event.page".into(),
            referrer: "event.referrer".into(),
        }
    }
}

/// A role a writer schema has no field for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingRole {
    pub role: &'static str,
    pub path: String,
    /// Records cannot become events without it (its column is NOT NULL).
    pub required: bool,
    /// What stays null without it.
    pub effect: &'static str,
}

impl FieldRoles {
    fn all(&self) -> [(&'static str, &str, bool, &'static str); 8] {
        [
            ("id", &self.id, true, "column id"),
            ("type", &self.event_type, true, "column type"),
            (
                "user_agent",
                &self.user_agent,
                true,
                "column user_agent, browser, OS, device, bots",
            ),
            ("ip", &self.ip, true, "column ip, geo"),
            (
                "timestamp",
                &self.timestamp,
                true,
                "columns timestamp, event_time, event_date",
            ),
            (
                "customer_id",
                &self.customer_id,
                false,
                "column customer_id, unique users",
            ),
            (
                "page",
                &self.page,
                false,
                "column page, campaign parameters",
            ),
            (
                "referrer",
                &self.referrer,
                false,
                "column referrer, referrer classification",
            ),
        ]
    }

    /// The roles `schema` has no field for.
    pub(crate) fn missing_in(&self, schema: &Schema) -> Vec<MissingRole> {
        let mut names = Names::new();
        collect_names(schema, &mut names);
        let scope = Scope { names: &names };
        self.all()
            .into_iter()
            .filter(|(_, path, _, _)| !has_path(&scope, schema, path))
            .map(|(role, path, required, effect)| MissingRole {
                role,
                path: path.to_string(),
                required,
                effect,
            })
            .collect()
    }
}

/// Whether `schema` has a field at dotted `path` (through records and nullable unions).
fn has_path(scope: &Scope<'_>, schema: &Schema, path: &str) -> bool {
    let mut current = schema;
    for segment in path.split('.') {
        let Some(Schema::Record(record)) = record_of(scope, current) else {
            return false;
        };
        match record.fields.iter().find(|f| f.name == segment) {
            Some(field) => current = &field.schema,
            None => return false,
        }
    }
    true
}

fn record_of<'s>(scope: &Scope<'s>, schema: &'s Schema) -> Option<&'s Schema> {
    match scope.resolve(schema)? {
        Schema::Union(union) => union
            .variants()
            .iter()
            .filter_map(|v| scope.resolve(v))
            .find(|v| matches!(v, Schema::Record(_))),
        other => Some(other),
    }
}

/// The value at dotted `path` of a decoded record, unions unwrapped; `None` when absent or
/// under a null.
pub(crate) fn value_at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = unwrap(value);
    for segment in path.split('.') {
        let Value::Record(fields) = current else {
            return None;
        };
        current = unwrap(&fields.iter().find(|(name, _)| name == segment)?.1);
    }
    match current {
        Value::Null => None,
        other => Some(other),
    }
}

fn unwrap(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

/// A string role's value.
pub(crate) fn string_at<'v>(value: &'v Value, path: &str) -> Result<Option<&'v str>, String> {
    match value_at(value, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Enum(_, s)) => Ok(Some(s)),
        Some(other) => Err(format!("field '{path}' is {other:?}, expected a string")),
    }
}

/// A long role's value.
pub(crate) fn long_at(value: &Value, path: &str) -> Result<Option<i64>, String> {
    match value_at(value, path) {
        None => Ok(None),
        Some(Value::Long(v)) => Ok(Some(*v)),
        Some(Value::Int(v)) => Ok(Some(i64::from(*v))),
        Some(other) => Err(format!("field '{path}' is {other:?}, expected a long")),
    }
}

/// The timestamp role's value as text: a string as sent, a timestamp-millis/-micros in
/// RFC 3339 (UTC).
pub(crate) fn timestamp_at<'v>(
    value: &'v Value,
    path: &str,
) -> Result<Option<Cow<'v, str>>, String> {
    let rfc3339 = |micros: Option<i64>| {
        micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .ok_or_else(|| format!("field '{path}' is out of the timestamp range"))
    };
    match value_at(value, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Value::TimestampMillis(ms)) => rfc3339(ms.checked_mul(1000)).map(Some),
        Some(Value::TimestampMicros(us)) => rfc3339(Some(*us)).map(Some),
        Some(other) => Err(format!(
            "field '{path}' is {other:?}, expected a string or a timestamp"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = include_str!("../../event/schemas/acme.clickstream.raw.events.avsc");

    #[test]
    fn the_seed_schema_has_every_role() {
        let raw = Schema::parse_str(RAW).expect("schema");
        assert!(FieldRoles::default().missing_in(&raw).is_empty());
    }

    #[test]
    fn roles_elsewhere_and_missing_ones_are_found() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"E","fields":[
                {"name":"id","type":"long"},{"name":"type","type":"string"},
                {"name":"context","type":["null",{"type":"record","name":"C","fields":[
                    {"name":"ua","type":"string"},{"name":"ip","type":"string"},
                    {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}]}]}"#,
        )
        .expect("schema");
        let roles = FieldRoles {
            user_agent: "context.ua".into(),
            ip: "context.ip".into(),
            timestamp: "context.at".into(),
            ..FieldRoles::default()
        };
        let missing: Vec<(&str, bool)> = roles
            .missing_in(&schema)
            .iter()
            .map(|m| (m.role, m.required))
            .collect();
        assert_eq!(
            missing,
            [("customer_id", false), ("page", false), ("referrer", false)]
        );
        let value = Value::Record(vec![
            ("id".into(), Value::Long(1)),
            ("type".into(), Value::String("t".into())),
            (
                "context".into(),
                Value::Union(
                    1,
                    Box::new(Value::Record(vec![
                        ("ua".into(), Value::String("Mozilla".into())),
                        ("ip".into(), Value::String("1.2.3.4".into())),
                        ("at".into(), Value::TimestampMillis(1_709_287_200_123)),
                    ])),
                ),
            ),
        ]);
        assert_eq!(string_at(&value, "context.ua"), Ok(Some("Mozilla")));
        assert_eq!(
            timestamp_at(&value, "context.at").expect("ts").as_deref(),
            Some("2024-03-01T10:00:00.123Z")
        );
        assert_eq!(long_at(&value, "event.customer_id"), Ok(None));
    }
}
