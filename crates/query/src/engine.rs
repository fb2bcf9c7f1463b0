//! The query engine: one DataFusion session over the lake's tables, read-only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use clickstream_lake::Lake;
use deltalake::datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use deltalake::datafusion::sql::parser::Statement as DfStatement;

use tracing::Instrument;

use crate::catalog::LakeSchema;
use crate::output::QueryOutput;
use crate::runtime::QueryRuntime;
use crate::{QueryError, readonly};

/// DataFusion's default catalog and schema, where the lake tables are registered.
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

/// Runs read-only SQL over the lake's tables, on threads of its own (`runtime.rs`). Cheap to
/// clone; clones share one session and one set of threads.
#[derive(Clone, Debug)]
pub struct QueryEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: Arc<Session>,
    /// Owned here only, so that it is dropped outside its own threads.
    runtime: QueryRuntime,
}

/// The DataFusion session over the lake tables, shared by the tasks on the query threads.
struct Session {
    ctx: SessionContext,
    schema: Arc<LakeSchema>,
    options: SQLOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tables", &self.schema)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Opens every lake table (`events`, `invalid_events`, `dead_letters`,
    /// `unique_users_daily`) and registers it under its name.
    pub async fn new(lake: Lake) -> Result<Self, QueryError> {
        let schema = Arc::new(LakeSchema::open(&lake).await?);
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA);
        let ctx = SessionContext::new_with_config(config);
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
        let runtime = QueryRuntime::start()?;
        tracing::info!(versions = ?schema.versions(), "query engine ready");
        let session = Arc::new(Session {
            ctx,
            schema,
            options,
        });
        Ok(Self {
            inner: Arc::new(Inner { session, runtime }),
        })
    }

    /// Runs one read-only statement. The tables it names are refreshed to their latest Delta
    /// version before planning (one listing of the log when nothing changed), so a query
    /// sees commits made a moment before it. A statement beyond the limits of
    /// [`StatementLimit`](crate::StatementLimit) is refused with [`QueryError::TooComplex`].
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        let session = self.inner.session.clone();
        let sql = sql.to_owned();
        let task = async move { session.sql(&sql).await };
        self.inner.runtime.run(task.in_current_span()).await
    }

    /// The Delta version each table was last loaded at, by table name.
    pub fn table_versions(&self) -> BTreeMap<&'static str, i64> {
        self.inner.session.schema.versions()
    }
}

impl Session {
    /// [`QueryEngine::sql`], on the current thread: parse, check, plan and run.
    async fn sql(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let statement = readonly::parse_read_only(sql)?;
        self.refresh_referenced(&statement).await?;

        let state = self.ctx.state();
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| QueryError::from_datafusion(&e))?;
        // The syntax check above should make this redundant; it is the planner's own guard.
        self.options.verify_plan(&plan).map_err(|e| {
            QueryError::Rejected(format!("only read-only queries are allowed: {e}"))
        })?;
        let frame = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| QueryError::from_datafusion(&e))?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| {
            let error = QueryError::from_datafusion(&e);
            if !error.is_client_error() {
                tracing::warn!(error = %e, "query execution failed");
            }
            error
        })?;
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
