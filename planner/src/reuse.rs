//! What a prepared query keeps between executions.
//!
//! A prepared query is planned and analyzed once, when it is prepared. Its optimized plan
//! depends only on the catalog and the session's settings (the caller keys what it keeps
//! on both), not on the data, with one exception: the optimizer folds a call of a stable
//! function (`now()`, `current_setting`, …) into the value it has when the statement
//! starts, so a plan that calls one is optimized anew each time. A physical plan holds what
//! its scans read (a snapshot of each table), so only a plan that reads no table at all
//! (`SELECT 1`, `SELECT $1::int + 1` is not one: its parameters change) keeps its physical
//! plan; every execution runs a fresh copy of it ([`fresh_copy`]), so that no state of one
//! run (a join's built side, a sort's buffers) outlives it or leaks into the next.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use datafusion::optimizer::{Optimizer, OptimizerContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;

/// How much of a prepared query's planning can be kept for its next execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Nothing: DataFusion analyzes and optimizes the plan each time (EXPLAIN, which
    /// shows those steps, and statements, which Henge does not analyze beforehand).
    Nothing,
    /// The analyzed plan: it calls a function whose value may change.
    Analyzed,
    /// The optimized plan.
    Optimized,
    /// The physical plan: it reads no table and has no parameters.
    Physical,
}

/// How much of `plan` (analyzed, as prepared) may be kept.
pub fn reuse(plan: &LogicalPlan) -> Reuse {
    if matches!(
        plan,
        LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::DescribeTable(_)
    ) {
        return Reuse::Nothing;
    }
    let mut changing = false;
    let mut reads = false;
    let mut parameters = false;
    let _ = plan.apply_with_subqueries(|node| {
        if matches!(
            node,
            LogicalPlan::TableScan(_) | LogicalPlan::Extension(_) | LogicalPlan::RecursiveQuery(_)
        ) {
            reads = true;
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                match e {
                    Expr::ScalarFunction(f)
                        if f.func.signature().volatility != Volatility::Immutable =>
                    {
                        changing = true
                    }
                    Expr::Placeholder(p) => {
                        parameters = true;
                        // A parameter of a type not known when prepared is typed by its
                        // value: the plan is not the same for every execution.
                        if p.field.is_none() {
                            changing = true;
                        }
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(TreeNodeRecursion::Continue)
    });
    match (changing, reads || parameters) {
        (true, _) => Reuse::Analyzed,
        (false, true) => Reuse::Optimized,
        (false, false) => Reuse::Physical,
    }
}

/// Optimizes an analyzed plan, as DataFusion does after analyzing one.
pub fn optimize(state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
    state.optimizer().optimize(plan, state, |_, _| {})
}

/// Gives a kept optimized plan its parameters' values. The optimizer saw parameters where
/// the values now are, so what it would have folded with them (a cast of a value, which a
/// LIMIT or a percentile must see as a constant) is folded here, with the session's
/// `options`.
pub fn bind(
    plan: LogicalPlan,
    params: Vec<ScalarValue>,
    options: Arc<ConfigOptions>,
) -> Result<LogicalPlan> {
    if params.is_empty() {
        return Ok(plan);
    }
    let plan = plan.with_param_values(params)?;
    let simplify = Optimizer::with_rules(vec![Arc::new(SimplifyExpressions::new())]);
    let config = OptimizerContext::new_with_config_options(options);
    simplify.optimize(plan, &config, |_, _| {})
}

/// A copy of a kept physical plan to run: every node new, with none of the state an
/// earlier run left in it (DataFusion's own way of running a plan again).
pub fn fresh_copy(plan: &Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(plan))
}
