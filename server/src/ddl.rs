//! CREATE TABLE and DROP TABLE: from the SQL statement to a validated table definition.

use datafusion::sql::sqlparser::ast::{
    CharacterLength, ColumnOption, CreateTable, CreateTableOptions, DataType, ExactNumberInfo,
    Expr, ObjectName, SqlOption, TimezoneInfo, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::tokenizer::Token;
use henge_storage::schema::{DEFAULT_WINDOW_PERIOD_SECS, MAX_NUMERIC_PRECISION};
use henge_storage::{
    ColumnDef, ColumnType, Granularity, OnRejection, Rollup, TableDef, TimeLimits,
};
use pgwire::api::results::{Response, Tag};

use crate::error::{code, PgError};
use crate::session::Session;
use crate::view;

/// The unqualified, case-normalised table name of `name` (`public.t`, `henge.public.t`).
pub fn table_name(name: &ObjectName) -> Result<String, PgError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(normalize).unwrap_or_else(|| p.to_string()))
        .collect();
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == henge_planner::SCHEMA => Ok(table.clone()),
        [db, schema, table] if db == henge_planner::CATALOG && schema == henge_planner::SCHEMA => {
            Ok(table.clone())
        }
        [.., schema, _] => Err(PgError::new(
            code::UNDEFINED_OBJECT,
            format!("schema \"{schema}\" does not exist"),
        )),
        [] => Err(PgError::syntax("missing table name")),
    }
}

/// The position of column `name` of `def`; 42703 when it has none.
pub fn column_position(def: &TableDef, name: &str) -> Result<usize, PgError> {
    def.column_index(name).ok_or_else(|| {
        PgError::new(
            code::UNDEFINED_COLUMN,
            format!(
                "column \"{name}\" of relation \"{}\" does not exist",
                def.name
            ),
        )
    })
}

