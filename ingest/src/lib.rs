//! Henge's write path: rows from INSERT and COPY become durable and visible here.
//!
//! Start with [`engine::Engine`]: it opens a data directory, replays the [`wal`] into each
//! table's [`buffer::RealtimeBuffer`], and appends the rows of each statement atomically —
//! log first (fsynced, with group commit), buffer second, acknowledgement last.
//! [`copy`] parses COPY input, [`rows`] turns text values into Arrow batches using the
//! input rules of [`value`].

pub mod buffer;
pub mod copy;
pub mod engine;
pub mod error;
pub mod rows;
pub mod value;
pub mod wal;

pub use buffer::{BufferedChunk, Snapshot};
pub use engine::{CheckpointReport, Engine, EngineOptions, Table};
pub use error::{Error, Result, ValueError, ValueErrorKind};
