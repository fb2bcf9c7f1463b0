use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_compression::Level;
use async_compression::tokio::bufread::{
    BrotliEncoder, DeflateEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder,
};
use async_compression::zstd::CParameter;
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;

use super::*;

const EVENTS: &[u8] = br#"[{"id": 1, "type": "click", "event": {"ip": "10.0.0.1"}}]"#;

/// `data` coded as `name` says (`zlib` and `raw-deflate` are the two forms of `deflate`).
async fn encode(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let read = match name {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "zlib" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        "raw-deflate" => DeflateEncoder::new(data).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(data).read_to_end(&mut out).await,
        "zstd" => ZstdEncoder::new(data).read_to_end(&mut out).await,
        other => panic!("no encoder {other}"),
    };
    read.expect("encodes");
    out
}

fn headers(encoding: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_ENCODING, encoding.parse().expect("header"));
    headers
}

async fn read(
    encoding: &str,
    body: impl Into<Body>,
    limits: BodyLimits,
) -> Result<Bytes, BodyError> {
    read_body(&headers(encoding), body.into(), &limits).await
}

const ROOMY: BodyLimits = BodyLimits {
    max_bytes: 1 << 20,
    max_ratio: 100,
    ratio_floor_bytes: BodyLimits::DEFAULT_RATIO_FLOOR_BYTES,
};

/// Every coding the edge takes, as (its encoder, the `Content-Encoding` sent).
const CODINGS: [(&str, &str); 6] = [
    ("gzip", "gzip"),
    ("gzip", "x-gzip"),
    ("zlib", "deflate"),
    ("raw-deflate", "deflate"),
    ("br", "br"),
    ("zstd", "zstd"),
];

#[tokio::test]
async fn every_coding_decodes() {
    for (encoder, encoding) in CODINGS {
        let coded = encode(encoder, EVENTS).await;
        let body = read(encoding, coded, ROOMY).await;
        assert_eq!(body.as_deref(), Ok(EVENTS), "{encoder} as {encoding}");
    }
}

#[tokio::test]
async fn names_are_case_insensitive_and_identity_is_no_coding() {
    let coded = encode("gzip", EVENTS).await;
    for encoding in [
        "GZIP",
        " gzip ",
        "identity, gzip",
        "gzip,identity",
        "Gzip, ",
    ] {
        let body = read(encoding, coded.clone(), ROOMY).await;
        assert_eq!(body.as_deref(), Ok(EVENTS), "{encoding}");
    }
    for encoding in ["identity", "", "IDENTITY", " , "] {
        let body = read(encoding, EVENTS, ROOMY).await;
        assert_eq!(body.as_deref(), Ok(EVENTS), "{encoding:?}");
    }
}

#[tokio::test]
async fn a_body_in_one_byte_chunks_decodes() {
    for (encoder, encoding) in CODINGS {
        let coded = encode(encoder, EVENTS).await;
        let chunks: Vec<io::Result<Bytes>> = coded
            .iter()
            .map(|b| Ok(Bytes::copy_from_slice(&[*b])))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let decoded = read(encoding, body, ROOMY).await;
        assert_eq!(decoded.as_deref(), Ok(EVENTS), "{encoder} as {encoding}");
    }
}

#[tokio::test]
async fn concatenated_gzip_members_and_zstd_frames_decode() {
    for name in ["gzip", "zstd"] {
        let mut coded = encode(name, b"[1,").await;
        coded.extend(encode(name, b"2]").await);
        assert_eq!(read(name, coded, ROOMY).await.as_deref(), Ok(&b"[1,2]"[..]));
    }
}

