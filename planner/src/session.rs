//! Building the DataFusion context that a connection runs its queries in.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::error::Result;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::planner::ExprPlanner;
use henge_ingest::{Engine, SessionWrites};

use crate::aggregate::PushAggregates;
use crate::literal::PgLiteralInput;
use crate::options::HengeOptions;
use crate::pg::{self, Settings};
use crate::schema::HengeSchema;
use crate::system::{SystemSchema, SYSTEM_SCHEMA};

/// The database (DataFusion catalog) every table lives in.
pub const CATALOG: &str = "henge";
/// The schema every table lives in.
pub const SCHEMA: &str = "public";

/// What every session's queries share: `memory` bytes for sorts, joins and aggregations,
/// fairly split among the queries that spill (DataFusion's `FairSpillPool`), and
/// `spill_dir` for what they spill.
pub fn query_runtime(memory: usize, spill_dir: &std::path::Path) -> Result<Arc<RuntimeEnv>> {
    std::fs::create_dir_all(spill_dir)?;
    RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory.max(1 << 20))))
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()])),
        )
        .build_arc()
}

/// A fresh query context over the engine's tables, with PostgreSQL's SQL dialect and
/// catalogs; `settings` are the session's parameters (`current_setting`, `pg_settings`),
/// `runtime` the memory pool and spill space shared by every session ([`query_runtime`]).
pub fn new_context(
    engine: Arc<Engine>,
    target_partitions: usize,
    settings: Arc<Settings>,
    runtime: Arc<RuntimeEnv>,
    writes: Arc<SessionWrites>,
) -> SessionContext {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_create_default_catalog_and_schema(false)
        // `information_schema` is Henge's own (PostgreSQL's type names), in the catalog.
        .with_information_schema(false)
        .with_target_partitions(target_partitions.max(1))
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
        // `1.5` is a numeric, as in PostgreSQL (integer constants: `pg::numbers`).
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
        // `timestamptz` is a timestamp in UTC (without a zone DataFusion would take it for
        // a plain timestamp).
        .set_str("datafusion.execution.time_zone", "+00:00")
        .with_option_extension(HengeOptions::default())
        // Where INSERTs go and what scans add: the session's open transaction block.
        .with_extension(writes);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    // Aggregations are pushed into scans after DataFusion has answered what it can from
    // statistics, and before it combines partial and final aggregations.
    let mut rules = state.physical_optimizers().to_vec();
    let at = rules
        .iter()
        .position(|r| r.name() == "aggregate_statistics")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(PushAggregates));
    // PostgreSQL's interval and time operators before DataFusion's own.
    let mut planners: Vec<Arc<dyn ExprPlanner>> = vec![
        Arc::new(pg::json::PgJsonOperators),
        Arc::new(pg::uuid::PgUuidOperators),
        Arc::new(pg::operands::PgOperandTypes),
        Arc::new(pg::similar::PgSubstring),
        Arc::new(pg::extract::PgExtract),
        Arc::new(pg::interval::PgTimeOperators),
        Arc::new(crate::druid::DruidAggregates {
            engine: engine.clone(),
        }),
    ];
    planners.extend(state.expr_planners().iter().cloned());
    // First of the analyzer rules: a cast to numeric takes the scale it was written with
    // before constants are folded, and DataFusion's type coercion then unifies the types
    // of UNION branches with the scales chosen.
    let mut analyzers = state.analyzer().rules.clone();
    analyzers.insert(0, Arc::new(pg::types::PgCasts));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_analyzer_rules(analyzers)
        .with_physical_optimizer_rules(rules)
        .with_expr_planners(planners)
        .build();
    let ctx = SessionContext::new_with_state(state);
    let catalog = MemoryCatalogProvider::new();
    // A fresh in-memory catalog takes any schema; registration cannot fail.
    let schema = Arc::new(HengeSchema::new(engine.clone()));
    schema.attach(Arc::downgrade(&ctx.state_ref()));
    let _ = catalog.register_schema(SCHEMA, schema);
    let views = engine.clone();
    let access = engine.clone();
    let _ = catalog.register_schema(SYSTEM_SCHEMA, Arc::new(SystemSchema::new(engine)));
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    ctx.add_analyzer_rule(Arc::new(PgLiteralInput));
    ctx.add_analyzer_rule(Arc::new(pg::interval::PgIntervalCasts));
    ctx.add_analyzer_rule(Arc::new(pg::arith::PgArithmetic));
    ctx.add_analyzer_rule(Arc::new(pg::lateral::LateralProjections));
    // Fails only if the catalog above were missing.
    let definitions: pg::Definitions = Arc::new(move |schema, name| {
        (schema == SCHEMA)
            .then(|| views.view(name))
            .flatten()
            .map(|v| v.query)
    });
    if let Err(e) = pg::install(&ctx, settings, definitions, access) {
        tracing::error!(error = %e, "installing pg_catalog failed");
    }
    // Last: aggregates over rolled-up tables count ingested rows, after the session's own
    // `sum` (the checked one) is installed.
    if let Some(sum) = ctx.state().aggregate_functions().get("sum").cloned() {
        ctx.add_analyzer_rule(Arc::new(crate::rollup::RollupAggregates { sum }));
    }
    ctx
}
