//! Client for any Confluent-compatible schema registry (this crate's server or an external
//! one), used by ingest and the processor.
//!
//! Transport failures, 5xx, 408 and 429 are retried with exponential backoff a few times;
//! other 4xx answers are returned at once as [`RegistryError::Http`] carrying Confluent's
//! `error_code`. Schemas fetched by id are cached forever: ids are immutable. A schema with
//! references is returned complete (referenced types defined where first used), so its
//! users never see references.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use bytes::Bytes;
use clickstream_secret::{Secret, SecretUrl};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::model::{RegisteredSchema, SchemaReference, VersionSpec};
use crate::schema::ParsedSchema;

const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT_ALL: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const READY_POLL: Duration = Duration::from_millis(100);
/// At most this many referenced schemas are fetched for one schema: a bound on what a
/// broken registry can make the client do.
const MAX_REFERENCED: usize = 1000;

/// Client for a Confluent-compatible schema registry. Cheap to clone (shared pool and cache).
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// Base URL without credentials.
    base: Url,
    /// Basic-auth user and password, from the URL's userinfo.
    credentials: Option<(String, Option<Secret>)>,
    schemas: Arc<RwLock<HashMap<u32, Arc<Schema>>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Body of `GET /schemas/ids/{id}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaById {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<SchemaReference>>,
}

/// Body of `GET /config[/{subject}]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LevelOnly {
    compatibility_level: String,
}

impl LevelOnly {
    fn parse(self) -> Result<CompatibilityLevel, RegistryError> {
        self.compatibility_level.parse()
    }
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: u32,
}

/// What one HTTP attempt produced.
enum Attempt {
    Done(Bytes),
    Retry(RegistryError),
    Fail(RegistryError),
}

impl RegistryClient {
    /// A client for the registry at `base_url` (`http(s)://[user:pass@]host:port[/path]`,
    /// trailing slash optional). Credentials in the URL are sent as HTTP basic auth and
    /// never appear in errors or logs.
    pub fn new(base_url: &str) -> Result<Self, RegistryError> {
        Self::build(base_url, None)
    }

    /// [`RegistryClient::new`] speaking TLS as `tls` says: how a process reaches its own
    /// registry over HTTPS ([`clickstream_edge::tls::pinned_client_config`]).
    pub fn with_tls(
        base_url: &str,
        tls: clickstream_edge::tls::ClientConfig,
    ) -> Result<Self, RegistryError> {
        Self::build(base_url, Some(tls))
    }

