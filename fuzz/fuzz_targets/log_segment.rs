//! The embedded log's reader on arbitrary bytes: the recovery scan of a segment file and
//! the frame check and decoder behind every read. The first byte picks the shape: a raw
//! file, or one frame built around the rest with a true length and checksum (so the body
//! parser is reached without guessing a CRC), followed by whatever the fuzzer adds.
#![no_main]

use clickstream_log::embedded::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let base = u64::from(mode >> 2);
    if mode & 1 == 0 {
        fuzzing::scan(rest, base);
        fuzzing::frames(rest);
    } else {
        // [u16 body length][body][anything]
        let Some((len, rest)) = rest.split_first_chunk::<2>() else {
            return;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let mut file = fuzzing::frame_around(&rest[..len]);
        file.extend_from_slice(&rest[len..]);
        fuzzing::scan(&file, base);
        fuzzing::frames(&file);
    }
});
