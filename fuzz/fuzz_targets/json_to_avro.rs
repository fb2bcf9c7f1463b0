//! Ingest's JSON → Avro validation on arbitrary input: `schema \0 event`, or just `event`
//! against the bundled raw schema. It must never panic; an event it accepts must encode,
//! and decoding the encoded record must give back exactly the value it validated to. The
//! compiled path (`validate_texts`, reading the event's text) must give the same answer:
//! the same reason for a refusal, the same key and decoded value for an acceptance.
#![no_main]

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use clickstream_event::{EventValidator, TextRefusal, schemas, wire};
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
    let reader = GenericDatumReader::builder(&schema)
        .build()
        .expect("a reader for the writer schema");
    let decode = |framed: &[u8]| {
        let (id, payload) = wire::split(framed).expect("our own framing");
        wire::read_datum(&reader, id, payload).expect("our own encoding decodes")
    };
    let by_value = validator.validate_batch([&json]).expect("encoder").pop().expect("one");
    if let Ok(text) = std::str::from_utf8(event) {
        let by_text = validator.validate_texts([text]).expect("encoder").pop().expect("one");
        match (&by_text, &by_value) {
            (Ok(t), Ok(v)) => {
                assert_eq!(t.key, v.key, "partition keys differ");
                assert_eq!(decode(&t.payload), decode(&v.payload), "the two paths differ");
            }
            (Err(TextRefusal::Invalid(t)), Err(v)) => assert_eq!(t, v, "reasons differ"),
            (t, v) => panic!("the text path says {t:?}, the value path {v:?}"),
        }
    }
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
    let (id, _) = wire::split(&event.payload).expect("our own framing");
    assert_eq!(id, 7);
    let decoded = decode(&event.payload);
    assert_eq!(decoded, avro, "the lake would read something else than was validated");
});
