//! Configuration of the lake: where it lives and how often it commits and compacts.

use std::path::Path;

use clickstream_secret::{Secret, Settings};
use serde::{Deserialize, Serialize};

use crate::LakeError;

/// Where the lake lives, how often the processor commits to it and how it is maintained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LakeConfig {
    /// Root URL of the lake (`file:///var/lib/clickstream/lake`, `s3://bucket`). Tables live
    /// at `<root>/clickstream-data/<table>/`. Unset: `<data_dir>/lake` on the local disk.
    pub url: Option<String>,
    /// Commit a batch once it holds this many rows.
    pub flush_max_rows: usize,
    /// Commit a batch once the log records it was made from add up to this many bytes
    /// (keys and values), so large events cannot make a batch of `flush_max_rows` outgrow
    /// memory. Checked after each poll, so a batch can pass it by one poll's worth. A
    /// batch holds several times its records' bytes while it is built and written, and
    /// the next is built while one commits: 16 MiB is about 50,000 seed events.
    pub flush_max_bytes: u64,
    /// Commit a non-empty batch at least this often, in milliseconds, so an event is
    /// queryable about a second after it was accepted even at low traffic.
    pub flush_interval_ms: u64,
    /// Size compaction aims for when it rewrites small files, in bytes.
    pub target_file_bytes: u64,
    /// Compact a table in the background after this many commits since its last compaction.
    pub optimize_after_commits: u64,
    /// Files no longer referenced by the table are deleted by vacuum once they are older than
    /// this many hours. Readers of older table versions need them until then.
    pub vacuum_retention_hours: u64,
    /// An S3-compatible store (MinIO, S3) for the lake. Setting `s3.endpoint` (or
    /// `MINIO_ENDPOINT`) while `url` is unset puts the lake in `s3://<s3.bucket>`.
    pub s3: S3Config,
    /// Options of the object store (`aws_endpoint`, `aws_region`, `timeout`...), passed
    /// unchanged to `object_store`; they win over what `s3` derives. Values of
    /// credential-like keys (`aws_secret_access_key`, `aws_session_token`...) are redacted
    /// wherever the config is printed.
    pub storage_options: Settings,
}

