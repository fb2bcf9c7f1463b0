//! Schema references (Avro): a schema may use the named types of other registered versions,
//! listed in Confluent's `references`. It is parsed with the texts of every referenced version,
//! transitively (see `store` for how they are found), as Confluent's `AvroSchemaProvider` does.
//!
//! Two forms of such a schema are kept. Its *own* text names the referenced types without
//! defining them: that is what the registry stores, compares and serves, as Confluent does.
//! Its *complete* form defines each referenced type where it is first used (in document
//! order) and refers to it by name afterwards: an ordinary self-contained [`Schema`], which is
//! what compatibility checks, the validator, the decoder and the lake mapping work on, so
//! none of them needs to know about references.

use std::collections::{HashMap, HashSet};

use apache_avro::Schema;
use apache_avro::schema::{
    DecimalSchema, InnerDecimalSchema, Name, ResolvedSchema, UnionSchema, UuidSchema,
};

/// `own` (a schema parsed together with the `referenced` schemas it may use) with each
/// referenced named type defined at its first use. Fails, with a reason, when `own` defines
/// a name a referenced schema defines too (Avro's "Can't redefine"), or when a name it uses
/// is defined nowhere.
pub(crate) fn complete(own: &Schema, referenced: &[Schema]) -> Result<Schema, String> {
    let mut definitions = HashMap::new();
    for schema in referenced {
        collect_definitions(schema, &mut definitions);
    }
    let mut own_names = Vec::new();
    defined_names(own, &mut own_names);
    if let Some(name) = own_names.iter().find(|n| definitions.contains_key(*n)) {
        return Err(format!(
            "Can't redefine: {} (a referenced schema defines it)",
            name.fullname(None)
        ));
    }
    let mut defined = HashSet::new();
    let complete = inline(own, &definitions, &mut defined, false)?;
    ResolvedSchema::try_from(&complete).map_err(|e| e.to_string())?;
    Ok(complete)
}

/// The name a schema node defines, if it defines one.
fn defined_name(schema: &Schema) -> Option<&Name> {
    match schema {
        Schema::Record(record) => Some(&record.name),
        Schema::Enum(e) => Some(&e.name),
        Schema::Fixed(fixed)
        | Schema::Duration(fixed)
        | Schema::Uuid(UuidSchema::Fixed(fixed))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(fixed),
            ..
        }) => Some(&fixed.name),
        _ => None,
    }
}

/// The schemas directly inside `schema` (fields, items, values, branches).
fn children(schema: &Schema) -> Vec<&Schema> {
    match schema {
        Schema::Record(record) => record.fields.iter().map(|f| &f.schema).collect(),
        Schema::Array(array) => vec![&array.items],
        Schema::Map(map) => vec![&map.types],
        Schema::Union(union) => union.variants().iter().collect(),
        _ => Vec::new(),
    }
}

/// Every named type defined in `schema`, nested ones included, by name (the first
/// definition of a name wins).
fn collect_definitions(schema: &Schema, into: &mut HashMap<Name, Schema>) {
    if let Some(name) = defined_name(schema) {
        into.entry(name.clone()).or_insert_with(|| schema.clone());
    }
    for child in children(schema) {
        collect_definitions(child, into);
    }
}

/// The names `schema` defines, in document order.
fn defined_names<'a>(schema: &'a Schema, into: &mut Vec<&'a Name>) {
    if let Some(name) = defined_name(schema) {
        into.push(name);
    }
    for child in children(schema) {
        defined_names(child, into);
    }
}

