//! `INSERT INTO t [(columns)] VALUES (…), …` of constants, without DataFusion.
//!
//! Planning a one-row INSERT costs most of a millisecond; its rows need none of it when
//! every value is a constant whose meaning for its column is the column type's input
//! function: a quoted literal (an unknown-typed constant in PostgreSQL, read by the input
//! function of the column it goes to), NULL, an integer written in digits going to an
//! integer or numeric or floating-point column, a decimal going to a numeric or
//! floating-point one, and `true`/`false` going to a boolean one. Those are exactly what
//! COPY's text format reads, so the values are written as COPY text and read by COPY's
//! reader (defaults for columns not named, the session's time zone, every check of the
//! column types), and the rows are staged and committed as COPY's are, inside a
//! transaction block kept for its COMMIT.
//!
//! A prepared INSERT whose values are parameters (`$n`) and such constants runs the same
//! way when each parameter's value is of its column's type already (the type the
//! statement's description gave it, or an integer of another width for an integer column):
//! it needs no conversion, so its meaning is PostgreSQL's.
//!
//! Anything else — other expressions, parameters of another type, DEFAULT, RETURNING, ON CONFLICT, a decimal
//! going to an integer column (PostgreSQL rounds it), a number going to a text column
//! (PostgreSQL writes its canonical text), tables with sketch columns, views — and any
//! value COPY's reader refuses goes the planned way, which gives PostgreSQL's answer or
//! error: nothing is staged until every row has been read.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, Int16Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Insert, Parens, Query, SetExpr, TableObject,
    UnaryOperator, Value, ValueWithSpan,
};
use henge_ingest::copy::{CopyFormat, CopyOptions, CopyReader};
use henge_ingest::rows::{constant_value, default_value};
use henge_ingest::Table;
use henge_storage::ColumnType;

use crate::ddl::{column_position, normalize, table_name};
use crate::error::{code, PgError};
use crate::session::Session;

/// The table and the table columns (in VALUES order) of an INSERT the fast path may take.
struct Target {
    table: Arc<Table>,
    columns: Vec<usize>,
}

/// Whether `insert` has the shape the fast path takes (constants only), judged without
/// reading the values against their columns.
pub fn candidate(session: &Session, insert: &Insert) -> bool {
    // An INSERT whose lists do not fit its columns is one: `run` says so.
    !matches!(copy_input(session, insert), Ok(None))
}

fn target(session: &Session, insert: &Insert) -> Option<Target> {
    let plain = insert.or.is_none()
        && !insert.ignore
        && insert.table_alias.is_none()
        && !insert.overwrite
        && insert.assignments.is_empty()
        && insert.partitioned.is_none()
        && insert.after_columns.is_empty()
        && insert.on.is_none()
        && insert.returning.is_none()
        && insert.output.is_none()
        && !insert.replace_into
        && insert.priority.is_none()
        && insert.insert_alias.is_none()
        && insert.settings.is_none()
        && insert.format_clause.is_none();
    if !plain {
        return None;
    }
    let TableObject::TableName(name) = &insert.table else {
        return None;
    };
    let name = table_name(name).ok()?;
    let engine = &session.shared.engine;
    if engine.view(&name).is_some() {
        return None;
    }
    let table = engine.table(&name)?;
    if table.def.has_sketches() {
        return None;
    }
    let columns = match insert.columns.as_slice() {
        [] => (0..table.def.columns.len()).collect(),
        named => {
            let mut positions = Vec::with_capacity(named.len());
            for column in named {
                let [part] = column.0.as_slice() else {
                    return None;
                };
                let position = column_position(&table.def, &normalize(part.as_ident()?)).ok()?;
                if positions.contains(&position) {
                    return None;
                }
                positions.push(position);
            }
            positions
        }
    };
    Some(Target { table, columns })
}

/// The VALUES rows of a plain `INSERT … VALUES`.
fn rows(insert: &Insert) -> Option<&Vec<Parens<Vec<Expr>>>> {
    let Query {
        with: None,
        body,
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks,
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators,
    } = insert.source.as_deref()?
    else {
        return None;
    };
    if !locks.is_empty() || !pipe_operators.is_empty() {
        return None;
    }
    match body.as_ref() {
        SetExpr::Values(values) if !values.explicit_row => Some(&values.rows),
        _ => None,
    }
}