    fn build(
        base_url: &str,
        tls: Option<clickstream_edge::tls::ClientConfig>,
    ) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidUrl {
            url: SecretUrl::new(base_url).redacted().to_owned(),
            reason,
        };
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// or https:// url".to_owned()));
        }
        let credentials = if base.username().is_empty() && base.password().is_none() {
            None
        } else {
            let user = percent_decode(base.username());
            let password = base.password().map(|p| Secret::new(percent_decode(p)));
            // Setting empty credentials cannot fail on an http(s) base URL.
            let _ = base.set_username("");
            let _ = base.set_password(None);
            Some((user, password))
        };
        base.set_query(None);
        base.set_fragment(None);
        let mut http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        if let Some(tls) = tls {
            http = http.use_preconfigured_tls(tls);
        }
        let http = http
            .build()
            .map_err(|e| invalid(format!("cannot build http client: {e}")))?;
        Ok(Self {
            http,
            base,
            credentials,
            schemas: Arc::new(RwLock::new(HashMap::new())),
        })
    }

    /// The registry URL, without credentials.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Registers `schema` (Avro JSON) under `subject` and returns its global id; the same
    /// schema again returns the same id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.register_with_references(subject, schema, &[]).await
    }

    /// Registers `schema`, which uses the named types of the versions `references` names,
    /// under `subject` and returns its global id.
    pub async fn register_with_references(
        &self,
        subject: &str,
        schema: &str,
        references: &[SchemaReference],
    ) -> Result<u32, RegistryError> {
        let body = if references.is_empty() {
            json!({ "schema": schema })
        } else {
            json!({ "schema": schema, "references": references })
        };
        let answer: IdOnly = self
            .call(
                Method::POST,
                &["subjects", subject, "versions"],
                Some(&body),
            )
            .await?;
        Ok(answer.id)
    }

    /// The version of `subject` holding `schema`, or `None` if the subject or the schema
    /// is not registered.
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<Option<RegisteredSchema>, RegistryError> {
        let body = json!({ "schema": schema });
        match self
            .call(Method::POST, &["subjects", subject], Some(&body))
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(RegistryError::Http {
                error_code: 40401 | 40403,
                ..
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The parsed schema with global id `id`, cached forever after the first fetch.
    /// Concurrent misses may fetch twice; both get the same schema. A schema with references
    /// is parsed with the referenced versions (fetched transitively, soft-deleted ones
    /// included, as Confluent's clients do) and returned complete: each referenced named
    /// type is defined where it is first used, so the schema stands alone.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(found) = self.cached(id) {
            return Ok(found);
        }
        let answer: SchemaById = self
            .call(Method::GET, &["schemas", "ids", &id.to_string()], None)
            .await?;
        if let Some(kind) = answer.schema_type.as_deref()
            && !kind.eq_ignore_ascii_case("AVRO")
        {
            return Err(RegistryError::InvalidSchema(format!(
                "schema {id} is of type {kind}, not AVRO"
            )));
        }
        let references = answer.references.unwrap_or_default();
        let mut referenced = Vec::new();
        self.collect_referenced(&references, &mut HashSet::new(), &mut referenced)
            .await?;
        // Parsed as our own registry parses, so that what it refuses (a schema apache-avro
        // parses but cannot put in canonical form) is refused here too.
        let schema = ParsedSchema::parse_with_references(&answer.schema, references, &referenced)
            .map_err(|e| RegistryError::InvalidSchema(format!("schema {id}: {e}")))?
            .schema;
        let mut cache = self.schemas.write().unwrap_or_else(PoisonError::into_inner);
        Ok(Arc::clone(cache.entry(id).or_insert(schema)))
    }

    /// The latest live version of `subject`.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.call(
            Method::GET,
            &["subjects", subject, "versions", "latest"],
            None,
        )
        .await
    }

    /// All subjects with live versions.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.call(Method::GET, &["subjects"], None).await
    }

    /// The live version numbers of `subject`, ascending.
    pub async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        self.call(Method::GET, &["subjects", subject, "versions"], None)
            .await
    }

    /// One version of `subject` (a number, or the latest).
    pub async fn version(
        &self,
        subject: &str,
        version: VersionSpec,
    ) -> Result<RegisteredSchema, RegistryError> {
        let version = version.to_string();
        self.call(
            Method::GET,
            &["subjects", subject, "versions", &version],
            None,
        )
        .await
    }

    /// The compatibility level that applies to `subject`: its own, else the global one.
    /// Asks `/config/{subject}` then `/config`, which every registry version understands
    /// (unlike `?defaultToGlobal=true`).
    pub async fn compatibility(&self, subject: &str) -> Result<CompatibilityLevel, RegistryError> {
        match self
            .call::<LevelOnly>(Method::GET, &["config", subject], None)
            .await
        {
            Ok(level) => level.parse(),
            Err(RegistryError::Http {
                error_code: 40408 | 40401,
                ..
            }) => self.global_compatibility().await,
            Err(other) => Err(other),
        }
    }

    /// The registry's global compatibility level.
    pub async fn global_compatibility(&self) -> Result<CompatibilityLevel, RegistryError> {
        self.call::<LevelOnly>(Method::GET, &["config"], None)
            .await?
            .parse()
    }

    /// Polls `GET /subjects` until the registry answers 2xx or `timeout` passes. A 4xx
    /// answer (e.g. wrong credentials) fails at once: waiting would not fix it.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RegistryError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let url = self.url(&["subjects"])?;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let last_error =
                match tokio::time::timeout(remaining, self.attempt(&Method::GET, &url, None)).await
                {
                    Ok(Attempt::Done(_)) => return Ok(()),
                    Ok(Attempt::Fail(err)) => return Err(err),
                    Ok(Attempt::Retry(err)) => err.to_string(),
                    Err(_) => "timed out".to_owned(),
                };
            if Instant::now() + READY_POLL >= deadline {
                return Err(RegistryError::NotReady {
                    url: self.base.to_string(),
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    last_error,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The texts of the versions `references` names and of those they reference, each after
    /// the ones it references, skipping reference names seen before: the order and choice
    /// of Confluent's `resolveReferences`, and of this registry's server.
    fn collect_referenced<'a>(
        &'a self,
        references: &'a [SchemaReference],
        seen: &'a mut HashSet<String>,
        texts: &'a mut Vec<String>,
    ) -> Pin<Box<dyn Future<Output = Result<(), RegistryError>> + Send + 'a>> {
        Box::pin(async move {
            for reference in references {
                let version = reference.version.to_string();
                let found: RegisteredSchema = self
                    .call_url(
                        Method::GET,
                        self.url_with_query(
                            &["subjects", &reference.subject, "versions", &version],
                            &[("deleted", "true")],
                        )?,
                        None,
                    )
                    .await?;
                if !seen.insert(reference.name.clone()) {
                    continue;
                }
                if seen.len() > MAX_REFERENCED {
                    return Err(RegistryError::InvalidSchema(format!(
                        "more than {MAX_REFERENCED} referenced schemas"
                    )));
                }
                self.collect_referenced(&found.references, seen, texts)
                    .await?;
                texts.push(found.schema);
            }
            Ok(())
        })
    }

    fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.schemas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn url(&self, segments: &[&str]) -> Result<Url, RegistryError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| RegistryError::InvalidUrl {
                url: self.base.to_string(),
                reason: "cannot be a base url".to_owned(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn url_with_query(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Url, RegistryError> {
        let mut url = self.url(segments)?;
        url.query_pairs_mut().extend_pairs(query);
        Ok(url)
    }

    /// Sends a request with retries and decodes the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&serde_json::Value>,
    ) -> Result<T, RegistryError> {
        self.call_url(method, self.url(segments)?, body).await
    }

    /// [`RegistryClient::call`] on a complete URL.
    async fn call_url<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, RegistryError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let bytes = loop {
            match self.attempt(&method, &url, body).await {
                Attempt::Done(bytes) => break bytes,
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(err) if attempt >= ATTEMPTS => return Err(err),
                Attempt::Retry(err) => {
                    tracing::debug!(%url, attempt, error = %err, "registry call failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// One HTTP exchange, classified.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, ACCEPT_ALL);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, password.as_ref().map(Secret::expose));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, CONTENT_TYPE_V1)
                .body(body.to_string());
        }
        let unreachable = |source| RegistryError::Unreachable {
            url: url.to_string(),
            source,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Retry(unreachable(e)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Attempt::Retry(unreachable(e)),
        };
        if status.is_success() {
            return Attempt::Done(bytes);
        }
        let err = http_error(status, &bytes);
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Attempt::Retry(err)
        } else {
            Attempt::Fail(err)
        }
    }
}

/// Maps an error answer to `Http`, reading Confluent's `{"error_code", "message"}` if sent.
fn http_error(status: StatusCode, body: &[u8]) -> RegistryError {
    #[derive(Deserialize)]
    struct ConfluentError {
        error_code: Option<i64>,
        message: Option<String>,
    }
    let parsed: Option<ConfluentError> = serde_json::from_slice(body).ok();
    let error_code = parsed
        .as_ref()
        .and_then(|p| p.error_code)
        .unwrap_or(i64::from(status.as_u16()));
    let message = parsed.and_then(|p| p.message).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(200).collect()
    });
    RegistryError::Http {
        status: status.as_u16(),
        error_code,
        message,
    }
}

/// Decodes `%XX` escapes (URL userinfo is percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_credentials_and_tolerates_trailing_slash() {
        let client =
            RegistryClient::new("http://us%40er:p%3Ass@localhost:8085/").expect("valid url");
        assert_eq!(client.base_url(), "http://localhost:8085/");
        assert_eq!(
            client.credentials,
            Some(("us@er".to_owned(), Some(Secret::new("p:ss"))))
        );
        let url = client.url(&["subjects", "a/b c", "versions"]).expect("url");
        assert_eq!(
            url.as_str(),
            "http://localhost:8085/subjects/a%2Fb%20c/versions"
        );
        assert!(!format!("{client:?}").contains("p:ss"));
    }

    #[test]
    fn keeps_a_path_prefix() {
        let client = RegistryClient::new("https://example.test/registry/").expect("valid url");
        let url = client.url(&["schemas", "ids", "7"]).expect("url");
        assert_eq!(url.as_str(), "https://example.test/registry/schemas/ids/7");
    }

    #[test]
    fn rejects_unusable_urls_without_leaking_passwords() {
        let err = RegistryClient::new("ftp://u:secret@host/").expect_err("ftp");
        assert!(matches!(err, RegistryError::InvalidUrl { .. }));
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(RegistryClient::new("not a url").is_err());
    }

    #[test]
    fn maps_confluent_error_json() {
        let err = http_error(
            StatusCode::NOT_FOUND,
            br#"{"error_code":40401,"message":"nope"}"#,
        );
        assert!(matches!(
            err,
            RegistryError::Http {
                status: 404,
                error_code: 40401,
                ..
            }
        ));
        let err = http_error(StatusCode::BAD_GATEWAY, b"<html>");
        assert!(matches!(
            err,
            RegistryError::Http {
                status: 502,
                error_code: 502,
                ..
            }
        ));
        assert!(err.is_transient());
    }
}
