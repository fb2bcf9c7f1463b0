//! The settings document Segment's browser library fetches when it loads
//! (`<cdnURL>/v1/projects/<writeKey>/settings`): it points the library's one destination,
//! "Segment.io", at this ingest port, and leaves out everything that would make the page
//! fetch code or send anything elsewhere (other integrations, remote plugins, middleware,
//! and the library's own metrics, sampled at 0).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use clickstream_edge::Transport;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::routes::{SegmentState, scheme};

/// `GET /v1/projects/<writeKey>/settings`: 404 for a key that is not configured (when keys
/// are); the settings otherwise.
pub(crate) async fn settings(
    State(state): State<Arc<SegmentState>>,
    Path(key): Path<String>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
) -> Response {
    if state.ingest.write_keys.check_key(&key).is_err() {
        let body = json!({"success": false, "code": "not_found", "message": "no project has this write key"});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    // The host the page reached us at: the library sends its calls there too.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:60000");
    Json(json!({
        "integrations": {
            "Segment.io": {
                "apiKey": key,
                "apiHost": format!("{host}/v1"),
                "protocol": scheme(transport.as_ref()),
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {"track": {"__default": {"enabled": true, "integrations": {}}}, "identify": {"__default": {"enabled": true}}, "group": {"__default": {"enabled": true}}},
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    }))
    .into_response()
}
