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

/// Where one writer schema keeps every field a raw event is read from: the roles, and the
/// seed's other fields by their seed paths. Resolved when the schema is first loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventPaths {
    pub id: ResolvedPath,
    pub event_type: ResolvedPath,
    pub package_id: ResolvedPath,
    pub user_agent: ResolvedPath,
    pub ip: ResolvedPath,
    pub customer_id: ResolvedPath,
    pub timestamp: ResolvedPath,
    pub page: ResolvedPath,
    pub query: ResolvedPath,
    pub product: ResolvedPath,
    pub referrer: ResolvedPath,
    pub position: ResolvedPath,
}

impl EventPaths {
    /// `roles` (and the seed's other paths) in `schema`.
    pub(crate) fn new(roles: &FieldRoles, schema: &Schema) -> Self {
        Self::with(roles, |path| ResolvedPath::new(path, schema))
    }

    /// `roles` searched by name in every record (the bench's baseline).
    pub(crate) fn unresolved(roles: &FieldRoles) -> Self {
        Self::with(roles, ResolvedPath::unresolved)
    }

    /// The dotted paths, in [`crate::decode::RawEvent`]'s field order.
    pub(crate) fn texts(&self) -> [&str; 12] {
        [
            &self.id,
            &self.event_type,
            &self.package_id,
            &self.user_agent,
            &self.ip,
            &self.customer_id,
            &self.timestamp,
            &self.page,
            &self.query,
            &self.product,
            &self.referrer,
            &self.position,
        ]
        .map(|path| path.text())
    }

    fn with(roles: &FieldRoles, at: impl Fn(&str) -> ResolvedPath) -> Self {
        EventPaths {
            id: at(&roles.id),
            event_type: at(&roles.event_type),
            package_id: at("package_id"),
            user_agent: at(&roles.user_agent),
            ip: at(&roles.ip),
            customer_id: at(&roles.customer_id),
            timestamp: at(&roles.timestamp),
            page: at(&roles.page),
            query: at("event.query"),
            product: at("event.product"),
            referrer: at(&roles.referrer),
            position: at("event.position"),
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
    path.lookup(value)
}

/// A place in a decoded record: a dotted path, or one resolved against its writer schema.
pub(crate) trait FieldPath {
    /// The value there, unions unwrapped; `None` when absent or under a null.
    fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value>;
    /// The dotted path, for messages.
    fn text(&self) -> &str;
}

impl FieldPath for str {
    fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut current = unwrap(value);
        for segment in self.split('.') {
            current = unwrap(field(current, segment, None)?);
        }
        not_null(current)
    }

    fn text(&self) -> &str {
        self
    }
}

/// A dotted path resolved once against a writer schema: each segment with the position of
/// its field in the record, so a record decoded with that schema is read without
/// searching its fields by name (the name is still checked: a mismatch searches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedPath {
    text: String,
    segments: Vec<(String, Option<usize>)>,
}

impl ResolvedPath {
    /// `path` in `schema` (positions unknown where the schema has no such field).
    pub(crate) fn new(path: &str, schema: &Schema) -> Self {
        let mut names = Names::new();
        collect_names(schema, &mut names);
        let scope = Scope { names: &names };
        let mut current = Some(schema);
        let segments = path
            .split('.')
            .map(|segment| {
                let record = current.and_then(|s| record_of(&scope, s));
                let at = match record {
                    Some(Schema::Record(record)) => {
                        record.fields.iter().position(|f| f.name == segment)
                    }
                    _ => None,
                };
                current = at.and_then(|at| match record {
                    Some(Schema::Record(record)) => Some(&record.fields[at].schema),
                    _ => None,
                });
                (segment.to_string(), at)
            })
            .collect();
        ResolvedPath {
            text: path.to_string(),
            segments,
        }
    }
}

impl ResolvedPath {
    /// `path` with no positions: every record's fields are searched by name.
    pub(crate) fn unresolved(path: &str) -> Self {
        ResolvedPath {
            text: path.to_string(),
            segments: path.split('.').map(|s| (s.to_string(), None)).collect(),
        }
    }
}

impl FieldPath for ResolvedPath {
    fn lookup<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut current = unwrap(value);
        for (segment, at) in &self.segments {
            current = unwrap(field(current, segment, *at)?);
        }
        not_null(current)
    }

    fn text(&self) -> &str {
        &self.text
    }
}

