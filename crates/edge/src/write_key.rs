//! Write keys: which source sends events, and whether it may send at all.
//!
//! Keys are configured per source (`[auth.write_keys]`, `name = "key"`). With none, the
//! ingest routes are open, as the original service was. With some, a request to a guarded
//! route must carry one, in any of the ways tracker libraries send it:
//!
//! 1. the `X-Write-Key` header;
//! 2. the user of HTTP Basic credentials (`<key>:` with an empty password, as Segment's
//!    and RudderStack's libraries send it);
//! 3. the `write_key` query parameter (pixel-style GETs, `navigator.sendBeacon`).
//!
//! The first carrier present decides, in that order. A missing or unknown key is 401 with
//! a JSON reason and a `Basic` challenge, counted in [`crate::metrics::WRITE_KEY_REFUSED`].
//! A known key's name goes on the request as a [`Source`] extension, for the handler and
//! for middleware layered inside this one (rate limits by source).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use clickstream_secret::Secret;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

use crate::auth::{AuthConfigError, MIN_TOKEN_CHARS, basic_credentials};
use crate::error::json_error;
use crate::metrics::Handles;

/// The header carrying a write key.
pub const WRITE_KEY_HEADER: &str = "x-write-key";

/// The query parameter carrying a write key.
pub const WRITE_KEY_PARAM: &str = "write_key";

/// Longest name of a write key: it becomes a column value and a metric label.
pub const MAX_SOURCE_NAME_CHARS: usize = 64;

/// The source a request comes from: the name of the write key it carried. Put on the
/// request's extensions by [`WriteKeys::protect`] (absent when no keys are configured);
/// only configured names exist, so it is a bounded metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source(Arc<str>);

impl Source {
    pub(crate) fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The write key's name, as configured.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request's write key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No carrier holds a key.
    Missing,
    /// The key is none of the configured ones.
    Unknown,
}

impl KeyRefusal {
    /// Every refusal, in declaration order.
    pub const ALL: [KeyRefusal; 2] = [KeyRefusal::Missing, KeyRefusal::Unknown];

    /// The metric label of the refusal.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRefusal::Missing => "missing",
            KeyRefusal::Unknown => "unknown",
        }
    }

    /// The 401 a refused request gets: a JSON reason and a `Basic` challenge (what Segment's
    /// libraries answer to).
    pub fn response(self) -> Response {
        let message = match self {
            KeyRefusal::Missing => {
                "a write key is required: send it as the X-Write-Key header, as the user of \
                 HTTP Basic credentials, or as the write_key query parameter"
            }
            KeyRefusal::Unknown => "the write key is not known",
        };
        let mut response = json_error(StatusCode::UNAUTHORIZED, message, None);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"clickstream ingest\""),
        );
        response
    }
}

/// The configured write keys, checked once. Cheap to clone; `Debug` shows only the names.
#[derive(Clone, Default)]
pub struct WriteKeys {
    keys: Arc<[(Source, Secret)]>,
}

impl fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.sources()).finish()
    }
}

impl WriteKeys {
    /// The keys of `config` (`name → key`), refused when a name cannot be a column value
    /// and a metric label (see [`MAX_SOURCE_NAME_CHARS`]), a key is shorter than
    /// [`MIN_TOKEN_CHARS`], has a space, `:` or a non-ASCII character, is shared by two
    /// names, or is the admin token.
    pub fn new(
        config: &BTreeMap<String, Secret>,
        admin_token: Option<&Secret>,
    ) -> Result<Self, AuthConfigError> {
        let mut keys: Vec<(Source, Secret)> = Vec::with_capacity(config.len());
        for (name, key) in config {
            check_name(name)?;
            check_key(name, key)?;
            if let Some((first, _)) = keys.iter().find(|(_, other)| other == key) {
                return Err(AuthConfigError::WriteKeyShared {
                    first: first.name().to_string(),
                    second: name.clone(),
                });
            }
            if admin_token.is_some_and(|token| token == key) {
                return Err(AuthConfigError::WriteKeyIsAdminToken { name: name.clone() });
            }
            keys.push((Source::new(name), key.clone()));
        }
        Ok(Self { keys: keys.into() })
    }