#[test]
fn unknown_and_stacked_codings_are_refused_with_415() {
    for encoding in [
        "compress",
        "x-compress",
        "bzip2",
        "gzip;q=1",
        "gzip, lz4",
        "exi",
    ] {
        let error = content_coding(&headers(encoding)).expect_err(encoding);
        assert!(
            matches!(error, BodyError::UnsupportedEncoding { .. }),
            "{encoding}"
        );
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(error.to_string().contains(ACCEPTED_ENCODINGS), "{error}");
    }
    for encoding in ["gzip, gzip", "gzip, br", "deflate,zstd,identity"] {
        let error = content_coding(&headers(encoding)).expect_err(encoding);
        assert!(
            matches!(error, BodyError::StackedEncodings { .. }),
            "{encoding}"
        );
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let mut two_lines = headers("gzip");
    two_lines.append(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
    let error = content_coding(&two_lines).expect_err("two header lines");
    assert_eq!(
        error,
        BodyError::StackedEncodings {
            found: "gzip, br".into()
        }
    );
    let mut binary = HeaderMap::new();
    let value = HeaderValue::from_bytes(b"gz\xffip").expect("opaque header");
    binary.insert(header::CONTENT_ENCODING, value);
    assert!(matches!(
        content_coding(&binary),
        Err(BodyError::UnsupportedEncoding { .. })
    ));
}

#[tokio::test]
async fn a_415_lists_the_accepted_codings_in_accept_encoding() {
    let error = content_coding(&headers("compress")).expect_err("unknown");
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        response.headers()[header::ACCEPT_ENCODING],
        ACCEPTED_ENCODINGS
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(json["status"], "error");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("compress")
    );
}

fn assert_corrupt(result: Result<Bytes, BodyError>, coding: &str, what: &str) {
    match result {
        Err(error @ BodyError::Corrupt { .. }) => {
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
            let message = error.to_string();
            assert!(
                message.contains(&format!("corrupt {coding} ")),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn truncated_streams_are_400_naming_the_coding() {
    for (encoder, encoding) in CODINGS {
        let coded = encode(encoder, EVENTS).await;
        for keep in [0, 1, coded.len() / 2, coded.len() - 1] {
            let what = format!("{encoder} cut to {keep} bytes");
            let result = read(encoding, coded[..keep].to_vec(), ROOMY).await;
            let coding = if encoding == "x-gzip" {
                "gzip"
            } else {
                encoding
            };
            assert_corrupt(result, coding, &what);
        }
    }
}

#[tokio::test]
async fn data_after_the_end_of_the_stream_is_400() {
    for (encoder, encoding) in CODINGS {
        let mut coded = encode(encoder, EVENTS).await;
        coded.extend_from_slice(b"trailing garbage");
        let result = read(encoding, coded, ROOMY).await;
        let coding = if encoding == "x-gzip" {
            "gzip"
        } else {
            encoding
        };
        assert_corrupt(result, coding, &format!("{encoder} with trailing data"));
    }
}

#[tokio::test]
async fn plain_json_labelled_as_a_coding_is_400() {
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        assert_corrupt(read(encoding, EVENTS, ROOMY).await, encoding, encoding);
    }
}

#[tokio::test]
async fn a_body_that_inflates_past_the_limit_is_413() {
    let limits = BodyLimits::new(64 * 1024, 0);
    for (encoder, encoding) in CODINGS {
        let coded = encode(encoder, &vec![b' '; 200 * 1024]).await;
        let error = read(encoding, coded, limits).await.expect_err(encoder);
        assert!(
            matches!(error, BodyError::InflatesTooLarge { limit: 65536, .. }),
            "{error}"
        );
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.to_string().contains("65536"), "{error}");
    }
}

#[tokio::test]
async fn a_body_past_the_ratio_is_413_naming_the_ratio() {
    let limits = BodyLimits {
        max_bytes: 1 << 20,
        max_ratio: 10,
        ratio_floor_bytes: 4096,
    };
    for (encoder, encoding) in CODINGS {
        let coded = encode(encoder, &vec![b' '; 100 * 1024]).await;
        let error = read(encoding, coded, limits).await.expect_err(encoder);
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.to_string().contains("10 times"), "{error}");
    }
    // Below the floor any ratio passes; off, none is checked.
    let coded = encode("gzip", &vec![b' '; 4096]).await;
    assert!(read("gzip", coded, limits).await.is_ok());
    let off = BodyLimits {
        max_ratio: 0,
        ..limits
    };
    let coded = encode("gzip", &vec![b' '; 100 * 1024]).await;
    assert!(read("gzip", coded, off).await.is_ok());
}

#[tokio::test]
async fn a_compressed_body_over_the_limit_as_sent_is_413() {
    // Incompressible: the compressed size passes the limit first.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let coded = encode("gzip", &noise).await;
    let limits = BodyLimits::new(50_000, 0);
    let error = read("gzip", coded, limits).await.expect_err("too large");
    assert_eq!(error, BodyError::TooLarge { limit: 50_000 });
}

#[tokio::test]
async fn a_plain_body_over_the_limit_is_413() {
    let limits = BodyLimits::new(10, 0);
    let error = read("identity", EVENTS, limits)
        .await
        .expect_err("too large");
    assert_eq!(error, BodyError::TooLarge { limit: 10 });
    let chunks: Vec<io::Result<Bytes>> =
        (0..4).map(|_| Ok(Bytes::from_static(b"[1,2,3]"))).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let error = read("identity", body, limits)
        .await
        .expect_err("chunked too large");
    assert_eq!(error, BodyError::TooLarge { limit: 10 });
}

#[tokio::test]
async fn a_bomb_is_stopped_after_reading_a_sliver_of_it() {
    // 64 MiB of zeros in gzip, behind a stream that counts what the reader pulls.
    let coded = encode("gzip", &vec![0u8; 64 << 20]).await;
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let chunks = coded
        .chunks(1024)
        .map(Bytes::copy_from_slice)
        .collect::<Vec<_>>();
    let stream = futures::stream::iter(chunks).map(move |chunk| {
        counter.fetch_add(chunk.len(), Ordering::Relaxed);
        Ok::<_, io::Error>(chunk)
    });
    // No drain here: stop reading the moment it is refused.
    let limits = BodyLimits::new(1 << 20, 0);
    let source = Source {
        inner: Body::from_stream(stream).into_data_stream(),
        seen: Arc::default(),
        limit: limits.max_bytes,
    };
    let mut reader = StreamReader::new(source);
    let error = inflate(&mut reader, Coding::Gzip, &limits, &AtomicUsize::new(1))
        .await
        .expect_err("bomb");
    assert!(
        matches!(error, BodyError::InflatesTooLarge { .. }),
        "{error}"
    );
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(pulled < 8 * 1024, "read {pulled} of {} bytes", coded.len());
}

#[tokio::test]
async fn a_zstd_window_over_8_mib_is_refused() {
    let params = [CParameter::window_log(27)];
    let mut coded = Vec::new();
    ZstdEncoder::with_quality_and_params(EVENTS, Level::Default, &params)
        .read_to_end(&mut coded)
        .await
        .expect("encodes");
    assert_corrupt(read("zstd", coded, ROOMY).await, "zstd", "128 MiB window");
}

#[test]
fn zlib_headers_are_told_from_raw_deflate() {
    assert!(looks_like_zlib(&[0x78, 0x9c]));
    assert!(looks_like_zlib(&[0x78, 0x01]));
    assert!(looks_like_zlib(&[0x78, 0xda]));
    assert!(looks_like_zlib(&[0x78]));
    assert!(!looks_like_zlib(&[0x78, 0x9d]), "check bits wrong");
    assert!(!looks_like_zlib(&[0x8b, 0x1f]));
    assert!(!looks_like_zlib(&[0xf3, 0x48]), "a raw deflate block");
    assert!(!looks_like_zlib(&[]));
}
