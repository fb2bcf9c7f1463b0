//! Creating the lake's S3 bucket when it does not exist yet.
//!
//! `object_store` reads and writes objects but has no call to create a bucket. Rather
//! than pull in an S3 SDK for one request, we let `object_store` sign it: a presigned
//! `PUT` of the bucket's own URL (`<endpoint>/<bucket>/`, an empty key) is S3's
//! `CreateBucket`. The signature covers the method, host and path with an unsigned
//! payload, so the region's `CreateBucketConfiguration` body can ride along.

use std::str::FromStr;
use std::time::Duration;

use clickstream_secret::Settings;
use deltalake::ObjectStoreError;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::signer::Signer;
use url::Url;

use crate::LakeError;

/// What [`create_bucket_if_missing`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketStatus {
    /// The bucket was created now.
    Created,
    /// The bucket existed already.
    Existed,
}

/// Creates the bucket of an `s3://bucket/...` lake root unless it exists, signing the
/// request with the credentials, endpoint and region in `storage_options` (the same keys
/// `object_store` takes, e.g. `aws_endpoint`). Other URL schemes are left alone.
pub async fn create_bucket_if_missing(
    root_url: &str,
    storage_options: &Settings,
) -> Result<Option<BucketStatus>, LakeError> {
    let invalid = |reason: String| LakeError::InvalidRoot {
        url: root_url.to_string(),
        reason,
    };
    let url = Url::parse(root_url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "s3" | "s3a") {
        return Ok(None);
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("no bucket in the URL".to_string()))?
        .to_string();

    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
    let mut region = "us-east-1".to_string();
    for (key, value) in storage_options.exposed() {
        if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
            if key == AmazonS3ConfigKey::Region {
                region = value.to_string();
            }
            builder = builder.with_config(key, value);
        }
    }
    let bucket_error = |source: ObjectStoreError| LakeError::Bucket {
        bucket: bucket.clone(),
        reason: source.to_string(),
    };
    let store = builder.build().map_err(bucket_error)?;
    let signed = store
        .signed_url(http::Method::PUT, &Path::from(""), Duration::from_secs(300))
        .await
        .map_err(bucket_error)?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| LakeError::Bucket {
            bucket: bucket.clone(),
            reason: e.to_string(),
        })?;
    // us-east-1 takes no location constraint; every other region requires one.
    let body = if region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
        )
    };
    let response = client
        .put(signed)
        // Stores answer 411 to a bodiless PUT without an explicit length.
        .header(reqwest::header::CONTENT_LENGTH, body.len())
        .body(body)
        .send()
        .await
        .map_err(|e| LakeError::Bucket {
            bucket: bucket.clone(),
            reason: format!("store unreachable: {e}"),
        })?;
    let status = response.status();
    if status.is_success() {
        tracing::info!(%bucket, "created the lake's bucket");
        return Ok(Some(BucketStatus::Created));
    }
    let text = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::CONFLICT
        && (text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists"))
    {
        return Ok(Some(BucketStatus::Existed));
    }
    Err(LakeError::Bucket {
        bucket,
        reason: format!(
            "CreateBucket answered {status}: {}",
            s3_error_message(&text)
        ),
    })
}

/// The `<Code>` and `<Message>` of an S3 error document, or the text itself.
fn s3_error_message(text: &str) -> String {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_string())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => text.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_code_and_message_of_an_s3_error() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
                   <Message>Access Denied</Message></Error>";
        assert_eq!(s3_error_message(xml), "AccessDenied: Access Denied");
        assert_eq!(s3_error_message("gateway timeout"), "gateway timeout");
    }

    #[tokio::test]
    async fn leaves_non_s3_roots_alone() {
        let status = create_bucket_if_missing("file:///tmp/lake/", &Settings::new())
            .await
            .expect("no-op");
        assert_eq!(status, None);
    }
}
