//! Handlers under `/compatibility`: test a candidate schema without registering it. A
//! candidate with references is checked in its resolved form, against resolved versions.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::extract::{ApiJson, ApiPath, Params};
use super::response::ok;
use super::subjects::{Candidate, SchemaRequest};
use crate::error::RegistryError;
use crate::model::VersionSpec;
use crate::store::{CheckTarget, SchemaStore};

#[derive(Debug, Serialize)]
struct CompatibilityResponse {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: checks against that one
/// version, in the direction(s) of the subject's level.
pub(crate) async fn against_version(
    State(store): State<Arc<SchemaStore>>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let spec: VersionSpec = version.parse()?;
    let Candidate { schema, references } = request.into_candidate(&store)?;
    let problems =
        store.compatibility_problems(&subject, &schema, &references, CheckTarget::Version(spec))?;
    answer(problems, params.flag("verbose")?)
}

/// `POST /compatibility/subjects/{subject}/versions`: checks as a registration would
/// (every live version for transitive levels, else the latest; compatible when none).
pub(crate) async fn against_level(
    State(store): State<Arc<SchemaStore>>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> Result<Response, RegistryError> {
    let Candidate { schema, references } = request.into_candidate(&store)?;
    let problems =
        store.compatibility_problems(&subject, &schema, &references, CheckTarget::Level)?;
    answer(problems, params.flag("verbose")?)
}

fn answer(problems: Vec<String>, verbose: bool) -> Result<Response, RegistryError> {
    Ok(ok(&CompatibilityResponse {
        is_compatible: problems.is_empty(),
        messages: verbose.then_some(problems),
    }))
}
