//! Readiness, per role: what each part this process runs needs in order to do its job,
//! and which part is degraded when something it depends on is down.
//!
//! - **ingest** is unavailable when the log does not answer or refuses new events (its
//!   disk reserve is reached); a registry that does not answer only degrades it (events
//!   are validated with the schema in force, named by id), as does a raw subject whose
//!   latest version cannot be used (the previous one stays in force) and a lake that does
//!   not answer (only `/api/sql` on the same port needs it). The body names the raw schema
//!   in force under `raw_schema`.
//! - **processor** is what its heartbeat says ([`ProcessorHealth`]): unavailable while
//!   starting, stopped or stuck (not polling, or a batch not committed for a minute),
//!   degraded while it waits out a failure; a registry or lake that does not answer
//!   degrades it too.
//! - **registry** (served here) is unavailable when it does not answer.
//! - **ui** is degraded when the log or the lake does not answer.
//!
//! `/health/ready` is 200 when no role is unavailable (degraded ones are named in the
//! body), 503 otherwise; `/health/ready/{role}` answers for one role, so a load balancer
//! can route ingest traffic by ingest's readiness alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clickstream_lake::Lake;
use clickstream_log::EventLog;
use clickstream_process::{ProcessorHealth, Stream, Verdict};
use clickstream_registry::RegistryClient;
use clickstream_ui::health::{Check, Readiness};
use serde::Serialize;
use serde_json::json;

use crate::pipeline::Roles;
use crate::schema_follow::{RawSchema, RawSchemaStatus};

/// What readiness looks at.
pub struct HealthState {
    /// The roles this process runs.
    pub roles: Roles,
    /// The log (every role but the registry alone).
    pub log: Option<Arc<dyn EventLog>>,
    /// The registry, ours or external.
    pub registry: RegistryClient,
    /// The lake (every role but the registry alone).
    pub lake: Option<Lake>,
    /// The heartbeat of each stream's processor, when this process runs them.
    pub processors: Vec<(Stream, Arc<ProcessorHealth>)>,
    /// The raw schema ingest validates with, when this process runs ingest.
    pub raw_schema: Option<Arc<RawSchema>>,
}

/// One role's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleStatus {
    /// `ready`, `degraded` or `unavailable`.
    pub status: Verdict,
    /// What is wrong, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RoleStatus {
    fn ready() -> Self {
        RoleStatus {
            status: Verdict::Ready,
            reason: None,
        }
    }

    fn unavailable(reason: impl Into<String>) -> Self {
        RoleStatus {
            status: Verdict::Unavailable,
            reason: Some(reason.into()),
        }
    }

    /// Degrades a ready role for `reason` (an unavailable one stays so).
    fn degrade(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if self.status == Verdict::Ready {
            self.status = Verdict::Degraded;
        }
        self.reason = Some(match self.reason.take() {
            Some(first) => format!("{first}; {reason}"),
            None => reason,
        });
    }
}

/// The checks of the parts and the verdict of every role.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// By role name.
    pub roles: BTreeMap<&'static str, RoleStatus>,
    /// The parts' checks.
    pub readiness: Readiness,
    /// Why the log refuses new events, if it does.
    pub intake: Option<String>,
    /// The raw schema ingest validates with.
    pub raw_schema: Option<RawSchemaStatus>,
}

impl HealthState {
    /// Checks the parts (each within a deadline, at once) and judges each role.
    pub async fn report(&self) -> Report {
        let (readiness, intake) = tokio::join!(
            clickstream_ui::health::check_parts(
                self.log.as_deref(),
                &self.registry,
                self.lake.as_ref()
            ),
            self.intake(),
        );
        let raw_schema = self.raw_schema.as_ref().map(|r| r.status());
        let mut roles = BTreeMap::new();
        if self.roles.registry {
            roles.insert("registry", registry(&readiness));
        }
        if self.roles.ingest {
            roles.insert(
                "ingest",
                ingest(&readiness, intake.as_deref(), raw_schema.as_ref()),
            );
        }
        if self.roles.processor {
            for (stream, health) in &self.processors {
                let role = match stream {
                    Stream::Clickstream => "processor",
                    Stream::Segment => "segment_processor",
                };
                roles.insert(role, processor(&readiness, Some(health.report())));
            }
        }
        if self.roles.ui {
            roles.insert("ui", ui(&readiness));
        }
        Report {
            roles,
            readiness,
            intake,
            raw_schema,
        }
    }

