//! The registry's schema parser and compatibility check on arbitrary text: one or two
//! schemas separated by a NUL byte. Never a panic or a hang; what the registry stores (the
//! normalised text) parses again to the same schema, so a restart can load it; and a
//! schema is compatible with itself at every level.
#![no_main]

use clickstream_registry::{CompatibilityLevel, ParsedSchema, PreviousVersion, check_compatibility};
use libfuzzer_sys::fuzz_target;

const LEVELS: [CompatibilityLevel; 7] = [
    CompatibilityLevel::None,
    CompatibilityLevel::Backward,
    CompatibilityLevel::BackwardTransitive,
    CompatibilityLevel::Forward,
    CompatibilityLevel::ForwardTransitive,
    CompatibilityLevel::Full,
    CompatibilityLevel::FullTransitive,
];

fn parse(bytes: &[u8]) -> Option<ParsedSchema> {
    let parsed = ParsedSchema::parse(std::str::from_utf8(bytes).ok()?).ok()?;
    let stored = ParsedSchema::parse(&parsed.normalized)
        .unwrap_or_else(|e| panic!("the stored text does not parse again: {e}\n{}", parsed.normalized));
    assert_eq!(
        stored.parsing_canonical_form(),
        parsed.parsing_canonical_form(),
        "the stored text is another schema"
    );
    Some(parsed)
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Some(a) = parse(first) else {
        return;
    };
    let itself = [PreviousVersion { version: 1, id: 1, schema: &a.schema }];
    for level in LEVELS {
        let problems = check_compatibility(level, &a.schema, &itself);
        assert!(problems.is_empty(), "not compatible with itself under {level:?}: {problems:?}");
    }
    if let Some(b) = second.and_then(parse) {
        let before = [PreviousVersion { version: 1, id: 1, schema: &a.schema }];
        for level in LEVELS {
            let _ = check_compatibility(level, &b.schema, &before);
        }
    }
});
