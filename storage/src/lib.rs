//! Henge's storage layer: the table catalog and the definitions everything else builds on.
//!
//! Start with [`schema`], which defines Henge's column types and table definitions and how
//! they map to Arrow, then [`catalog`], the durable store of table definitions in the data
//! directory. [`granularity`] cuts time into the chunks that segments cover.
//!
//! This crate knows nothing of SQL or the wire protocol.

pub mod catalog;
pub mod error;
pub mod granularity;
pub mod schema;

pub use catalog::Catalog;
pub use error::{Error, Result};
pub use granularity::Granularity;
pub use schema::{ColumnDef, ColumnType, TableDef};
