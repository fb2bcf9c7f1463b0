//! The admin token over real sockets: every admin route refuses no token and a wrong one,
//! accepts the right one as a bearer token, as a Basic password and as the UI's session;
//! the routes that must stay open stay open; a listener beyond loopback without a token
//! refuses to start; admin routes answer no CORS preflight.

use clickstream::Pipeline;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestPipeline, json_body, test_config};

const TOKEN: &str = "it-admin-token-0123456789abcdef";

/// How a request presents itself.
#[derive(Debug, Clone, Copy)]
enum Credential {
    Nothing,
    WrongBearer,
    WrongBasic,
    Bearer,
    Basic,
}

impl Credential {
    fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::Nothing => request,
            Credential::WrongBearer => request.bearer_auth("wrong-token-0123456789abcdef"),
            Credential::WrongBasic => request.basic_auth("admin", Some("wrong-token-0123456789")),
            Credential::Bearer => request.bearer_auth(TOKEN),
            Credential::Basic => request.basic_auth("admin", Some(TOKEN)),
        }
    }
}

async fn guarded() -> TestPipeline {
    TestPipeline::start_with(|config| {
        config.auth.admin_token = Some(clickstream_secret::Secret::new(TOKEN));
        config.auth.protect_metrics = true;
    })
    .await
}

fn registry_url(t: &TestPipeline, path: &str) -> String {
    let addr = t.pipeline.registry_addr().expect("our registry runs");
    format!("http://127.0.0.1:{}{path}", addr.port())
}

async fn send(
    t: &TestPipeline,
    method: Method,
    url: &str,
    body: Option<Value>,
    credential: Credential,
) -> reqwest::Response {
    let mut request = t.http.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string());
    }
    credential
        .apply(request)
        .send()
        .await
        .expect("request sent")
}

/// Sends `method url` with no token and wrong ones: each gets 401 with a JSON reason
/// (and, outside the registry, a `Bearer` challenge).
async fn check_refused(t: &TestPipeline, method: Method, url: &str, body: Option<Value>) {
    for credential in [
        Credential::Nothing,
        Credential::WrongBearer,
        Credential::WrongBasic,
    ] {
        let response = send(t, method.clone(), url, body.clone(), credential).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {url} with {credential:?}"
        );
        let challenge = response.headers().get("www-authenticate").cloned();
        let reason = json_body(response).await;
        assert!(
            reason["message"]
                .as_str()
                .is_some_and(|m| m.contains("admin token")),
            "{method} {url}: {reason}"
        );
        // Bearer for the UI's routes (no browser prompt), Basic for the registry's clients.
        let scheme = match url.contains("/subjects") || url.contains("/config") {
            true => "Basic",
            false => "Bearer",
        };
        let challenge = challenge.expect("a challenge");
        assert!(
            challenge.to_str().expect("ascii").starts_with(scheme),
            "{url}: {challenge:?}"
        );
    }
}

