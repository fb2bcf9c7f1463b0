//! Subjects, their versions and compatibility levels, and a diff between two versions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use clickstream_event::{RAW_TOPIC, value_subject};
use clickstream_lake::avro::{PlannedColumn, SubjectVersion, columns_by_version};
use clickstream_lake::{TableKind, delta_type_name};
use clickstream_registry::{RegisteredSchema, RegistryClient, RegistryError, VersionSpec};
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
    /// The lake table whose columns the subject's versions add (`events` for the raw
    /// subject; see `GET /api/ui/schemas/{subject}/columns`), if any.
    feeds_table: Option<&'static str>,
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
        feeds_table: (subject == value_subject(RAW_TOPIC)).then(|| TableKind::Events.name()),
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

/// `GET /api/ui/schemas/{subject}/columns`: what each version of the raw subject adds to
/// `events` and which struct columns it grows.
#[derive(Debug, Serialize)]
pub(crate) struct ColumnsView {
    subject: String,
    /// The table the subject's records land in.
    table: &'static str,
    /// Every live version, oldest first.
    versions: Vec<VersionColumns>,
}

/// The `events` columns one version adds and grows.
#[derive(Debug, Serialize)]
struct VersionColumns {
    version: u32,
    id: u32,
    /// Columns for fields no earlier version has (empty: none); empty too when `error`.
    columns_added: Vec<ColumnView>,
    /// Struct columns it gives new children (fields added inside a record), with `was`,
    /// their type before it.
    columns_widened: Vec<ColumnView>,
    /// Why the version's records cannot land (they become dead letters), if they cannot.
    error: Option<String>,
}

/// A column a version adds or grows: its name, the Avro path it holds and its Delta type
/// (and, grown, the type it had before).
#[derive(Debug, Serialize)]
struct ColumnView {
    column: String,
    path: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    was: Option<String>,
}

impl ColumnView {
    fn new(column: PlannedColumn, was: Option<String>) -> ColumnView {
        ColumnView {
            column: column.field.name().clone(),
            data_type: delta_type_name(column.field.data_type()),
            path: column.path,
            was,
        }
    }
}

/// `GET /api/ui/schemas/{subject}/columns`
pub(crate) async fn columns(
    State(state): State<Arc<UiState>>,
    Path(subject): Path<String>,
) -> Result<Json<ColumnsView>, UiError> {
    let raw = value_subject(RAW_TOPIC);
    if subject != raw {
        return Err(UiError::NotFound(format!(
            "no column view for subject {subject:?}: this page shows how {raw}'s versions land \
             as columns of events"
        )));
    }
    let registry = &state.sources.registry;
    let numbers = registry.versions(&subject).await?;
    let fetched = futures::future::try_join_all(
        numbers
            .iter()
            .map(|number| subject_version(registry, &subject, *number)),
    )
    .await?;
    // Versions whose schema cannot be used are no part of the processor's plan either.
    let history: Vec<SubjectVersion> = fetched
        .iter()
        .filter_map(|(_, _, schema)| schema.as_ref().ok().cloned())
        .collect();
    let mut planned: HashMap<u32, _> = columns_by_version(&history)
        .into_iter()
        .map(|v| (v.version, v.changes))
        .collect();
    let versions = fetched
        .into_iter()
        .map(|(version, id, schema)| {
            let changes = schema.and_then(|_| {
                planned
                    .remove(&version)
                    .unwrap_or_else(|| Err(format!("version {version} was not planned")))
            });
            match changes {
                Ok(changes) => VersionColumns {
                    version,
                    id,
                    columns_added: changes
                        .added
                        .into_iter()
                        .map(|c| ColumnView::new(c, None))
                        .collect(),
                    columns_widened: changes
                        .widened
                        .into_iter()
                        .map(|(c, was)| ColumnView::new(c, Some(delta_type_name(&was))))
                        .collect(),
                    error: None,
                },
                Err(reason) => VersionColumns {
                    version,
                    id,
                    columns_added: Vec::new(),
                    columns_widened: Vec::new(),
                    error: Some(reason),
                },
            }
        })
        .collect();
    Ok(Json(ColumnsView {
        subject,
        table: TableKind::Events.name(),
        versions,
    }))
}

/// Version `number` of `subject`: its number, id and parsed schema, or why the schema
/// cannot be used (not Avro, references, does not parse).
async fn subject_version(
    registry: &RegistryClient,
    subject: &str,
    number: u32,
) -> Result<(u32, u32, Result<SubjectVersion, String>), UiError> {
    let registered = registry
        .version(subject, VersionSpec::Number(number))
        .await?;
    let schema = match registry.schema_by_id(registered.id).await {
        Ok(schema) => Ok(SubjectVersion {
            version: registered.version,
            id: registered.id,
            schema,
        }),
        Err(RegistryError::InvalidSchema(reason)) => Err(reason),
        Err(other) => return Err(other.into()),
    };
    Ok((registered.version, registered.id, schema))
}
