//! A common table expression used more than once is evaluated once.
//!
//! DataFusion plans a CTE once per reference: `WITH c AS (… GROUP BY …) SELECT … FROM c
//! UNION ALL SELECT … FROM c` scans and aggregates its tables once for each `FROM c`
//! (apache/datafusion#8777), where DuckDB materializes it. Before physical planning, a
//! statement's logical plan is searched for an aliased subplan that appears at least twice,
//! does real work (an aggregate, a distinct, a join or a window) and holds nothing volatile
//! or correlated; it is run once into an in-memory table charged to the statement's memory
//! pool, and every appearance is replaced by a scan of that table under the same alias.
//! The answer is the same: the subplan is deterministic, so every copy would have produced
//! the same rows. `EXPLAIN` is left alone: it shows DataFusion's own plan, which repeats the
//! CTE.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::datafusion::catalog::MemTable;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use deltalake::datafusion::datasource::provider_as_source;
use deltalake::datafusion::error::Result;
use deltalake::datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use deltalake::datafusion::execution::session_state::SessionState;
use deltalake::datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use deltalake::datafusion::physical_plan::collect_partitioned;

use crate::cancel::{CancelFlag, cancellable};

/// How many shared subplans one statement may have materialized.
const MAX_SHARED: usize = 16;

/// `plan` with each repeated, deterministic, working CTE evaluated once, and the memory
/// reservation holding their rows (keep it until the statement is done).
pub(crate) async fn evaluate_repeated_once(
    mut plan: LogicalPlan,
    state: &SessionState,
    cancel: &CancelFlag,
) -> Result<(LogicalPlan, MemoryReservation)> {
    let reservation =
        MemoryConsumer::new("repeated CTEs").register(&state.runtime_env().memory_pool);
    // EXPLAIN shows DataFusion's own plan and runs nothing ahead of it.
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return Ok((plan, reservation));
    }
    for _ in 0..MAX_SHARED {
        let Some(shared) = first_repeated(&plan)? else {
            break;
        };
        let LogicalPlan::SubqueryAlias(alias) = &shared else {
            break;
        };
        let physical = state.create_physical_plan(&alias.input).await?;
        let mut partitions =
            collect_partitioned(cancellable(physical, cancel)?, state.task_ctx()).await?;
        let bytes: usize = partitions
            .iter()
            .flatten()
            .map(|batch| batch.get_array_memory_size())
            .sum();
        reservation.try_grow(bytes)?;
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        // The schema the rest of the plan was built against.
        let schema = Arc::new(alias.input.schema().as_arrow().clone());
        let Ok(table) = MemTable::try_new(schema, partitions) else {
            // Rows whose types the plan did not promise (it never should): plan as usual.
            tracing::debug!(alias = %alias.alias, "a repeated CTE is evaluated per reference");
            reservation.free();
            break;
        };
        let replacement = LogicalPlanBuilder::scan(
            alias.alias.clone(),
            provider_as_source(Arc::new(table)),
            None,
        )?
        .alias(alias.alias.clone())?
        .build()?;
        plan = plan
            .transform_down_with_subqueries(|node| {
                Ok(if node == shared {
                    Transformed::new(replacement.clone(), true, TreeNodeRecursion::Jump)
                } else {
                    Transformed::no(node)
                })
            })?
            .data;
    }
    Ok((plan, reservation))
}