/// [`check_refused`], then the right token as a bearer token and as a Basic password: each
/// gets `expected`.
async fn check_guarded(
    t: &TestPipeline,
    method: Method,
    url: &str,
    body: Option<Value>,
    expected: StatusCode,
) {
    check_refused(t, method.clone(), url, body.clone()).await;
    for credential in [Credential::Bearer, Credential::Basic] {
        let status = send(t, method.clone(), url, body.clone(), credential)
            .await
            .status();
        assert_eq!(status, expected, "{method} {url} with {credential:?}");
    }
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token_and_takes_the_right_one() {
    let t = guarded().await;
    let sql = json!({"sql": "SELECT count(*) AS n FROM events"});
    for url in [t.url("/api/sql"), t.ui_url("/api/sql")] {
        check_guarded(&t, Method::POST, &url, Some(sql.clone()), StatusCode::OK).await;
    }
    check_guarded(&t, Method::GET, &t.url("/metrics"), None, StatusCode::OK).await;
    check_guarded(&t, Method::GET, &t.ui_url("/metrics"), None, StatusCode::OK).await;
    for path in ["overview", "topics", "invalid", "schemas", "lake"] {
        let url = t.ui_url(&format!("/api/ui/{path}"));
        check_guarded(&t, Method::GET, &url, None, StatusCode::OK).await;
    }

    // The registry: writes and deletes on a subject of the test's own.
    let schema = json!({"schema": r#"{"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}"#});
    let versions = registry_url(&t, "/subjects/scratch-value/versions");
    check_guarded(&t, Method::POST, &versions, Some(schema), StatusCode::OK).await;
    let level = json!({"compatibility": "FULL"});
    let subject_config = registry_url(&t, "/config/scratch-value");
    check_guarded(
        &t,
        Method::PUT,
        &subject_config,
        Some(level.clone()),
        StatusCode::OK,
    )
    .await;
    check_refused(&t, Method::DELETE, &subject_config, None).await;
    for credential in [Credential::Bearer, Credential::Basic] {
        let put = send(
            &t,
            Method::PUT,
            &subject_config,
            Some(level.clone()),
            credential,
        )
        .await;
        assert_eq!(put.status(), StatusCode::OK);
        let delete = send(&t, Method::DELETE, &subject_config, None, credential).await;
        assert_eq!(
            delete.status(),
            StatusCode::OK,
            "DELETE with {credential:?}"
        );
    }
    let global = registry_url(&t, "/config");
    check_guarded(
        &t,
        Method::PUT,
        &global,
        Some(json!({"compatibility": "BACKWARD"})),
        StatusCode::OK,
    )
    .await;
    // The first right credential deletes the subject, the second finds it gone.
    for credential in [
        Credential::Nothing,
        Credential::WrongBearer,
        Credential::WrongBasic,
        Credential::Bearer,
        Credential::Basic,
    ] {
        let response = send(
            &t,
            Method::DELETE,
            &registry_url(&t, "/subjects/scratch-value"),
            None,
            credential,
        )
        .await;
        match credential {
            Credential::Bearer => assert_eq!(response.status(), StatusCode::OK),
            Credential::Basic => assert_eq!(response.status(), StatusCode::NOT_FOUND),
            _ => assert_eq!(response.status(), StatusCode::UNAUTHORIZED),
        }
    }
}

#[tokio::test]
async fn what_must_stay_open_stays_open_with_a_token_set() {
    let t = guarded().await;
    let event = crate::common::seed_events().remove(0);
    assert_eq!(t.collect(event.to_string()).await.status(), StatusCode::OK);
    for url in [
        t.url("/ping"),
        t.url("/health/live"),
        t.ui_url("/"),
        t.ui_url("/assets/app.js"),
        registry_url(&t, "/subjects"),
        registry_url(
            &t,
            "/subjects/acme.clickstream.raw.events-value/versions/latest",
        ),
        registry_url(&t, "/config"),
    ] {
        let status = t.http.get(&url).send().await.expect("sent").status();
        assert_eq!(status, StatusCode::OK, "{url}");
    }
    // Lookups and compatibility checks are POSTs that only read.
    let raw = clickstream_event::schemas::RAW_EVENT_SCHEMA;
    let body = Some(json!({"schema": raw}));
    let lookup = registry_url(&t, "/subjects/acme.clickstream.raw.events-value");
    assert_eq!(
        send(&t, Method::POST, &lookup, body.clone(), Credential::Nothing)
            .await
            .status(),
        StatusCode::OK
    );
    let check = registry_url(
        &t,
        "/compatibility/subjects/acme.clickstream.raw.events-value/versions/latest",
    );
    assert_eq!(
        send(&t, Method::POST, &check, body, Credential::Nothing)
            .await
            .status(),
        StatusCode::OK
    );
    let auth: Value = json_body(
        t.http
            .get(t.ui_url("/api/auth"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(auth, json!({"required": true, "authenticated": false}));
}

#[tokio::test]
async fn the_ui_login_trades_the_token_for_a_session_cookie() {
    let t = guarded().await;
    let login = |token: &str| {
        t.http
            .post(t.ui_url("/api/login"))
            .json(&json!({"token": token}))
            .send()
    };
    let refused = login("not-the-token-0123456789").await.expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    let accepted = login(TOKEN).await.expect("sent");
    assert_eq!(accepted.status(), StatusCode::OK);
    let cookie = accepted
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    for attribute in [
        "clickstream_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = cookie.split(';').next().expect("name=value").to_string();
    let overview = t
        .http
        .get(t.ui_url("/api/ui/overview"))
        .header("cookie", &session)
        .send()
        .await
        .expect("sent");
    assert_eq!(overview.status(), StatusCode::OK);
    let forged = t
        .http
        .get(t.ui_url("/api/ui/overview"))
        .header("cookie", "clickstream_session=forged")
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // The session is the UI's: the registry's writes, which a page on another port could
    // send as a simple request, take only the token itself.
    let register = t
        .http
        .post(registry_url(&t, "/subjects/from-a-page-value/versions"))
        .header("cookie", &session)
        .body(r#"{"schema": "\"string\""}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(register.status(), StatusCode::UNAUTHORIZED);

    // Logging out ends the session everywhere: a copy of the cookie no longer works.
    let with_session = |request: reqwest::RequestBuilder| request.header("cookie", &session).send();
    let logout = with_session(t.http.post(t.ui_url("/api/logout")))
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::OK);
    let copied = with_session(t.http.get(t.ui_url("/api/ui/overview")))
        .await
        .expect("sent");
    assert_eq!(copied.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn listening_beyond_loopback_needs_a_token() {
    for (listener, expose) in [
        (
            "ingest",
            (|c: &mut clickstream::Config| c.ingest.host = "0.0.0.0".into())
                as fn(&mut clickstream::Config),
        ),
        ("the web UI", |c| c.ui.host = "0.0.0.0".into()),
        ("the schema registry", |c| {
            c.registry.host = "0.0.0.0".into()
        }),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        expose(&mut config);
        let refused = Pipeline::start(config.clone())
            .await
            .err()
            .expect("refused");
        let message = format!("{refused:#}");
        assert!(
            message.contains(listener) && message.contains("CLICKSTREAM_ADMIN_TOKEN"),
            "{message}"
        );
        config.auth.admin_token = Some(clickstream_secret::Secret::new(TOKEN));
        let started = Pipeline::start(config).await.expect("starts with a token");
        wait_ready(&started).await;
        started.shutdown().await.expect("stops");
    }
}

/// Waits until every role says it is ready (a pipeline stopped while its processor still
/// starts reports the registry gone as the processor's error).
async fn wait_ready(pipeline: &Pipeline) {
    let port = pipeline.ingest_addr().expect("ingest runs").port();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    crate::eventually::eventually(
        "the pipeline is ready",
        std::time::Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                let status = reqwest::get(&url)
                    .await
                    .map(|r| r.status())
                    .map_err(|e| e.to_string())?;
                crate::eventually::check(status == StatusCode::OK, || format!("{status}"))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn admin_routes_answer_no_cors_preflight_and_ingest_follows_its_origins() {
    let t = TestPipeline::start_with(|config| {
        config.ingest.cors_origins = vec!["https://shop.example".into()];
    })
    .await;
    let preflight = |path: &str, origin: &str| {
        t.http
            .request(Method::OPTIONS, t.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = |r: &reqwest::Response| r.headers().get("access-control-allow-origin").cloned();
    let shop = preflight("/collect", "https://shop.example")
        .await
        .expect("sent");
    assert_eq!(allowed(&shop).expect("allowed"), "https://shop.example");
    assert!(
        shop.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let other = preflight("/collect", "https://evil.example")
        .await
        .expect("sent");
    assert!(allowed(&other).is_none(), "{:?}", other.headers());
    for path in ["/api/sql", "/metrics"] {
        let admin = preflight(path, "https://shop.example").await.expect("sent");
        assert!(allowed(&admin).is_none(), "{path}: {:?}", admin.headers());
    }
    let ui_sql = t
        .http
        .request(Method::OPTIONS, t.ui_url("/api/sql"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(allowed(&ui_sql).is_none());
}
