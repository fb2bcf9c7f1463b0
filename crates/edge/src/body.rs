//! Request bodies read as a stream, with a cap, and decoded from their `Content-Encoding`.
//!
//! [`read_body`] returns the body as the handler should see it: decompressed, never longer
//! than [`BodyLimits::max_bytes`]. Neither the compressed nor the decompressed bytes are
//! held beyond that cap: decoding stops at the first chunk past it, so a decompression bomb
//! costs the few kilobytes it takes to find out.
//!
//! - Codings: `gzip` (and `x-gzip`), `deflate` (the zlib format as HTTP defines it, or raw
//!   deflate as some clients send it, told apart by the zlib header), `br`, `zstd` (windows
//!   up to 8 MiB, as RFC 9659 bounds them for HTTP), and `identity`, case-insensitively.
//!   Gzip members and zstd frames may follow each other.
//! - **At most one coding.** HTTP allows a list applied in order (`gzip, br`); no tracker
//!   sends one, and each layer would multiply the decoder memory a request can hold, so a
//!   list of more than one coding (after dropping `identity`) is refused with 415, as is a
//!   coding we do not know. The 415 carries `Accept-Encoding` listing what we take.
//! - **Caps.** The decompressed size is capped at `max_bytes` and so is the compressed size
//!   (zero-length blocks or a long gzip header make no output). Past
//!   [`BodyLimits::ratio_floor_bytes`] of output, the ratio decompressed / compressed is
//!   capped at `max_ratio`. Either cap answers 413 naming it.
//! - A stream that does not decode, is truncated or has data after its end answers 400
//!   naming the coding.
//! - After refusing a body, up to [`DRAIN_MAX_BYTES`] more of it are read and discarded for
//!   at most [`DRAIN_MAX_TIME`], so a client still sending sees the answer instead of a
//!   connection reset. That costs bandwidth, never memory.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_compression::tokio::bufread::{
    BrotliDecoder, DeflateDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder,
};
use async_compression::zstd::DParameter;
use axum::body::{Body, BodyDataStream, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use crate::error::json_error;

#[cfg(test)]
mod tests;

/// The codings [`read_body`] decodes, as listed in a 415 answer and its `Accept-Encoding`.
pub const ACCEPTED_ENCODINGS: &str = "gzip, deflate, br, zstd";

/// Most bytes of a refused body read and discarded so its client sees the answer.
pub const DRAIN_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Longest time spent discarding the rest of a refused body.
pub const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// Largest zstd window accepted: 8 MiB, the bound RFC 9659 sets for `zstd` over HTTP.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// How much decoded output is asked of a decoder at a time.
const READ_CHUNK: usize = 32 * 1024;

/// A content coding [`read_body`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` or `x-gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib (RFC 1950), or raw deflate (RFC 1951) when no zlib header leads.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Coding {
    /// The coding's HTTP name.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    fn from_name(name: &str) -> Option<Coding> {
        match name.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }
}

/// The caps of [`read_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest body, decompressed; also the largest compressed body.
    pub max_bytes: usize,
    /// Largest ratio decompressed / compressed once past `ratio_floor_bytes`; 0: no bound.
    pub max_ratio: u32,
    /// Output below which any ratio passes: a small batch of similar events compresses
    /// well, and what it costs is bounded anyway.
    pub ratio_floor_bytes: usize,
}

impl BodyLimits {
    /// Output below which any ratio passes, by default.
    pub const DEFAULT_RATIO_FLOOR_BYTES: usize = 1024 * 1024;

    /// Caps of `max_bytes` and `max_ratio`, with the default ratio floor.
    pub fn new(max_bytes: usize, max_ratio: u32) -> BodyLimits {
        BodyLimits {
            max_bytes,
            max_ratio,
            ratio_floor_bytes: Self::DEFAULT_RATIO_FLOOR_BYTES,
        }
    }
}

/// Why a body was refused; each variant has one status ([`BodyError::status`]), and
/// `Display` is the reason the client reads.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body as sent (compressed or not) is over the limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// [`BodyLimits::max_bytes`].
        limit: usize,
    },
    /// The decompressed body is over the limit.
    #[error("{coding} request body inflates past the limit of {limit} bytes")]
    InflatesTooLarge {
        /// The coding's name.
        coding: &'static str,
        /// [`BodyLimits::max_bytes`].
        limit: usize,
    },
    /// The body inflates more than the ratio allows.
    #[error(
        "{coding} request body inflates more than {max_ratio} times its compressed size \
         (the limit on the compression ratio)"
    )]
    RatioTooHigh {
        /// The coding's name.
        coding: &'static str,
        /// [`BodyLimits::max_ratio`].
        max_ratio: u32,
    },
    /// A coding we do not decode.
    #[error("unsupported content encoding {found:?}: send {ACCEPTED_ENCODINGS} or identity")]
    UnsupportedEncoding {
        /// The `Content-Encoding` received.
        found: String,
    },
    /// More than one coding applied.
    #[error(
        "content encoding {found:?} applies more than one coding: send at most one of \
         {ACCEPTED_ENCODINGS}"
    )]
    StackedEncodings {
        /// The `Content-Encoding` received.
        found: String,
    },
    /// The body does not decode with its coding.
    #[error("corrupt {coding} request body: {detail}")]
    Corrupt {
        /// The coding's name.
        coding: &'static str,
        /// What the decoder found.
        detail: String,
    },
    /// The connection failed while the body was read.
    #[error("could not read the request body: {0}")]
    Read(String),
    /// The body did not arrive within its deadline ([`crate::HttpConfig::body_timeout_ms`]).
    #[error("the request body was not complete within {} ms", .0.as_millis())]
    TimedOut(std::time::Duration),
}

