//! Where each listener binds, who may reach its admin routes, and the registry this
//! process serves or uses.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use clickstream_edge::{AdminAuth, Server, check_exposure};
use clickstream_registry::{RegistryClient, RegistryServerConfig, SchemaStore};
use clickstream_secret::{Secret, SecretUrl};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::pipeline::Roles;

/// A server to run as a task of the pipeline.
pub(crate) type ServerTask = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// The registry this process uses.
pub(crate) struct RegistryInUse {
    /// Where to reach it, with the admin token when it is ours and one is set.
    pub(crate) url: SecretUrl,
    /// The client for it: one that trusts our own certificate when it is ours over HTTPS.
    pub(crate) client: RegistryClient,
    /// Where it listens, when this process serves it.
    pub(crate) addr: Option<SocketAddr>,
    /// Its store, when this process serves it.
    pub(crate) store: Option<Arc<SchemaStore>>,
    /// The server, when this process serves it.
    pub(crate) server: Option<ServerTask>,
}

/// Refuses to start a listener beyond loopback whose admin routes would be open: the
/// registry (writes), ingest (SQL on the same port) and the UI.
pub(crate) fn check_exposures(
    config: &Config,
    roles: Roles,
    auth: &AdminAuth,
) -> anyhow::Result<()> {
    // A processor alone serves /metrics on ingest.host: guarded only with protect_metrics.
    let metrics_alone = roles.processor && !roles.ingest && config.auth.protect_metrics;
    let listeners = [
        (roles.registry, "the schema registry", &config.registry.host),
        (roles.ingest, "ingest", &config.ingest.host),
        (roles.ui, "the web UI", &config.ui.host),
        (
            metrics_alone,
            "the processor's metrics",
            &config.ingest.host,
        ),
    ];
    for (runs, what, host) in listeners {
        if runs {
            check_exposure(auth, what, host)?;
        }
    }
    Ok(())
}

/// The registry in use: served here when this process runs it (its server is returned to
/// be spawned, stopping at `stop`), else the configured URL, else ours where `clickstream
/// registry` listens. Ours is reached with the admin token, if one is set, and over HTTPS
/// when `server` speaks it, trusting our own certificate.
pub(crate) async fn registry_in_use(
    config: &Config,
    roles: Roles,
    (auth, server): (&AdminAuth, &Server),
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RegistryInUse> {
    if !roles.registry {
        let (url, client) = match &config.registry.url {
            Some(url) => (url.clone(), RegistryClient::new(url.expose())?),
            None => {
                let addr = connect_addr(&config.registry.host, config.registry.port);
                our_registry(config, server, &addr)?
            }
        };
        return Ok(RegistryInUse {
            url,
            client,
            addr: None,
            store: None,
            server: None,
        });
    }
    let dir = config.data_dir.join("registry");
    let store = Arc::new(
        SchemaStore::open(&dir)
            .with_context(|| format!("opening the registry in {}", dir.display()))?,
    );
    let listener = bind(&config.registry.host, config.registry.port, "registry").await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "schema registry is up");
    let server_config = RegistryServerConfig {
        port: config.registry.port,
        max_body_bytes: config.registry.max_body_bytes,
    };
    let (served, auth, serving) = (Arc::clone(&store), auth.clone(), server.clone());
    let task: ServerTask = Box::pin(async move {
        clickstream_registry::serve_with_config(
            listener,
            served,
            &server_config,
            &auth,
            &serving,
            stop,
        )
        .await
        .context("schema registry server")
    });
    let (url, client) = our_registry(
        config,
        server,
        &connect_addr(&addr.ip().to_string(), addr.port()),
    )?;
    Ok(RegistryInUse {
        url,
        client,
        addr: Some(addr),
        store: Some(store),
        server: Some(task),
    })
}

/// The URL of our registry at `addr` (`host:port`), and a client for it: with the admin
/// token if one is set, over HTTPS trusting our own certificate when listeners speak TLS.
fn our_registry(
    config: &Config,
    server: &Server,
    addr: &str,
) -> anyhow::Result<(SecretUrl, RegistryClient)> {
    let token = config.auth.admin_token.as_ref().filter(|t| !t.is_empty());
    let url = registry_url(&format!("{}://{addr}", server.scheme()), token);
    let client = match (&config.http.tls_cert, server.tls()) {
        (Some(cert), true) => {
            let tls = clickstream_edge::tls::pinned_client_config(cert)?;
            RegistryClient::with_tls(url.expose(), tls)?
        }
        _ => RegistryClient::new(url.expose())?,
    };
    Ok((url, client))
}

/// `base` (`http://host:port`) with `admin:<token>` as its userinfo when there is a token.
fn registry_url(base: &str, token: Option<&Secret>) -> SecretUrl {
    match (token, base.split_once("://")) {
        (Some(token), Some((scheme, rest))) => SecretUrl::new(format!(
            "{scheme}://admin:{}@{rest}",
            percent_encode(token.expose())
        )),
        _ => SecretUrl::new(base),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `http://host:port` (`https` with `tls`), with `localhost` for an any-address bind (what
/// a person can open).
pub fn display_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

/// The address to connect to for a server bound to `host:port`: the address itself,
/// except that an any-address bind (`0.0.0.0`, `::`) is reached on loopback.
pub fn connect_addr(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv6() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)).to_string()
        }
        Ok(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string(),
        Ok(ip) => SocketAddr::from((ip, port)).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

pub(crate) async fn bind(host: &str, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("{what}: cannot listen on {host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_reached_where_they_listen() {
        assert_eq!(connect_addr("0.0.0.0", 8085), "127.0.0.1:8085");
        assert_eq!(connect_addr("::", 8085), "[::1]:8085");
        assert_eq!(connect_addr("127.0.0.2", 8085), "127.0.0.2:8085");
        assert_eq!(connect_addr("10.1.2.3", 1), "10.1.2.3:1");
        assert_eq!(
            connect_addr("registry.internal", 8085),
            "registry.internal:8085"
        );
    }

    #[test]
    fn display_urls_say_https_with_tls_and_localhost_for_any_address() {
        let any: SocketAddr = "0.0.0.0:60000".parse().expect("addr");
        let one: SocketAddr = "127.0.0.1:8085".parse().expect("addr");
        assert_eq!(display_url(any, false), "http://localhost:60000");
        assert_eq!(display_url(any, true), "https://localhost:60000");
        assert_eq!(display_url(one, true), "https://127.0.0.1:8085");
    }

    #[test]
    fn our_registry_is_reached_with_the_admin_token_percent_encoded() {
        let token = Secret::new("tok:en/with@odd%chars");
        let url = registry_url("http://127.0.0.1:8085", Some(&token));
        assert_eq!(
            url.expose(),
            "http://admin:tok%3Aen%2Fwith%40odd%25chars@127.0.0.1:8085"
        );
        assert!(!url.redacted().contains("tok"));
        assert_eq!(
            registry_url("http://127.0.0.1:8085", None).expose(),
            "http://127.0.0.1:8085"
        );
    }
}
