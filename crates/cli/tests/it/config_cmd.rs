//! `clickstream config`: the effective configuration, with every credential redacted.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Every credential the config below sets, none of which may be printed.
const SECRETS: &[&str] = &[
    MINIO_PASSWORD,
    S3_SECRET,
    KAFKA_PASSWORD,
    OAUTH_SECRET,
    KEY_PASSWORD,
    SESSION_TOKEN,
    REGISTRY_PASSWORD,
    PSEUDONYM_SECRET,
];
const MINIO_PASSWORD: &str = "minio-root-pw-7f3a91";
const S3_SECRET: &str = "s3-secret-key-0b1c22";
const KAFKA_PASSWORD: &str = "kafka-sasl-pw-91c2d4";
const OAUTH_SECRET: &str = "oauth-client-secret-55d0e1";
const KEY_PASSWORD: &str = "ssl-key-pw-3e8b7f";
const SESSION_TOKEN: &str = "aws-session-token-c41d09";
const REGISTRY_PASSWORD: &str = "registry-pw-a7e612";
const PSEUDONYM_SECRET: &str = "pseudonym-secret-of-32-bytes-6d2f";

const CONFIG_FILE: &str = r#"
[kafka]
bootstrap_servers = "broker-1:9092"

[kafka.options]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "kafka-user"
"sasl.password" = "kafka-sasl-pw-91c2d4"

[kafka.producer_options]
"ssl.key.password" = "ssl-key-pw-3e8b7f"
"linger.ms" = "7"

[kafka.consumer_options]
"sasl.oauthbearer.client.secret" = "oauth-client-secret-55d0e1"

[lake.storage_options]
aws_session_token = "aws-session-token-c41d09"
"#;

/// Runs `clickstream config` with only `env` set (and a debug log filter, so anything
/// that logs its configuration would show); returns stdout and stderr.
fn clickstream_config(dir: &Path, env: &[(&str, &str)]) -> (String, String) {
    let file = dir.join("clickstream.toml");
    std::fs::write(&file, CONFIG_FILE).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream"))
        .env_clear()
        .envs(env.iter().copied())
        .env("RUST_LOG", "debug")
        .arg("--config")
        .arg(&file)
        .arg("config")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run clickstream config");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "clickstream config failed: {stderr}"
    );
    (stdout, stderr)
}

fn assert_no_secret(stdout: &str, stderr: &str) {
    for secret in SECRETS {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} logged:\n{stderr}");
    }
}

#[test]
fn config_command_redacts_every_credential_and_shows_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry_url = format!("http://sr-user:{REGISTRY_PASSWORD}@registry:8085");
    let (stdout, stderr) = clickstream_config(
        dir.path(),
        &[
            ("MINIO_ENDPOINT", "http://minio:9000"),
            ("MINIO_ROOT_USER", "minio-user"),
            ("MINIO_ROOT_PASSWORD", MINIO_PASSWORD),
            ("SCHEMA_REGISTRY_URL", &registry_url),
            ("CLICKSTREAM_ENRICH__PRIVACY__SECRET", PSEUDONYM_SECRET),
        ],
    );
    assert_no_secret(&stdout, &stderr);
    let config: Value = serde_json::from_str(&stdout).expect("config is JSON");
    let redacted = Value::from("<redacted>");
    let s3 = &config["lake"]["s3"];
    assert_eq!(s3["secret_access_key"], redacted, "{stdout}");
    assert_eq!(s3["access_key_id"], "minio-user");
    assert_eq!(s3["endpoint"], "http://minio:9000");
    assert_eq!(
        config["lake"]["storage_options"]["aws_session_token"],
        redacted
    );
    let kafka = &config["kafka"];
    assert_eq!(kafka["bootstrap_servers"], "broker-1:9092");
    assert_eq!(kafka["options"]["sasl.password"], redacted, "{stdout}");
    assert_eq!(kafka["options"]["sasl.username"], "kafka-user");
    assert_eq!(kafka["options"]["sasl.mechanism"], "PLAIN");
    assert_eq!(kafka["options"]["security.protocol"], "SASL_SSL");
    assert_eq!(kafka["producer_options"]["ssl.key.password"], redacted);
    assert_eq!(kafka["producer_options"]["linger.ms"], "7");
    let consumer = &kafka["consumer_options"];
    assert_eq!(consumer["sasl.oauthbearer.client.secret"], redacted);
    assert_eq!(
        config["registry"]["url"],
        "http://sr-user:<redacted>@registry:8085/"
    );
    assert_eq!(config["enrich"]["privacy"]["secret"], redacted);
}

#[test]
fn config_command_redacts_the_s3_secret_set_through_clickstream_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (stdout, stderr) = clickstream_config(
        dir.path(),
        &[
            ("MINIO_ENDPOINT", "http://minio:9000"),
            ("CLICKSTREAM_LAKE__S3__ACCESS_KEY_ID", "s3-user"),
            ("CLICKSTREAM_LAKE__S3__SECRET_ACCESS_KEY", S3_SECRET),
        ],
    );
    assert_no_secret(&stdout, &stderr);
    let config: Value = serde_json::from_str(&stdout).expect("config is JSON");
    assert_eq!(config["lake"]["s3"]["secret_access_key"], "<redacted>");
    assert_eq!(config["lake"]["s3"]["access_key_id"], "s3-user");
}
