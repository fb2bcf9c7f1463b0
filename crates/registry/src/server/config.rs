//! Handlers under `/config` (compatibility levels) and the read-only `/mode`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::extract::{ApiJson, ApiPath, Params};
use super::response::ok;
use crate::compat::CompatibilityLevel;
use crate::error::RegistryError;
use crate::store::SchemaStore;

/// `PUT /config` body. Confluent's field is `compatibility`; `compatibilityLevel` (the name
/// GET answers with) is accepted too. Other config fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigRequest {
    compatibility: Option<String>,
    compatibility_level: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<CompatibilityLevel, RegistryError> {
        self.compatibility
            .as_deref()
            .or(self.compatibility_level.as_deref())
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(String::new()))?
            .parse()
    }
}

/// What `GET /config` answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LevelResponse {
    compatibility_level: CompatibilityLevel,
}

/// What `PUT /config` answers.
#[derive(Debug, Serialize)]
struct UpdateResponse {
    compatibility: CompatibilityLevel,
}

/// `GET /config`
pub(crate) async fn global(State(store): State<Arc<SchemaStore>>) -> Response {
    ok(&LevelResponse {
        compatibility_level: store.global_level(),
    })
}

/// `PUT /config`
pub(crate) async fn set_global(
    State(store): State<Arc<SchemaStore>>,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> Result<Response, RegistryError> {
    let level = request.level()?;
    blocking(move || store.set_level(None, level)).await?;
    Ok(ok(&UpdateResponse {
        compatibility: level,
    }))
}

/// `DELETE /config`: back to the default (BACKWARD); answers the level that was set.
pub(crate) async fn clear_global(
    State(store): State<Arc<SchemaStore>>,
) -> Result<Response, RegistryError> {
    let previous = blocking(move || store.clear_level(None)).await?;
    Ok(ok(&LevelResponse {
        compatibility_level: previous,
    }))
}

/// `GET /config/{subject}`: 40408 without a subject level unless `?defaultToGlobal=true`.
pub(crate) async fn subject(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    let level = match store.subject_level(&subject) {
        Some(level) => level,
        None if params.flag("defaultToGlobal")? => store.global_level(),
        None => return Err(RegistryError::SubjectLevelNotConfigured(subject)),
    };
    Ok(ok(&LevelResponse {
        compatibility_level: level,
    }))
}

/// `PUT /config/{subject}`
pub(crate) async fn set_subject(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> Result<Response, RegistryError> {
    let level = request.level()?;
    blocking(move || store.set_level(Some(&subject), level)).await?;
    Ok(ok(&UpdateResponse {
        compatibility: level,
    }))
}

/// `DELETE /config/{subject}`: answers the level that was set.
pub(crate) async fn clear_subject(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
) -> Result<Response, RegistryError> {
    let previous = blocking(move || store.clear_level(Some(&subject))).await?;
    Ok(ok(&LevelResponse {
        compatibility_level: previous,
    }))
}

#[derive(Debug, Serialize)]
struct ModeResponse {
    mode: &'static str,
}

/// The one mode this registry runs in; modes cannot be changed.
const GLOBAL_MODE: &str = "READWRITE";

/// `GET /mode`: the global mode, always READWRITE.
pub(crate) async fn mode() -> Response {
    ok(&ModeResponse { mode: GLOBAL_MODE })
}

/// `GET /mode/{subject}`: no subject ever has its own mode, so 40409 as Confluent's
/// ModeResource answers for an unset one, unless `?defaultToGlobal=true` asks for the mode
/// in force (the global one).
pub(crate) async fn subject_mode(
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    if params.flag("defaultToGlobal")? {
        Ok(ok(&ModeResponse { mode: GLOBAL_MODE }))
    } else {
        Err(RegistryError::SubjectModeNotConfigured(subject))
    }
}
