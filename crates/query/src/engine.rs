//! The query engine: one DataFusion session over the lake's tables, read-only.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickstream_lake::Lake;
use deltalake::arrow::array::{Array, RecordBatch};
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::SendableRecordBatchStream;
use deltalake::datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use deltalake::datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use deltalake::datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use deltalake::datafusion::physical_plan::execute_stream;
use deltalake::datafusion::sql::parser::Statement as DfStatement;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::cancel::{CancelFlag, cancellable};
use crate::catalog::LakeSchema;
use crate::error::ResultLimit;
use crate::output::QueryOutput;
use crate::runtime::QueryRuntime;
use crate::shared_subplans::evaluate_repeated_once;
use crate::{QueryConfig, QueryError, readonly};

/// DataFusion's default catalog and schema, where the lake tables are registered.
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

/// Runs read-only SQL over the lake's tables, on threads of its own (`runtime.rs`), within
/// the limits of a [`QueryConfig`]. Cheap to clone; clones share one session, one set of
/// threads and one set of statement slots.
#[derive(Clone, Debug)]
pub struct QueryEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: Arc<Session>,
    /// Owned here only, so that it is dropped outside its own threads.
    runtime: QueryRuntime,
    /// Kept by the caller's runtime (see `runtime.rs`).
    timeout: Option<Duration>,
}

/// The DataFusion session over the lake tables, shared by the tasks on the query threads.
struct Session {
    ctx: SessionContext,
    schema: Arc<LakeSchema>,
    options: SQLOptions,
    limits: Limits,
    /// One permit per statement allowed to run at once; `None`: no bound.
    slots: Option<Semaphore>,
}

/// What one statement may use; `None`: no bound.
#[derive(Debug, Clone, Copy)]
struct Limits {
    memory_bytes: Option<u64>,
    result_rows: Option<u64>,
    result_bytes: Option<u64>,
}

impl Limits {
    fn of(config: &QueryConfig) -> Self {
        let nonzero = |n: u64| (n > 0).then_some(n);
        Self {
            memory_bytes: nonzero(config.memory_limit_bytes),
            result_rows: nonzero(config.max_result_rows),
            result_bytes: nonzero(config.max_result_bytes),
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tables", &self.schema)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Opens every lake table (`events`, `invalid_events`, `dead_letters`, `duplicates`,
    /// `unique_users_daily`, and the Segment stream's `segment_*` and `identities`) and
    /// registers it under its name, with no limits
    /// ([`QueryConfig::unlimited`]): for the pipeline's own queries, whose answers must be
    /// complete.
    pub async fn new(lake: Lake) -> Result<Self, QueryError> {
        Self::with_config(lake, &QueryConfig::unlimited()).await
    }

    /// [`QueryEngine::new`] within the limits of `config`: for statements from users.
    pub async fn with_config(lake: Lake, config: &QueryConfig) -> Result<Self, QueryError> {
        let schema = Arc::new(LakeSchema::open(&lake).await?);
        let threads = config.thread_count();
        let session_config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            // More partitions than threads only adds buffers.
            .with_target_partitions(threads);
        let limits = Limits::of(config);
        let mut ctx = match limits.memory_bytes {
            // Spilling would trade the memory limit for the log's disk.
            Some(_) => {
                let runtime = RuntimeEnvBuilder::new()
                    .with_disk_manager_builder(
                        DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                    )
                    .build_arc()
                    .map_err(|e| QueryError::from_datafusion(&e))?;
                SessionContext::new_with_config_rt(session_config, runtime)
            }
            None => SessionContext::new_with_config(session_config),
        };
        // JSON text columns (Segment's `properties`, `traits`, `context_json`, the raw JSON
        // of invalid events) are read with `json_get_str(properties, 'plan')`,
        // `json_get_float(...)`, `properties ->> 'plan'` and the like.
        datafusion_functions_json::register_all(&mut ctx)
            .map_err(|e| QueryError::from_datafusion(&e))?;
        let catalog = ctx.catalog(CATALOG).ok_or_else(|| {
            QueryError::Execution(format!("the session has no {CATALOG:?} catalog"))
        })?;
        catalog
            .register_schema(SCHEMA, schema.clone())
            .map_err(|e| QueryError::from_datafusion(&e))?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let runtime = QueryRuntime::start(threads, config.nice)?;
        tracing::info!(versions = ?schema.versions(), threads, ?limits, "query engine ready");
        let slots = (config.max_concurrent_statements > 0)
            .then(|| Semaphore::new(config.max_concurrent_statements));
        let session = Arc::new(Session {
            ctx,
            schema,
            options,
            limits,
            slots,
        });
        Ok(Self {
            inner: Arc::new(Inner {
                session,
                runtime,
                timeout: config.statement_timeout(),
            }),
        })
    }

    /// Runs one read-only statement. The tables it names are refreshed to their latest Delta
    /// version before planning (one listing of the log when nothing changed), so a query
    /// sees commits made a moment before it. A statement beyond the limits of
    /// [`StatementLimit`](crate::StatementLimit) is refused with [`QueryError::TooComplex`];
    /// one past the engine's time, memory or result limits is stopped there
    /// ([`QueryError::is_limit`]).
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        self.sql_then(sql, Ok).await
    }

    /// [`QueryEngine::sql`], then `finish` over the output, also on the query threads and
    /// within the statement timeout: rendering a large result is work too, and it should
    /// not run on the caller's (ingest's) threads.
    pub async fn sql_then<T, F>(&self, sql: &str, finish: F) -> Result<T, QueryError>
    where
        F: FnOnce(QueryOutput) -> Result<T, QueryError> + Send + 'static,
        T: Send + 'static,
    {
        let session = self.inner.session.clone();
        let sql = sql.to_owned();
        let cancel = CancelFlag::default();
        let flag = cancel.clone();
        let task = async move { finish(session.sql(&sql, &flag).await?) };
        let result = (self.inner.runtime)
            .run(task.in_current_span(), self.inner.timeout, cancel)
            .await;
        if let Err(e) = &result
            && e.is_limit()
        {
            tracing::info!(reason = %e, "statement stopped at a limit");
        }
        result
    }

    /// The Delta version each table was last loaded at, by table name.
    pub fn table_versions(&self) -> BTreeMap<&'static str, i64> {
        self.inner.session.schema.versions()
    }
}