impl BodyError {
    /// 413 for the caps, 415 for codings, 400 for what does not decode or arrive.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. }
            | BodyError::InflatesTooLarge { .. }
            | BodyError::RatioTooHigh { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::UnsupportedEncoding { .. } | BodyError::StackedEncodings { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            BodyError::Corrupt { .. } | BodyError::Read(_) => StatusCode::BAD_REQUEST,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

impl IntoResponse for BodyError {
    /// The JSON error; a 415 also says what we accept in `Accept-Encoding` (RFC 9110).
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = json_error(status, self.to_string(), None);
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            response.headers_mut().insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static(ACCEPTED_ENCODINGS),
            );
        }
        response
    }
}

/// Reads `body`, decoded from the `Content-Encoding` in `headers`, within `limits`.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: &BodyLimits,
) -> Result<Bytes, BodyError> {
    match content_coding(headers)? {
        None => read_plain(body, limits.max_bytes).await,
        Some(coding) => read_decoded(body, coding, limits).await,
    }
}

/// The one coding `headers` apply, if any (`identity` and empty entries are no coding).
pub fn content_coding(headers: &HeaderMap) -> Result<Option<Coding>, BodyError> {
    let values = headers.get_all(header::CONTENT_ENCODING);
    let found = || {
        let texts: Vec<_> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        texts.join(", ")
    };
    let mut codings = Vec::new();
    for value in values.iter() {
        let text = value
            .to_str()
            .map_err(|_| BodyError::UnsupportedEncoding { found: found() })?;
        for name in text.split(',').map(str::trim) {
            if name.is_empty() || name.eq_ignore_ascii_case("identity") {
                continue;
            }
            match Coding::from_name(name) {
                Some(coding) => codings.push(coding),
                None => return Err(BodyError::UnsupportedEncoding { found: found() }),
            }
        }
    }
    match codings.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(BodyError::StackedEncodings { found: found() }),
    }
}

/// A body without coding: its frames, kept as they came when there is one.
async fn read_plain(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    // A declared length over the limit is refused unread.
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge { limit });
    }
    let mut stream = body.into_data_stream();
    let mut parts: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_failed)?;
        total += chunk.len();
        if total > limit {
            drain(&mut stream, total).await;
            return Err(BodyError::TooLarge { limit });
        }
        parts.push(chunk);
    }
    Ok(match parts.len() {
        1 => parts.pop().unwrap_or_default(),
        _ => Bytes::from(parts.concat()),
    })
}

/// A coded body: decoded chunk by chunk, checking both caps after each.
async fn read_decoded(body: Body, coding: Coding, limits: &BodyLimits) -> Result<Bytes, BodyError> {
    let compressed = Arc::new(AtomicUsize::new(0));
    let source = Source {
        inner: body.into_data_stream(),
        seen: compressed.clone(),
        limit: limits.max_bytes,
    };
    let mut reader = StreamReader::new(source);
    let result = inflate(&mut reader, coding, limits, &compressed).await;
    if result.is_err() {
        let mut rest = reader.into_inner().inner;
        drain(&mut rest, compressed.load(Ordering::Relaxed)).await;
    }
    result
}

type Reader = StreamReader<Source, Bytes>;

async fn inflate(
    reader: &mut Reader,
    coding: Coding,
    limits: &BodyLimits,
    compressed: &AtomicUsize,
) -> Result<Bytes, BodyError> {
    let failed = |e: io::Error| classify(e, coding, limits);
    let mut decoder = decoder(reader, coding).await.map_err(failed)?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = decoder.read(&mut chunk).await.map_err(failed)?;
        if n == 0 {
            break;
        }
        if out.len() + n > limits.max_bytes {
            let limit = limits.max_bytes;
            let coding = coding.name();
            return Err(BodyError::InflatesTooLarge { coding, limit });
        }
        out.extend_from_slice(&chunk[..n]);
        check_ratio(
            out.len(),
            compressed.load(Ordering::Relaxed),
            coding,
            limits,
        )?;
    }
    drop(decoder);
    // Raw deflate and brotli end without reading what follows: anything left is not theirs.
    if !reader.fill_buf().await.map_err(failed)?.is_empty() {
        let detail = format!("data after the end of the {} stream", coding.name());
        let coding = coding.name();
        return Err(BodyError::Corrupt { coding, detail });
    }
    Ok(Bytes::from(out))
}

