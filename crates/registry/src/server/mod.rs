//! The HTTP API, shaped like Confluent Schema Registry's REST API so that its clients
//! (Confluent's serializers, `confluent_kafka.schema_registry`, Kafka UI, curl scripts) work
//! unchanged.

mod compatibility;
mod config;
mod extract;
mod negotiate;
mod response;
mod schemas;
mod subjects;

use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clickstream_edge::{AdminAuth, HttpConfig, Server};
use tokio::net::TcpListener;

use crate::config::RegistryServerConfig;
use crate::error::RegistryError;
use crate::store::SchemaStore;
use response::ok;

pub use response::RESPONSE_CONTENT_TYPE;

/// The whole HTTP API over `store`, with default settings and no admin token.
pub fn router(store: Arc<SchemaStore>) -> Router {
    router_with_config(store, &RegistryServerConfig::default(), &AdminAuth::open())
}

/// The whole HTTP API over `store`, limiting request bodies to `config.max_body_bytes`;
/// writes and deletes need `auth`'s admin token, reads stay open (as Confluent's are by
/// default).
pub fn router_with_config(
    store: Arc<SchemaStore>,
    config: &RegistryServerConfig,
    auth: &AdminAuth,
) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete_subject),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route("/schemas", get(schemas::list))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::raw_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_by_id))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_by_id))
        .route(
            "/config",
            get(config::global)
                .put(config::set_global)
                .delete(config::clear_global),
        )
        .route(
            "/config/{subject}",
            get(config::subject)
                .put(config::set_subject)
                .delete(config::clear_subject),
        )
        .route("/mode", get(config::mode))
        .route("/mode/{subject}", get(config::subject_mode))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::against_level),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility::against_version),
        )
        // Only matched routes negotiate: an unknown path is 404 whatever it accepts.
        .route_layer(middleware::from_fn(negotiate::negotiate))
        .route_layer(middleware::from_fn_with_state(auth.clone(), guard_writes))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(extract::BodyCap(config.max_body_bytes)))
        .with_state(store)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight
/// requests and returns.
pub async fn serve(
    listener: TcpListener,
    store: Arc<SchemaStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = RegistryServerConfig::default();
    let open = AdminAuth::open();
    // The defaults are valid and name no TLS files.
    let server = Server::new(&HttpConfig::default()).map_err(std::io::Error::other)?;
    serve_with_config(listener, store, &config, &open, &server, shutdown).await
}

/// [`serve`] with explicit settings (`config.port` is ignored: the listener is bound
/// already), served as `server` says (limits, TLS).
pub async fn serve_with_config(
    listener: TcpListener,
    store: Arc<SchemaStore>,
    config: &RegistryServerConfig,
    auth: &AdminAuth,
    server: &Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router_with_config(store, config, auth);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = server.tls(), "schema registry listening");
    }
    server.serve(listener, app, shutdown).await
}

/// Whether a request changes the registry: registering, deleting, setting a level or a
/// mode. Lookups and compatibility checks are POSTs too, but only read.
fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::DELETE | Method::PUT => true,
        Method::POST => path.starts_with("/subjects/") && path.ends_with("/versions"),
        _ => false,
    }
}

/// Lets writes through only with the admin token itself: not the UI's session cookie, since
/// a page on another port of the same site could send one with a simple request.
async fn guard_writes(State(auth): State<AdminAuth>, request: Request, next: Next) -> Response {
    if is_write(request.method(), request.uri().path()) && !auth.allows_token(request.headers()) {
        let what = format!("{} {}", request.method(), request.uri().path());
        return RegistryError::Unauthorized(what).into_response();
    }
    next.run(request).await
}

/// Runs a blocking store change (it fsyncs) off the async worker threads.
async fn blocking<T, F>(change: F) -> Result<T, RegistryError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, RegistryError> + Send + 'static,
{
    tokio::task::spawn_blocking(change)
        .await
        .map_err(|e| RegistryError::StoreUnavailable(format!("store task failed: {e}")))?
}

/// `GET /`: Confluent answers an empty object.
async fn root() -> Response {
    ok(&serde_json::Map::new())
}

async fn not_found(uri: Uri) -> RegistryError {
    RegistryError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> RegistryError {
    RegistryError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registering_deleting_and_setting_are_writes_lookups_and_checks_are_not() {
        for (method, path) in [
            (Method::POST, "/subjects/s-value/versions"),
            (Method::DELETE, "/subjects/s-value"),
            (Method::DELETE, "/subjects/s-value/versions/1"),
            (Method::PUT, "/config"),
            (Method::PUT, "/config/s-value"),
            (Method::DELETE, "/config/s-value"),
            (Method::PUT, "/mode/s-value"),
        ] {
            assert!(is_write(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::POST, "/subjects/s-value"),
            (Method::POST, "/compatibility/subjects/s-value/versions"),
            (
                Method::POST,
                "/compatibility/subjects/s-value/versions/latest",
            ),
            (Method::GET, "/subjects/s-value/versions"),
            (Method::GET, "/schemas/ids/1"),
        ] {
            assert!(!is_write(&method, path), "{method} {path}");
        }
    }
}