/// An identifier as PostgreSQL stores it: lower-cased unless quoted.
pub fn normalize(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Builds the definition a CREATE TABLE statement asks for.
pub fn table_def(create: &CreateTable) -> Result<TableDef, PgError> {
    if create.or_replace || create.external || create.query.is_some() {
        return Err(PgError::unsupported(
            "only CREATE TABLE [IF NOT EXISTS] name (columns) [WITH (options)] is supported",
        ));
    }
    if create.temporary {
        return Err(PgError::unsupported("temporary tables are not supported"));
    }
    if !create.constraints.is_empty() {
        return Err(PgError::unsupported(
            "table constraints (PRIMARY KEY, UNIQUE, CHECK, FOREIGN KEY) are not supported",
        ));
    }
    let name = table_name(&create.name)?;
    if create.columns.is_empty() {
        return Err(PgError::new(
            code::INVALID_TABLE_DEFINITION,
            format!("table \"{name}\" must have at least one column"),
        ));
    }
    let mut columns: Vec<ColumnDef> = Vec::with_capacity(create.columns.len());
    for column in &create.columns {
        let column = column_def(column)?;
        if columns.iter().any(|c| c.name == column.name) {
            return Err(PgError::new(
                code::DUPLICATE_COLUMN,
                format!("column \"{}\" specified more than once", column.name),
            ));
        }
        columns.push(column);
    }

    let mut time_column = None;
    let mut granularity = None;
    let mut window_period = None;
    let mut rollup = false;
    let mut query_granularity = None;
    let mut limits = TimeLimits::default();
    let options = match &create.table_options {
        CreateTableOptions::None => &[][..],
        CreateTableOptions::With(options) => options.as_slice(),
        _ => {
            return Err(PgError::unsupported(
                "table options must be given as WITH (name = value, …)",
            ))
        }
    };
    for option in options {
        let (key, value) = option_pair(option)?;
        match key.as_str() {
            "time_column" => time_column = Some(value),
            "segment_granularity" => granularity = Some(parse_granularity(&key, &value)?),
            "query_granularity" => {
                query_granularity = match value.to_ascii_lowercase().as_str() {
                    "none" => None,
                    _ => Some(parse_granularity(&key, &value)?),
                }
            }
            "rollup" => {
                rollup = henge_planner::pg::settings::parse_bool(&value).ok_or_else(|| {
                    PgError::new(
                        code::INVALID_PARAMETER_VALUE,
                        format!("invalid value for table option \"rollup\": \"{value}\" (give true or false)"),
                    )
                })?
            }
            "window_period" => window_period = Some(period_option(&key, &value)?),
            "retention" => limits.retention_secs = Some(period_option(&key, &value)?),
            "late_message_rejection" => limits.late_secs = Some(period_option(&key, &value)?),
            "early_message_rejection" => limits.early_secs = Some(period_option(&key, &value)?),
            "on_rejection" => limits.on_rejection = on_rejection(&value)?,
            _ => {
                return Err(PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("unrecognized table option \"{key}\"; Henge knows time_column, segment_granularity, window_period, rollup, query_granularity, retention, late_message_rejection, early_message_rejection and on_rejection"),
                ))
            }
        }
    }
    if let Some(time) = &time_column {
        let column = columns.iter().find(|c| &c.name == time).ok_or_else(|| {
            PgError::new(
                code::UNDEFINED_COLUMN,
                format!("time column \"{time}\" does not exist in table \"{name}\""),
            )
        })?;
        if column.ty != ColumnType::Timestamp && column.ty != ColumnType::TimestampTz {
            return Err(PgError::new(
                code::INVALID_TABLE_DEFINITION,
                format!(
                    "time column \"{time}\" must be of type timestamp or timestamp with time zone, not {}",
                    column.ty.sql_name()
                ),
            ));
        }
        if column.nullable {
            return Err(PgError::new(
                code::INVALID_TABLE_DEFINITION,
                format!("time column \"{time}\" must be declared NOT NULL"),
            ));
        }
    } else if granularity.is_some_and(|g| g != Granularity::All) {
        return Err(PgError::new(
            code::INVALID_TABLE_DEFINITION,
            "segment_granularity needs a time_column",
        ));
    }
    let segment_granularity = match &time_column {
        Some(_) => granularity.unwrap_or(Granularity::Day),
        None => Granularity::All,
    };
    if let Some(query) = query_granularity {
        if time_column.is_none() {
            return Err(PgError::new(
                code::INVALID_TABLE_DEFINITION,
                "query_granularity needs a time_column",
            ));
        }
        let rank = |g: Granularity| Granularity::ALL.iter().position(|&x| x == g);
        // Weeks do not tile months: a week's start can lie in the month before.
        let weeks_in_months = query == Granularity::Week
            && !matches!(segment_granularity, Granularity::Week | Granularity::All);
        if rank(query) > rank(segment_granularity) || weeks_in_months {
            return Err(PgError::new(
                code::INVALID_TABLE_DEFINITION,
                format!("query_granularity \"{query}\" is coarser than segment_granularity \"{segment_granularity}\""),
            ));
        }
    }
    if time_column.is_none() && limits != TimeLimits::default() {
        return Err(PgError::new(
            code::INVALID_TABLE_DEFINITION,
            "retention, late_message_rejection, early_message_rejection and on_rejection need a time_column",
        ));
    }
    rollup_roles(&mut columns, time_column.as_deref(), rollup, &name)?;
    Ok(TableDef {
        id: 0,
        name,
        columns,
        segment_granularity,
        time_column,
        window_period_secs: window_period.unwrap_or(DEFAULT_WINDOW_PERIOD_SECS),
        rollup,
        query_granularity,
        limits,
    })
}

/// The value of the `on_rejection` table option.
pub fn on_rejection(value: &str) -> Result<OnRejection, PgError> {
    match value.to_ascii_lowercase().as_str() {
        "error" => Ok(OnRejection::Error),
        "drop" => Ok(OnRejection::Drop),
        _ => Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!(
                "invalid value for table option \"on_rejection\": \"{value}\" (give error or drop)"
            ),
        )),
    }
}

/// A table option that is a duration, in seconds.
pub fn period_option(key: &str, value: &str) -> Result<u64, PgError> {
    parse_period(value).ok_or_else(|| {
        PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("invalid value for table option \"{key}\": \"{value}\" (give a duration such as '10 minutes' or '30 days')"),
        )
    })
}

fn parse_granularity(key: &str, value: &str) -> Result<Granularity, PgError> {
    value.parse::<Granularity>().map_err(|expected| {
        PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("invalid {key} \"{value}\"; {expected}"),
        )
    })
}

