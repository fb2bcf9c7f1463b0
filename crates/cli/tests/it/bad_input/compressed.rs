//! Compressed bodies that do not decode, break a cap, or name codings we do not take.

use async_compression::Level;
use async_compression::tokio::bufread::{
    BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder,
};
use async_compression::zstd::CParameter;
use tokio::io::AsyncReadExt;

use super::{Case, Expect, case, coded};
use crate::common::seed_events;

/// The forms of body we code, as (encoder, `Content-Encoding` sent, coding named in a 400).
pub const FORMS: [(&str, &str, &str); 6] = [
    ("gzip", "gzip", "gzip"),
    ("gzip", "x-gzip", "gzip"),
    ("zlib", "deflate", "deflate"),
    ("raw-deflate", "deflate", "deflate"),
    ("br", "br", "br"),
    ("zstd", "zstd", "zstd"),
];

/// `data` coded by `encoder` (`zlib` and `raw-deflate` are the two forms of `deflate`).
pub async fn encode(encoder: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let level = Level::Fastest;
    let read = match encoder {
        "gzip" => {
            GzipEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        "zlib" => {
            ZlibEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        "raw-deflate" => {
            DeflateEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        "br" => {
            BrotliEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        "zstd" => {
            ZstdEncoder::with_quality(data, level)
                .read_to_end(&mut out)
                .await
        }
        other => panic!("no encoder {other}"),
    };
    read.expect("encodes");
    out
}

/// Bytes that do not compress.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Every case about compressed bodies.
pub async fn cases(limit: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for form in FORMS {
        cases.extend(broken_streams(form, limit).await);
    }
    cases.extend(wrong_labels().await);
    cases.extend(refused_codings());
    cases.extend(damaged_frames(limit).await);
    cases
}

/// What goes wrong with one form: truncation, trailing data, a cap, bad content inside.
async fn broken_streams(
    (encoder, encoding, coding): (&str, &str, &str),
    limit: usize,
) -> Vec<Case> {
    use Expect::*;
    let events = serde_json::to_vec(&seed_events()).expect("json");
    let good = encode(encoder, &events).await;
    let corrupt = format!("corrupt {coding} ");
    let name = |what: &str| format!("{encoder} as {encoding}: {what}");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0xff;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"[]");
    // Only gzip and zlib check their content: raw deflate, brotli and (by default) zstd
    // may decode a flipped byte into other, valid, JSON.
    let checksummed = matches!(encoder, "gzip" | "zlib");
    let oversized_event = {
        let mut big = seed_events()[0].clone();
        big["event"]["user_agent"] = "x".repeat(100_000).into();
        serde_json::to_vec(&vec![seed_events()[0].clone(), big]).expect("json")
    };
    let mut cases = vec![
        coded(
            &name("cut in half"),
            encoding,
            good[..good.len() / 2].to_vec(),
            Error(400),
        )
        .saying(&corrupt),
        coded(
            &name("last byte missing"),
            encoding,
            good[..good.len() - 1].to_vec(),
            Error(400),
        )
        .saying(&corrupt),
        coded(
            &name("first byte only"),
            encoding,
            good[..1].to_vec(),
            Error(400),
        )
        .saying(&corrupt),
        coded(&name("empty body"), encoding, Vec::new(), Error(400)).saying(&corrupt),
        coded(&name("data after the end"), encoding, trailing, Error(400)).saying(&corrupt),
        coded(
            &name("broken JSON inside"),
            encoding,
            encode(encoder, b"[{\"id\": ").await,
            Error(400),
        )
        .saying("malformed JSON"),
        coded(
            &name("nothing inside"),
            encoding,
            encode(encoder, b"").await,
            Error(400),
        )
        .saying("empty body"),
        coded(
            &name("a number inside"),
            encoding,
            encode(encoder, b"12").await,
            Error(400),
        ),
        coded(
            &name("bad UTF-8 inside"),
            encoding,
            encode(encoder, b"[\"\xff\"]").await,
            Error(400),
        ),
        coded(
            &name("deep nesting inside"),
            encoding,
            encode(encoder, &[b'['; 100_000]).await,
            Error(400),
        ),
        coded(
            &name("invalid events inside"),
            encoding,
            encode(encoder, b"[1, {}]").await,
            AllInvalid(2),
        ),
        coded(
            &name("an oversized event inside"),
            encoding,
            encode(encoder, &oversized_event).await,
            Counts {
                valid: 1,
                invalid: 1,
            },
        ),
        coded(
            &name("inflates past the limit"),
            encoding,
            encode(encoder, &vec![b' '; 4 * limit]).await,
            Error(413),
        )
        .saying(format!("inflates past the limit of {limit} bytes")),
        coded(
            &name("over the limit as sent"),
            encoding,
            encode(encoder, &noise(limit + limit / 2)).await,
            Error(413),
        )
        .saying(format!("exceeds the limit of {limit} bytes")),
    ];
    if checksummed {
        cases.push(coded(
            &name("a byte flipped"),
            encoding,
            flipped,
            Error(400),
        ));
    }
    cases
}

/// A body in one coding labelled as another: 400 from the coding named.
async fn wrong_labels() -> Vec<Case> {
    let events = serde_json::to_vec(&seed_events()).expect("json");
    let mut cases = Vec::new();
    for (encoder, coding) in [
        ("gzip", "gzip"),
        ("zlib", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
    ] {
        let body = encode(encoder, &events).await;
        for label in ["gzip", "deflate", "br", "zstd"] {
            if label == coding {
                continue;
            }
            let name = format!("{encoder} labelled {label}");
            cases.push(coded(&name, label, body.clone(), Expect::Error(400)));
        }
        let name = format!("{encoder} sent without its Content-Encoding");
        cases.push(case(&name, body, Expect::Error(400)).saying("malformed JSON"));
    }
    for label in ["gzip", "x-gzip", "deflate", "br", "zstd"] {
        let name = format!("plain JSON labelled {label}");
        cases.push(coded(&name, label, events.clone(), Expect::Error(400)).saying("corrupt "));
    }
    cases
}

/// Codings we do not decode, and lists of more than one: 415 naming what was sent.
fn refused_codings() -> Vec<Case> {
    let mut cases = Vec::new();
    for encoding in [
        "compress",
        "x-compress",
        "bzip2",
        "lzma",
        "xz",
        "lz4",
        "snappy",
        "exi",
        "pack200-gzip",
        "gzip;q=1.0",
        "gz",
        "zst",
        "brotli",
        "deflate-raw",
        "*",
        "aes128gcm",
        "gzip, compress",
    ] {
        let name = format!("Content-Encoding {encoding}");
        cases.push(coded(&name, encoding, b"[]".to_vec(), Expect::Error(415)).saying(encoding));
    }
    for encoding in [
        "gzip, gzip",
        "gzip, br",
        "br, gzip",
        "zstd, gzip",
        "deflate, deflate",
    ] {
        let name = format!("stacked Content-Encoding {encoding}");
        let case = coded(&name, encoding, b"[]".to_vec(), Expect::Error(415));
        cases.push(case.saying("more than one coding"));
    }
    cases.push(Case {
        encodings: vec![b"gzip".to_vec(), b"gzip".to_vec()],
        ..case("two Content-Encoding lines", "[]", Expect::Error(415)).saying("more than one")
    });
    cases.push(coded(
        "Content-Encoding with a high byte",
        "gz\u{e9}ip",
        b"[]".to_vec(),
        Expect::Error(415),
    ));
    cases
}

/// Frames damaged where each format checks itself: checksums, headers, windows.
async fn damaged_frames(limit: usize) -> Vec<Case> {
    let events = serde_json::to_vec(&seed_events()).expect("json");
    let gzip = encode("gzip", &events).await;
    let zlib = encode("zlib", &events).await;
    let at = |mut bytes: Vec<u8>, index: usize, value: u8| {
        bytes[index] = value;
        bytes
    };
    let n = gzip.len();
    let mut second_member_cut = gzip.clone();
    second_member_cut.extend_from_slice(&gzip[..20]);
    let mut endless_name = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 255];
    endless_name.extend(vec![b'a'; limit + 1000]);
    let zstd_checked = zstd_with(&events, &[CParameter::checksum_flag(true)]).await;
    let m = zstd_checked.len();
    let big_window = zstd_with(&events, &[CParameter::window_log(27)]).await;
    let skippable = vec![0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
    // FDICT set, check bits fixed: a zlib stream that needs a preset dictionary.
    let with_dictionary = [0x78u8, 0xbb];
    assert_eq!(u16::from_be_bytes(with_dictionary) % 31, 0);
    let bad =
        |name: &str, encoding: &str, body: Vec<u8>| coded(name, encoding, body, Expect::Error(400));
    vec![
        bad(
            "gzip with a wrong CRC",
            "gzip",
            at(gzip.clone(), n - 8, gzip[n - 8] ^ 1),
        ),
        bad(
            "gzip with a wrong length",
            "gzip",
            at(gzip.clone(), n - 1, gzip[n - 1] ^ 1),
        ),
        bad("gzip with method 7", "gzip", at(gzip.clone(), 2, 7)),
        bad("gzip with a bad magic", "gzip", at(gzip.clone(), 1, 0x8c)),
        bad("gzip whose second member is cut", "gzip", second_member_cut),
        coded(
            "gzip header with an endless file name",
            "gzip",
            endless_name,
            Expect::Error(413),
        )
        .saying("exceeds the limit"),
        bad(
            "zlib with a wrong Adler-32",
            "deflate",
            at(zlib.clone(), zlib.len() - 1, zlib[zlib.len() - 1] ^ 1),
        ),
        bad(
            "zlib needing a preset dictionary",
            "deflate",
            [&with_dictionary[..], &zlib[2..]].concat(),
        ),
        bad(
            "zstd with a wrong checksum",
            "zstd",
            at(zstd_checked.clone(), m - 1, zstd_checked[m - 1] ^ 1),
        ),
        bad("zstd with a 128 MiB window", "zstd", big_window).saying("corrupt zstd"),
        bad("zstd with only a skippable frame", "zstd", skippable).saying("empty body"),
        bad(
            "brotli with a reserved bit set",
            "br",
            vec![0x81, 0x16, 0x00, 0x58],
        ),
    ]
}

async fn zstd_with(data: &[u8], params: &[CParameter]) -> Vec<u8> {
    let mut out = Vec::new();
    ZstdEncoder::with_quality_and_params(data, Level::Default, params)
        .read_to_end(&mut out)
        .await
        .expect("encodes");
    out
}
