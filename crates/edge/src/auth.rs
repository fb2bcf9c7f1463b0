//! The admin token: what protects every route that can read or change all data (the UI's
//! API, SQL, the registry's writes and deletes, `/metrics` when asked).
//!
//! A request is an admin's when it carries the token as a bearer token
//! (`Authorization: Bearer <token>`), as the password of HTTP Basic credentials (any user
//! name: what Confluent's clients send with `basic.auth.user.info`), or the session cookie
//! the UI's login page obtains from `POST /api/login`. Refusals are 401 with a JSON reason
//! and a `Bearer` challenge, never a `Basic` one, so a browser shows the login page rather
//! than its own credentials prompt. With no token configured every route is open: that is
//! allowed only on loopback (see [`check_exposure`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use clickstream_secret::Secret;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::Transport;
use crate::body::{BodyLimits, read_body};
use crate::error::json_error;
use crate::metrics::Handles;
use crate::write_key::MAX_SOURCE_NAME_CHARS;

/// Name of the UI's session cookie.
pub const SESSION_COOKIE: &str = "clickstream_session";

/// Shortest admin token accepted: anything shorter can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The admin token, if any, and the session the UI's login hands out. Cheap to clone.
#[derive(Clone)]
pub struct AdminAuth {
    inner: Arc<Inner>,
}

struct Inner {
    token: Option<Secret>,
    /// The cookie value of a logged-in browser: random, valid until a logout replaces it
    /// (which logs every browser out) or the process ends.
    session: std::sync::RwLock<Secret>,
}

/// Why the admin token or a write key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The token is too short to protect anything.
    #[error("the admin token has {0} characters; use at least {MIN_TOKEN_CHARS}")]
    TooShort(usize),
    /// A listener beyond loopback serves admin routes with no token set.
    #[error(
        "{what} listens on {host}, beyond loopback, and serves routes that read or change all \
         data, but no admin token is set: set CLICKSTREAM_ADMIN_TOKEN (or auth.admin_token), \
         or listen on 127.0.0.1"
    )]
    Exposed {
        /// The listener (`ingest`, `web UI`, `registry`).
        what: String,
        /// The address it binds.
        host: String,
    },
    /// A write key's name cannot serve as a column value and a metric label.
    #[error(
        "write key name {name:?} is not usable: use 1 to {MAX_SOURCE_NAME_CHARS} ASCII \
         letters, digits, '_', '-' or '.'"
    )]
    WriteKeyName {
        /// The name as configured.
        name: String,
    },
    /// A write key is too short to protect anything.
    #[error("the write key of {name} has {chars} characters; use at least {MIN_TOKEN_CHARS}")]
    WriteKeyTooShort {
        /// The key's name.
        name: String,
        /// Its length.
        chars: usize,
    },
    /// A write key has a character some carrier cannot take (a header, a Basic user).
    #[error(
        "the write key of {name} has a character clients cannot send: use printable ASCII \
         without spaces or ':'"
    )]
    WriteKeyCharacters {
        /// The key's name.
        name: String,
    },
    /// Two names share one key, so a request's source would be ambiguous.
    #[error("write keys {first} and {second} are the same key: give each source its own")]
    WriteKeyShared {
        /// The first name with that key.
        first: String,
        /// The second.
        second: String,
    },
    /// A write key is the admin token, which apps and web pages would then carry.
    #[error(
        "the write key of {name} is the admin token: write keys travel in apps and web \
         pages, so give it a key of its own"
    )]
    WriteKeyIsAdminToken {
        /// The key's name.
        name: String,
    },
}

impl AdminAuth {
    /// Admin routes guarded by `token` (`None`: open).
    pub fn new(token: Option<Secret>) -> Result<Self, AuthConfigError> {
        let token = token.filter(|t| !t.is_empty());
        if let Some(token) = &token {
            let chars = token.expose().chars().count();
            if chars < MIN_TOKEN_CHARS {
                return Err(AuthConfigError::TooShort(chars));
            }
        }
        let session = std::sync::RwLock::new(new_session());
        Ok(Self {
            inner: Arc::new(Inner { token, session }),
        })
    }

    /// No token: admin routes are open.
    pub fn open() -> Self {
        Self {
            inner: Arc::new(Inner {
                token: None,
                session: std::sync::RwLock::new(new_session()),
            }),
        }
    }