/// The rollup a column option asks for: `DIMENSION` or `ROLLUP <aggregate>`.
fn rollup_option(column: &str, words: &[Token]) -> Result<Rollup, PgError> {
    let names: Vec<String> = words.iter().map(|w| w.to_string().to_lowercase()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match names.as_slice() {
        ["dimension"] => Ok(Rollup::Dimension),
        ["rollup", aggregate] => ROLLUPS
            .into_iter()
            .find(|r| r.name() == *aggregate)
            .ok_or_else(|| {
                PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("unrecognized rollup \"{aggregate}\" for column \"{column}\"; Henge knows SUM, MIN, MAX, COUNT, FIRST, LAST, HLL and QUANTILES"),
                )
            }),
        _ => Err(PgError::syntax(format!(
            "invalid column option {}",
            names.join(" ")
        ))),
    }
}

const ROLLUPS: [Rollup; 8] = [
    Rollup::Sum,
    Rollup::Min,
    Rollup::Max,
    Rollup::Count,
    Rollup::First,
    Rollup::Last,
    Rollup::Hll,
    Rollup::Quantiles,
];

/// Gives every column of a rolled-up table its part (numeric columns are summed, the rest
/// are dimensions, unless the column says otherwise) and checks each fits its column; a
/// table without rollup may not name any.
fn rollup_roles(
    columns: &mut [ColumnDef],
    time: Option<&str>,
    rollup: bool,
    table: &str,
) -> Result<(), PgError> {
    let invalid = |message: String| PgError::new(code::INVALID_TABLE_DEFINITION, message);
    for column in columns.iter_mut() {
        let said = column.rollup;
        if !rollup {
            if let Some(said) = said {
                return Err(invalid(format!(
                    "column \"{}\" is declared {} but table \"{table}\" is not rolled up (add WITH (rollup = true))",
                    column.name,
                    declared(said)
                )));
            }
            continue;
        }
        if Some(column.name.as_str()) == time {
            if let Some(said) = said {
                return Err(invalid(format!(
                    "the time column \"{}\" cannot be declared {}: rows are grouped by its time, truncated to the query granularity",
                    column.name,
                    declared(said)
                )));
            }
            continue;
        }
        let numeric = matches!(
            column.ty,
            ColumnType::SmallInt
                | ColumnType::Integer
                | ColumnType::BigInt
                | ColumnType::Real
                | ColumnType::Double
                | ColumnType::Numeric { .. }
                | ColumnType::NumericUnconstrained
        );
        let role = said.unwrap_or(if numeric {
            Rollup::Sum
        } else {
            Rollup::Dimension
        });
        let fits = match role {
            Rollup::Dimension => true,
            Rollup::Sum => numeric,
            Rollup::Count => column.ty == ColumnType::BigInt,
            Rollup::Min | Rollup::Max => !matches!(column.ty, ColumnType::Json | ColumnType::Jsonb),
            Rollup::First | Rollup::Last => time.is_some(),
            Rollup::Hll => henge_ingest::sketch::hll_takes(&column.ty.arrow_type()),
            Rollup::Quantiles => numeric,
        };
        if !fits {
            let needs = match role {
                Rollup::Sum => "a numeric column",
                Rollup::Count => "a bigint column (it holds the count)",
                Rollup::First | Rollup::Last => "a table with a time_column",
                Rollup::Quantiles => "a numeric column",
                Rollup::Hll => "a column of a type it can hash",
                _ => "a column whose values can be compared",
            };
            return Err(invalid(format!(
                "{} needs {needs}; column \"{}\" is {}",
                declared(role),
                column.name,
                column.ty.sql_name()
            )));
        }
        column.rollup = Some(role);
    }
    Ok(())
}

/// How a rollup is written in a column definition.
fn declared(rollup: Rollup) -> String {
    match rollup {
        Rollup::Dimension => "DIMENSION".to_owned(),
        other => format!("ROLLUP {}", other.name().to_uppercase()),
    }
}

