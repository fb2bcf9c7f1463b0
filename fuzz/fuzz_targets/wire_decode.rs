//! The processor's and the UI's record decoder (Confluent framing, then one Avro datum) on
//! arbitrary bytes from the log, with the bundled raw and latest schemas as writers, and
//! the raw schema resolved to itself. Never a panic, never an unbounded allocation.
#![no_main]

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use clickstream_event::{schemas, wire};
use libfuzzer_sys::fuzz_target;

static RAW: LazyLock<Schema> = LazyLock::new(|| schemas::raw_event_schema().expect("raw"));
static LATEST: LazyLock<Schema> =
    LazyLock::new(|| schemas::latest_event_schema().expect("latest"));

fuzz_target!(|data: &[u8]| {
    let Ok((id, payload)) = wire::split(data) else {
        return;
    };
    let (writer, resolve) = match id % 3 {
        0 => (&*RAW, false),
        1 => (&*LATEST, false),
        _ => (&*RAW, true),
    };
    let builder = GenericDatumReader::builder(writer);
    let reader = if resolve {
        builder.reader_schema(&RAW).build()
    } else {
        builder.build()
    }
    .expect("a reader for a bundled schema");
    let _ = wire::read_datum(&reader, id, payload);
});