/// `schema` with each `Ref` to a name of `definitions` not yet `defined` replaced by the
/// definition (itself completed). Inside a referenced definition (`from_reference`), a type
/// defined earlier (e.g. used by name before the type that nests it) becomes a `Ref`, so
/// that each name is defined once.
fn inline(
    schema: &Schema,
    definitions: &HashMap<Name, Schema>,
    defined: &mut HashSet<Name>,
    from_reference: bool,
) -> Result<Schema, String> {
    if let Schema::Ref { name } = schema {
        return match definitions.get(name) {
            Some(definition) if !defined.contains(name) => {
                inline(definition, definitions, defined, true)
            }
            _ => Ok(schema.clone()),
        };
    }
    if let Some(name) = defined_name(schema)
        && !defined.insert(name.clone())
        && from_reference
    {
        return Ok(Schema::Ref { name: name.clone() });
    }
    Ok(match schema {
        Schema::Record(record) => {
            let mut record = record.clone();
            for field in &mut record.fields {
                field.schema = inline(&field.schema, definitions, defined, from_reference)?;
            }
            Schema::Record(record)
        }
        Schema::Array(array) => {
            let mut array = array.clone();
            array.items = Box::new(inline(&array.items, definitions, defined, from_reference)?);
            Schema::Array(array)
        }
        Schema::Map(map) => {
            let mut map = map.clone();
            map.types = Box::new(inline(&map.types, definitions, defined, from_reference)?);
            Schema::Map(map)
        }
        Schema::Union(union) => {
            let branches = union
                .variants()
                .iter()
                .map(|branch| inline(branch, definitions, defined, from_reference))
                .collect::<Result<Vec<_>, _>>()?;
            Schema::Union(UnionSchema::new(branches).map_err(|e| e.to_string())?)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEO: &str = r#"{"type":"record","name":"Geo","namespace":"acme","fields":[{"name":"country","type":"string"}]}"#;
    const CONTEXT: &str = r#"{"type":"record","name":"Context","namespace":"acme","fields":[{"name":"ip","type":"string"},{"name":"geo","type":["null","acme.Geo"],"default":null}]}"#;

    fn completed(own: &str, referenced: &[&str]) -> Result<Schema, String> {
        let (own, named) =
            Schema::parse_str_with_list(own, referenced).map_err(|e| e.to_string())?;
        complete(&own, &named)
    }

    /// The complete schema is self-contained: its text parses alone, to the same schema.
    fn assert_self_contained(schema: &Schema) {
        let text = serde_json::to_string(schema).expect("serialises");
        let alone = Schema::parse_str(&text).expect("parses without references");
        assert_eq!(alone.canonical_form(), schema.canonical_form());
    }

    #[test]
    fn a_referenced_type_is_defined_at_its_first_use_only() {
        let own = r#"{"type":"record","name":"PageView","namespace":"acme","fields":[
            {"name":"context","type":"acme.Context"},
            {"name":"previous","type":["null","acme.Context"],"default":null}]}"#;
        let schema = completed(own, &[GEO, CONTEXT]).expect("completes");
        assert_self_contained(&schema);
        let canonical = schema.canonical_form();
        assert_eq!(
            canonical
                .matches(r#""name":"acme.Context","type":"record""#)
                .count(),
            1,
            "{canonical}"
        );
        assert_eq!(
            canonical
                .matches(r#""name":"acme.Geo","type":"record""#)
                .count(),
            1,
            "{canonical}"
        );
    }

    #[test]
    fn a_nested_type_used_first_is_not_defined_twice() {
        let own = r#"{"type":"record","name":"E","namespace":"acme","fields":[
            {"name":"where","type":"acme.Geo"},{"name":"context","type":"acme.Context"}]}"#;
        let schema = completed(own, &[GEO, CONTEXT]).expect("completes");
        assert_self_contained(&schema);
        let Schema::Record(record) = &schema else {
            panic!("record expected: {schema:?}");
        };
        assert!(matches!(record.fields[0].schema, Schema::Record(_)));
        let Schema::Record(context) = &record.fields[1].schema else {
            panic!("context inlined: {schema:?}");
        };
        let Schema::Union(geo) = &context.fields[1].schema else {
            panic!("union expected");
        };
        assert!(matches!(geo.variants()[1], Schema::Ref { .. }), "{geo:?}");
    }

    #[test]
    fn redefining_a_referenced_type_is_refused() {
        let own = r#"{"type":"record","name":"E","namespace":"acme","fields":[
            {"name":"g","type":{"type":"record","name":"Geo","fields":[{"name":"x","type":"int"}]}}]}"#;
        let err = completed(own, &[GEO]).expect_err("redefinition");
        assert!(err.contains("Can't redefine: acme.Geo"), "{err}");
    }

    #[test]
    fn without_references_the_schema_is_unchanged() {
        let own = r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":2}},{"name":"b","type":"F"}]}"#;
        let parsed = Schema::parse_str(own).expect("parses");
        let schema = completed(own, &[]).expect("completes");
        assert_eq!(
            serde_json::to_string(&schema).ok(),
            serde_json::to_string(&parsed).ok()
        );
    }
}
