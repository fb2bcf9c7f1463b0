//! The pages: HTML, CSS and JavaScript compiled into the binary. Hand-written, no build
//! step and no external requests, so the UI works offline and ships with the binary.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Every asset: path under `/assets/`, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../assets/app.css")),
    ("app.js", JS, include_str!("../assets/app.js")),
    ("util.js", JS, include_str!("../assets/util.js")),
    ("charts.js", JS, include_str!("../assets/charts.js")),
    (
        "overview_page.js",
        JS,
        include_str!("../assets/overview_page.js"),
    ),
    (
        "topics_page.js",
        JS,
        include_str!("../assets/topics_page.js"),
    ),
    (
        "invalid_page.js",
        JS,
        include_str!("../assets/invalid_page.js"),
    ),
    (
        "schemas_page.js",
        JS,
        include_str!("../assets/schemas_page.js"),
    ),
    ("lake_page.js", JS, include_str!("../assets/lake_page.js")),
    ("sql_page.js", JS, include_str!("../assets/sql_page.js")),
    ("login_page.js", JS, include_str!("../assets/login_page.js")),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

const INDEX: &str = include_str!("../assets/index.html");

/// `/` (and `/ui`) serve the page shell; `/assets/{name}` the rest.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/assets/{name}", get(asset))
        .route(
            "/favicon.ico",
            get(|| asset(Path("favicon.svg".to_string()))),
        )
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(path, _, _)| *path == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Assets change with the binary; revalidate rather than serve a stale UI.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `./x.js` a script imports and every `/assets/x` the page links is served.
    #[test]
    fn every_referenced_asset_is_embedded() {
        let served = |name: &str| ASSETS.iter().any(|(path, _, _)| *path == name);
        let mut references = Vec::new();
        for (_, _, body) in ASSETS.iter().copied().chain([("index.html", "", INDEX)]) {
            for marker in ["from \"./", "\"/assets/"] {
                for piece in body.split(marker).skip(1) {
                    if let Some(name) = piece.split('"').next() {
                        references.push(name.to_string());
                    }
                }
            }
        }
        assert!(references.len() >= 10, "found {references:?}");
        for name in references {
            assert!(served(&name), "{name} is referenced but not embedded");
        }
    }
}
