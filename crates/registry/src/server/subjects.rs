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
use crate::model::{SchemaReference, VersionSpec, Visibility};
use crate::schema::check_schema_type;
use crate::store::SchemaStore;

/// Body of registration, lookup and compatibility requests. Fields Confluent added later
/// (`metadata`, `ruleSet`, `id`, ...) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Vec<ReferenceRequest>>,
}

/// A reference as sent: Confluent reads missing fields as nulls and refuses them as an
/// invalid schema, and takes version `-1` for the subject's latest version.
#[derive(Debug, Deserialize)]
struct ReferenceRequest {
    name: Option<String>,
    subject: Option<String>,
    version: Option<i64>,
}

/// The schema and references of a request.
pub(crate) struct Candidate {
    pub(crate) schema: String,
    pub(crate) references: Vec<SchemaReference>,
}

impl SchemaRequest {
    /// The schema text and its references, once `schemaType` is known to be supported; a
    /// reference to version `-1` is to the latest live version of its subject, and is
    /// answered with that number from then on, as Confluent does.
    pub(crate) fn into_candidate(self, store: &SchemaStore) -> Result<Candidate, RegistryError> {
        check_schema_type(self.schema_type.as_deref())?;
        let schema = self
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| RegistryError::InvalidSchema("empty schema".to_owned()))?;
        let references = self
            .references
            .unwrap_or_default()
            .into_iter()
            .map(|reference| reference.resolve(store))
            .collect::<Result<_, _>>()?;
        Ok(Candidate { schema, references })
    }
}

impl ReferenceRequest {
    fn resolve(self, store: &SchemaStore) -> Result<SchemaReference, RegistryError> {
        let (Some(name), Some(subject), Some(version)) = (self.name, self.subject, self.version)
        else {
            return Err(RegistryError::InvalidSchema(
                "Invalid reference: a reference needs a name, a subject and a version".to_owned(),
            ));
        };
        let not_found = || {
            RegistryError::InvalidSchema(format!(
                "No schema reference found for subject \"{subject}\" and version {version}"
            ))
        };
        let version = match version {
            -1 => {
                store
                    .version(&subject, VersionSpec::Latest, false)
                    .map_err(|_| not_found())?
                    .version
            }
            n => u32::try_from(n)
                .ok()
                .filter(|n| (1..=i32::MAX.unsigned_abs()).contains(n))
                .ok_or_else(not_found)?,
        };
        Ok(SchemaReference {
            name,
            subject,
            version,
        })
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
    let Candidate { schema, references } = request.into_candidate(&store)?;
    let registration =
        blocking(move || store.register_with_references(&subject, &schema, &references)).await?;
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
    let Candidate { schema, references } = request.into_candidate(&store)?;
    let found =
        store.lookup_with_references(&subject, &schema, &references, params.flag("deleted")?)?;
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

/// `GET /subjects/{subject}/versions/{version}/referencedby`: ids of the schemas that
/// reference the version, ascending (`deleted` counts referrers whose versions are all
/// soft-deleted; `offset`/`limit` page).
pub(crate) async fn referenced_by(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    let ids = store.referenced_by(&subject, spec, params.flag("deleted")?)?;
    Ok(ok(&params.paginate(ids)?))
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
