//! Subjects, their versions and compatibility levels, and a diff between two versions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use clickstream_registry::{RegisteredSchema, RegistryClient, VersionSpec};
use serde::{Deserialize, Serialize};

use crate::api::ApiQuery;
use crate::diff::{DiffLine, diff_lines};
use crate::pretty::indent_json;
use crate::{UiError, UiState};

/// `GET /api/ui/schemas`
#[derive(Debug, Serialize)]
pub(crate) struct SchemasView {
    global_compatibility: String,
    subjects: Vec<SubjectView>,
}

#[derive(Debug, Serialize)]
struct SubjectView {
    subject: String,
    versions: Vec<u32>,
    latest_version: u32,
    latest_id: u32,
    compatibility: String,
}

/// `GET /api/ui/schemas`
pub(crate) async fn list(State(state): State<Arc<UiState>>) -> Result<Json<SchemasView>, UiError> {
    let registry = &state.sources.registry;
    let subjects = registry.subjects().await?;
    let views = futures::future::try_join_all(
        subjects
            .into_iter()
            .map(|subject| subject_view(registry, subject)),
    )
    .await?;
    Ok(Json(SchemasView {
        global_compatibility: registry.global_compatibility().await?.to_string(),
        subjects: views,
    }))
}

async fn subject_view(registry: &RegistryClient, subject: String) -> Result<SubjectView, UiError> {
    let (versions, latest, compatibility) = tokio::try_join!(
        registry.versions(&subject),
        registry.latest(&subject),
        registry.compatibility(&subject),
    )?;
    Ok(SubjectView {
        versions,
        latest_version: latest.version,
        latest_id: latest.id,
        compatibility: compatibility.to_string(),
        subject,
    })
}

/// One version, its schema indented.
#[derive(Debug, Serialize)]
pub(crate) struct VersionView {
    subject: String,
    version: u32,
    id: u32,
    schema: String,
}

impl From<RegisteredSchema> for VersionView {
    fn from(registered: RegisteredSchema) -> Self {
        VersionView {
            schema: indent_json(&registered.schema),
            subject: registered.subject,
            version: registered.version,
            id: registered.id,
        }
    }
}

fn parse_version(text: &str) -> Result<VersionSpec, UiError> {
    text.parse()
        .map_err(|_| UiError::BadRequest(format!("version {text:?} is not a version number")))
}

/// `GET /api/ui/schemas/{subject}/versions/{version}`
pub(crate) async fn version(
    State(state): State<Arc<UiState>>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Json<VersionView>, UiError> {
    let registered = state
        .sources
        .registry
        .version(&subject, parse_version(&version)?)
        .await?;
    Ok(Json(registered.into()))
}

/// Query of the diff.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffQuery {
    from: String,
    to: String,
}

/// Two versions and their line diff.
#[derive(Debug, Serialize)]
pub(crate) struct DiffView {
    from: VersionView,
    to: VersionView,
    lines: Vec<DiffLine>,
}

/// `GET /api/ui/schemas/{subject}/diff?from=1&to=2`
pub(crate) async fn diff(
    State(state): State<Arc<UiState>>,
    Path(subject): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<DiffView>, UiError> {
    let registry = &state.sources.registry;
    let (from, to) = tokio::try_join!(
        registry.version(&subject, parse_version(&query.from)?),
        registry.version(&subject, parse_version(&query.to)?),
    )?;
    let (from, to) = (VersionView::from(from), VersionView::from(to));
    let lines = diff_lines(&from.schema, &to.schema);
    Ok(Json(DiffView { from, to, lines }))
}
