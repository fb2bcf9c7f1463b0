//! Request extractors that report failures as Confluent error JSON: the JSON body (with the
//! registry's content types), path parameters and query flags.
//!
//! Bodies are read with `clickstream_edge::body`, as ingest's are: decoded from their
//! `Content-Encoding`, capped at [`BodyCap`], and a body that does not arrive within the
//! listener's body deadline is 408.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use clickstream_edge::body::{BodyLimits, read_body};
use serde::de::DeserializeOwned;

use crate::config::RegistryServerConfig;
use crate::error::RegistryError;

/// The largest request body, decompressed or as sent ([`RegistryServerConfig::max_body_bytes`]);
/// a request extension set on every route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyCap(pub usize);

/// Media types accepted for request bodies (Confluent also takes octet-stream); a request
/// without a content type is read as JSON too, as curl users often omit it.
const ACCEPTED_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// A JSON request body.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = RegistryError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = req.headers().get(CONTENT_TYPE) {
            let text = value.to_str().unwrap_or_default();
            let media_type = text.split(';').next().unwrap_or_default().trim();
            if !ACCEPTED_MEDIA_TYPES
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(media_type))
            {
                return Err(RegistryError::UnsupportedMediaType(text.to_owned()));
            }
        }
        let cap = req.extensions().get::<BodyCap>().map_or_else(
            || RegistryServerConfig::default().max_body_bytes,
            |cap| cap.0,
        );
        // No bound on the ratio: the cap bounds what a compressed schema inflates to.
        let limits = BodyLimits::new(cap, 0);
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, &limits)
            .await
            .map_err(|refused| RegistryError::BodyRejected {
                status: refused.status().as_u16(),
                reason: refused.to_string(),
            })?;
        serde_json::from_slice(&body)
            .map(ApiJson)
            .map_err(|e| RegistryError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Path parameters, percent-decoded.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| RegistryError::BadRequest(rejection.body_text()))
    }
}

/// Query parameters. Flags are parsed case-insensitively because Confluent's Python client
/// sends Python's `True`/`False` in some query strings.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl<S> FromRequestParts<S> for Params
where
    S: Send + Sync,
{
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| RegistryError::BadRequest(rejection.body_text()))?;
        Ok(Self(pairs.into_iter().collect()))
    }
}

impl Params {
    /// A boolean flag: absent means false; `true`/`false` in any case.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, RegistryError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(RegistryError::BadRequest(format!(
                "query parameter '{name}' must be true or false, not '{v}'"
            ))),
        }
    }

    /// A text parameter.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Applies Confluent's `offset` / `limit` pagination (a limit of zero or less, or none,
    /// means no limit).
    pub(crate) fn paginate<T>(&self, items: Vec<T>) -> Result<Vec<T>, RegistryError> {
        let offset = self.integer("offset")?.unwrap_or(0).max(0);
        let limit = self.integer("limit")?.unwrap_or(-1);
        let skipped = items
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX));
        Ok(match usize::try_from(limit) {
            Ok(limit) if limit > 0 => skipped.take(limit).collect(),
            _ => skipped.collect(),
        })
    }

    /// Confluent's pagination of schema searches: `offset` as [`Params::paginate`], and a
    /// `limit` outside `1..=max` (or none) means `max`.
    pub(crate) fn paginate_at_most<T>(
        &self,
        items: Vec<T>,
        max: usize,
    ) -> Result<Vec<T>, RegistryError> {
        let offset = self.integer("offset")?.unwrap_or(0).max(0);
        let limit = self
            .integer("limit")?
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| (1..=max).contains(l))
            .unwrap_or(max);
        Ok(items
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit)
            .collect())
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, RegistryError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                RegistryError::BadRequest(format!(
                    "query parameter '{name}' must be an integer, not '{v}'"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn flags_accept_python_spelling() {
        let p = params(&[("a", "True"), ("b", "False"), ("c", "yes")]);
        assert!(p.flag("a").expect("a"));
        assert!(!p.flag("b").expect("b"));
        assert!(!p.flag("missing").expect("missing"));
        assert!(p.flag("c").is_err());
    }

    #[test]
    fn paginates_with_offset_and_limit() {
        let items = vec![1, 2, 3, 4];
        let all = params(&[("offset", "0"), ("limit", "-1")]);
        assert_eq!(all.paginate(items.clone()).expect("all"), vec![1, 2, 3, 4]);
        let page = params(&[("offset", "1"), ("limit", "2")]);
        assert_eq!(page.paginate(items.clone()).expect("page"), vec![2, 3]);
    }

    #[test]
    fn schema_searches_are_capped_like_confluent() {
        let items = vec![1, 2, 3, 4];
        let none = params(&[]);
        assert_eq!(
            none.paginate_at_most(items.clone(), 3).expect("none"),
            [1, 2, 3]
        );
        for limit in ["0", "-1", "9"] {
            let p = params(&[("limit", limit)]);
            assert_eq!(
                p.paginate_at_most(items.clone(), 3).expect(limit),
                [1, 2, 3]
            );
        }
        let page = params(&[("offset", "2"), ("limit", "1")]);
        assert_eq!(page.paginate_at_most(items, 3).expect("page"), [3]);
    }
}
