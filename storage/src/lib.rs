//! Henge's storage layer: segments, their metadata and deep storage, and the definitions
//! everything else builds on.
//!
//! Start with [`schema`] (column types, table definitions and their Arrow form), then
//! [`segment`], the immutable columnar files rows end up in (format in `FORMAT.md`).
//! [`metadata`] is the durable store of tables and published segments, [`deep`] the
//! `object_store` they are uploaded to, and [`cache`] the local, memory-mapped copies queries
//! read. [`granularity`] cuts time into the chunks that segments cover.
//!
//! This crate knows nothing of SQL or the wire protocol.

pub mod access;
pub mod alert;
pub mod cache;
pub mod deep;
pub mod error;
pub mod failpoint;
pub mod granularity;
pub mod metadata;
pub mod schema;
pub mod segment;
pub mod sqlstate;
pub mod stream;

pub use access::{Access, Privileges, RoleDef};
pub use cache::SegmentCache;
pub use deep::DeepStorage;
pub use error::{Error, Result};
pub use granularity::Granularity;
pub use metadata::{visible, MetadataStore, SegmentMeta, PIECE_VERSION};
pub use schema::{ColumnDef, ColumnType, OnRejection, Rollup, TableDef, TimeLimits, ViewDef};
pub use sqlstate::SqlState;
