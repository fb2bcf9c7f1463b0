//! The processor's compiled field reader (`clickstream_event::fields::FieldReader`) on
//! arbitrary datums: the first byte picks the writer schema (the bundled raw schema with
//! the seed's field roles, or a schema with every type the reader compiles and roles
//! under a nullable record), the rest is the datum. Whatever the reader reads, apache-avro
//! decodes too, to the last byte, and every field it read is the decoded value's.
#![no_main]

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use clickstream_event::fields::{Field, FieldReader, field_of};
use clickstream_event::schemas;
use libfuzzer_sys::fuzz_target;

const SEED_PATHS: [&str; 12] = [
    "id", "type", "package_id", "event.user_agent", "event.ip", "event.customer_id",
    "event.timestamp", "event.page", "event.query", "event.product", "event.referrer",
    "event.position",
];

/// A site's schema with every type the reader compiles (shared with the unit tests).
const SITE: &str = include_str!("../../crates/event/tests/data/site_hit.avsc");

const SITE_PATHS: [&str; 7] = ["id", "kind", "ctx.ua", "ctx.ip", "ctx.at", "ctx.day", "ctx.hash"];

struct Case {
    schema: &'static Schema,
    paths: &'static [&'static str],
    reader: FieldReader,
}

fn case(schema: Schema, paths: &'static [&'static str]) -> Case {
    let schema: &'static Schema = Box::leak(Box::new(schema));
    let reader = FieldReader::new(schema, paths).expect("the schema compiles");
    Case { schema, paths, reader }
}

static CASES: LazyLock<[Case; 2]> = LazyLock::new(|| {
    [
        case(schemas::raw_event_schema().expect("raw"), &SEED_PATHS),
        case(Schema::parse_str(SITE).expect("site"), &SITE_PATHS),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((selector, datum)) = data.split_first() else {
        return;
    };
    let case = &CASES[usize::from(*selector % 2)];
    let mut fields = vec![Field::Absent; case.paths.len()];
    if case.reader.read(datum, &mut fields).is_none() {
        return;
    }
    let reader = GenericDatumReader::builder(case.schema).build().expect("reader");
    let mut rest = datum;
    let value = reader
        .read_value(&mut rest)
        .expect("apache-avro decodes what the field reader read");
    assert!(rest.is_empty(), "the field reader read a datum with trailing bytes");
    for (path, field) in case.paths.iter().zip(&fields) {
        assert_eq!(*field, field_of(&value, path), "field {path}");
    }
});
