//! Errors raised on the write path.

use std::path::PathBuf;

/// Result alias for the write path.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an input value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueErrorKind {
    /// The text is not a value of the type at all.
    InvalidSyntax,
    /// The value is well formed but does not fit the type.
    OutOfRange,
    /// A string is longer than the column allows.
    TooLong,
    /// Date/time text in no format the type reads (SQLSTATE 22007).
    InvalidDatetimeFormat,
    /// One field of an interval is too large for it (22015).
    IntervalFieldOverflow,
    /// A date/time value beyond the type's range (22008).
    DatetimeOverflow,
    /// Nested deeper than Henge follows (54001).
    NestingTooDeep,
    /// A character the type cannot hold, such as JSON's `\u0000` in `jsonb` (22P05).
    UntranslatableCharacter,
    /// Input PostgreSQL reads and Henge cannot represent, such as an infinite date
    /// (0A000).
    NotSupported,
    /// A value a function or sketch cannot take (22023).
    InvalidParameterValue,
}

impl ValueErrorKind {
    /// The SQLSTATE a client sees for a value refused this way.
    pub fn sqlstate(self) -> henge_storage::SqlState {
        use henge_storage::sqlstate as state;
        match self {
            ValueErrorKind::InvalidSyntax => state::INVALID_TEXT_REPRESENTATION,
            ValueErrorKind::OutOfRange => state::NUMERIC_VALUE_OUT_OF_RANGE,
            ValueErrorKind::TooLong => state::STRING_DATA_RIGHT_TRUNCATION,
            ValueErrorKind::InvalidDatetimeFormat => state::INVALID_DATETIME_FORMAT,
            ValueErrorKind::IntervalFieldOverflow => state::INTERVAL_FIELD_OVERFLOW,
            ValueErrorKind::DatetimeOverflow => state::DATETIME_FIELD_OVERFLOW,
            ValueErrorKind::NestingTooDeep => state::STATEMENT_TOO_COMPLEX,
            ValueErrorKind::UntranslatableCharacter => state::UNTRANSLATABLE_CHARACTER,
            ValueErrorKind::NotSupported => state::FEATURE_NOT_SUPPORTED,
            ValueErrorKind::InvalidParameterValue => state::INVALID_PARAMETER_VALUE,
        }
    }
}

/// A value that cannot be stored in a column, with PostgreSQL's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub kind: ValueErrorKind,
    pub message: String,
}

impl ValueError {
    pub(crate) fn syntax(type_name: &str, input: &str) -> ValueError {
        ValueError {
            kind: ValueErrorKind::InvalidSyntax,
            message: format!("invalid input syntax for type {type_name}: \"{input}\""),
        }
    }

    /// Date/time text in no form the type reads: PostgreSQL's 22007, with the wording of
    /// other types' syntax errors.
    pub(crate) fn datetime_syntax(type_name: &str, input: &str) -> ValueError {
        ValueError {
            kind: ValueErrorKind::InvalidDatetimeFormat,
            message: format!("invalid input syntax for type {type_name}: \"{input}\""),
        }
    }

    pub(crate) fn of_kind(kind: ValueErrorKind, message: String) -> ValueError {
        ValueError { kind, message }
    }

    /// A date/time field beyond its range (PostgreSQL's 22008).
    pub(crate) fn datetime_field(input: &str) -> ValueError {
        ValueError {
            kind: ValueErrorKind::DatetimeOverflow,
            message: format!("date/time field value out of range: \"{input}\""),
        }
    }

    pub(crate) fn out_of_range(message: String) -> ValueError {
        ValueError {
            kind: ValueErrorKind::OutOfRange,
            message,
        }
    }
}

