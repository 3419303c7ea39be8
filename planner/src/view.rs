//! Views: a stored query, planned again, with the session's rewrites, each time a statement
//! reads it.
//!
//! A view reaches DataFusion as a [`ViewTable`] whose logical plan the planner inlines where
//! the view is named, so the optimizer sees through it: filters, projections and
//! aggregations over a view push down into the tables' scans as they would over the query
//! written out. The query text is kept as the user wrote it (parsed and printed again), not
//! as the rewrites leave it, so that `information_schema.views` and `pg_get_viewdef` show
//! SQL the user recognises, and a later Henge's rewrites apply to it.

use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{col, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use henge_ingest::Engine;
use henge_storage::ViewDef;

use crate::pg::{rewrite, SqlStateError};
use crate::SCHEMA;

/// The view's query as a statement, rewritten as a session rewrites what it is sent.
pub fn statement(query: &str) -> Result<Statement> {
    let text = rewrite::substitute(query);
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &text)
        .map_err(|e| DataFusionError::Plan(format!("view query: {e}")))?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement @ Statement::Query(_)), true) => {
            let statement = rewrite::statement(rewrite::balance_boolean_chains(statement));
            // What a session refuses to answer, a view refuses too.
            match rewrite::refused(&statement) {
                Some((code, reason)) => Err(SqlStateError::new(code, reason).into()),
                None => Ok(statement),
            }
        }
        _ => Err(DataFusionError::Plan(format!(
            "a view's query must be one SELECT: {query}"
        ))),
    }
}

/// The logical plan of a view: its query, with its columns named as the view names them.
pub async fn plan(state: &SessionState, def: &ViewDef) -> Result<LogicalPlan> {
    let statement = statement(&def.query)?;
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(statement)))
        .await?;
    let names = column_names(&plan, &def.columns);
    let mut seen = std::collections::HashSet::new();
    if let Some(repeated) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(SqlStateError::new(
            "42701",
            format!("column \"{repeated}\" specified more than once"),
        )
        .into());
    }
    let columns = plan
        .schema()
        .columns()
        .into_iter()
        .zip(names)
        .map(|(column, name)| col(column).alias(name))
        .collect::<Vec<_>>();
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}

/// The names of a view's columns: those given, then the query's own (as the client sees
/// them, without the suffix that keeps repeated names apart).
pub fn column_names(plan: &LogicalPlan, given: &[String]) -> Vec<String> {
    plan.schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            given
                .get(i)
                .cloned()
                .unwrap_or_else(|| rewrite::shown_name(field.name()).to_owned())
        })
        .collect()
}

/// The view as a table DataFusion can scan.
pub async fn table(state: &SessionState, def: &ViewDef) -> Result<Arc<dyn TableProvider>> {
    let plan = plan(state, def).await?;
    Ok(Arc::new(ViewTable::new(plan, Some(def.query.clone()))))
}

/// The Henge tables and views a query reads (not its WITH queries, not catalog tables).
pub fn dependencies(
    state: &SessionState,
    engine: &Engine,
    statement: &Statement,
) -> Result<Vec<String>> {
    let references =
        state.resolve_table_references(&DFStatement::Statement(Box::new(statement.clone())))?;
    let default_schema = state.config_options().catalog.default_schema.clone();
    let mut names: Vec<String> = references
        .iter()
        .filter_map(|r| {
            let schema = match r {
                TableReference::Bare { .. } => default_schema.as_str(),
                TableReference::Partial { schema, .. } | TableReference::Full { schema, .. } => {
                    schema
                }
            };
            (schema == SCHEMA).then(|| r.table().to_owned())
        })
        .filter(|name| engine.table(name).is_some() || engine.view(name).is_some())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
