//! Henge's write path: rows from INSERT and COPY become durable and visible here.
//!
//! Start with [`engine::Engine`]: it opens a data directory, replays the [`wal`] into each
//! table's [`buffer::RealtimeBuffer`], and appends the rows of each statement atomically —
//! log first (fsynced, with group commit), buffer second, acknowledgement last — within the
//! ingest [`memory`] budget. Statements of any size go through [`stage`]. Rows then move on
//! as in Druid's real-time nodes: [`persist`] writes them to local pieces and trims the
//! log, [`handoff`] merges a closed chunk's pieces into published segments, and
//! [`compact`] folds a chunk's small segments into a new version, and [`maintain`] runs
//! all of them by itself.
//! [`copy`] parses COPY input, [`rows`] turns text values into Arrow batches using the
//! input rules of [`value`].

pub mod alter;
pub mod buffer;
pub mod compact;
pub mod copy;
pub mod datetime;
pub mod engine;
pub mod error;
pub mod handoff;
pub mod interval;
pub mod json;
pub mod kafka;
pub mod limits;
pub mod maintain;
pub mod memory;
pub mod observe;
pub mod persist;
pub mod rewrite;
pub mod rollup;
pub mod rows;
pub mod sketch;
pub mod stage;
pub mod stream;
pub mod text;
pub mod transaction;
pub mod uuid;
pub mod value;
pub mod wal;

pub use buffer::{BufferStats, BufferedChunk, Contents, Snapshot};
pub use engine::{CheckpointReport, Engine, EngineOptions, Table};
pub use error::{Error, Result, ValueError, ValueErrorKind};
pub use maintain::PersistPolicy;
pub use rewrite::{Rewrite, RewriteReport};
pub use stage::StagedWrite;
pub use transaction::{NoSuchSavepoint, SessionWrites};
