//! Henge's query side: how DataFusion sees Henge's tables.
//!
//! [`session::new_context`] builds the DataFusion context a connection queries through;
//! its catalog is [`schema::HengeSchema`], which hands out one [`table::HengeTable`] per
//! table. A `HengeTable` scans the table's segments and real-time buffer with
//! [`scan::HengeScanExec`] (segments pruned by [`prune`], rows narrowed by the bitmap
//! indexes through [`filter`]); [`aggregate`] pushes the first step of a GROUP BY into that
//! scan. It takes INSERTs through a [`table::BufferSink`], which writes
//! via the ingest engine. [`system`] holds the `sys` tables; [`literal::PgLiteralInput`]
//! makes string literals follow PostgreSQL's input rules; [`pg`] adds what PostgreSQL
//! clients introspect (`pg_catalog`, `information_schema`, session parameters).

pub mod aggregate;
pub mod dml;
pub mod druid;
pub mod filter;
pub mod literal;
pub mod memory;
pub mod options;
pub mod pg;
pub mod pipeline;
pub mod prune;
pub mod reuse;
pub mod rollup;
pub mod scan;
pub mod schema;
pub mod session;
pub mod sketch;
pub mod system;
pub mod table;
pub mod view;

pub use pg::Settings;
pub use session::{new_context, query_runtime, CATALOG, SCHEMA};
