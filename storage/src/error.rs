//! Errors raised by the storage layer.

use std::path::PathBuf;

/// Result alias for storage operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a file of the data directory failed.
    #[error("could not {action} \"{path}\": {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A metadata file exists but cannot be understood.
    #[error("metadata file \"{path}\" is damaged: {reason}")]
    CorruptMetadata { path: PathBuf, reason: String },
    /// A table with this name already exists.
    #[error("relation \"{0}\" already exists")]
    TableExists(String),
    /// No table with this name exists.
    #[error("table \"{0}\" does not exist")]
    TableNotFound(String),
    #[error("pipeline \"{0}\" already exists")]
    PipelineExists(String),
    #[error("pipeline \"{0}\" does not exist")]
    PipelineNotFound(String),
    #[error("alert \"{0}\" already exists")]
    AlertExists(String),
    #[error("alert \"{0}\" does not exist")]
    AlertNotFound(String),
    /// A segment file fails its checks and no good copy could be found.
    #[error("segment {segment} is damaged: {reason}")]
    CorruptSegment { segment: String, reason: String },
    /// Rows that cannot be written as a segment.
    #[error("cannot build a segment: {0}")]
    SegmentInput(String),
    /// Deep storage refused or failed a request.
    #[error("deep storage \"{url}\": {reason}")]
    DeepStorage { url: String, reason: String },
}

impl Error {
    /// The SQLSTATE a client sees for this error.
    pub fn sqlstate(&self) -> crate::SqlState {
        use crate::sqlstate as state;
        match self {
            Error::TableExists(_) => state::DUPLICATE_TABLE,
            Error::TableNotFound(_) => state::UNDEFINED_TABLE,
            Error::PipelineExists(_) => state::DUPLICATE_OBJECT,
            Error::PipelineNotFound(_) => state::UNDEFINED_OBJECT,
            Error::AlertExists(_) => state::DUPLICATE_OBJECT,
            Error::AlertNotFound(_) => state::UNDEFINED_OBJECT,
            Error::Io { .. } | Error::DeepStorage { .. } => state::IO_ERROR,
            Error::CorruptMetadata { .. } | Error::CorruptSegment { .. } => state::DATA_CORRUPTED,
            Error::SegmentInput(_) => state::INTERNAL_ERROR,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
