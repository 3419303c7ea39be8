//! Client-facing errors: every error becomes a PostgreSQL SQLSTATE and message here.
//! Henge's own errors carry their code from where they are defined (`sqlstate()` of the
//! storage and ingest errors, the planner's `SqlStateError`); DataFusion's and Arrow's
//! keep the code of their kind, except the ones recognised by their words in the single
//! table of `crate::foreign`.

use datafusion::arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use henge_planner::pg::SqlStateError;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::foreign::{self, Source};

/// SQLSTATE codes Henge sends, named as in PostgreSQL's errcodes.txt.
pub use henge_storage::sqlstate as code;
use henge_storage::SqlState;

/// An error as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn new(code: impl Into<SqlState>, message: impl Into<String>) -> PgError {
        PgError {
            code: code.into(),
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
        let mut info = ErrorInfo::new(
            e.code.severity().to_owned(),
            e.code.code().to_owned(),
            e.message,
        );
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

impl From<&DataFusionError> for PgError {
    fn from(e: &DataFusionError) -> PgError {
        from_datafusion(e)
    }
}

fn from_storage(e: &henge_storage::Error) -> PgError {
    PgError::new(e.sqlstate(), e.to_string())
}

fn from_ingest(e: &henge_ingest::Error) -> PgError {
    match e.root() {
        henge_ingest::Error::Storage(inner) => from_storage(inner),
        henge_ingest::Error::Statement(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(e) => from_datafusion(e),
            None => PgError::new(e.sqlstate(), e.to_string()),
        },
        _ => PgError::new(e.sqlstate(), e.to_string()),
    }
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
            if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                return from_arrow(arrow);
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
        DataFusionError::Plan(message) => foreign::recognise(Source::Plan, message)
            .unwrap_or_else(|| PgError::new(code::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, message)),
        DataFusionError::NotImplemented(message) => PgError::unsupported(message.clone()),
        DataFusionError::ResourcesExhausted(message) => {
            PgError::new(code::OUT_OF_MEMORY, message.clone())
        }
        DataFusionError::Execution(message) => foreign::recognise(Source::Execution, message)
            .unwrap_or_else(|| PgError::new(code::INTERNAL_ERROR, message)),
        DataFusionError::Configuration(message) => {
            foreign::recognise(Source::Configuration, message)
                .unwrap_or_else(|| PgError::new(code::INTERNAL_ERROR, e.to_string()))
        }
        other => PgError::new(code::INTERNAL_ERROR, other.to_string()),
    }
}

fn from_arrow(e: &ArrowError) -> PgError {
    match e {
        ArrowError::DivideByZero => PgError::new(code::DIVISION_BY_ZERO, "division by zero"),
        ArrowError::ArithmeticOverflow(m) => {
            PgError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, m.clone())
        }
        // Arrow says e.g. "Cannot cast string 'x' to value of Int64 type": PostgreSQL's
        // code for text that is no value of the type, unless its words say overflow.
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            foreign::recognise(Source::ArrowCast, m)
                .unwrap_or_else(|| PgError::new(code::INVALID_TEXT_REPRESENTATION, m.clone()))
        }
        ArrowError::InvalidArgumentError(m) => foreign::recognise(Source::ArrowInvalidArgument, m)
            .unwrap_or_else(|| PgError::new(code::INTERNAL_ERROR, e.to_string())),
        ArrowError::ComputeError(m) => foreign::recognise(Source::ArrowCompute, m)
            .unwrap_or_else(|| PgError::new(code::INTERNAL_ERROR, e.to_string())),
        ArrowError::ExternalError(inner) => {
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return from_datafusion(df);
            }
            PgError::new(code::INTERNAL_ERROR, inner.to_string())
        }
        other => PgError::new(code::INTERNAL_ERROR, other.to_string()),
    }
}