/// Why a constant is not taken as COPY text.
enum NotText {
    /// The fast path leaves it to the planner.
    Planned,
    /// PostgreSQL has no assignment cast from the constant's type (named) to the column's.
    Mismatch(&'static str),
}

/// A constant as COPY text for a column of type `ty`, if its meaning there is that of the
/// type's input function; `None` for NULL's `\N`.
fn copy_text(value: &Expr, ty: ColumnType) -> Result<Option<String>, NotText> {
    let (negative, value) = match value {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => (true, expr.as_ref()),
        other => (false, other),
    };
    // Henge's own typing of an integer constant (`CAST(42 AS INTEGER)`, see
    // `henge_planner::pg::numbers`), or the same written by the client: the digits.
    let value = match value {
        Expr::Cast {
            kind: CastKind::Cast,
            expr,
            data_type: SqlType::Integer(None),
            array: false,
            format: None,
        } => match expr.as_ref() {
            Expr::Value(ValueWithSpan {
                value: Value::Number(n, _),
                ..
            }) if n.bytes().all(|b| b.is_ascii_digit()) => expr.as_ref(),
            _ => return Err(NotText::Planned),
        },
        other => other,
    };
    let Expr::Value(ValueWithSpan { value, .. }) = value else {
        return Err(NotText::Planned);
    };
    let numeric_column = matches!(
        ty,
        ColumnType::Numeric { .. }
            | ColumnType::NumericUnconstrained
            | ColumnType::Real
            | ColumnType::Double
    );
    let integer_column = matches!(
        ty,
        ColumnType::SmallInt | ColumnType::Integer | ColumnType::BigInt
    );
    // Columns no number or boolean is assigned to (text takes both as their text).
    let no_number = !(numeric_column
        || integer_column
        || matches!(ty, ColumnType::Text | ColumnType::Varchar { .. }));
    match (value, negative) {
        (Value::Null, false) => Ok(None),
        (Value::SingleQuotedString(s), false) => Ok(Some(s.clone())),
        (Value::DollarQuotedString(s), false) => Ok(Some(s.value.clone())),
        (Value::Boolean(b), false) if ty == ColumnType::Boolean => {
            Ok(Some(if *b { "t" } else { "f" }.into()))
        }
        (Value::Boolean(_), false) if no_number || numeric_column || integer_column => {
            Err(NotText::Mismatch("boolean"))
        }
        (Value::Number(n, _), _) => {
            let digits = n.bytes().all(|b| b.is_ascii_digit());
            let decimal = n
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if (integer_column && digits) || (numeric_column && decimal) {
                return Ok(Some(if negative { format!("-{n}") } else { n.clone() }));
            }
            if !no_number {
                return Err(NotText::Planned);
            }
            // The type PostgreSQL gives the constant.
            let whole =
                digits
                    .then(|| n.parse::<i64>().ok())
                    .flatten()
                    .map(|v| if negative { -v } else { v });
            Err(NotText::Mismatch(match whole {
                Some(v) if i32::try_from(v).is_ok() => "integer",
                Some(_) => "bigint",
                None => "numeric",
            }))
        }
        _ => Err(NotText::Planned),
    }
}

/// PostgreSQL's error for a constant of type `given` assigned to `column`.
fn mismatch(column: &henge_storage::ColumnDef, given: &str) -> PgError {
    let column_type = match column.ty {
        ColumnType::Numeric { .. }
        | ColumnType::NumericUnconstrained
        | ColumnType::Varchar { .. } => column.ty.base_name().to_owned(),
        other => other.sql_name(),
    };
    PgError::new(
        code::DATATYPE_MISMATCH,
        format!(
            "column \"{}\" is of type {column_type} but expression is of type {given}",
            column.name
        ),
    )
    .with_hint("You will need to rewrite or cast the expression.")
}

/// Writes `field` as a COPY text field.
fn escape(field: &str, out: &mut String) {
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}

/// The table, its columns in VALUES order and the rows as COPY text of an INSERT the fast
/// path takes; `Ok(None)` for one it does not, and the error of one whose lists do not fit
/// its columns.
fn copy_input(session: &Session, insert: &Insert) -> Result<Option<CopyInput>, PgError> {
    let (Some(target), Some(rows)) = (target(session, insert), rows(insert)) else {
        return Ok(None);
    };
    let def = &target.table.def;
    let width = rows.first().map_or(0, |row| row.content.len());
    if rows.iter().any(|row| row.content.len() != width) {
        // "VALUES lists must all be the same length": the planner says so.
        return Ok(None);
    }
    let mut columns = target.columns;
    match width.cmp(&columns.len()) {
        Ordering::Greater => {
            return Err(PgError::new(
                code::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ))
        }
        Ordering::Less if !insert.columns.is_empty() => {
            return Err(PgError::new(
                code::SYNTAX_ERROR,
                "INSERT has more target columns than expressions",
            ))
        }
        // Without a column list, the values fill the first columns.
        Ordering::Less => columns.truncate(width),
        Ordering::Equal => {}
    }
    let mut text = String::new();
    for row in rows {
        let row = &row.content;
        for (i, (value, &column)) in row.iter().zip(&columns).enumerate() {
            if i > 0 {
                text.push('\t');
            }
            match copy_text(value, def.columns[column].ty) {
                Ok(Some(field)) => escape(&field, &mut text),
                Ok(None) => text.push_str("\\N"),
                Err(NotText::Planned) => return Ok(None),
                Err(NotText::Mismatch(given)) => return Err(mismatch(&def.columns[column], given)),
            }
        }
        text.push('\n');
    }
    Ok(Some(CopyInput {
        table: target.table,
        columns,
        text,
    }))
}

struct CopyInput {
    table: Arc<Table>,
    columns: Vec<usize>,
    text: String,
}

/// Runs `insert` the fast way: `Ok(Some(rows))` once its rows are committed (or kept for
/// the transaction block's COMMIT), `Ok(None)` when it is not for the fast path and must
/// be planned.
pub async fn run(session: &Session, insert: &Insert) -> Result<Option<u64>, PgError> {
    let Some(CopyInput {
        table,
        columns,
        text,
    }) = copy_input(session, insert)?
    else {
        return Ok(None);
    };
    let def = &table.def;
    let mut options = CopyOptions::new(CopyFormat::Text);
    options.time_zone = Some(session.settings.time_zone_name());
    let Ok(mut reader) = CopyReader::new(def.clone(), columns, options) else {
        return Ok(None);
    };
    // A value COPY refuses is left to the planned INSERT, for PostgreSQL's error.
    if reader.feed(text.as_bytes()).is_err() {
        return Ok(None);
    }
    let Ok((_, batches)) = reader.finish() else {
        return Ok(None);
    };
    stage(session, &table, batches).await
}

/// Stages `batches` into `table` and commits them (or keeps them for the transaction
/// block's COMMIT): `Ok(Some(rows))`, or `Ok(None)` when the table's checks refuse a row —
/// the staged rows are dropped (with what was spilled) and the planned INSERT gives the
/// error in its own words.
async fn stage(
    session: &Session,
    table: &Arc<Table>,
    batches: Vec<RecordBatch>,
) -> Result<Option<u64>, PgError> {
    let mut staged = session.shared.engine.stage(table.clone());
    for batch in batches {
        if staged.push(batch).await.is_err() {
            return Ok(None);
        }
    }
    let count = staged.rows();
    match session.writes.keep(staged).await? {
        Some(staged) => Ok(Some(staged.commit().await?)),
        None => Ok(Some(count)),
    }
}

/// The value of one VALUES entry of a parameterised INSERT that is a parameter (`$n`).
fn parameter<'p>(value: &Expr, params: &'p [ScalarValue]) -> Option<Option<&'p ScalarValue>> {
    params.get(placeholder(value)?).map(Some)
}

