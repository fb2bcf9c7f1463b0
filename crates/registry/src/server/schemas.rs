//! Handlers under `/schemas`: the schema search, schemas by global id, and the supported
//! schema types.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::extract::{ApiPath, Params};
use super::response::{ok, raw};
use crate::error::RegistryError;
use crate::model::{SchemaReference, Visibility};
use crate::store::SchemaStore;

#[derive(Debug, Serialize)]
struct SchemaResponse {
    schema: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<SchemaReference>,
}

/// Confluent's defaults of `schema.search.default.limit` and `schema.search.max.limit`: a
/// search answers at most this many schemas.
const SCHEMA_SEARCH_LIMIT: usize = 1000;

/// `GET /schemas`: `[{subject, version, id, schema[, references]}]` of the subjects starting with
/// `subjectPrefix`, by subject then version, as Confluent's `SchemasResource.getSchemas`:
/// `deleted` adds soft-deleted versions, `latestOnly` keeps each subject's highest one,
/// `offset`/`limit` page (at most 1000). Schemas here carry no rules, so a `ruleType`
/// filter finds none; `aliases` is accepted (there are no aliases).
pub(crate) async fn list(
    State(store): State<Arc<SchemaStore>>,
    params: Params,
) -> Result<Response, RegistryError> {
    params.flag("aliases")?;
    let visibility = Visibility::from_flags(params.flag("deleted")?, false);
    let prefix = params.text("subjectPrefix").unwrap_or_default();
    let mut found = store.versions_with_prefix(prefix, visibility, params.flag("latestOnly")?)?;
    if params.text("ruleType").is_some_and(|t| !t.is_empty()) {
        found.clear();
    }
    Ok(ok(&params.paginate_at_most(found, SCHEMA_SEARCH_LIMIT)?))
}

/// Ids are unsigned 32-bit numbers; anything else names no resource (as with Confluent,
/// whose router only matches integers there).
fn parse_id(text: &str) -> Result<u32, RegistryError> {
    text.parse()
        .map_err(|_| RegistryError::RouteNotFound(format!("/schemas/ids/{text}")))
}

/// `GET /schemas/ids/{id}`: `{"schema": "..."[, "references": [...]]}` (`?subject=` is
/// accepted; ids are global).
pub(crate) async fn by_id(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, RegistryError> {
    let id = parse_id(&id)?;
    let schema = store.schema_text(id)?;
    let references = store.schema_references(id)?;
    Ok(ok(&SchemaResponse { schema, references }))
}

/// `GET /schemas/ids/{id}/schema`: the schema itself, unescaped.
pub(crate) async fn raw_by_id(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, RegistryError> {
    Ok(raw(StatusCode::OK, store.schema_text(parse_id(&id)?)?))
}

/// `GET /schemas/ids/{id}/versions`: `[{subject, version}]` using the schema.
pub(crate) async fn versions_by_id(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    let visibility = Visibility::from_flags(params.flag("deleted")?, false);
    let mut usages = store.id_usages(parse_id(&id)?, visibility)?;
    if let Some(subject) = params.text("subject") {
        usages.retain(|u| u.subject == subject);
    }
    Ok(ok(&params.paginate(usages)?))
}

/// `GET /schemas/ids/{id}/subjects`: subjects using the schema.
pub(crate) async fn subjects_by_id(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> Result<Response, RegistryError> {
    let visibility = Visibility::from_flags(params.flag("deleted")?, false);
    let mut subjects: Vec<String> = store
        .id_usages(parse_id(&id)?, visibility)?
        .into_iter()
        .map(|u| u.subject)
        .collect();
    subjects.dedup();
    if let Some(subject) = params.text("subject") {
        subjects.retain(|s| s == subject);
    }
    Ok(ok(&params.paginate(subjects)?))
}

/// `GET /schemas/types`: only Avro is supported.
pub(crate) async fn types() -> Response {
    ok(&["AVRO"])
}