/// Everything that can go wrong on the write path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] henge_storage::Error),
    /// A value does not fit its column.
    #[error("{0}")]
    Value(#[from] ValueError),
    /// A NULL in a NOT NULL column.
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNull { table: String, column: String },
    /// Malformed COPY input (missing or extra columns, bad quoting, a bad header).
    #[error("{0}")]
    BadCopyData(String),
    /// A COPY option that is not valid (or not valid with the others).
    #[error("{0}")]
    BadCopyOption(String),
    /// An error in one line of COPY input, with where it happened.
    #[error("COPY {table}, line {line}{}: {source}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    CopyLine {
        table: String,
        line: u64,
        column: Option<String>,
        #[source]
        source: Box<Error>,
    },
    /// The write-ahead log could not be written or read.
    #[error("write-ahead log {action} failed on \"{path}\": {source}")]
    WalIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The write-ahead log writer has stopped (the server is shutting down or a write failed).
    #[error("the write-ahead log is not accepting writes: {0}")]
    WalClosed(String),
    /// A write-ahead log record could not be encoded or decoded.
    #[error("write-ahead log record: {0}")]
    WalRecord(String),
    /// An Arrow operation on rows failed; a bug, not bad input.
    #[error("internal error: {0}")]
    Internal(String),
    /// A writer waited too long for the ingest memory budget (SQLSTATE 53200).
    #[error("out of memory: the ingest memory budget of {limit} bytes stayed exhausted for {}s while buffered rows were persisted; nothing of this statement was applied", waited.as_secs_f64())]
    MemoryExhausted {
        waited: std::time::Duration,
        limit: usize,
    },
    /// The table was dropped while the statement ran.
    #[error("relation \"{0}\" does not exist")]
    TableNotFound(String),
    /// ALTER TABLE … ADD COLUMN … NOT NULL without a default, on a table with rows.
    #[error("column \"{column}\" of relation \"{table}\" contains null values")]
    ColumnContainsNulls { table: String, column: String },
    /// Other objects depend on the one to drop (2BP01).
    #[error("{0}")]
    Dependents(String),
    /// The table was altered while the statement ran (SQLSTATE 40001: run it again).
    #[error("relation \"{0}\" was altered while the statement ran; run it again")]
    TableAltered(String),
    /// A row outside its table's time limits (retention, late or early rejection).
    #[error(
        "new row for relation \"{table}\" is outside its time limits: {column} {value} {reason}"
    )]
    OutsideTimeLimits {
        table: String,
        column: String,
        value: String,
        reason: String,
    },
    /// A statement's own expressions failed on a row it rewrites (an UPDATE's value out of
    /// range, say): the error of the query engine that evaluated them.
    #[error("{0}")]
    Statement(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The error of a COPY line counted from a piece of the input that followed `lines`
    /// lines, numbered from the start of the input.
    pub fn after_lines(self, lines: u64) -> Error {
        match self {
            Error::CopyLine {
                table,
                line,
                column,
                source,
            } => Error::CopyLine {
                table,
                line: line + lines,
                column,
                source,
            },
            other => other,
        }
    }

    /// The innermost error, looking through COPY line context.
    pub fn root(&self) -> &Error {
        match self {
            Error::CopyLine { source, .. } => source.root(),
            other => other,
        }
    }

    /// The SQLSTATE a client sees for this error (a COPY line's is its cause's).
    pub fn sqlstate(&self) -> henge_storage::SqlState {
        use henge_storage::sqlstate as state;
        match self.root() {
            Error::Storage(inner) => inner.sqlstate(),
            Error::Value(v) => v.kind.sqlstate(),
            Error::NotNull { .. } | Error::ColumnContainsNulls { .. } => state::NOT_NULL_VIOLATION,
            Error::OutsideTimeLimits { .. } => state::CHECK_VIOLATION,
            Error::BadCopyData(_) => state::BAD_COPY_FILE_FORMAT,
            Error::BadCopyOption(_) => state::INVALID_PARAMETER_VALUE,
            Error::WalIo { .. } | Error::WalClosed(_) => state::IO_ERROR,
            Error::WalRecord(_) | Error::Internal(_) | Error::CopyLine { .. } => {
                state::INTERNAL_ERROR
            }
            Error::TableNotFound(_) => state::UNDEFINED_TABLE,
            Error::TableAltered(_) => state::SERIALIZATION_FAILURE,
            Error::Dependents(_) => state::DEPENDENT_OBJECTS_STILL_EXIST,
            Error::MemoryExhausted { .. } => state::OUT_OF_MEMORY,
            // Only the query engine that raised it knows; the server asks it.
            Error::Statement(_) => state::INTERNAL_ERROR,
        }
    }
}
