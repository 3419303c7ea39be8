//! Column types and table definitions.
//!
//! Henge's column types follow PostgreSQL's; each maps to exactly one Arrow type, which is
//! how rows are held in memory, in the write-ahead log and in segments.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::granularity::Granularity;

/// Precision and scale given to a `numeric` column declared without them.
pub const DEFAULT_NUMERIC: (u8, i8) = (38, 10);

/// Largest precision a `numeric` column can have (Arrow's Decimal128).
pub const MAX_NUMERIC_PRECISION: u8 = 38;

/// The time zone Arrow carries for `timestamp with time zone` values (stored as UTC).
pub const UTC: &str = "+00:00";

/// The field metadata key naming an Arrow extension type (a logical type over a storage
/// type).
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// The extension name of `json` values (Arrow's canonical JSON type: UTF-8 text).
pub const JSON_EXTENSION: &str = "arrow.json";
/// The extension name of `jsonb` values: UTF-8 text in `jsonb`'s normal form.
pub const JSONB_EXTENSION: &str = "henge.jsonb";
/// The extension name of `uuid` values: UTF-8 text in the standard form, lower case.
pub const UUID_EXTENSION: &str = "henge.uuid";
/// The extension name of `void`, what `pg_notify` and the like return: empty text.
pub const VOID_EXTENSION: &str = "henge.void";
/// A relation's OID typed as PostgreSQL's `regclass` (`'t'::regclass`).
pub const REGCLASS_EXTENSION: &str = "henge.regclass";
/// Text typed as PostgreSQL's `name` (`current_user`, `current_database()`).
pub const NAME_EXTENSION: &str = "henge.name";
/// Text typed as `character varying` (a `varchar` column, `'a'::varchar`): what
/// `pg_typeof` names and the wire sends; its values are plain text.
pub const VARCHAR_EXTENSION: &str = "henge.varchar";
/// Text typed as `character` (`'a'::char(3)`), held without its padding.
pub const BPCHAR_EXTENSION: &str = "henge.bpchar";

/// A column's type, as PostgreSQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    Boolean,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    /// `numeric(precision, scale)`.
    Numeric {
        precision: u8,
        scale: i8,
    },
    /// `numeric` declared without a precision and scale: each value keeps the scale it
    /// was written with (`1.50` two places, `2` none), as in PostgreSQL. Values are held
    /// with [`DEFAULT_NUMERIC`]'s places beside a hidden column of their own scales
    /// ([`scale_column`]); a value with more places is refused, never rounded.
    NumericUnconstrained,
    Text,
    /// `varchar(n)`; `None` for an unbounded `varchar`.
    Varchar {
        max_len: Option<u32>,
    },
    Date,
    Timestamp,
    TimestampTz,
    Bytea,
    /// JSON text, kept as it was written.
    Json,
    /// JSON text in `jsonb`'s normal form.
    Jsonb,
    /// A uuid as its standard text (lower-case hex, 8-4-4-4-12).
    Uuid,
}

