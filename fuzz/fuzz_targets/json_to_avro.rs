//! Ingest's JSON → Avro validation on arbitrary input: `schema \0 event`, or just `event`
//! against the bundled raw schema. It must never panic; an event it accepts must encode,
//! and decoding the encoded record must give back exactly the value it validated to.
#![no_main]

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use clickstream_event::{EventValidator, schemas, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (schema, event) = match data.iter().position(|&b| b == 0) {
        Some(at) => {
            let Ok(text) = std::str::from_utf8(&data[..at]) else {
                return;
            };
            let Ok(schema) = Schema::parse_str(text) else {
                return;
            };
            (schema, &data[at + 1..])
        }
        None => (schemas::raw_event_schema().expect("bundled schema"), data),
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(event) else {
        return;
    };
    let Ok(validator) = EventValidator::new(schema.clone(), 7) else {
        return;
    };
    let Ok(avro) = validator.to_avro(&json) else {
        return;
    };
    let encoded = validator
        .validate_batch([&json])
        .expect("an accepted event encodes");
    let event = encoded
        .into_iter()
        .next()
        .expect("one result")
        .expect("validated twice, accepted once");
    let (id, payload) = wire::split(&event.payload).expect("our own framing");
    assert_eq!(id, 7);
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("a reader for the writer schema");
    let decoded = wire::read_datum(&reader, id, payload).expect("our own encoding decodes");
    assert_eq!(decoded, avro, "the lake would read something else than was validated");
});
