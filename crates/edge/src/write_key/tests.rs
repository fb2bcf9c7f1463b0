use axum::routing::post;
use base64::Engine;
use tower::ServiceExt;

use super::*;

const WEB: &str = "web-key-0123456789abcdef";
const IOS: &str = "ios-key-0123456789abcdef";

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(name, key)| (name.to_string(), Secret::new(*key)))
        .collect()
}

fn keys() -> WriteKeys {
    WriteKeys::new(&config(&[("web", WEB), ("ios_app", IOS)]), None).expect("valid keys")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    map
}

fn basic(user_and_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_and_password)
    )
}

fn uri(text: &str) -> Uri {
    text.parse().expect("uri")
}

fn source(name: &str) -> Result<Option<Source>, KeyRefusal> {
    Ok(Some(Source::new(name)))
}

#[test]
fn a_key_is_accepted_from_each_carrier() {
    let keys = keys();
    let plain = uri("/collect");
    let header = headers(&[("x-write-key", WEB)]);
    assert_eq!(keys.check(&header, &plain), source("web"));
    let segment = headers(&[("authorization", &basic(&format!("{IOS}:")))]);
    assert_eq!(keys.check(&segment, &plain), source("ios_app"));
    let pixel = uri(&format!("/collect?v=1&write_key={WEB}"));
    assert_eq!(keys.check(&HeaderMap::new(), &pixel), source("web"));
}

#[test]
fn the_first_carrier_present_decides() {
    let keys = keys();
    let both = headers(&[
        ("x-write-key", "not-a-key-0123456789"),
        ("authorization", &basic(&format!("{WEB}:"))),
    ]);
    assert_eq!(
        keys.check(&both, &uri("/collect")),
        Err(KeyRefusal::Unknown)
    );
    let header_wins = headers(&[("x-write-key", IOS)]);
    let query = uri(&format!("/collect?write_key={WEB}"));
    assert_eq!(keys.check(&header_wins, &query), source("ios_app"));
}

#[test]
fn missing_and_unknown_keys_are_refused() {
    let keys = keys();
    let plain = uri("/collect");
    for missing in [
        HeaderMap::new(),
        headers(&[("x-write-key", "")]),
        headers(&[("authorization", &basic(":password"))]),
        headers(&[("authorization", &format!("Bearer {WEB}"))]),
    ] {
        assert_eq!(
            keys.check(&missing, &plain),
            Err(KeyRefusal::Missing),
            "{missing:?}"
        );
    }
    assert_eq!(
        keys.check(&HeaderMap::new(), &uri("/collect?write_key=")),
        Err(KeyRefusal::Missing)
    );
    for unknown in [
        headers(&[("x-write-key", "web")]),
        headers(&[("x-write-key", &WEB[1..])]),
        headers(&[("authorization", &basic(&format!("admin:{WEB}")))]),
    ] {
        assert_eq!(
            keys.check(&unknown, &plain),
            Err(KeyRefusal::Unknown),
            "{unknown:?}"
        );
    }
}

#[test]
fn no_keys_means_open_and_no_source() {
    let open = WriteKeys::default();
    assert!(!open.required());
    assert_eq!(open.check(&HeaderMap::new(), &uri("/collect")), Ok(None));
    let none = WriteKeys::new(&BTreeMap::new(), None).expect("empty");
    assert!(!none.required());
}

#[test]
fn names_must_be_labels_and_keys_long_distinct_and_sendable() {
    let refused = |pairs: &[(&str, &str)]| {
        WriteKeys::new(&config(pairs), None)
            .expect_err("refused")
            .to_string()
    };
    for name in ["", "has space", "naïve", "a/b", &"n".repeat(65)] {
        assert!(
            refused(&[(name, WEB)]).contains("is not usable"),
            "{name:?}"
        );
    }
    assert!(WriteKeys::new(&config(&[("Web.app-2_x", WEB)]), None).is_ok());
    assert!(refused(&[("web", "short")]).contains("has 5 characters"));
    for key in [
        "with space 0123456789",
        "colon:0123456789abcdef",
        "é0123456789abcdefg",
    ] {
        assert!(
            refused(&[("web", key)]).contains("clients cannot send"),
            "{key:?}"
        );
    }
    let shared = refused(&[("web", WEB), ("ios", WEB)]);
    assert!(shared.contains("ios and web are the same key"), "{shared}");
    let admin = Secret::new(WEB);
    let error = WriteKeys::new(&config(&[("web", WEB)]), Some(&admin)).expect_err("refused");
    assert!(error.to_string().contains("is the admin token"), "{error}");
}

#[test]
fn debug_and_errors_never_show_a_key() {
    let keys = keys();
    let shown = format!("{keys:?}");
    assert_eq!(shown, r#"[Source("ios_app"), Source("web")]"#);
    let error = WriteKeys::new(&config(&[("web", "short-key")]), None).expect_err("short");
    assert!(!format!("{error} {error:?}").contains("short-key"));
}

async fn answer(router: Router, request: http::Request<axum::body::Body>) -> Response {
    router.oneshot(request).await.expect("infallible")
}

#[tokio::test]
async fn the_layer_passes_the_source_on_or_answers_401() {
    let echo = |source: Option<axum::Extension<Source>>| async move {
        source.map_or("none".to_string(), |s| s.name().to_string())
    };
    let router = keys().protect(Router::new().route("/collect", post(echo)));
    let request = |key: Option<&str>| {
        let mut builder = http::Request::post("/collect");
        if let Some(key) = key {
            builder = builder.header(WRITE_KEY_HEADER, key);
        }
        builder.body(axum::body::Body::empty()).expect("request")
    };
    let accepted = answer(router.clone(), request(Some(WEB))).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let body = axum::body::to_bytes(accepted.into_body(), 1024)
        .await
        .expect("body");
    assert_eq!(&body[..], b"web");

    let refused = answer(router.clone(), request(None)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers().get(header::WWW_AUTHENTICATE).cloned();
    assert_eq!(
        challenge.as_ref().and_then(|c| c.to_str().ok()),
        Some("Basic realm=\"clickstream ingest\"")
    );
    let body = axum::body::to_bytes(refused.into_body(), 1024)
        .await
        .expect("body");
    let reason: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(
        reason["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Write-Key")),
        "{reason}"
    );

    let open = WriteKeys::default().protect(Router::new().route("/collect", post(echo)));
    let body = axum::body::to_bytes(answer(open, request(None)).await.into_body(), 1024)
        .await
        .expect("body");
    assert_eq!(&body[..], b"none");
}