impl ColumnType {
    /// The Arrow type values of this column are held in.
    pub fn arrow_type(&self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::SmallInt => DataType::Int16,
            ColumnType::Integer => DataType::Int32,
            ColumnType::BigInt => DataType::Int64,
            ColumnType::Real => DataType::Float32,
            ColumnType::Double => DataType::Float64,
            ColumnType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnType::NumericUnconstrained => {
                DataType::Decimal128(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1)
            }
            ColumnType::Text | ColumnType::Varchar { .. } => DataType::Utf8,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC)))
            }
            ColumnType::Bytea => DataType::Binary,
            ColumnType::Json | ColumnType::Jsonb | ColumnType::Uuid => DataType::Utf8,
        }
    }

    /// The Arrow field of a column of this type: its Arrow type, and for the types held
    /// in another type's values (`json` and `jsonb` in text) the extension type that
    /// tells them apart.
    pub fn arrow_field(&self, name: &str) -> Field {
        let field = Field::new(name, self.arrow_type(), true);
        match self.extension() {
            Some(extension) => field.with_metadata(
                [(EXTENSION_NAME_KEY.to_owned(), extension.to_owned())]
                    .into_iter()
                    .collect(),
            ),
            None => field,
        }
    }

    /// The Arrow extension type name of this type's values, if it has one.
    pub fn extension(&self) -> Option<&'static str> {
        match self {
            ColumnType::Json => Some(JSON_EXTENSION),
            ColumnType::Jsonb => Some(JSONB_EXTENSION),
            ColumnType::Uuid => Some(UUID_EXTENSION),
            ColumnType::Varchar { .. } => Some(VARCHAR_EXTENSION),
            _ => None,
        }
    }

    /// PostgreSQL's name for the type, as `format_type` prints it.
    pub fn sql_name(&self) -> String {
        match self {
            ColumnType::Boolean => "boolean".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Integer => "integer".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::Real => "real".into(),
            ColumnType::Double => "double precision".into(),
            ColumnType::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            ColumnType::NumericUnconstrained => "numeric".into(),
            ColumnType::Text => "text".into(),
            ColumnType::Varchar { max_len: Some(n) } => format!("character varying({n})"),
            ColumnType::Varchar { max_len: None } => "character varying".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp without time zone".into(),
            ColumnType::TimestampTz => "timestamp with time zone".into(),
            ColumnType::Bytea => "bytea".into(),
            ColumnType::Json => "json".into(),
            ColumnType::Jsonb => "jsonb".into(),
            ColumnType::Uuid => "uuid".into(),
        }
    }

    /// PostgreSQL's name for the type without modifiers, as used in error messages about
    /// input values (`invalid input syntax for type bigint`).
    pub fn base_name(&self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::SmallInt => "smallint",
            ColumnType::Integer => "integer",
            ColumnType::BigInt => "bigint",
            ColumnType::Real => "real",
            ColumnType::Double => "double precision",
            ColumnType::Numeric { .. } | ColumnType::NumericUnconstrained => "numeric",
            ColumnType::Text => "text",
            ColumnType::Varchar { .. } => "character varying",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::TimestampTz => "timestamp with time zone",
            ColumnType::Bytea => "bytea",
            ColumnType::Json => "json",
            ColumnType::Jsonb => "jsonb",
            ColumnType::Uuid => "uuid",
        }
    }

    /// Whether this is one of the two timestamp types.
    pub fn is_timestamp(&self) -> bool {
        matches!(self, ColumnType::Timestamp | ColumnType::TimestampTz)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// In a rolled-up table, what the column is to rollup: a dimension rows are grouped
    /// by, or the aggregate that combines the values of grouped rows. `None` in tables
    /// without rollup, and for the time column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<Rollup>,
    /// The column's DEFAULT, a constant, as PostgreSQL's text of its value: what a row
    /// given no value for the column gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A column's part in rollup (`v BIGINT ROLLUP MAX`, `status INTEGER DIMENSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// Rows are grouped by it: the default for every type but the numeric ones.
    Dimension,
    /// The sum of the grouped rows' values (NULL when all are NULL): the default for
    /// numeric types.
    Sum,
    Min,
    Max,
    /// How many of the grouped rows had a value (not NULL), as `count(column)`.
    Count,
    /// The value of the row with the earliest time (by the time column before it was
    /// truncated to the query granularity), NULL if that row's is: what `EARLIEST` gives.
    First,
    /// The value of the row with the latest time, as `LATEST` gives.
    Last,
    /// A HyperLogLog sketch of the grouped rows' values (Apache DataSketches' HLL, the one
    /// Druid uses), stored as its serialized bytes: what `APPROX_COUNT_DISTINCT` merges.
    Hll,
    /// A KLL quantiles sketch of the grouped rows' values (Apache DataSketches' KLL of
    /// doubles), stored as its serialized bytes: what `APPROX_QUANTILE` merges.
    Quantiles,
}

impl Rollup {
    /// The name used after `ROLLUP` in a column definition.
    pub fn name(&self) -> &'static str {
        match self {
            Rollup::Dimension => "dimension",
            Rollup::Sum => "sum",
            Rollup::Min => "min",
            Rollup::Max => "max",
            Rollup::Count => "count",
            Rollup::First => "first",
            Rollup::Last => "last",
            Rollup::Hll => "hll",
            Rollup::Quantiles => "quantiles",
        }
    }

    /// Whether the column stores a sketch of its values rather than a value.
    pub fn is_sketch(&self) -> bool {
        matches!(self, Rollup::Hll | Rollup::Quantiles)
    }

    /// The Arrow extension name marking a stored column of this sketch's bytes.
    pub fn sketch_extension(&self) -> Option<&'static str> {
        match self {
            Rollup::Hll => Some(HLL_SKETCH_EXTENSION),
            Rollup::Quantiles => Some(QUANTILES_SKETCH_EXTENSION),
            _ => None,
        }
    }

    /// Whether the column combines values of grouped rows (is not a dimension).
    pub fn is_metric(&self) -> bool {
        *self != Rollup::Dimension
    }

    /// Whether the column needs the time of the row its value came from.
    pub fn keeps_time(&self) -> bool {
        matches!(self, Rollup::First | Rollup::Last)
    }
}

