//! Building the DataFusion context that a connection runs its queries in.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::context::{SessionConfig, SessionContext};
use henge_ingest::Engine;

use crate::literal::PgLiteralInput;
use crate::options::HengeOptions;
use crate::schema::HengeSchema;
use crate::system::{SystemSchema, SYSTEM_SCHEMA};

/// The database (DataFusion catalog) every table lives in.
pub const CATALOG: &str = "henge";
/// The schema every table lives in.
pub const SCHEMA: &str = "public";

/// A fresh query context over the engine's tables, with PostgreSQL's SQL dialect.
pub fn new_context(engine: Arc<Engine>, target_partitions: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true)
        .with_target_partitions(target_partitions.max(1))
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
        // `timestamptz` is a timestamp in UTC (without a zone DataFusion would take it for
        // a plain timestamp).
        .set_str("datafusion.execution.time_zone", "+00:00")
        .with_option_extension(HengeOptions::default());
    let ctx = SessionContext::new_with_config(config);
    let catalog = MemoryCatalogProvider::new();
    // A fresh in-memory catalog takes any schema; registration cannot fail.
    let _ = catalog.register_schema(SCHEMA, Arc::new(HengeSchema::new(engine.clone())));
    let _ = catalog.register_schema(SYSTEM_SCHEMA, Arc::new(SystemSchema::new(engine)));
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    ctx.add_analyzer_rule(Arc::new(PgLiteralInput));
    ctx
}
