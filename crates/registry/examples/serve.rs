//! Runs the schema registry alone:
//! `cargo run -p clickstream-registry --example serve -- --data-dir DIR [registry] --port N [--host H]`.
//!
//! The store lives in `DIR/registry`, as with the `clickstream` binary. Stops gracefully on
//! Ctrl-C or SIGTERM.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use clickstream_registry::{RegistryServerConfig, SchemaStore, serve};

struct Args {
    data_dir: PathBuf,
    host: String,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut data_dir = None;
    let mut host = "127.0.0.1".to_owned();
    let mut port = RegistryServerConfig::default().port;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--host" => host = value()?,
            "--port" => {
                let text = value()?;
                port = text.parse().map_err(|_| format!("invalid port '{text}'"))?;
            }
            // Accepted so that the example runs with the `clickstream` CLI's argument shape
            // (`--data-dir DIR registry --port N`), e.g. as CLICKSTREAM_BIN for the Python tests.
            "registry" => {}
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let data_dir = data_dir.ok_or("--data-dir DIR is required")?;
    Ok(Args {
        data_dir,
        host,
        port,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                eprintln!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()
        .map_err(|e| format!("{e}\nusage: serve --data-dir DIR [--port N] [--host H]"))?;
    let store = Arc::new(SchemaStore::open(&args.data_dir.join("registry"))?);
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    eprintln!(
        "schema registry listening on http://{}",
        listener.local_addr()?
    );
    serve(listener, store, shutdown_signal()).await?;
    eprintln!("schema registry stopped");
    Ok(())
}
