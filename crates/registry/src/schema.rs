//! Parsing and normalising Avro schema text.
//!
//! Identity: two registrations are "the same schema" when their *normalised* text is equal.
//! The normalised text is apache-avro's full JSON serialisation of the parsed schema: compact,
//! with a fixed key order and full names, but keeping `default`, `doc`, `aliases`, logical
//! types and `order`. This mirrors Confluent, which compares Avro Java's `Schema.toString()`
//! (not the Parsing Canonical Form): a change that only adds a default or a doc is a new
//! schema (and a new version), because defaults matter to schema resolution. Whitespace,
//! key order and `{"type":"string"}` vs `"string"` do not create new schemas. Properties on
//! primitive types, which apache-avro drops, are put back (see `normalize`), so
//! `{"type":"string","foo":"bar"}` is another schema than `"string"`, as with Confluent.
//!
//! The registry stores and returns the normalised text, as Confluent returns its canonical
//! string rather than the bytes that were posted. A schema with references is identified by
//! its normalised text *and* its references (Confluent hashes both), so the same text
//! referencing another version is another schema.

use std::sync::Arc;

use apache_avro::Schema;

use crate::error::RegistryError;
use crate::model::SchemaReference;
use crate::{normalize, references};

/// An Avro schema parsed from text, with its normalised text (the identity key, with the
/// references).
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The parsed schema, shared with compatibility checks. When the schema has references,
    /// this is its complete form: every referenced named type defined at its first use (see
    /// `references`), so that it stands alone.
    pub schema: Arc<Schema>,
    /// Normalised JSON text: what the registry stores, compares and returns. Referenced
    /// types appear in it by name only.
    pub normalized: String,
    /// The versions whose named types the schema uses (Confluent's `references`).
    pub references: Vec<SchemaReference>,
}

impl ParsedSchema {
    /// Parses `text` as an Avro schema without references and computes its normalised text.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        Self::parse_with_references(text, Vec::new(), &[])
    }

    /// Parses `text` as an Avro schema that may use the named types of `referenced`: the
    /// texts of the versions `references` names and of those they reference, transitively.
    /// The result's `schema` is the complete form (referenced types inlined).
    pub fn parse_with_references(
        text: &str,
        references: Vec<SchemaReference>,
        referenced: &[String],
    ) -> Result<Self, RegistryError> {
        if text.trim().is_empty() {
            return Err(RegistryError::InvalidSchema("empty schema".to_owned()));
        }
        // apache-avro computes canonical forms while parsing too (to report a bad default),
        // so the text is checked before it is parsed, and the parsed schema after.
        if let Ok(input) = serde_json::from_str::<serde_json::Value>(text)
            && let Some(problem) = canonical_form_problem(&input)
        {
            return Err(RegistryError::InvalidSchema(problem));
        }
        if references.is_empty() {
            let schema = Schema::parse_str(text)
                .map_err(|e| RegistryError::InvalidSchema(error_chain(&e)))?;
            let normalized = normalized_text(text, &schema)?;
            return Ok(Self {
                schema: Arc::new(schema),
                normalized,
                references,
            });
        }
        let (own, complete) = parse_completing(text, referenced)?;
        let normalized = normalized_text(text, &own)?;
        // The stored text is parsed again on every restart and by every client: it must
        // mean the same schema (a reference's bare name could resolve otherwise).
        let (_, again) = parse_completing(&normalized, referenced)?;
        if again.canonical_form() != complete.canonical_form() {
            return Err(RegistryError::InvalidSchema(
                "the schema's normalised text does not read back as the same schema".to_owned(),
            ));
        }
        Ok(Self {
            schema: Arc::new(complete),
            normalized,
            references,
        })
    }

    /// Avro's Parsing Canonical Form (drops defaults, docs, aliases): what a reader needs to
    /// decode the bytes, used to compare schemas for wire equivalence.
    pub fn parsing_canonical_form(&self) -> String {
        self.schema.canonical_form()
    }

    /// The text of the complete form: equal for two schemas that are the same once their
    /// references are resolved, whoever defines which type. Confluent finds a version with
    /// references from the same schema sent with its references resolved.
    pub(crate) fn resolved_text(&self) -> Option<String> {
        serde_json::to_string(&*self.schema).ok()
    }
}