    /// Whether requests need a key (some are configured).
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The configured sources, in name order.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.keys.iter().map(|(source, _)| source)
    }

    /// The source of a request with these `headers` and `uri`: `Ok(None)` when no keys
    /// are configured, else the name of the key it carries or why it is refused.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<Option<Source>, KeyRefusal> {
        if !self.required() {
            return Ok(None);
        }
        let presented = presented_key(headers, uri).ok_or(KeyRefusal::Missing)?;
        self.source_of(&presented)
            .cloned()
            .map(Some)
            .ok_or(KeyRefusal::Unknown)
    }

    /// The source of a key carried in a request's body (Segment's libraries put it in the
    /// JSON as `writeKey`): `Ok(None)` when no keys are configured.
    pub fn check_key(&self, key: &str) -> Result<Option<Source>, KeyRefusal> {
        if !self.required() {
            return Ok(None);
        }
        self.source_of(key)
            .cloned()
            .map(Some)
            .ok_or(KeyRefusal::Unknown)
    }

    /// The source whose key is `candidate`. Every key is compared, each in constant time,
    /// so the time taken does not tell which key matched, or whether one did.
    fn source_of(&self, candidate: &str) -> Option<&Source> {
        self.keys.iter().fold(None, |found, (source, key)| {
            let matched = key.matches(candidate);
            found.or(matched.then_some(source))
        })
    }

    /// `router` with every route requiring a write key (when any are configured), each
    /// request carrying its [`Source`] on to the handler. Layer CORS outside it, so that
    /// preflights, which carry no key, are answered.
    pub fn protect<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        if !self.required() {
            return router;
        }
        router.route_layer(axum::middleware::from_fn_with_state(
            self.clone(),
            require_write_key,
        ))
    }
}

async fn require_write_key(
    State(keys): State<WriteKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    match keys.check(request.headers(), request.uri()) {
        Ok(source) => {
            if let Some(source) = source {
                request.extensions_mut().insert(source);
            }
            next.run(request).await
        }
        Err(refusal) => {
            Handles::get().write_key_refused(refusal).increment(1);
            refusal.response()
        }
    }
}

/// The key a request presents: the first carrier present decides (`X-Write-Key`, the
/// Basic user, the `write_key` parameter). Empty values count as absent.
fn presented_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let non_empty = |key: String| (!key.is_empty()).then_some(key);
    if let Some(value) = headers.get(WRITE_KEY_HEADER) {
        return non_empty(String::from_utf8_lossy(value.as_bytes()).trim().to_string());
    }
    let basic = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(basic_credentials);
    if let Some((user, _)) = basic {
        return non_empty(user);
    }
    let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    params
        .into_iter()
        .find(|(name, _)| name == WRITE_KEY_PARAM)
        .and_then(|(_, key)| non_empty(key))
}

/// A name usable as a column value and a metric label: 1 to 64 ASCII letters, digits,
/// `_`, `-` or `.`.
fn check_name(name: &str) -> Result<(), AuthConfigError> {
    let usable = (1..=MAX_SOURCE_NAME_CHARS).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    match usable {
        true => Ok(()),
        false => Err(AuthConfigError::WriteKeyName {
            name: name.to_string(),
        }),
    }
}

/// A key long enough, and sendable in every carrier: a header value, a Basic user (no
/// `:`), a query parameter.
fn check_key(name: &str, key: &Secret) -> Result<(), AuthConfigError> {
    let chars = key.expose().chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(AuthConfigError::WriteKeyTooShort {
            name: name.to_string(),
            chars,
        });
    }
    if !key
        .expose()
        .chars()
        .all(|c| c.is_ascii_graphic() && c != ':')
    {
        return Err(AuthConfigError::WriteKeyCharacters {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
