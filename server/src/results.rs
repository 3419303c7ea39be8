//! Results stream: a query's batches go to the client as DataFusion produces them, through
//! a channel of two batches, so no result is ever collected in memory. The query runs on
//! the query runtime; dropping the stream (the client went away) aborts it there, and a
//! cancel request or `statement_timeout` ends it with SQLSTATE 57014 wherever it is.
//! A kept plan that makes its rows from constants alone (a connection pool's `SELECT 1`)
//! runs where the session is instead: there is nothing to wait for or cancel, and the
//! two hops between threads were most of what such a query cost.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use futures::stream::{self, BoxStream, StreamExt};
use henge_planner::memory::{PhysicalSlot, Planned};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::error::{code, PgError};

/// Batches a query has produced but the client has not yet taken, at most.
const IN_FLIGHT: usize = 2;

/// The cancel switches of one session's running result streams.
#[derive(Debug, Default)]
pub struct Canceler(Mutex<Vec<oneshot::Sender<()>>>);

impl Canceler {
    /// A switch for one more stream.
    fn arm(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut armed = self.0.lock();
        armed.retain(|tx| !tx.is_closed());
        armed.push(tx);
        rx
    }

    /// Cancels every stream of the session that is still running.
    pub fn cancel(&self) {
        for tx in self.0.lock().drain(..) {
            let _ = tx.send(());
        }
    }
}

/// Aborts the query's task when the stream is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct State {
    batches: mpsc::Receiver<datafusion::error::Result<RecordBatch>>,
    _task: AbortOnDrop,
    cancel: Option<oneshot::Receiver<()>>,
    deadline: Option<tokio::time::Instant>,
    done: bool,
}

fn canceled(timeout: bool) -> PgError {
    PgError::new(
        code::QUERY_CANCELED,
        if timeout {
            "canceling statement due to statement timeout"
        } else {
            "canceling statement due to user request"
        },
    )
}

enum Event {
    Cancel(bool),
    Timeout,
    Batch(Option<datafusion::error::Result<RecordBatch>>),
}

impl State {
    async fn next(&mut self) -> Option<Result<RecordBatch, PgError>> {
        if self.done {
            return None;
        }
        let item = loop {
            let deadline = self.deadline;
            let timeout = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let cancel = async {
                match self.cancel.as_mut() {
                    Some(rx) => rx.await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                biased;
                requested = cancel => Event::Cancel(requested),
                _ = timeout => Event::Timeout,
                item = self.batches.recv() => Event::Batch(item),
            };
            match event {
                Event::Cancel(true) => break Some(Err(canceled(false))),
                // The session dropped its switches: nothing can cancel this one now.
                Event::Cancel(false) => self.cancel = None,
                Event::Timeout => break Some(Err(canceled(true))),
                Event::Batch(item) => break item.map(|r| r.map_err(PgError::from)),
            }
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Runs a statement on `runtime` and streams its batches (a physical plan made for it is
/// left in `keep`). The first batch (or the error that
/// comes instead) is awaited before returning, so that errors found while starting the
/// query are reported before any row description is sent.
pub async fn stream_batches(
    planned: Planned,
    keep: Option<PhysicalSlot>,
    env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    runtime: &tokio::runtime::Handle,
    canceler: &Canceler,
    timeout: Duration,
) -> Result<BoxStream<'static, Result<RecordBatch, PgError>>, PgError> {
    if let Planned::Physical(plan, ..) = &planned {
        if constant_rows(plan) {
            let batches = henge_planner::memory::execute_stream(planned, env, keep).await?;
            let batches: Vec<_> = batches.collect().await;
            return Ok(stream::iter(batches.into_iter().map(|b| b.map_err(PgError::from))).boxed());
        }
    }
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let task = runtime.spawn(async move {
        let mut batches = match henge_planner::memory::execute_stream(planned, env, keep).await {
            Ok(batches) => batches,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        while let Some(batch) = batches.next().await {
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                return;
            }
        }
    });
    let mut state = State {
        batches: rx,
        _task: AbortOnDrop(task),
        cancel: Some(canceler.arm()),
        deadline: (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout),
        done: false,
    };
    let first = match state.next().await {
        Some(Err(e)) => return Err(e),
        first => first,
    };
    let rest = stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    });
    Ok(stream::iter(first).chain(rest).boxed())
}

/// Whether a plan's rows are made of constants alone: projections of literals (and casts
/// of them) over the one row of no table, no function called, no input read.
fn constant_rows(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> bool {
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
    use datafusion::physical_plan::projection::ProjectionExec;
    let this = match plan.downcast_ref::<ProjectionExec>() {
        Some(projection) => projection.expr().iter().all(|e| constant(&e.expr)),
        None => {
            plan.downcast_ref::<PlaceholderRowExec>().is_some()
                || plan.downcast_ref::<EmptyExec>().is_some()
        }
    };
    this && plan.children().into_iter().all(constant_rows)
}

fn constant(expr: &Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> bool {
    use datafusion::physical_expr::expressions::{CastExpr, Literal};
    (expr.downcast_ref::<Literal>().is_some() || expr.downcast_ref::<CastExpr>().is_some())
        && expr.children().into_iter().all(constant)
}