/// `text` parsed with the `referenced` texts: its own form (referenced types by name) and
/// its complete form.
fn parse_completing(text: &str, referenced: &[String]) -> Result<(Schema, Schema), RegistryError> {
    let (own, named) = Schema::parse_str_with_list(text, referenced)
        .map_err(|e| RegistryError::InvalidSchema(error_chain(&e)))?;
    let complete = references::complete(&own, &named).map_err(RegistryError::InvalidSchema)?;
    let json = serde_json::to_value(&complete)
        .map_err(|e| RegistryError::InvalidSchema(format!("schema cannot be serialised: {e}")))?;
    if let Some(problem) = canonical_form_problem(&json) {
        return Err(RegistryError::InvalidSchema(problem));
    }
    Ok((own, complete))
}

/// The normalised text of `schema`, parsed from `text`: apache-avro's serialisation with
/// the properties it drops put back (see `normalize`).
fn normalized_text(text: &str, schema: &Schema) -> Result<String, RegistryError> {
    let json = serde_json::to_value(schema)
        .map_err(|e| RegistryError::InvalidSchema(format!("schema cannot be serialised: {e}")))?;
    if let Some(problem) = canonical_form_problem(&json) {
        return Err(RegistryError::InvalidSchema(problem));
    }
    // Serialised again, not `json.to_string()`: the identity keeps apache-avro's key order.
    let serialised = serde_json::to_string(schema)
        .map_err(|e| RegistryError::InvalidSchema(format!("schema cannot be serialised: {e}")))?;
    // apache-avro parsed this same JSON value from `text`.
    let posted: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| RegistryError::InvalidSchema(format!("invalid JSON: {e}")))?;
    Ok(normalize::with_null_namespaces(
        normalize::with_primitive_properties(&posted, serialised),
    ))
}

/// Keys of a serialised schema that apache-avro's Parsing Canonical Form keeps and reads
/// as schemas (`name` only outside named types, where it is a name).
const SCHEMA_KEYS: [&str; 7] = [
    "name", "type", "fields", "symbols", "items", "values", "order",
];
/// Keys it keeps and reads as integers.
const INTEGER_KEYS: [&str; 3] = ["size", "precision", "scale"];

/// Why apache-avro could not compute the Parsing Canonical Form of this serialised schema,
/// if it could not. Its walk assumes every key it keeps holds a schema or an integer, and
/// panics otherwise; a custom attribute named like a keyword breaks that, in a schema that
/// parses (`{"name": "a", "type": "long", "symbols": null}` as a record field; found by
/// the `registry_schema` fuzz target). Such a schema is refused instead.
fn canonical_form_problem(json: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match json {
        Value::String(_) => None,
        Value::Array(items) => items.iter().find_map(canonical_form_problem),
        Value::Object(map) => {
            let named = matches!(
                map.get("type").and_then(Value::as_str),
                Some("record" | "enum" | "fixed" | "ref")
            );
            map.iter().find_map(|(key, value)| {
                if INTEGER_KEYS.contains(&key.as_str()) {
                    let integer = value.as_i64().is_some()
                        || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                    (!integer).then(|| format!("attribute '{key}' must be an integer, found {value}"))
                } else if SCHEMA_KEYS.contains(&key.as_str()) && !(key == "name" && named) {
                    match value {
                        Value::String(_) | Value::Array(_) | Value::Object(_) => {
                            canonical_form_problem(value)
                        }
                        other => Some(format!(
                            "attribute '{key}' is an Avro keyword and must hold a schema here, found {other}"
                        )),
                    }
                } else {
                    None
                }
            })
        }
        other => Some(format!("not a schema: {other}")),
    }
}

