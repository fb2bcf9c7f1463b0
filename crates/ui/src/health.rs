//! Whether the parts the pipeline depends on answer: the log, the registry, the lake.
//! Used by `/health/ready` and by the overview page.

use std::time::{Duration, Instant};

use clickstream_lake::{Lake, TableKind};
use clickstream_log::EventLog;
use clickstream_registry::RegistryClient;
use serde::Serialize;

/// How long each check may take before the part counts as unavailable.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(2);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The part answered in time.
    pub ok: bool,
    /// What it answered, or why it did not.
    pub detail: String,
    /// How long the check took.
    pub elapsed_ms: u64,
}

/// The checks of the three parts readiness depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The log lists its topics.
    pub log: Check,
    /// The registry lists its subjects.
    pub registry: Check,
    /// The lake's `events` table loads.
    pub lake: Check,
}

impl Readiness {
    /// Every part answered.
    pub fn all_ok(&self) -> bool {
        self.log.ok && self.registry.ok && self.lake.ok
    }
}

/// Asks the three parts at once, each within [`CHECK_DEADLINE`].
pub async fn check(log: &dyn EventLog, registry: &RegistryClient, lake: &Lake) -> Readiness {
    check_parts(Some(log), registry, Some(lake)).await
}

/// [`check`] for a process that may not use the log or the lake (a registry alone): a
/// part it does not use counts as answering.
pub async fn check_parts(
    log: Option<&dyn EventLog>,
    registry: &RegistryClient,
    lake: Option<&Lake>,
) -> Readiness {
    let log_check = timed(async {
        let Some(log) = log else {
            return Ok("not used by this process".to_string());
        };
        log.topics()
            .await
            .map(|topics| format!("{} backend, {} topics", log.backend(), topics.len()))
            .map_err(|e| e.to_string())
    });
    let registry_check = timed(async {
        registry
            .subjects()
            .await
            .map(|subjects| format!("{} subjects at {}", subjects.len(), registry.base_url()))
            .map_err(|e| e.to_string())
    });
    let lake_check = timed(async {
        let Some(lake) = lake else {
            return Ok("not used by this process".to_string());
        };
        lake.table(TableKind::Events)
            .await
            .map(|table| format!("events at version {} in {}", table.version(), lake.root()))
            .map_err(|e| e.to_string())
    });
    let (log, registry, lake) = tokio::join!(log_check, registry_check, lake_check);
    Readiness {
        log,
        registry,
        lake,
    }
}

async fn timed(work: impl Future<Output = Result<String, String>>) -> Check {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_DEADLINE, work).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(Ok(detail)) => Check {
            ok: true,
            detail,
            elapsed_ms,
        },
        Ok(Err(error)) => Check {
            ok: false,
            detail: error,
            elapsed_ms,
        },
        Err(_) => Check {
            ok: false,
            detail: format!("no answer within {} s", CHECK_DEADLINE.as_secs()),
            elapsed_ms,
        },
    }
}