impl Session {
    /// [`QueryEngine::sql`], on the current thread: wait for a slot, parse, check, plan and
    /// run.
    async fn sql(&self, sql: &str, cancel: &CancelFlag) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let _slot = match &self.slots {
            Some(slots) => Some(
                slots
                    .acquire()
                    .await
                    .map_err(|_| QueryError::Execution("the query engine is closed".into()))?,
            ),
            None => None,
        };
        let statement = readonly::parse_read_only(sql)?;
        self.refresh_referenced(&statement).await?;

        let state = self.statement_state()?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| QueryError::from_datafusion(&e))?;
        // The syntax check above should make this redundant; it is the planner's own guard.
        self.options.verify_plan(&plan).map_err(|e| {
            QueryError::Rejected(format!("only read-only queries are allowed: {e}"))
        })?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let (plan, _shared_rows) = evaluate_repeated_once(plan, &state, cancel)
            .await
            .map_err(|e| self.execution_error(&e))?;
        let batches = async {
            let physical = state.create_physical_plan(&plan).await?;
            execute_stream(cancellable(physical, cancel)?, state.task_ctx())
        }
        .await
        .map_err(|e| self.execution_error(&e))?;
        let batches = self.collect(batches).await?;
        let output = QueryOutput {
            schema,
            batches,
            elapsed: started.elapsed(),
        };
        tracing::debug!(
            rows = output.row_count(),
            elapsed_ms = output.elapsed.as_secs_f64() * 1000.0,
            "query done"
        );
        Ok(output)
    }

    /// The session's state for one statement: with a memory limit, a memory pool of its
    /// own, so a statement over the limit fails alone instead of starving the others.
    fn statement_state(&self) -> Result<SessionState, QueryError> {
        let state = self.ctx.state();
        let Some(limit) = self.limits.memory_bytes else {
            return Ok(state);
        };
        let pool = GreedyMemoryPool::new(usize::try_from(limit).unwrap_or(usize::MAX));
        // The error then names what held the memory, not only what asked last.
        let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(Arc::new(TrackConsumersPool::new(pool, top)))
            .build_arc()
            .map_err(|e| QueryError::from_datafusion(&e))?;
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build())
    }

    /// Reads the result, stopping with [`QueryError::ResultTooLarge`] at the first batch
    /// past a result limit (dropping the stream stops the statement).
    async fn collect(
        &self,
        mut stream: SendableRecordBatchStream,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let (mut rows, mut bytes) = (0_u64, 0_u64);
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| self.execution_error(&e))?;
            rows += batch.num_rows() as u64;
            bytes += batch_bytes(&batch);
            if let Some(max) = self.limits.result_rows
                && rows > max
            {
                return Err(QueryError::ResultTooLarge {
                    limit: ResultLimit::Rows(max),
                });
            }
            if let Some(max) = self.limits.result_bytes
                && bytes > max
            {
                return Err(QueryError::ResultTooLarge {
                    limit: ResultLimit::Bytes(max),
                });
            }
            batches.push(batch);
        }
        Ok(batches)
    }

    fn execution_error(&self, error: &DataFusionError) -> QueryError {
        let classified = QueryError::from_execution(error, self.limits.memory_bytes);
        if !classified.is_client_error() {
            tracing::warn!(error = %error, "query execution failed");
        }
        classified
    }

    /// Refreshes the lake tables `statement` names; other names are left to the planner.
    async fn refresh_referenced(&self, statement: &DfStatement) -> Result<(), QueryError> {
        let references = self
            .ctx
            .state()
            .resolve_table_references(statement)
            .map_err(|e| QueryError::from_datafusion(&e))?;
        let names: Vec<String> = references
            .into_iter()
            .map(|reference| reference.resolve(CATALOG, SCHEMA))
            .filter(|resolved| &*resolved.catalog == CATALOG && &*resolved.schema == SCHEMA)
            .map(|resolved| resolved.table.to_string())
            .collect();
        self.schema.refresh(names.iter().map(String::as_str)).await
    }
}

/// The bytes of `batch`'s own rows: a batch sliced out of a larger one (by `LIMIT`) counts
/// only its slice.
fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size()) as u64
        })
        .sum()
}
