//! Stopping a statement that was given up on (timed out, or its client went away).
//!
//! Aborting the statement's task takes effect only when the task yields, and DataFusion's
//! operators may compute for a long time without yielding: a nested loop join probes every
//! batch of one side against the whole other side in one poll, and goes on to the next batch
//! without returning when nothing matched, so a cross join can run to its end inside a
//! single poll. Every leaf of the plan (where batches enter) is therefore wrapped in
//! [`CancellableExec`], which fails the next pull once the statement's [`CancelFlag`] is
//! set: the statement then ends after at most the work of one input batch.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use deltalake::datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use deltalake::datafusion::error::{DataFusionError, Result};
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use futures::StreamExt;

/// Set once a statement is given up on; its leaves then stop producing batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `plan` with every leaf wrapped in a [`CancellableExec`] watching `flag`.
pub(crate) fn cancellable(
    plan: Arc<dyn ExecutionPlan>,
    flag: &CancelFlag,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.children().is_empty() {
            let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CancellableExec::new(node, flag));
            Ok(Transformed::yes(wrapped))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|transformed| transformed.data)
}

/// Passes its input's batches through until the statement is cancelled, then fails.
#[derive(Debug)]
struct CancellableExec {
    input: Arc<dyn ExecutionPlan>,
    flag: CancelFlag,
    properties: Arc<PlanProperties>,
}

impl CancellableExec {
    fn new(input: Arc<dyn ExecutionPlan>, flag: &CancelFlag) -> Self {
        let properties = input.properties().clone();
        Self {
            input,
            flag: flag.clone(),
            properties,
        }
    }
}

impl DisplayAs for CancellableExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancellableExec")
    }
}

impl ExecutionPlan for CancellableExec {
    fn name(&self) -> &str {
        "CancellableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input, &self.flag))),
            _ => Err(DataFusionError::Internal(
                "CancellableExec has exactly one child".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let flag = self.flag.clone();
        let stream = futures::stream::poll_fn(move |cx| {
            if flag.is_cancelled() {
                return Poll::Ready(Some(Err(DataFusionError::Execution(
                    "statement cancelled".into(),
                ))));
            }
            input.poll_next_unpin(cx)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::datafusion::physical_plan::displayable;
    use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

    #[tokio::test]
    async fn a_cancelled_statement_fails_at_its_next_batch() {
        let config = SessionConfig::new().with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        let frame = ctx
            .sql("SELECT a.value FROM range(3) a, range(1000000) b")
            .await
            .expect("plans");
        let plan = frame.create_physical_plan().await.expect("physical plan");
        let flag = CancelFlag::default();
        let plan = cancellable(plan, &flag).expect("wrapped");
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        assert_eq!(shown.matches("CancellableExec").count(), 2, "{shown}");

        let mut stream = deltalake::datafusion::physical_plan::execute_stream(plan, ctx.task_ctx())
            .expect("runs");
        let first = stream
            .next()
            .await
            .expect("a batch")
            .expect("not cancelled");
        assert!(first.num_rows() > 0);
        flag.cancel();
        // What the join builds from the batch of `b` it holds still comes out; the next
        // batch it pulls from a leaf fails, long before the 3 million rows of the whole join.
        let mut rows_after = 0;
        let error = loop {
            match stream
                .next()
                .await
                .expect("the stream fails before its end")
            {
                Ok(batch) => rows_after += batch.num_rows(),
                Err(e) => break e,
            }
        };
        assert!(error.to_string().contains("statement cancelled"), "{error}");
        assert!(rows_after < 10 * 8192, "{rows_after} rows after the cancel");
    }
}
