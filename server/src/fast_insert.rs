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
//! Anything else — expressions, parameters, DEFAULT, RETURNING, ON CONFLICT, a decimal
//! going to an integer column (PostgreSQL rounds it), a number going to a text column
//! (PostgreSQL writes its canonical text), tables with sketch columns, views — and any
//! value COPY's reader refuses goes the planned way, which gives PostgreSQL's answer or
//! error: nothing is staged until every row has been read.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, Insert, Parens, Query, SetExpr, TableObject,
    UnaryOperator, Value, ValueWithSpan,
};
use henge_ingest::copy::{CopyFormat, CopyOptions, CopyReader};
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

/// A constant as COPY text for a column of type `ty`, if its meaning there is that of the
/// type's input function; `None` for NULL's `\N`, and `Err(())` when the fast path does
/// not take it.
fn copy_text(value: &Expr, ty: ColumnType) -> Result<Option<String>, ()> {
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
            _ => return Err(()),
        },
        other => other,
    };
    let Expr::Value(ValueWithSpan { value, .. }) = value else {
        return Err(());
    };
    let numeric_column = matches!(
        ty,
        ColumnType::Numeric { .. } | ColumnType::Real | ColumnType::Double
    );
    let integer_column = matches!(
        ty,
        ColumnType::SmallInt | ColumnType::Integer | ColumnType::BigInt
    );
    match (value, negative) {
        (Value::Null, false) => Ok(None),
        (Value::SingleQuotedString(s), false) => Ok(Some(s.clone())),
        (Value::Boolean(b), false) if ty == ColumnType::Boolean => {
            Ok(Some(if *b { "t" } else { "f" }.into()))
        }
        (Value::Number(n, _), _) => {
            let digits = n.bytes().all(|b| b.is_ascii_digit());
            let decimal = n
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if (integer_column && digits) || (numeric_column && decimal) {
                Ok(Some(if negative { format!("-{n}") } else { n.clone() }))
            } else {
                Err(())
            }
        }
        _ => Err(()),
    }
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
                Err(()) => return Ok(None),
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
    let mut staged = session.shared.engine.stage(table.clone());
    for batch in batches {
        // A row the table's checks refuse: the staged rows are dropped (with what was
        // spilled) and the planned INSERT gives the error in its own words.
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
