//! Handlers under `/subjects`: listing, registration, lookup, versions and deletion.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::extract::{ApiJson, ApiPath, Params};
use super::response::{ok, raw};
use crate::error::RegistryError;
use crate::model::{VersionSpec, Visibility};
use crate::schema::check_request_kind;
use crate::store::SchemaStore;

/// Body of registration, lookup and compatibility requests. Fields Confluent added later
/// (`metadata`, `ruleSet`, `id`, ...) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<serde_json::Value>>,
}

impl SchemaRequest {
    /// The schema text, once `schemaType` and `references` are known to be supported.
    pub(crate) fn into_schema(self) -> Result<String, RegistryError> {
        check_request_kind(
            self.schema_type.as_deref(),
            self.references.as_ref().map_or(0, Vec::len),
        )?;
        self.schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| RegistryError::InvalidSchema("empty schema".to_owned()))
    }
}

#[derive(Debug, Serialize)]
struct IdResponse {
    id: u32,
}

/// `GET /subjects`
pub(crate) async fn list(
    State(store): State<Arc<SchemaStore>>,
    params: Params,
) -> Result<Response, RegistryError> {
    let visibility = Visibility::from_flags(params.flag("deleted")?, params.flag("deleted_only")?);
    let names = store.subjects(visibility, params.text("subjectPrefix"));
    Ok(ok(&params.paginate(names)?))
}

/// `GET /subjects/{subject}/versions`
pub(crate) async fn versions(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    let visibility = Visibility::from_flags(params.flag("deleted")?, params.flag("deleted_only")?);
    let versions = store.versions(&subject, visibility)?;
    Ok(ok(&params.paginate(versions)?))
}

/// `POST /subjects/{subject}/versions`: answers `{"id": N}`.
pub(crate) async fn register(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let schema = request.into_schema()?;
    let registration = blocking(move || store.register(&subject, &schema)).await?;
    Ok(ok(&IdResponse {
        id: registration.id,
    }))
}

/// `POST /subjects/{subject}`: which version of the subject holds this schema.
pub(crate) async fn lookup(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let schema = request.into_schema()?;
    let found = store.lookup(&subject, &schema, params.flag("deleted")?)?;
    Ok(ok(&found))
}

/// `GET /subjects/{subject}/versions/{version}`
pub(crate) async fn version(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    Ok(ok(&store.version(
        &subject,
        spec,
        params.flag("deleted")?,
    )?))
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema itself, unescaped.
pub(crate) async fn version_schema(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    let found = store.version(&subject, spec, params.flag("deleted")?)?;
    Ok(raw(StatusCode::OK, found.schema))
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`: always empty, as schema
/// references are not supported.
pub(crate) async fn referenced_by(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    store.version(&subject, spec, true)?;
    Ok(ok(&Vec::<u32>::new()))
}

/// `DELETE /subjects/{subject}`: answers the deleted version numbers.
pub(crate) async fn delete_subject(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    let permanent = params.flag("permanent")?;
    let versions = blocking(move || store.delete_subject(&subject, permanent)).await?;
    Ok(ok(&versions))
}

/// `DELETE /subjects/{subject}/versions/{version}`: answers the deleted version number.
pub(crate) async fn delete_version(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    let permanent = params.flag("permanent")?;
    let deleted = blocking(move || store.delete_version(&subject, spec, permanent)).await?;
    Ok(ok(&deleted))
}