    /// Whether a token is required.
    pub fn required(&self) -> bool {
        self.inner.token.is_some()
    }

    /// Whether `headers` carry the token (bearer, Basic password) or the login session.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        self.allows_token(headers)
            || session_cookie(headers).is_some_and(|c| self.session().matches(c))
    }

    fn session(&self) -> Secret {
        self.inner
            .session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether `headers` carry the token itself (bearer, Basic password); the UI's session
    /// cookie does not count. For routes a browser page could reach with a simple request
    /// (no preflight), where a cookie would make cross-port forgery possible: the
    /// registry's writes, which take bodies of any content type.
    pub fn allows_token(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.inner.token else {
            return true;
        };
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(credential)
            .any(|candidate| token.matches(&candidate))
    }

    /// `router` with every route requiring the token. Apply it to routers of admin routes
    /// only: unknown paths of the merged router keep their own 404.
    pub fn protect<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.route_layer(axum::middleware::from_fn_with_state(
            self.clone(),
            require_admin,
        ))
    }

    /// The UI's login routes: `POST /api/login` (`{"token": ...}` → the session cookie),
    /// `POST /api/logout`, and `GET /api/auth` (whether a token is required and whether
    /// this request has it).
    pub fn login_router(&self) -> Router {
        Router::new()
            .route("/api/login", post(login))
            .route("/api/logout", post(logout))
            .route("/api/auth", get(status))
            .with_state(self.clone())
    }
}

/// A fresh session value: 244 random bits.
fn new_session() -> Secret {
    Secret::new(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Refuses to expose admin routes without a token: `host` is where a listener serving
/// them binds, `what` names it in the error.
pub fn check_exposure(auth: &AdminAuth, what: &str, host: &str) -> Result<(), AuthConfigError> {
    if auth.required() || is_loopback(host) {
        return Ok(());
    }
    Err(AuthConfigError::Exposed {
        what: what.to_string(),
        host: host.to_string(),
    })
}

/// Whether `host` (an address or a name) reaches only this machine.
pub fn is_loopback(host: &str) -> bool {
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The token an `Authorization` value presents: a bearer token, or a Basic password.
fn credential(value: &str) -> Option<String> {
    if let Some((scheme, rest)) = value.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(rest.trim().to_string());
    }
    basic_credentials(value).map(|(_, password)| password)
}

/// The user and the password of an HTTP Basic `Authorization` value
/// (`Basic base64(user:password)`); `None` for another scheme or a value that does not
/// decode. The admin token is the password, a write key the user.
pub(crate) fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

async fn require_admin(State(auth): State<AdminAuth>, request: Request, next: Next) -> Response {
    if auth.allows(request.headers()) {
        return next.run(request).await;
    }
    Handles::get().admin_refused.increment(1);
    unauthorized(format!(
        "{} needs the admin token: send it as `Authorization: Bearer <token>` or as the \
         password of HTTP Basic credentials, or log in to the UI",
        request.uri().path()
    ))
}

fn unauthorized(message: String) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, message, None);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"clickstream\""),
    );
    response
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// Largest `/api/login` body: a JSON object holding a token.
const LOGIN_MAX_BODY_BYTES: usize = 16 * 1024;

async fn login(State(auth): State<AdminAuth>, request: Request) -> Response {
    let secure = over_tls(&request);
    let (parts, body) = request.into_parts();
    let limits = BodyLimits::new(LOGIN_MAX_BODY_BYTES, 0);
    let body = match read_body(&parts.headers, body, &limits).await {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Ok(Login { token }) = serde_json::from_slice(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "send a JSON object {\"token\": \"...\"}",
            None,
        );
    };
    let right = auth.inner.token.as_ref().is_none_or(|t| t.matches(&token));
    if !right {
        Handles::get().admin_refused.increment(1);
        return unauthorized("that is not the admin token".into());
    }
    let cookie = session_cookie_header(auth.session().expose(), secure, false);
    with_cookie(Json(json!({"status": "ok"})).into_response(), &cookie)
}

/// Ends the session: a cookie copied before the logout no longer works anywhere.
async fn logout(State(auth): State<AdminAuth>, request: Request) -> Response {
    if auth.allows(request.headers()) {
        *auth
            .inner
            .session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new_session();
    }
    let cookie = session_cookie_header("", over_tls(&request), true);
    with_cookie(Json(json!({"status": "ok"})).into_response(), &cookie)
}

