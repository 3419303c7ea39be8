//! A statement's share of the query memory pool.
//!
//! Every query reserves the memory of its sorts, joins and aggregations from one pool
//! (`query_memory`, DataFusion's `FairSpillPool`). Alone, one statement could take all of
//! it and leave the others to fail; [`statement_runtime`] gives each statement a pool of
//! its own over the shared one, so that what it reserves counts against both: past its
//! `statement_memory` a sort or an aggregation spills to disk and anything that cannot
//! spill fails with 53200, while other statements still find their memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;

/// A statement's memory pool: reservations go to the shared pool, within `limit`.
#[derive(Debug)]
struct StatementPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl std::fmt::Display for StatementPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statement pool of {} bytes over {}",
            self.limit, self.shared
        )
    }
}

impl MemoryPool for StatementPool {
    fn name(&self) -> &str {
        "statement"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.shared.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let taken = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|&n| n <= self.limit)
            });
        if let Err(used) = taken {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "a statement may use {} bytes of query memory (statement_memory); {} of them \
                 are in use and {} more were asked for by {}",
                self.limit,
                used,
                additional,
                reservation.consumer().name()
            )));
        }
        if let Err(e) = self.shared.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// The runtime of one statement: `shared`'s spill space and caches, and a pool over
/// `shared`'s that lets the statement hold at most `limit` bytes.
pub fn statement_runtime(shared: &Arc<RuntimeEnv>, limit: usize) -> Result<Arc<RuntimeEnv>> {
    let pool = StatementPool {
        shared: shared.memory_pool.clone(),
        limit,
        used: AtomicUsize::new(0),
    };
    RuntimeEnvBuilder::from_runtime_env(shared)
        .with_memory_pool(Arc::new(pool))
        .build_arc()
}

/// A statement's plan, as far as its planning has come.
pub enum Planned {
    /// Straight from SQL: DataFusion analyzes and optimizes it.
    Logical(DataFrame),
    /// Analyzed already: DataFusion optimizes it.
    Analyzed(DataFrame),
    /// Analyzed and optimized already.
    Optimized(DataFrame),
    /// A physical plan kept from an earlier execution (see [`crate::reuse`]); a fresh copy
    /// of it runs in a task of the session (its id) under its configuration. Its
    /// expressions hold the functions they call, so the task is given none by name
    /// (copying the session's registries was most of the cost of running `SELECT 1`).
    Physical(Arc<dyn ExecutionPlan>, String, SessionConfig),
}

/// Where a physical plan made for a statement is kept for its next execution.
pub type PhysicalSlot = Arc<parking_lot::Mutex<Option<Arc<dyn ExecutionPlan>>>>;

impl Planned {
    /// The physical plan to run, and the statement's task context on the runtime `env`.
    /// A plan made here is also left in `keep`, if given; what runs is a fresh copy, so
    /// that the kept one holds no state of this run.
    async fn start(
        self,
        env: Arc<RuntimeEnv>,
        keep: Option<PhysicalSlot>,
    ) -> Result<(Arc<dyn ExecutionPlan>, Arc<TaskContext>)> {
        let (plan, task) = match self {
            Planned::Physical(plan, session, config) => {
                let task = TaskContext::new(
                    None,
                    session,
                    config,
                    HashMap::new(),
                    HashMap::new(),
                    HashMap::new(),
                    HashMap::new(),
                    env,
                );
                return Ok((crate::reuse::fresh_copy(&plan)?, Arc::new(task)));
            }
            Planned::Logical(df) => {
                let task = df.task_ctx();
                (df.create_physical_plan().await?, task)
            }
            Planned::Analyzed(df) => {
                let task = df.task_ctx();
                let (state, plan) = df.into_parts();
                let plan = crate::reuse::optimize(&state, plan)?;
                let physical = state.query_planner().create_physical_plan(&plan, &state);
                (physical.await?, task)
            }
            Planned::Optimized(df) => {
                let task = df.task_ctx();
                let (state, plan) = df.into_parts();
                let physical = state.query_planner().create_physical_plan(&plan, &state);
                (physical.await?, task)
            }
        };
        let task = Arc::new(task.with_runtime(env));
        match keep {
            Some(slot) => {
                let run = crate::reuse::fresh_copy(&plan)?;
                *slot.lock() = Some(plan);
                Ok((run, task))
            }
            None => Ok((plan, task)),
        }
    }
}

/// Starts a statement on the runtime `env` (a statement's, from [`statement_runtime`]).
pub async fn execute_stream(
    planned: Planned,
    env: Arc<RuntimeEnv>,
    keep: Option<PhysicalSlot>,
) -> Result<SendableRecordBatchStream> {
    let (plan, task) = planned.start(env, keep).await?;
    datafusion::physical_plan::execute_stream(plan, task)
}

/// Runs a statement to completion on the runtime `env`.
pub async fn collect(planned: Planned, env: Arc<RuntimeEnv>) -> Result<Vec<RecordBatch>> {
    let (plan, task) = planned.start(env, None).await?;
    datafusion::physical_plan::collect(plan, task).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_statement_holds_at_most_its_limit_and_gives_back_what_it_frees() {
        let shared = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(1000)))
            .build_arc()
            .unwrap();
        let one = statement_runtime(&shared, 600).unwrap();
        let two = statement_runtime(&shared, 600).unwrap();
        let a = MemoryConsumer::new("sort").register(&one.memory_pool);
        a.try_grow(500).unwrap();
        let e = a.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("statement_memory"), "{e}");
        assert_eq!(
            (one.memory_pool.reserved(), shared.memory_pool.reserved()),
            (500, 500)
        );
        // The other statement has its own limit, within what the shared pool has left.
        let b = MemoryConsumer::new("join").register(&two.memory_pool);
        b.try_grow(501).unwrap_err();
        b.try_grow(400).unwrap();
        a.shrink(300);
        assert_eq!(
            (one.memory_pool.reserved(), shared.memory_pool.reserved()),
            (200, 600)
        );
        drop((a, b));
        assert_eq!(shared.memory_pool.reserved(), 0);
    }
}