/// The extension name of a `ROLLUP HLL` column's stored values: serialized HLL sketches.
pub const HLL_SKETCH_EXTENSION: &str = "henge.hll_sketch";
/// The extension name of a `ROLLUP QUANTILES` column's stored values: serialized KLL
/// sketches of doubles.
pub const QUANTILES_SKETCH_EXTENSION: &str = "henge.quantiles_sketch";

/// The hidden column of a rolled-up table that counts the ingested rows each stored row
/// stands for.
pub const ROWS_COLUMN: &str = "__henge_rows";

/// Column names beginning with this are Henge's own (hidden columns).
pub const RESERVED_PREFIX: &str = "__henge";

/// The hidden column holding the scale of each value of an unconstrained `numeric` column
/// (`NULL` where the value is, or where the scale is not known: the value is shown without
/// trailing zeros).
pub fn scale_column(column: &str) -> String {
    format!("{RESERVED_PREFIX}_scale_of_{column}")
}

/// The hidden column holding the time of the value a FIRST or LAST column keeps.
pub fn value_time_column(column: &str) -> String {
    format!("{RESERVED_PREFIX}_time_of_{column}")
}

/// A table's definition: its columns and how its rows are cut into time chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Unique for the life of the data directory; never reused, even after DROP TABLE.
    pub id: u64,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// The column whose value places a row in a time chunk; `None` makes the whole table
    /// one chunk.
    pub time_column: Option<String>,
    pub segment_granularity: Granularity,
    /// How long after its end a time chunk still takes late rows before its persisted
    /// pieces are merged and handed off (the Druid paper's window period), in seconds.
    #[serde(default = "default_window_period")]
    pub window_period_secs: u64,
    /// Rows with equal (truncated) time and equal dimensions are combined into one, their
    /// metric columns aggregated as each column's [`Rollup`] says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollup: bool,
    /// The time column's values are truncated to this granularity at ingest (Druid's
    /// query granularity); `None` keeps them as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_granularity: Option<Granularity>,
    /// Which rows, by time, the table keeps and takes.
    #[serde(default, skip_serializing_if = "TimeLimits::is_none")]
    pub limits: TimeLimits,
}

/// The times a table keeps and takes rows for, relative to now (Druid's retention rules
/// and its late and early message rejection periods). Each is a number of seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeLimits {
    /// Time chunks wholly older than now minus this are dropped, and rows older than it
    /// are not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<u64>,
    /// Rows older than now minus this are not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_secs: Option<u64>,
    /// Rows newer than now plus this are not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_secs: Option<u64>,
    /// What happens to a row that is not taken.
    #[serde(default)]
    pub on_rejection: OnRejection,
}

impl TimeLimits {
    fn is_none(&self) -> bool {
        *self == TimeLimits::default()
    }
}

/// What a statement does with a row outside its table's time limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRejection {
    /// The statement fails, naming the row (and for COPY its line); nothing is written.
    #[default]
    Error,
    /// The row is left out and counted (`sys.ingest.rows_dropped`).
    Drop,
}

fn schema_of(columns: &[ColumnDef]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(ColumnDef::arrow_field)
            .collect::<Vec<_>>(),
    ))
}

impl ColumnDef {
    /// The column's Arrow field; a stored sketch column's is marked with its sketch's
    /// extension name.
    pub fn arrow_field(&self) -> Field {
        let field = self.ty.arrow_field(&self.name);
        match self.rollup.and_then(|r| r.sketch_extension()) {
            Some(extension) if self.ty == ColumnType::Bytea => field.with_metadata(
                [(EXTENSION_NAME_KEY.to_owned(), extension.to_owned())]
                    .into_iter()
                    .collect(),
            ),
            _ => field,
        }
    }