/// The position of the parameter (`$n`) one VALUES entry is, if it is one.
fn placeholder(value: &Expr) -> Option<usize> {
    let Expr::Value(ValueWithSpan {
        value: Value::Placeholder(p),
        ..
    }) = value
    else {
        return None;
    };
    p.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1)
}

/// A parameter's value as a value of `column`'s type, when it is of that type already
/// (integers of any width for an integer column, any zone's timestamps for a `timestamptz`
/// one): it needs no conversion, so its meaning is the same as in PostgreSQL. `None` for
/// anything else.
fn parameter_value(column: ColumnType, value: Option<&ScalarValue>) -> Option<ScalarValue> {
    let target = column.arrow_type();
    let plain = matches!(
        column,
        ColumnType::Boolean
            | ColumnType::SmallInt
            | ColumnType::Integer
            | ColumnType::BigInt
            | ColumnType::Real
            | ColumnType::Double
            | ColumnType::Numeric { .. }
            | ColumnType::NumericUnconstrained
            | ColumnType::Text
            | ColumnType::Varchar { .. }
            | ColumnType::Date
            | ColumnType::Timestamp
            | ColumnType::TimestampTz
    );
    if !plain {
        return None;
    }
    let value = match value {
        Some(v) if !v.is_null() => v,
        _ => return ScalarValue::try_from(&target).ok(),
    };
    let given = value.data_type();
    let same = given == target
        || (column == ColumnType::TimestampTz
            && matches!(given, DataType::Timestamp(TimeUnit::Microsecond, Some(_))));
    let integers = given.is_integer() && target.is_integer();
    if !(same || integers) {
        return None;
    }
    // An integer that does not fit its column is left to the planned INSERT (22003).
    value.cast_to(&target).ok().filter(|v| !v.is_null())
}