/// Validates the `schemaType` field of a request: only Avro is supported (JSON Schema and
/// Protobuf are not, with or without references).
pub(crate) fn check_schema_type(schema_type: Option<&str>) -> Result<(), RegistryError> {
    match schema_type {
        Some(kind) if !kind.eq_ignore_ascii_case("AVRO") => Err(RegistryError::InvalidSchema(
            format!("unsupported schema type '{kind}': this registry supports AVRO only"),
        )),
        _ => Ok(()),
    }
}

/// The error and its causes on one line, as parse errors nest their details.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs the `registry_schema` fuzz target found: apache-avro parses them, then panics
    /// computing their canonical form. They are refused as invalid, and nothing panics.
    #[test]
    fn keyword_attributes_of_the_wrong_kind_are_refused_not_a_panic() {
        for (text, says) in [
            (
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","symbols":null}]}"#,
                "'symbols'",
            ),
            (
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","size":"big"}]}"#,
                "'size'",
            ),
            (
                r#"{"type":"record","name":"R","order":7,"fields":[{"name":"a","type":"long"}]}"#,
                "'order'",
            ),
            // Found by a 20-minute run: the panic came from inside parsing, which computes
            // the canonical form of a record-typed field to report its bad default.
            (
                r#"{"type":"record","name":"E","fields":[{"name":"ev","default":null,"type":{"type":"record","name":"D","fields":[{"name":"p","type":"long","symbols":null}]}}]}"#,
                "'symbols'",
            ),
        ] {
            match ParsedSchema::parse(text) {
                Err(RegistryError::InvalidSchema(reason)) => {
                    assert!(reason.contains(says), "{reason}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // The same attributes holding what the canonical form expects are fine.
        let fine = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","symbols":["x"],"size":3}]}"#;
        let parsed = ParsedSchema::parse(fine).expect("parses");
        assert!(!parsed.parsing_canonical_form().is_empty());
    }

    const RAW: &str = r#"{"type":"record","name":"ClickstreamEvent","namespace":"acme.clickstream",
      "fields":[{"name":"id","type":"long"},
        {"name":"package_id","type":["null","string"],"default":null},
        {"name":"event","type":{"type":"record","name":"EventDetails","fields":[
          {"name":"ip","type":"string"},
          {"name":"customer_id","type":["null","long"],"default":null}]}}]}"#;

    #[test]
    fn normalised_text_reparses_to_the_same_schema() {
        let parsed = ParsedSchema::parse(RAW).expect("raw schema parses");
        let again = ParsedSchema::parse(&parsed.normalized).expect("normalised text parses");
        assert_eq!(parsed.normalized, again.normalized);
        assert_eq!(
            parsed.parsing_canonical_form(),
            again.parsing_canonical_form()
        );
        assert!(
            parsed.normalized.contains("\"default\":null"),
            "{}",
            parsed.normalized
        );
    }

    #[test]
    fn whitespace_and_key_order_do_not_matter() {
        let a = ParsedSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
        );
        let b = ParsedSchema::parse(
            "{ \"fields\" : [ {\"type\": {\"type\":\"long\"}, \"name\":\"a\"} ],\n \"name\":\"R\", \"type\":\"record\" }",
        );
        let (a, b) = (a.expect("a parses"), b.expect("b parses"));
        assert_eq!(a.normalized, b.normalized);
    }

    #[test]
    fn a_default_makes_a_different_schema() {
        let a = ParsedSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
        );
        let b = ParsedSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long","default":1}]}"#,
        );
        let (a, b) = (a.expect("a parses"), b.expect("b parses"));
        assert_ne!(a.normalized, b.normalized);
        assert_eq!(a.parsing_canonical_form(), b.parsing_canonical_form());
    }

    #[test]
    fn rejects_invalid_schemas_with_the_parser_message() {
        for text in [
            "",
            "{",
            r#"{"type":"record","name":"R"}"#,
            r#""nosuchtype""#,
        ] {
            let err = ParsedSchema::parse(text).expect_err(text);
            assert!(
                matches!(err, RegistryError::InvalidSchema(_)),
                "{text}: {err}"
            );
        }
    }

    const CONTEXT: &str = r#"{"type":"record","name":"Context","namespace":"acme","fields":[{"name":"ip","type":"string"}]}"#;
    const PAGE_VIEW: &str = r#"{"type":"record","name":"PageView","namespace":"acme","fields":[{"name":"url","type":"string"},{"name":"context","type":"Context"}]}"#;

    fn context_reference() -> Vec<SchemaReference> {
        vec![SchemaReference {
            name: "acme.Context".to_owned(),
            subject: "context-value".to_owned(),
            version: 1,
        }]
    }

    #[test]
    fn a_schema_with_references_stores_its_own_text_and_parses_complete() {
        let parsed = ParsedSchema::parse_with_references(
            PAGE_VIEW,
            context_reference(),
            &[CONTEXT.to_owned()],
        )
        .expect("parses with the referenced text");
        // The stored text names the referenced type; the schema defines it.
        assert!(
            !parsed.normalized.contains("\"ip\""),
            "{}",
            parsed.normalized
        );
        assert!(
            parsed.normalized.contains(r#""type":"acme.Context""#),
            "{}",
            parsed.normalized
        );
        let alone = ParsedSchema::parse(&parsed.resolved_text().expect("serialises"))
            .expect("the complete form stands alone");
        assert_eq!(
            alone.parsing_canonical_form(),
            parsed.parsing_canonical_form()
        );
        assert!(parsed.parsing_canonical_form().contains("\"ip\""));
        // The stored text, read with the same references, is the same schema.
        let again = ParsedSchema::parse_with_references(
            &parsed.normalized,
            context_reference(),
            &[CONTEXT.to_owned()],
        )
        .expect("stored text parses");
        assert_eq!(again.normalized, parsed.normalized);
    }

    #[test]
    fn a_referenced_type_without_its_text_is_an_invalid_schema() {
        for (references, referenced) in
            [(Vec::new(), Vec::new()), (context_reference(), Vec::new())]
        {
            let err = ParsedSchema::parse_with_references(PAGE_VIEW, references, &referenced)
                .expect_err("acme.Context is unknown");
            assert!(matches!(err, RegistryError::InvalidSchema(_)), "{err}");
        }
        let not_named = ParsedSchema::parse_with_references(
            PAGE_VIEW,
            context_reference(),
            &[r#""string""#.to_owned()],
        );
        assert!(not_named.is_err());
    }

    #[test]
    fn only_avro_is_accepted() {
        assert!(check_schema_type(None).is_ok());
        assert!(check_schema_type(Some("avro")).is_ok());
        assert!(check_schema_type(Some("PROTOBUF")).is_err());
        assert!(check_schema_type(Some("JSON")).is_err());
    }

    /// Found by a second 20-minute run of the `registry_schema` fuzz target: a nested record
    /// in no namespace inside a namespaced one was stored by its bare name, which read back
    /// means another schema. The stored text says `"namespace": ""` and parses to itself.
    #[test]
    fn a_type_in_no_namespace_inside_one_is_stored_as_such() {
        let text = r#"{"type":"record","name":"E","namespace":"a.b","fields":[{"name":"d","type":{"type":"record","name":"D","namespace":"","fields":[{"name":"x","type":"long"}]}}]}"#;
        let parsed = ParsedSchema::parse(text).expect("parses");
        let stored = ParsedSchema::parse(&parsed.normalized).expect("parses again");
        // A third run: a custom attribute that looks like fields is not a schema, and is
        // kept as it was (the canonical form reads it, so a change there is another schema).
        let attribute = r#"{"type":"record","name":"R","namespace":"n","fields":[{"name":"f","type":"long","fields":[{"name":"g","type":{"type":"fixed","name":"H","size":4}}]}]}"#;
        let with_attribute = ParsedSchema::parse(attribute).expect("parses");
        let again = ParsedSchema::parse(&with_attribute.normalized).expect("parses again");
        assert_eq!(
            with_attribute.parsing_canonical_form(),
            again.parsing_canonical_form()
        );
        assert_eq!(
            parsed.parsing_canonical_form(),
            stored.parsing_canonical_form()
        );
        assert!(
            parsed.normalized.contains(r#""name":"D","namespace":"""#),
            "{}",
            parsed.normalized
        );
    }
}