/// The field `name` of `record`, looked for at `at` first.
fn field<'v>(record: &'v Value, name: &str, at: Option<usize>) -> Option<&'v Value> {
    let Value::Record(fields) = record else {
        return None;
    };
    at.and_then(|at| fields.get(at))
        .filter(|(field, _)| field == name)
        .or_else(|| fields.iter().find(|(field, _)| field == name))
        .map(|(_, value)| value)
}

fn not_null(value: &Value) -> Option<&Value> {
    match value {
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
pub(crate) fn string_at<'v, P: FieldPath + ?Sized>(
    value: &'v Value,
    path: &P,
) -> Result<Option<&'v str>, String> {
    let path_text = path.text();
    match path.lookup(value) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Enum(_, s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "field '{path_text}' is {other:?}, expected a string"
        )),
    }
}

/// A long role's value.
pub(crate) fn long_at<P: FieldPath + ?Sized>(
    value: &Value,
    path: &P,
) -> Result<Option<i64>, String> {
    let path_text = path.text();
    match path.lookup(value) {
        None => Ok(None),
        Some(Value::Long(v)) => Ok(Some(*v)),
        Some(Value::Int(v)) => Ok(Some(i64::from(*v))),
        Some(other) => Err(format!("field '{path_text}' is {other:?}, expected a long")),
    }
}

/// The timestamp role's value as text: a string as sent, a timestamp-millis/-micros in
/// RFC 3339 (UTC).
pub(crate) fn timestamp_at<'v, P: FieldPath + ?Sized>(
    value: &'v Value,
    path: &P,
) -> Result<Option<Cow<'v, str>>, String> {
    let path_text = path.text();
    let rfc3339 = |micros: Option<i64>| {
        micros
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .ok_or_else(|| format!("field '{path_text}' is out of the timestamp range"))
    };
    match path.lookup(value) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Value::TimestampMillis(ms)) => rfc3339(ms.checked_mul(1000)).map(Some),
        Some(Value::TimestampMicros(us)) => rfc3339(Some(*us)).map(Some),
        Some(other) => Err(format!(
            "field '{path_text}' is {other:?}, expected a string or a timestamp"
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

    /// Resolved paths read what the dotted paths read, from the positions the writer
    /// schema gives, and still find a field whose position differs from the schema's.
    #[test]
    fn resolved_paths_read_what_dotted_paths_read() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"E","fields":[
                {"name":"id","type":"long"},
                {"name":"context","type":["null",{"type":"record","name":"C","fields":[
                    {"name":"ua","type":"string"},{"name":"ip","type":["null","string"]}]}]},
                {"name":"again","type":["null","C"]}]}"#,
        )
        .expect("schema");
        let context = |ua: &str, ip: Value| {
            Value::Union(
                1,
                Box::new(Value::Record(vec![
                    ("ua".into(), Value::String(ua.into())),
                    ("ip".into(), ip),
                ])),
            )
        };
        let value = Value::Record(vec![
            ("id".into(), Value::Long(7)),
            (
                "context".into(),
                context(
                    "Mozilla",
                    Value::Union(1, Box::new(Value::String("1.2.3.4".into()))),
                ),
            ),
            (
                "again".into(),
                context("curl", Value::Union(0, Box::new(Value::Null))),
            ),
        ]);
        for path in [
            "id",
            "context.ua",
            "context.ip",
            "again.ua",
            "again.ip",
            "nope",
            "id.x",
            "context.nope",
        ] {
            let resolved = ResolvedPath::new(path, &schema);
            assert_eq!(resolved.lookup(&value), value_at(&value, path), "{path}");
            assert_eq!(resolved.text(), path);
        }
        let resolved = ResolvedPath::new("again.ua", &schema);
        assert_eq!(
            resolved.segments,
            [("again".to_string(), Some(2)), ("ua".to_string(), Some(0))]
        );
        // Fields in another order than the schema's (not what a decoder gives, but a
        // position is only a hint).
        let reordered = Value::Record(vec![
            ("again".into(), context("curl", Value::Null)),
            ("id".into(), Value::Long(7)),
        ]);
        assert_eq!(string_at(&reordered, &resolved), Ok(Some("curl")));
        assert_eq!(
            long_at(&reordered, &ResolvedPath::new("id", &schema)),
            Ok(Some(7))
        );
    }
}