/// A column as a column definition declares it (CREATE TABLE, ALTER TABLE … ADD COLUMN).
pub fn column_def(
    column: &datafusion::sql::sqlparser::ast::ColumnDef,
) -> Result<ColumnDef, PgError> {
    let name = normalize(&column.name);
    not_reserved(&name)?;
    let mut nullable = true;
    let mut rollup = None;
    for option in &column.options {
        match &option.option {
            ColumnOption::Null => nullable = true,
            ColumnOption::NotNull => nullable = false,
            ColumnOption::DialectSpecific(words) => rollup = Some(rollup_option(&name, words)?),
            // Evaluated by [`defaults`], which needs the session.
            ColumnOption::Default(_) => {}
            other => {
                return Err(PgError::unsupported(format!(
                    "column option {other} is not supported"
                )))
            }
        }
    }
    Ok(ColumnDef {
        ty: column_type(&column.data_type)?,
        name,
        nullable,
        rollup,
        default: None,
    })
}

/// Gives each column of `columns` declared with a DEFAULT (in `declared`) its value, which
/// must be a constant: evaluated once, with the session's settings, cast to the column's
/// type and kept as PostgreSQL's text of it.
pub async fn defaults(
    session: &Session,
    columns: &mut [ColumnDef],
    declared: &[datafusion::sql::sqlparser::ast::ColumnDef],
) -> Result<(), PgError> {
    for ast in declared {
        let Some(expr) = ast.options.iter().find_map(|o| match &o.option {
            ColumnOption::Default(expr) => Some(expr),
            _ => None,
        }) else {
            continue;
        };
        let name = normalize(&ast.name);
        let Some(column) = columns.iter_mut().find(|c| c.name == name) else {
            continue;
        };
        column.default = default_text(session, column, expr).await?;
    }
    Ok(())
}