/// The first aliased subplan (in plan order) that appears more than once and is worth
/// evaluating once.
fn first_repeated(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    // A recursive CTE's parts read a work table that only exists inside its loop.
    if plan.exists(|node| Ok(matches!(node, LogicalPlan::RecursiveQuery(_))))? {
        return Ok(None);
    }
    // Cloning a node is cheap: its inputs are shared.
    let mut seen: HashMap<LogicalPlan, usize> = HashMap::new();
    let mut order: Vec<LogicalPlan> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if matches!(node, LogicalPlan::SubqueryAlias(_)) {
            let count = seen.entry(node.clone()).or_insert(0);
            if *count == 0 {
                order.push(node.clone());
            }
            *count += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for node in order {
        let LogicalPlan::SubqueryAlias(alias) = &node else {
            continue;
        };
        if seen[&node] > 1 && worth_sharing(&alias.input)? {
            return Ok(Some(node));
        }
    }
    Ok(None)
}

/// Whether `body` does work worth doing once (an aggregate, a distinct, a join or a
/// window: a bare scan is better read again than held in memory) and gives the same rows
/// every time (nothing volatile, nothing correlated with an outer query).
fn worth_sharing(body: &LogicalPlan) -> Result<bool> {
    let (mut works, mut deterministic) = (false, true);
    body.apply_with_subqueries(|node| {
        works |= matches!(
            node,
            LogicalPlan::Aggregate(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Window(_)
        );
        if node
            .expressions()
            .iter()
            .any(|e| e.is_volatile() || e.contains_outer())
        {
            deterministic = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(works && deterministic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::util::pretty::pretty_format_batches;
    use deltalake::datafusion::prelude::SessionContext;

    /// A session with `events(customer_id, type)`: 6 customers' 40 rows.
    async fn session() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE events AS SELECT value % 6 AS customer_id, \
             CASE value % 4 WHEN 0 THEN 'page_view' WHEN 1 THEN 'add_to_cart' \
             WHEN 2 THEN 'placed_order' ELSE 'search' END AS type FROM range(40)",
        )
        .await
        .expect("create")
        .collect()
        .await
        .expect("created");
        ctx
    }

    /// Runs `sql` as the engine does and as DataFusion alone does; returns both answers
    /// and how many scans of `events` the engine's plan kept.
    async fn both_ways(sql: &str) -> (String, String, usize) {
        let ctx = session().await;
        let state = ctx.state();
        let plan = state.create_logical_plan(sql).await.expect("plan");
        let (shared, _rows) = evaluate_repeated_once(plan, &state, &CancelFlag::default())
            .await
            .expect("shared");
        let mut scans = 0;
        shared
            .apply_with_subqueries(|node| {
                if let LogicalPlan::TableScan(scan) = node {
                    scans += usize::from(scan.table_name.table() == "events");
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .expect("walk");
        let ours = ctx
            .execute_logical_plan(shared)
            .await
            .expect("runs")
            .collect()
            .await
            .expect("rows");
        let theirs = ctx
            .sql(sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("rows");
        let show = |batches: &[_]| pretty_format_batches(batches).expect("format").to_string();
        (show(&ours), show(&theirs), scans)
    }

    #[tokio::test]
    async fn an_aggregating_cte_used_three_times_is_scanned_once_with_the_same_answer() {
        let (ours, theirs, scans) = both_ways(
            "WITH per_customer AS (SELECT customer_id, \
                 bool_or(type = 'page_view') AS viewed, bool_or(type = 'add_to_cart') AS added \
               FROM events GROUP BY customer_id) \
             SELECT 1 AS step, count(*) FILTER (WHERE viewed) AS n FROM per_customer \
             UNION ALL SELECT 2, count(*) FILTER (WHERE viewed AND added) FROM per_customer \
             UNION ALL SELECT 3, count(*) FROM per_customer ORDER BY step",
        )
        .await;
        assert_eq!(ours, theirs);
        assert_eq!(
            scans, 0,
            "the CTE's one evaluation happened before the plan ran"
        );
        assert!(ours.contains("| 3    | 6 |"), "{ours}");
    }

    #[tokio::test]
    async fn a_cte_used_once_a_bare_scan_or_a_volatile_one_is_left_as_planned() {
        for (sql, expected_scans) in [
            // Used once.
            (
                "WITH c AS (SELECT type, count(*) AS n FROM events GROUP BY type) \
                 SELECT * FROM c ORDER BY type",
                1,
            ),
            // Used twice but only reads: reading again is cheaper than holding it.
            (
                "WITH c AS (SELECT type FROM events WHERE customer_id = 1) \
                 SELECT count(*) FROM c UNION ALL SELECT count(*) FROM c",
                2,
            ),
        ] {
            let (ours, theirs, scans) = both_ways(sql).await;
            assert_eq!(ours, theirs, "{sql}");
            assert_eq!(scans, expected_scans, "{sql}");
        }
        let ctx = session().await;
        let state = ctx.state();
        let volatile = "WITH c AS (SELECT type, count(*) + random() AS n FROM events GROUP BY type) \
                        SELECT count(*) FROM c UNION ALL SELECT count(*) FROM c";
        let plan = state.create_logical_plan(volatile).await.expect("plan");
        let (shared, _rows) = evaluate_repeated_once(plan.clone(), &state, &CancelFlag::default())
            .await
            .expect("shared");
        assert_eq!(shared, plan, "a volatile CTE is evaluated per reference");

        let explain = "EXPLAIN WITH c AS (SELECT type, count(*) AS n FROM events GROUP BY type) \
                       SELECT count(*) FROM c UNION ALL SELECT count(*) FROM c";
        let plan = state.create_logical_plan(explain).await.expect("plan");
        let (shared, _rows) = evaluate_repeated_once(plan.clone(), &state, &CancelFlag::default())
            .await
            .expect("shared");
        assert_eq!(shared, plan, "EXPLAIN runs nothing");
    }
}