/// Whether `request` came over HTTPS: its session cookie is then `Secure`.
fn over_tls(request: &Request) -> bool {
    request.extensions().get::<Transport>() == Some(&Transport::Tls)
}

/// The `Set-Cookie` value of the session `value` (`expire`: one that deletes it).
fn session_cookie_header(value: &str, secure: bool, expire: bool) -> String {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if expire {
        cookie.push_str("; Max-Age=0");
    }
    cookie
}

async fn status(State(auth): State<AdminAuth>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(json!({"required": auth.required(), "authenticated": auth.allows(&headers)}))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "a-long-enough-admin-token";

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    fn basic(user_and_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_and_password)
        )
    }

    #[test]
    fn the_token_is_accepted_as_bearer_basic_password_or_session() {
        let auth = AdminAuth::new(Some(Secret::new(TOKEN))).expect("token");
        let bearer = format!("Bearer {TOKEN}");
        assert!(auth.allows(&headers(&[(header::AUTHORIZATION, &bearer)])));
        let confluent = basic(&format!("admin:{TOKEN}"));
        assert!(auth.allows(&headers(&[(header::AUTHORIZATION, &confluent)])));
        let session = format!("a=b; {SESSION_COOKIE}={}", auth.session().expose());
        let with_cookie = headers(&[(header::COOKIE, &session)]);
        assert!(auth.allows(&with_cookie));
        assert!(
            !auth.allows_token(&with_cookie),
            "the registry takes no cookie"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let auth = AdminAuth::new(Some(Secret::new(TOKEN))).expect("token");
        for value in [
            String::new(),
            "Bearer".into(),
            "Bearer wrong-token-of-some-length".into(),
            format!("Token {TOKEN}"),
            basic(&format!("{TOKEN}:")),
            basic("admin"),
            "Basic !!!not-base64".into(),
        ] {
            assert!(
                !auth.allows(&headers(&[(header::AUTHORIZATION, &value)])),
                "{value}"
            );
        }
        let cookie = format!("{SESSION_COOKIE}=guessed");
        assert!(!auth.allows(&headers(&[(header::COOKIE, &cookie)])));
        assert!(!auth.allows(&HeaderMap::new()));
    }

    #[test]
    fn short_tokens_are_refused_and_no_token_is_open() {
        assert!(matches!(
            AdminAuth::new(Some(Secret::new("short"))),
            Err(AuthConfigError::TooShort(5))
        ));
        assert!(AdminAuth::open().allows(&HeaderMap::new()));
        assert!(
            !AdminAuth::new(Some(Secret::new("")))
                .expect("empty")
                .required()
        );
    }

    #[tokio::test]
    async fn the_session_cookie_is_secure_over_https_only() {
        use tower::ServiceExt;
        let auth = AdminAuth::new(Some(Secret::new(TOKEN))).expect("token");
        for (transport, secure) in [
            (None, false),
            (Some(Transport::Plain), false),
            (Some(Transport::Tls), true),
        ] {
            for path in ["/api/login", "/api/logout"] {
                let body = json!({"token": TOKEN}).to_string();
                let mut request = http::Request::post(path)
                    .body(axum::body::Body::from(body))
                    .expect("request");
                if let Some(transport) = transport {
                    request.extensions_mut().insert(transport);
                }
                let response = auth.login_router().oneshot(request).await.expect("answer");
                assert_eq!(response.status(), StatusCode::OK);
                let cookie = response.headers()[header::SET_COOKIE]
                    .to_str()
                    .expect("text");
                assert_eq!(
                    cookie.ends_with("; Secure") || cookie.contains("; Secure;"),
                    secure,
                    "{path}: {cookie}"
                );
            }
        }
    }

    #[test]
    fn only_loopback_may_be_open() {
        let open = AdminAuth::open();
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"] {
            assert!(check_exposure(&open, "ingest", host).is_ok(), "{host}");
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "example.com"] {
            let refused = check_exposure(&open, "ingest", host).expect_err(host);
            assert!(
                refused.to_string().contains("CLICKSTREAM_ADMIN_TOKEN"),
                "{refused}"
            );
        }
        let guarded = AdminAuth::new(Some(Secret::new(TOKEN))).expect("token");
        assert!(check_exposure(&guarded, "ingest", "0.0.0.0").is_ok());
    }
}