async fn default_text(
    session: &Session,
    column: &ColumnDef,
    expr: &Expr,
) -> Result<Option<String>, PgError> {
    use datafusion::arrow::array::Array;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr as LogicalExpr, Volatility};
    if crate::privileges::names_columns(expr) {
        return Err(PgError::new(
            code::INVALID_COLUMN_REFERENCE,
            "cannot use column reference in DEFAULT expression",
        ));
    }
    let sql = format!(
        "SELECT CAST(({expr}) AS {}) AS d",
        crate::dml::cast_type(&column.ty)
    );
    let state = session.ctx.state();
    let plan = state.create_logical_plan(&sql).await?;
    let mut varying = false;
    plan.apply_with_subqueries(|p| {
        p.apply_expressions(|e| {
            e.apply(|e| {
                if let LogicalExpr::ScalarFunction(f) = e {
                    varying |= f.func.signature().volatility != Volatility::Immutable;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    if varying {
        return Err(PgError::unsupported(format!(
            "DEFAULT {expr} is not supported: Henge keeps constant defaults only, and this one would be evaluated anew for each row"
        )));
    }
    let batches = session
        .ctx
        .execute_logical_plan(plan)
        .await?
        .collect()
        .await?;
    let Some(array) = batches.first().map(|b| b.column(0).clone()) else {
        return Ok(None);
    };
    if array.is_null(0) {
        return Ok(None);
    }
    let zone: datafusion::arrow::array::timezone::Tz = "+00:00"
        .parse()
        .map_err(|e| PgError::new(code::INTERNAL_ERROR, format!("{e}")))?;
    let options = datafusion::arrow::util::display::FormatOptions::default();
    let mut text = Vec::new();
    crate::wire::encode::ColumnEncoder::new(
        &array,
        pgwire::api::results::FieldFormat::Text,
        &options,
        &zone,
    )?
    .text(0, &mut text)?;
    let text =
        String::from_utf8(text).map_err(|e| PgError::new(code::INTERNAL_ERROR, e.to_string()))?;
    // Read back as the column reads its values: a value that does not fit is refused now.
    let checked = ColumnDef {
        default: Some(text.clone()),
        ..column.clone()
    };
    henge_ingest::rows::default_value(&checked)?;
    Ok(Some(text))
}

/// Column names beginning with `__henge` are Henge's own (42939).
pub fn not_reserved(name: &str) -> Result<(), PgError> {
    if name.starts_with(henge_storage::schema::RESERVED_PREFIX) {
        return Err(PgError::new(
            code::RESERVED_NAME,
            format!(
                "column name \"{name}\" is reserved: names beginning with \"{}\" are Henge's own",
                henge_storage::schema::RESERVED_PREFIX
            ),
        ));
    }
    Ok(())
}

/// A duration in whole seconds, written as PostgreSQL writes intervals (`'10 minutes'`,
/// `'1 hour 30 min'`, `'90 s'`, `'00:10:00'`) or as Druid does (`'PT10M'`).
pub(crate) fn parse_period(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    if let Some(iso) = text.strip_prefix("pt") {
        let mut total = 0u64;
        let mut number = String::new();
        for c in iso.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
            total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(unit)?)?;
            number.clear();
        }
        return (number.is_empty() && !iso.is_empty()).then_some(total);
    }
    if text.contains(':') {
        let parts: Vec<u64> = text
            .split(':')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        return match parts[..] {
            [h, m, s] if m < 60 && s < 60 => h.checked_mul(3600)?.checked_add(m * 60 + s),
            [h, m] if m < 60 => h.checked_mul(3600)?.checked_add(m * 60),
            _ => None,
        };
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return None;
    }
    let mut total = 0u64;
    for pair in words.chunks(2) {
        let n: u64 = pair[0].parse().ok()?;
        let unit = match pair[1] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

/// A `WITH (name = value)` option as its name and its value's text.
pub fn option_pair(option: &SqlOption) -> Result<(String, String), PgError> {
    let SqlOption::KeyValue { key, value } = option else {
        return Err(PgError::syntax(format!("invalid table option {option}")));
    };
    let key = normalize(key);
    let value = option_string(value).ok_or_else(|| {
        PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("invalid value for table option \"{key}\": {value}"),
        )
    })?;
    Ok((key, value))
}

/// A table option's value as text (`'30 days'`, `drop`, `true`).
fn option_string(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(s),
            ..
        }) => Some(s.clone()),
        Expr::Identifier(ident) => Some(normalize(ident)),
        Expr::Value(ValueWithSpan {
            value: Value::Boolean(b),
            ..
        }) => Some(b.to_string()),
        _ => None,
    }
}

/// Maps a PostgreSQL type name to a Henge column type.
pub fn column_type(data_type: &DataType) -> Result<ColumnType, PgError> {
    let ty = match data_type {
        DataType::Bool | DataType::Boolean => ColumnType::Boolean,
        DataType::SmallInt(_) | DataType::Int2(_) => ColumnType::SmallInt,
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => ColumnType::Integer,
        DataType::BigInt(_) | DataType::Int8(_) => ColumnType::BigInt,
        DataType::Real | DataType::Float4 => ColumnType::Real,
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => ColumnType::Double,
        DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => ColumnType::Real,
        DataType::Float(_) => ColumnType::Double,
        DataType::Numeric(info) | DataType::Decimal(info) => numeric(info)?,
        DataType::Text => ColumnType::Text,
        DataType::Varchar(length) | DataType::CharacterVarying(length) => ColumnType::Varchar {
            max_len: match length {
                Some(CharacterLength::IntegerLength { length, .. }) => {
                    if *length == 0 || *length > 10_485_760 {
                        return Err(PgError::new(
                            code::INVALID_PARAMETER_VALUE,
                            "length for type varchar must be between 1 and 10485760".to_string(),
                        ));
                    }
                    Some(*length as u32)
                }
                _ => None,
            },
        },
        DataType::Date => ColumnType::Date,
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            ColumnType::Timestamp
        }
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            ColumnType::TimestampTz
        }
        DataType::Bytea => ColumnType::Bytea,
        DataType::JSON => ColumnType::Json,
        DataType::JSONB => ColumnType::Jsonb,
        DataType::Uuid => ColumnType::Uuid,
        DataType::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_lowercase().as_str() {
                "timestamptz" => ColumnType::TimestampTz,
                "float4" => ColumnType::Real,
                "float8" => ColumnType::Double,
                "int2" => ColumnType::SmallInt,
                "int4" => ColumnType::Integer,
                "int8" => ColumnType::BigInt,
                "bool" => ColumnType::Boolean,
                other => {
                    return Err(PgError::new(
                        code::UNDEFINED_OBJECT,
                        format!("type \"{other}\" does not exist"),
                    ))
                }
            }
        }
        other => {
            return Err(PgError::unsupported(format!(
                "type {other} is not supported; Henge supports boolean, smallint, integer, bigint, real, double precision, numeric, text, varchar, date, timestamp, timestamptz, bytea, json, jsonb and uuid"
            )))
        }
    };
    Ok(ty)
}