fn check_ratio(
    out: usize,
    compressed: usize,
    coding: Coding,
    limits: &BodyLimits,
) -> Result<(), BodyError> {
    if limits.max_ratio == 0 || out <= limits.ratio_floor_bytes {
        return Ok(());
    }
    if out as u64 > u64::from(limits.max_ratio) * compressed.max(1) as u64 {
        let coding = coding.name();
        let max_ratio = limits.max_ratio;
        return Err(BodyError::RatioTooHigh { coding, max_ratio });
    }
    Ok(())
}

/// The decoder of `coding` over `reader`.
async fn decoder(
    reader: &mut Reader,
    coding: Coding,
) -> io::Result<Pin<Box<dyn AsyncRead + Send + '_>>> {
    Ok(match coding {
        Coding::Gzip => {
            let mut decoder = GzipDecoder::new(reader);
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
        Coding::Deflate => {
            if looks_like_zlib(reader.fill_buf().await?) {
                Box::pin(ZlibDecoder::new(reader))
            } else {
                Box::pin(DeflateDecoder::new(reader))
            }
        }
        Coding::Brotli => Box::pin(BrotliDecoder::new(reader)),
        Coding::Zstd => {
            let window = [DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX)];
            let mut decoder = ZstdDecoder::with_params(reader, &window);
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
    })
}

/// Whether `head` starts with a zlib header (RFC 1950: method 8, a window of at most
/// 32 KiB, a check that makes the first two bytes a multiple of 31). A first chunk of one
/// byte is taken as zlib, the format HTTP means by `deflate`.
fn looks_like_zlib(head: &[u8]) -> bool {
    match head {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        [cmf] => cmf & 0x0f == 8 && cmf >> 4 <= 7,
        [] => false,
    }
}

/// A failed read of the body's frames: its deadline ([`crate::DeadlineBody`]), or the
/// connection.
fn read_failed(error: axum::Error) -> BodyError {
    let inner = error.into_inner();
    match inner.downcast_ref::<crate::BodyDeadlineExceeded>() {
        Some(deadline) => BodyError::TimedOut(deadline.0),
        None => BodyError::Read(inner.to_string()),
    }
}

/// What a failed read means: a cap or the connection when [`Source`] says so, else the
/// stream does not decode.
fn classify(error: io::Error, coding: Coding, limits: &BodyLimits) -> BodyError {
    let source = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<SourceError>());
    match source {
        Some(SourceError::TooLarge) => BodyError::TooLarge {
            limit: limits.max_bytes,
        },
        Some(SourceError::Read(detail)) => BodyError::Read(detail.clone()),
        Some(SourceError::TimedOut(after)) => BodyError::TimedOut(*after),
        None => {
            let detail = match error.kind() {
                io::ErrorKind::UnexpectedEof => "the stream is truncated".to_string(),
                _ => error.to_string(),
            };
            let coding = coding.name();
            BodyError::Corrupt { coding, detail }
        }
    }
}

/// Why [`Source`] failed, carried inside the `io::Error` the decoders pass on.
#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error("the compressed body is over the limit")]
    TooLarge,
    #[error("{0}")]
    Read(String),
    #[error("the body's deadline passed")]
    TimedOut(std::time::Duration),
}

/// The body's bytes as they come, counted, failing once past the limit.
struct Source {
    inner: BodyDataStream,
    seen: Arc<AtomicUsize>,
    limit: usize,
}

impl Stream for Source {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = match self.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(next) => next,
        };
        Poll::Ready(next.map(|chunk| {
            let chunk = chunk.map_err(|e| {
                io::Error::other(match read_failed(e) {
                    BodyError::TimedOut(after) => SourceError::TimedOut(after),
                    BodyError::Read(detail) => SourceError::Read(detail),
                    other => SourceError::Read(other.to_string()),
                })
            })?;
            let seen = self.seen.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
            if seen > self.limit {
                return Err(io::Error::other(SourceError::TooLarge));
            }
            Ok(chunk)
        }))
    }
}

/// Reads and discards what is left of a refused body, within [`DRAIN_MAX_BYTES`] (counting
/// the `already` read) and [`DRAIN_MAX_TIME`].
async fn drain(stream: &mut BodyDataStream, already: usize) {
    let discard = async {
        let mut total = already;
        while let Some(Ok(chunk)) = stream.next().await {
            total += chunk.len();
            if total > DRAIN_MAX_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, discard).await;
}