/// The scale numeric input gives `text` (`None` if it is no numeric).
fn written_scale(text: &str) -> Option<i16> {
    henge_ingest::value::parse_numeric_unconstrained(text)
        .ok()
        .map(|(_, scale)| scale)
}

/// Runs a prepared `INSERT … VALUES` whose values are parameters and constants without
/// planning it, when each parameter is of its column's type and each constant is one the
/// INSERT of constants takes: `Ok(None)` when it is not for the fast path and must be
/// planned.
pub async fn run_with_parameters(
    session: &Session,
    insert: &Insert,
    params: &[ScalarValue],
) -> Result<Option<u64>, PgError> {
    let (Some(target), Some(rows)) = (target(session, insert), rows(insert)) else {
        return Ok(None);
    };
    let def = &target.table.def;
    if rows
        .iter()
        .any(|row| row.content.len() != target.columns.len())
    {
        return Ok(None);
    }
    let schema = def.arrow_schema();
    let zone = session.settings.time_zone_name();
    let sent_scales = session
        .parameter_scales
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut arrays: Vec<Option<ArrayRef>> = vec![None; def.columns.len()];
    // The scale of each value given to an unconstrained numeric column, by column.
    let mut given_scales: Vec<Option<Vec<Option<i16>>>> = vec![None; def.columns.len()];
    for (i, &position) in target.columns.iter().enumerate() {
        let column = &def.columns[position];
        let mut values = Vec::with_capacity(rows.len());
        let mut scales = Vec::with_capacity(rows.len());
        for row in rows {
            let entry = &row.content[i];
            let (value, scale) = match parameter(entry, params) {
                Some(value) => {
                    let scale = placeholder(entry)
                        .filter(|_| sent_scales.len() == params.len())
                        .and_then(|n| sent_scales[n]);
                    (parameter_value(column.ty, value), scale)
                }
                // A constant, read as the INSERT of constants reads it.
                None => match copy_text(entry, column.ty) {
                    Ok(text) => {
                        let scale = text.as_deref().and_then(written_scale);
                        let value = constant_value(column, text.as_deref(), Some(&zone))
                            .ok()
                            .and_then(|one| ScalarValue::try_from_array(&one, 0).ok());
                        (value, scale)
                    }
                    Err(NotText::Planned) => (None, None),
                    Err(NotText::Mismatch(given)) => return Err(mismatch(column, given)),
                },
            };
            match value {
                Some(value) => {
                    scales.push(scale.filter(|_| !value.is_null()));
                    values.push(value);
                }
                None => return Ok(None),
            }
        }
        match ScalarValue::iter_to_array(values) {
            Ok(array) => arrays[position] = Some(array),
            Err(_) => return Ok(None),
        }
        given_scales[position] = Some(scales);
    }
    let mut columns = Vec::with_capacity(def.columns.len());
    for (array, (column, field)) in arrays
        .into_iter()
        .zip(def.columns.iter().zip(schema.fields()))
    {
        let array = match array {
            Some(array) => array,
            // A column not named gets its DEFAULT, or NULL.
            None => match default_value(column).ok().flatten() {
                Some(one) => ScalarValue::try_from_array(&one, 0)
                    .and_then(|v| v.to_array_of_size(rows.len()))
                    .ok(),
                None => Some(new_null_array(field.data_type(), rows.len())),
            }
            .unwrap_or_else(|| new_null_array(field.data_type(), rows.len())),
        };
        match cast(&array, field.data_type()) {
            Ok(array) => columns.push(array),
            Err(_) => return Ok(None),
        }
    }
    // The scales of unconstrained numerics' values follow the table's columns: as sent
    // or written, or a DEFAULT's.
    for (column, given) in def.columns.iter().zip(given_scales) {
        if column.ty != ColumnType::NumericUnconstrained {
            continue;
        }
        let scales: Vec<Option<i16>> = match given {
            Some(scales) => scales,
            None => {
                let scale = column.default.as_deref().and_then(written_scale);
                vec![scale; rows.len()]
            }
        };
        columns.push(Arc::new(Int16Array::from(scales)));
    }
    let Ok(batch) = RecordBatch::try_new(def.scaled_schema(), columns) else {
        return Ok(None);
    };
    stage(session, &target.table, vec![batch]).await
}