    async fn intake(&self) -> Option<String> {
        let log = self.log.as_ref()?;
        let check = tokio::time::timeout(
            clickstream_ui::health::CHECK_DEADLINE,
            log.accepts_new_events(),
        )
        .await;
        match check {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("the log did not say in time whether it accepts events".into()),
        }
    }
}

fn failed(check: &Check) -> Option<String> {
    (!check.ok).then(|| check.detail.clone())
}

fn registry(readiness: &Readiness) -> RoleStatus {
    match failed(&readiness.registry) {
        Some(why) => RoleStatus::unavailable(format!("the registry does not answer: {why}")),
        None => RoleStatus::ready(),
    }
}

fn ingest(
    readiness: &Readiness,
    intake: Option<&str>,
    raw_schema: Option<&RawSchemaStatus>,
) -> RoleStatus {
    if let Some(why) = failed(&readiness.log) {
        return RoleStatus::unavailable(format!("the log does not answer: {why}"));
    }
    if let Some(why) = intake {
        return RoleStatus::unavailable(format!("the log refuses new events: {why}"));
    }
    let mut status = RoleStatus::ready();
    let in_force = raw_schema.map_or_else(
        || "the schema in force".to_owned(),
        |s| {
            format!(
                "schema {} (version {} of {})",
                s.schema_id, s.version, s.subject
            )
        },
    );
    if let Some(why) = failed(&readiness.registry) {
        status.degrade(format!(
            "the registry does not answer ({why}); validating with {in_force}"
        ));
    }
    if let Some(problem) = raw_schema.and_then(|s| s.problem.as_deref()) {
        status.degrade(format!(
            "following the registry failed ({problem}); validating with {in_force}"
        ));
    }
    if let Some(why) = failed(&readiness.lake) {
        status.degrade(format!("the lake does not answer ({why}); /api/sql fails"));
    }
    status
}

fn processor(
    readiness: &Readiness,
    heartbeat: Option<clickstream_process::HealthReport>,
) -> RoleStatus {
    let mut status = match heartbeat {
        None => RoleStatus::unavailable("starting"),
        Some(report) => RoleStatus {
            status: report.status,
            reason: report.reason,
        },
    };
    if let Some(why) = failed(&readiness.registry) {
        status.degrade(format!(
            "the registry does not answer ({why}); decoding with the schemas it has"
        ));
    }
    if let Some(why) = failed(&readiness.lake) {
        status.degrade(format!("the lake does not answer ({why})"));
    }
    status
}

fn ui(readiness: &Readiness) -> RoleStatus {
    let mut status = RoleStatus::ready();
    for (part, check) in [("log", &readiness.log), ("lake", &readiness.lake)] {
        if let Some(why) = failed(check) {
            status.degrade(format!("the {part} does not answer ({why})"));
        }
    }
    status
}

/// `GET /health/ready`: every role.
pub async fn ready(State(health): State<Arc<HealthState>>) -> Response {
    let report = health.report().await;
    answer(&report, |_| true)
}

/// `GET /health/ready/{role}`: one role.
pub async fn ready_role(
    State(health): State<Arc<HealthState>>,
    Path(role): Path<String>,
) -> Response {
    let report = health.report().await;
    if !report.roles.contains_key(role.as_str()) {
        let body = json!({
            "status": "error",
            "message": format!(
                "this process runs no role {role:?}; it runs: {}",
                report.roles.keys().copied().collect::<Vec<_>>().join(", ")
            ),
        });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    answer(&report, |name| name == role)
}

fn answer(report: &Report, wanted: impl Fn(&str) -> bool) -> Response {
    let roles: BTreeMap<&str, &RoleStatus> = report
        .roles
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, status)| (*name, status))
        .collect();
    let worst = roles
        .values()
        .map(|r| r.status)
        .max_by_key(|s| match s {
            Verdict::Ready => 0,
            Verdict::Degraded => 1,
            Verdict::Unavailable => 2,
        })
        .unwrap_or(Verdict::Ready);
    let (code, status) = match worst {
        Verdict::Ready => (StatusCode::OK, "ready"),
        Verdict::Degraded => (StatusCode::OK, "degraded"),
        Verdict::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    };
    let verdict = |check: &Check| if check.ok { "ok" } else { "unavailable" };
    let r = &report.readiness;
    let body = json!({
        "status": status,
        "roles": roles,
        "checks": {
            "log": verdict(&r.log),
            "registry": verdict(&r.registry),
            "lake": verdict(&r.lake),
        },
        "details": r,
        "raw_schema": report.raw_schema,
    });
    (code, axum::Json(body)).into_response()
}