/// An S3-compatible object store holding the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL of an S3-compatible store, e.g. `http://minio:9000` (`MINIO_ENDPOINT`).
    /// Unset: no S3 store is configured here (a `s3://` `url` then talks to AWS itself,
    /// with credentials from the usual AWS environment).
    pub endpoint: Option<String>,
    /// Bucket of the lake, created if missing.
    pub bucket: String,
    /// Region to sign requests for.
    pub region: String,
    /// Access key id (`MINIO_ROOT_USER`).
    pub access_key_id: Option<String>,
    /// Secret access key (`MINIO_ROOT_PASSWORD`); redacted wherever the config is printed.
    pub secret_access_key: Option<Secret>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint`, as MinIO and
    /// most self-hosted stores expect.
    pub path_style: bool,
    /// Create the bucket at start when it does not exist.
    pub create_bucket: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            bucket: "acme.eu-west-1.stg.data.lake".to_string(),
            region: "us-east-1".to_string(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            create_bucket: true,
        }
    }
}

impl S3Config {
    /// Whether an S3-compatible endpoint is configured.
    pub fn is_configured(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty())
    }

    /// `object_store` options for this store (empty when no endpoint is configured).
    pub fn storage_options(&self) -> Settings {
        let mut options = Settings::new();
        let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) else {
            return options;
        };
        let endpoint = endpoint.trim().trim_end_matches('/');
        options.insert("aws_endpoint", endpoint);
        options.insert("aws_region", self.region.as_str());
        if endpoint.starts_with("http://") {
            options.insert("aws_allow_http", "true");
        }
        options.insert(
            "aws_virtual_hosted_style_request",
            (!self.path_style).to_string(),
        );
        if let Some(key) = &self.access_key_id {
            options.insert("aws_access_key_id", key.as_str());
        }
        if let Some(secret) = &self.secret_access_key {
            options.insert_secret("aws_secret_access_key", secret.clone());
        }
        options
    }
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            url: None,
            flush_max_rows: 100_000,
            flush_max_bytes: 16 * 1024 * 1024,
            flush_interval_ms: 500,
            target_file_bytes: 128 * 1024 * 1024,
            optimize_after_commits: 100,
            vacuum_retention_hours: 168,
            s3: S3Config::default(),
            storage_options: Settings::new(),
        }
    }
}

impl LakeConfig {
    /// The lake's root URL: `url` when set, else `s3://<s3.bucket>` when an S3 endpoint is
    /// configured, else `file://<data_dir>/lake`.
    pub fn root_url(&self, data_dir: &Path) -> Result<String, LakeError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        if self.s3.is_configured() {
            return Ok(format!("s3://{}", self.s3.bucket));
        }
        let dir =
            std::path::absolute(data_dir.join("lake")).map_err(|err| LakeError::InvalidRoot {
                url: data_dir.display().to_string(),
                reason: err.to_string(),
            })?;
        url::Url::from_directory_path(&dir)
            .map(String::from)
            .map_err(|()| LakeError::InvalidRoot {
                url: dir.display().to_string(),
                reason: "not an absolute local path".to_string(),
            })
    }

    /// Options for the object store: those derived from `s3`, overridden by
    /// `storage_options`.
    pub fn effective_storage_options(&self) -> Settings {
        let mut options = self.s3.storage_options();
        options.merge(&self.storage_options);
        options
    }

    /// Vacuum retention as a duration.
    pub fn vacuum_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.vacuum_retention_hours.saturating_mul(3600))
    }

    /// Flush interval as a duration.
    pub fn flush_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.flush_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let config = LakeConfig::default();
        assert_eq!(config.flush_max_rows, 100_000);
        assert_eq!(config.flush_interval_ms, 500);
        assert_eq!(config.target_file_bytes, 134_217_728);
        assert_eq!(config.optimize_after_commits, 100);
        assert_eq!(config.vacuum_retention_hours, 168);
        assert!(config.storage_options.is_empty());
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = serde_json::from_str::<LakeConfig>(r#"{"flush_max_row": 5}"#);
        assert!(err.is_err());
        let ok: LakeConfig =
            serde_json::from_str(r#"{"flush_max_rows": 5}"#).expect("valid config");
        assert_eq!(ok.flush_max_rows, 5);
        assert_eq!(ok.flush_interval_ms, 500);
    }

    #[test]
    fn resolves_default_root_under_data_dir() {
        let config = LakeConfig::default();
        let root = config
            .root_url(Path::new("/var/lib/clickstream"))
            .expect("root");
        assert_eq!(root, "file:///var/lib/clickstream/lake/");
        let explicit = LakeConfig {
            url: Some("s3://bucket".to_string()),
            ..LakeConfig::default()
        };
        assert_eq!(
            explicit.root_url(Path::new("/x")).expect("root"),
            "s3://bucket"
        );
    }

    #[test]
    fn an_s3_endpoint_puts_the_lake_in_the_bucket() {
        let mut config = LakeConfig::default();
        config.s3.endpoint = Some("http://minio:9000/".to_string());
        config.s3.access_key_id = Some("minioadmin".to_string());
        config.s3.secret_access_key = Some(Secret::new("hunter2"));
        assert_eq!(
            config.root_url(Path::new("/x")).expect("root"),
            "s3://acme.eu-west-1.stg.data.lake"
        );
        let options = config.effective_storage_options();
        assert_eq!(options.expose("aws_endpoint"), Some("http://minio:9000"));
        assert_eq!(options.expose("aws_allow_http"), Some("true"));
        assert_eq!(
            options.expose("aws_virtual_hosted_style_request"),
            Some("false")
        );
        assert_eq!(options.expose("aws_access_key_id"), Some("minioadmin"));
        assert_eq!(options.expose("aws_secret_access_key"), Some("hunter2"));
        config.storage_options.insert("aws_region", "eu-west-1");
        assert_eq!(
            config.effective_storage_options().expose("aws_region"),
            Some("eu-west-1")
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.effective_storage_options()).contains("hunter2"));
        let json = serde_json::to_string(&config).expect("json");
        assert!(!json.contains("hunter2"), "{json}");
    }

    #[test]
    fn redacts_secret_storage_options_in_debug_and_serialization() {
        let mut config = LakeConfig::default();
        config
            .storage_options
            .insert("AWS_SECRET_ACCESS_KEY", "hunter2");
        config
            .storage_options
            .insert("AWS_ENDPOINT_URL", "http://minio:9000");
        for printed in [
            format!("{config:?}"),
            serde_json::to_string(&config).expect("json"),
        ] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("http://minio:9000"), "{printed}");
        }
    }
}
