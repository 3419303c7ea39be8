//! Client-facing errors: the one place where every error becomes a PostgreSQL SQLSTATE
//! and message.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use henge_ingest::ValueErrorKind;
use henge_planner::pg::SqlStateError;
use pgwire::error::{ErrorInfo, PgWireError};

/// SQLSTATE codes Henge sends, named as in PostgreSQL's errcodes.txt.
pub mod code {
    pub const WARNING: &str = "01000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const INTERVAL_FIELD_OVERFLOW: &str = "22015";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const UNTRANSLATABLE_CHARACTER: &str = "22P05";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: &str = "42000";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INVALID_RECURSION: &str = "42P17";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const QUERY_CANCELED: &str = "57014";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const ARRAY_SUBSCRIPT_ERROR: &str = "2202E";
    pub const IO_ERROR: &str = "58030";
    pub const DATA_CORRUPTED: &str = "XX001";
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// An error as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn new(code: &'static str, message: impl Into<String>) -> PgError {
        PgError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> PgError {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> PgError {
        self.hint = Some(hint.into());
        self
    }

    pub fn unsupported(message: impl Into<String>) -> PgError {
        PgError::new(code::FEATURE_NOT_SUPPORTED, message)
    }

    pub fn syntax(message: impl Into<String>) -> PgError {
        PgError::new(code::SYNTAX_ERROR, message)
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<PgError> for PgWireError {
    fn from(e: PgError) -> PgWireError {
        let mut info = ErrorInfo::new("ERROR".to_owned(), e.code.to_owned(), e.message);
        info.detail = e.detail;
        info.hint = e.hint;
        PgWireError::UserError(Box::new(info))
    }
}

impl From<henge_ingest::Error> for PgError {
    fn from(e: henge_ingest::Error) -> PgError {
        from_ingest(&e)
    }
}

impl From<henge_storage::Error> for PgError {
    fn from(e: henge_storage::Error) -> PgError {
        from_storage(&e)
    }
}

impl From<SqlStateError> for PgError {
    fn from(e: SqlStateError) -> PgError {
        PgError::new(e.code, e.message)
    }
}

impl From<DataFusionError> for PgError {
    fn from(e: DataFusionError) -> PgError {
        from_datafusion(&e)
    }
}

fn from_storage(e: &henge_storage::Error) -> PgError {
    use henge_storage::Error as E;
    let code = match e {
        E::TableExists(_) => code::DUPLICATE_TABLE,
        E::TableNotFound(_) => code::UNDEFINED_TABLE,
        E::Io { .. } => code::IO_ERROR,
        E::CorruptMetadata { .. } | E::CorruptSegment { .. } => code::DATA_CORRUPTED,
        E::DeepStorage { .. } => code::IO_ERROR,
        E::SegmentInput(_) => code::INTERNAL_ERROR,
    };
    let message = match e {
        E::TableNotFound(name) => format!("table \"{name}\" does not exist"),
        other => other.to_string(),
    };
    PgError::new(code, message)
}

fn from_ingest(e: &henge_ingest::Error) -> PgError {
    use henge_ingest::Error as E;
    let code = match e.root() {
        E::Storage(inner) => return from_storage(inner),
        E::Value(v) => match v.kind {
            ValueErrorKind::InvalidSyntax => code::INVALID_TEXT_REPRESENTATION,
            ValueErrorKind::OutOfRange if v.message.starts_with("date/time") => {
                code::DATETIME_FIELD_OVERFLOW
            }
            ValueErrorKind::OutOfRange => code::NUMERIC_VALUE_OUT_OF_RANGE,
            ValueErrorKind::TooLong => code::STRING_DATA_RIGHT_TRUNCATION,
            ValueErrorKind::InvalidDatetimeFormat => code::INVALID_DATETIME_FORMAT,
            ValueErrorKind::IntervalFieldOverflow => code::INTERVAL_FIELD_OVERFLOW,
            ValueErrorKind::DatetimeOverflow => code::DATETIME_FIELD_OVERFLOW,
            ValueErrorKind::NestingTooDeep => code::STATEMENT_TOO_COMPLEX,
            ValueErrorKind::UntranslatableCharacter => code::UNTRANSLATABLE_CHARACTER,
            ValueErrorKind::NotSupported => code::FEATURE_NOT_SUPPORTED,
        },
        E::NotNull { .. } => code::NOT_NULL_VIOLATION,
        E::BadCopyData(_) => code::BAD_COPY_FILE_FORMAT,
        E::BadCopyOption(_) => code::INVALID_PARAMETER_VALUE,
        E::WalIo { .. } | E::WalClosed(_) => code::IO_ERROR,
        E::WalRecord(_) | E::Internal(_) => code::INTERNAL_ERROR,
        E::TableNotFound(_) => code::UNDEFINED_TABLE,
        E::MemoryExhausted { .. } => code::OUT_OF_MEMORY,
        E::CopyLine { .. } => code::INTERNAL_ERROR,
    };
    PgError::new(code, e.to_string())
}

fn from_datafusion(e: &DataFusionError) -> PgError {
    match e {
        DataFusionError::External(inner) => {
            if let Some(ingest) = inner.downcast_ref::<henge_ingest::Error>() {
                return from_ingest(ingest);
            }
            if let Some(storage) = inner.downcast_ref::<henge_storage::Error>() {
                return from_storage(storage);
            }
            if let Some(e) = inner.downcast_ref::<SqlStateError>() {
                return e.clone().into();
            }
            PgError::new(code::INTERNAL_ERROR, inner.to_string())
        }
        DataFusionError::Context(_, inner) => from_datafusion(inner),
        DataFusionError::Diagnostic(_, inner) => from_datafusion(inner),
        DataFusionError::Shared(inner) => from_datafusion(inner),
        DataFusionError::Collection(errors) => errors
            .first()
            .map(from_datafusion)
            .unwrap_or_else(|| PgError::new(code::INTERNAL_ERROR, e.to_string())),
        DataFusionError::ArrowError(arrow, _) => from_arrow(arrow),
        DataFusionError::SQL(parse, _) => PgError::syntax(parse.to_string()),
        DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
            SchemaError::FieldNotFound { field, .. } => PgError::new(
                code::UNDEFINED_COLUMN,
                format!("column \"{}\" does not exist", field.name()),
            ),
            SchemaError::AmbiguousReference { field } => PgError::new(
                code::AMBIGUOUS_COLUMN,
                format!("column reference \"{}\" is ambiguous", field.name()),
            ),
            SchemaError::DuplicateQualifiedField { name, .. }
            | SchemaError::DuplicateUnqualifiedField { name } => PgError::new(
                code::DUPLICATE_COLUMN,
                format!("column \"{name}\" specified more than once"),
            ),
        },
        DataFusionError::Plan(message) => plan_error(message),
        DataFusionError::NotImplemented(message) => PgError::unsupported(message.clone()),
        DataFusionError::ResourcesExhausted(message) => {
            PgError::new(code::OUT_OF_MEMORY, message.clone())
        }
        DataFusionError::Execution(message) => execution_error(message),
        other => PgError::new(code::INTERNAL_ERROR, other.to_string()),
    }
}

/// Planning errors carry only text; recognise the ones clients act on.
fn plan_error(message: &str) -> PgError {
    if let Some(rest) = message.strip_prefix("table '") {
        if let Some(name) = rest.strip_suffix("' not found") {
            let short = name.rsplit('.').next().unwrap_or(name);
            return PgError::new(
                code::UNDEFINED_TABLE,
                format!("relation \"{short}\" does not exist"),
            );
        }
    }
    if message.contains("Invalid function") || message.contains("No function matches") {
        return PgError::new(code::UNDEFINED_FUNCTION, message);
    }
    // generate_series in FROM, planned as a table function.
    if message == "Step cannot be zero" {
        return PgError::new(code::INVALID_PARAMETER_VALUE, "step size cannot equal zero");
    }
    // VALUES rows of types Henge marks differently (json and jsonb, numeric and an
    // expression of doubles).
    if message.starts_with("Inconsistent metadata across values list") {
        return PgError::new(
            code::DATATYPE_MISMATCH,
            "VALUES types cannot be matched; cast the rows to one type",
        )
        .with_detail(message);
    }
    if message.contains("Cannot infer common argument type")
        || message.contains("Cannot automatically convert")
        || message.contains("type coercion")
    {
        return PgError::new(code::DATATYPE_MISMATCH, message);
    }
    PgError::new(code::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, message)
}

fn execution_error(message: &str) -> PgError {
    if message.contains("Cast error") || message.contains("Cannot cast") {
        return PgError::new(code::INVALID_TEXT_REPRESENTATION, message);
    }
    if message.starts_with("Scalar subquery returned more than one row") {
        return PgError::new(
            code::CARDINALITY_VIOLATION,
            "more than one row returned by a subquery used as an expression",
        );
    }
    if message.starts_with("step can't be 0 for function generate_series") {
        return PgError::new(code::INVALID_PARAMETER_VALUE, "step size cannot equal zero");
    }
    PgError::new(code::INTERNAL_ERROR, message)
}

fn from_arrow(e: &ArrowError) -> PgError {
    match e {
        ArrowError::DivideByZero => PgError::new(code::DIVISION_BY_ZERO, "division by zero"),
        ArrowError::ArithmeticOverflow(m) => {
            PgError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
        }
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            // Arrow says e.g. "Cannot cast string 'x' to value of Int64 type"; keep its text
            // but use PostgreSQL's code, and PostgreSQL's wording where it can be recovered.
            if m.contains("Can't cast value") || m.contains("too large") || m.contains("overflow") {
                return PgError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, m.clone());
            }
            PgError::new(code::INVALID_TEXT_REPRESENTATION, m.clone())
        }
        // A decimal that does not fit its precision: PostgreSQL's numeric field overflow.
        ArrowError::InvalidArgumentError(m) if m.contains("is too large to store in a Decimal") => {
            PgError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow")
                .with_detail(m.clone())
        }
        ArrowError::ComputeError(m) if m.contains("Overflow") || m.contains("overflow") => {
            PgError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
        }
        ArrowError::ExternalError(inner) => {
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return from_datafusion(df);
            }
            PgError::new(code::INTERNAL_ERROR, inner.to_string())
        }
        other => PgError::new(code::INTERNAL_ERROR, other.to_string()),
    }
}