    /// The column as it is stored: a sketch column holds the sketches' bytes.
    pub fn stored(&self) -> ColumnDef {
        match self.rollup {
            Some(r) if r.is_sketch() => ColumnDef {
                ty: ColumnType::Bytea,
                default: None,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// A view: a named query, planned again each time it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDef {
    /// From the same sequence as tables' ids (PostgreSQL's OIDs of both are one space).
    pub id: u64,
    pub name: String,
    /// The query, as SQL text.
    pub query: String,
    /// The names given to its columns (`CREATE VIEW v (a, b)`); fewer than the query's
    /// columns, or none, leave the rest named by the query.
    #[serde(default)]
    pub columns: Vec<String>,
    /// The tables and views the query reads, by name.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// The window period of a table created without one: ten minutes, as in the Druid paper.
pub const DEFAULT_WINDOW_PERIOD_SECS: u64 = 600;

fn default_window_period() -> u64 {
    DEFAULT_WINDOW_PERIOD_SECS
}

impl TableDef {
    /// The Arrow schema of the table's rows as SQL sees them. Every field is declared
    /// nullable: NOT NULL is enforced by Henge's write path, with PostgreSQL's error,
    /// rather than by Arrow.
    ///
    /// This is the schema of rows as statements bring them (INSERT, COPY): a sketch
    /// column's values, not sketches. Queries read the stored columns
    /// ([`TableDef::query_schema`]).
    pub fn arrow_schema(&self) -> SchemaRef {
        schema_of(&self.columns)
    }

    /// [`TableDef::arrow_schema`] followed by the scales of the unconstrained numerics'
    /// values (see [`TableDef::scale_columns`]): rows as COPY reads them, each value's
    /// scale as it was written.
    pub fn scaled_schema(&self) -> SchemaRef {
        let mut columns = self.columns.clone();
        columns.extend(self.scale_columns());
        schema_of(&columns)
    }

    /// The Arrow schema queries read the table's columns with: as they are stored, sketch
    /// columns as the sketches' bytes (`bytea`), without the hidden columns.
    pub fn query_schema(&self) -> SchemaRef {
        let columns: Vec<ColumnDef> = self.columns.iter().map(ColumnDef::stored).collect();
        schema_of(&columns)
    }

    /// Whether any column stores sketches (so that rows as ingested and as stored differ
    /// in type).
    pub fn has_sketches(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.rollup.is_some_and(|r| r.is_sketch()))
    }

    /// The columns Henge keeps but SQL does not show, after the table's own: a rolled-up
    /// table's count of ingested rows and the times of FIRST and LAST columns' values, then
    /// the scales of unconstrained numerics' values.
    pub fn hidden_columns(&self) -> Vec<ColumnDef> {
        let mut hidden = self.rollup_columns();
        hidden.extend(self.scale_columns());
        hidden
    }

    /// The hidden columns of the scales of unconstrained numerics' values, in the order of
    /// their columns.
    pub fn scale_columns(&self) -> Vec<ColumnDef> {
        self.columns
            .iter()
            .filter(|c| c.ty == ColumnType::NumericUnconstrained)
            .map(|c| ColumnDef {
                name: scale_column(&c.name),
                ty: ColumnType::SmallInt,
                nullable: true,
                rollup: None,
                default: None,
            })
            .collect()
    }

    /// The hidden columns of a rolled-up table's rollup (none in other tables).
    fn rollup_columns(&self) -> Vec<ColumnDef> {
        if !self.rollup {
            return Vec::new();
        }
        let time_type = self
            .time_column_index()
            .map_or(ColumnType::Timestamp, |i| self.columns[i].ty);
        let times = self
            .columns
            .iter()
            .filter(|c| c.rollup.is_some_and(|r| r.keeps_time()))
            .map(|c| ColumnDef {
                name: value_time_column(&c.name),
                ty: time_type,
                nullable: true,
                rollup: None,
                default: None,
            });
        std::iter::once(ColumnDef {
            name: ROWS_COLUMN.to_owned(),
            ty: ColumnType::BigInt,
            nullable: false,
            rollup: None,
            default: None,
        })
        .chain(times)
        .collect()
    }

    /// Every column rows are stored with: the table's own, then the hidden ones.
    pub fn stored_columns(&self) -> Vec<ColumnDef> {
        let mut columns: Vec<ColumnDef> = self.columns.iter().map(ColumnDef::stored).collect();
        columns.extend(self.hidden_columns());
        columns
    }

    /// The Arrow schema rows are stored with (in the log, the buffer and segments): the
    /// table's columns, then the hidden ones.
    pub fn stored_schema(&self) -> SchemaRef {
        schema_of(&self.stored_columns())
    }

    /// Position of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Position of the time column, if the table has one.
    pub fn time_column_index(&self) -> Option<usize> {
        self.time_column
            .as_deref()
            .and_then(|name| self.column_index(name))
    }
}