fn numeric(info: &ExactNumberInfo) -> Result<ColumnType, PgError> {
    let (precision, scale) = match info {
        ExactNumberInfo::None => return Ok(ColumnType::NumericUnconstrained),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if precision == 0 || precision > u64::from(MAX_NUMERIC_PRECISION) {
        return Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("NUMERIC precision {precision} must be between 1 and {MAX_NUMERIC_PRECISION}"),
        ));
    }
    if scale < 0 || scale as u64 > precision {
        return Err(PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("NUMERIC scale {scale} must be between 0 and precision {precision}"),
        ));
    }
    Ok(ColumnType::Numeric {
        precision: precision as u8,
        scale: scale as i8,
    })
}

/// `DROP TABLE [IF EXISTS] names [CASCADE | RESTRICT]`: every name checked first, so a bad
/// one drops nothing; the views that read a table go with it only with CASCADE.
pub async fn drop_tables(
    session: &Session,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<Response, PgError> {
    let engine = &session.shared.engine;
    let names = names
        .iter()
        .map(table_name)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(view) = names.iter().find(|n| engine.view(n).is_some()) {
        return Err(PgError::new(
            code::WRONG_OBJECT_TYPE,
            format!("\"{view}\" is not a table"),
        )
        .with_hint("Use DROP VIEW to remove a view."));
    }
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let exists = engine.table(name).is_some();
            if !exists && if_exists {
                session.notice(format!("table \"{name}\" does not exist, skipping"));
            }
            exists || !if_exists
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if let Some(missing) = names.iter().find(|n| engine.table(n).is_none()) {
        return Err(PgError::new(
            code::UNDEFINED_TABLE,
            format!("table \"{missing}\" does not exist"),
        ));
    }
    let dependents = view::dependents(engine, &names);
    if !dependents.is_empty() && !cascade {
        let needed = names
            .iter()
            .find(|n| !view::dependents(engine, std::slice::from_ref(*n)).is_empty())
            .unwrap_or(&names[0]);
        return Err(view::still_needed(engine, "table", needed, &dependents));
    }
    let alerts: Vec<String> = names
        .iter()
        .filter_map(|n| engine.table(n))
        .flat_map(|t| crate::alert::depending_on(session, &t.def, true))
        .collect();
    if let (Some(alert), false) = (alerts.first(), cascade) {
        return Err(PgError::new(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot drop table {} because other objects depend on it",
                names[0]
            ),
        )
        .with_detail(format!("alert {alert} depends on it"))
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
    }
    for d in &dependents {
        session.notice(format!("drop cascades to view {d}"));
    }
    for alert in &alerts {
        session.notice(format!("drop cascades to alert {alert}"));
        crate::alert::drop_rule(session, alert)?;
    }
    for name in &names {
        let views = view::dependents(engine, std::slice::from_ref(name));
        match engine.drop_table(name, &views).await {
            Ok(()) => {}
            Err(henge_ingest::Error::Storage(henge_storage::Error::TableNotFound(_)))
                if if_exists => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Response::Execution(Tag::new("DROP TABLE")))
}

#[cfg(test)]
mod tests {
    use super::parse_period;

    #[test]
    fn periods_in_postgres_and_druid_spellings() {
        assert_eq!(parse_period("10 minutes"), Some(600));
        assert_eq!(parse_period("1 hour 30 min"), Some(5400));
        assert_eq!(parse_period("0 s"), Some(0));
        assert_eq!(parse_period("00:10:00"), Some(600));
        assert_eq!(parse_period("PT1H10M"), Some(4200));
        assert_eq!(parse_period("pt90s"), Some(90));
        for bad in [
            "",
            "ten minutes",
            "10",
            "5 fortnights",
            "PT",
            "PT10",
            "1:99",
            "PTXM",
        ] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }
}
