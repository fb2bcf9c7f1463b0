//! Content negotiation on `Accept`, as Confluent's resources declare it to Jersey
//! (`@Produces` in every resource, qualities from `Versions.java`): the registry produces
//! `application/vnd.schemaregistry.v1+json` (server quality 1), then
//! `application/vnd.schemaregistry+json` (0.9), then `application/json` (0.5).
//!
//! Each type takes the client quality `q` of the most specific range matching it
//! (`type/subtype`, then `type/*`, then `*/*`); types at `q=0` or matched by no range are
//! out. The highest `q` wins, the server quality breaks ties, and the answer carries the
//! chosen type as its `Content-Type`. No `Accept` (or an empty one) means `*/*`. When no type
//! is left the answer is 406 with Confluent's body.

use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::RegistryError;

/// What the registry produces, best first, with Confluent's server qualities.
const PRODUCED: [(&str, f32); 3] = [
    ("application/vnd.schemaregistry.v1+json", 1.0),
    ("application/vnd.schemaregistry+json", 0.9),
    ("application/json", 0.5),
];

/// Middleware: answers 406 when `Accept` admits nothing the registry produces, else runs
/// the handler and labels its answer with the negotiated type.
pub(crate) async fn negotiate(request: Request, next: Next) -> Response {
    let chosen = match choose(request.headers()) {
        Ok(chosen) => chosen,
        Err(err) => return err.into_response(),
    };
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(chosen));
    response
}

/// The media type to answer with, or [`RegistryError::NotAcceptable`].
fn choose(headers: &HeaderMap) -> Result<&'static str, RegistryError> {
    let accept = headers
        .get_all(ACCEPT)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(PRODUCED[0].0);
    }
    let ranges: Vec<Range<'_>> = accept.split(',').filter_map(Range::parse).collect();
    let mut best: Option<(&'static str, f32, f32)> = None;
    for (produced, server_quality) in PRODUCED {
        let Some(q) = client_quality(&ranges, produced).filter(|q| *q > 0.0) else {
            continue;
        };
        if best.is_none_or(|(_, best_q, best_qs)| (q, server_quality) > (best_q, best_qs)) {
            best = Some((produced, q, server_quality));
        }
    }
    best.map(|(produced, _, _)| produced)
        .ok_or(RegistryError::NotAcceptable(accept))
}

/// The quality the client gives `produced`: that of the most specific matching range.
fn client_quality(ranges: &[Range<'_>], produced: &str) -> Option<f32> {
    let (kind, subtype) = produced.split_once('/')?;
    ranges
        .iter()
        .filter_map(|range| range.specificity(kind, subtype).map(|s| (s, range.q)))
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, q)| q)
}

/// One media range of an `Accept` header.
#[derive(Debug, PartialEq)]
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: f32,
}

impl<'a> Range<'a> {
    /// Parses `type/subtype; q=0.5; other=params`; a malformed range (no `/`, a `q` that is
    /// not a number in [0, 1]) is skipped.
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if kind.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut q = 1.0;
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))?;
            }
        }
        Some(Self { kind, subtype, q })
    }

    /// How specifically this range matches `kind/subtype` (2 exact, 1 `kind/*`, 0 `*/*`).
    fn specificity(&self, kind: &str, subtype: &str) -> Option<u8> {
        let kind_matches = self.kind.eq_ignore_ascii_case(kind);
        if kind_matches && self.subtype.eq_ignore_ascii_case(subtype) {
            Some(2)
        } else if kind_matches && self.subtype == "*" {
            Some(1)
        } else if self.kind == "*" && self.subtype == "*" {
            Some(0)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_skips_malformed_ones() {
        assert_eq!(
            Range::parse(" application/json ; charset=utf-8; q=0.4"),
            Some(Range {
                kind: "application",
                subtype: "json",
                q: 0.4
            })
        );
        for bad in ["", "json", "application/", "text/html;q=x", "*/*;q=2"] {
            assert_eq!(Range::parse(bad), None, "{bad}");
        }
    }
}
